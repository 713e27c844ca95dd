import { describe, expect, test } from 'vitest';
import {
  UPSTREAM_HOST_INDEX,
  appendIdentityHeaders,
  buildDownstreamHeaders,
  buildUpstreamHeaders,
  clientHeaders,
} from '../../src/worker/upstream-headers.ts';
import type { ForwardedFor } from '../../src/worker/upstream-headers.ts';

const FWD: ForwardedFor = { host: '10.0.0.5:9001', peer: '192.0.2.1', client: '203.0.113.7', clientHost: 'api.example.com', proto: 'http' };

/** Raw headers as Node gives them: name, value, name, value… */
const raw = (...pairs: [string, string][]): string[] => pairs.flat();

/** The list as [name, value] pairs. */
function pairs(list: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i]!, list[i + 1]!]);
  return out;
}

const GATEWAY_HEADERS: [string, string][] = [
  ['host', '10.0.0.5:9001'],
  ['x-forwarded-for', '192.0.2.1'],
  ['x-forwarded-proto', 'http'],
  ['x-forwarded-host', 'api.example.com'],
  ['x-real-ip', '203.0.113.7'],
];

describe('buildUpstreamHeaders', () => {
  test('the gateway headers come first, with the host at UPSTREAM_HOST_INDEX', () => {
    const out = buildUpstreamHeaders(raw(['Host', 'api.example.com'], ['Accept', '*/*']), FWD);
    expect(pairs(out)).toEqual([...GATEWAY_HEADERS, ['Accept', '*/*']]);
    expect(out[UPSTREAM_HOST_INDEX]).toBe('10.0.0.5:9001');
  });

  test('hop-by-hop headers are removed', () => {
    const out = buildUpstreamHeaders(raw(
      ['Host', 'a'], ['Connection', 'keep-alive'], ['Keep-Alive', 'timeout=5'], ['Proxy-Connection', 'keep-alive'],
      ['Proxy-Authorization', 'Basic eA=='], ['TE', 'trailers'], ['Trailer', 'X-Sum'], ['Transfer-Encoding', 'chunked'],
      ['Upgrade', 'websocket'], ['Proxy-Authenticate', 'x'], ['Accept', 'a'],
    ), FWD);
    expect(pairs(out)).toEqual([...GATEWAY_HEADERS, ['Accept', 'a']]);
  });

  test('a Connection header in the list no longer removes anything: its tokens were applied before the plugins', () => {
    // X-Request-Id here stands for a header a plugin added after clientHeaders ran.
    const out = buildUpstreamHeaders(raw(['Connection', 'close, X-Request-Id, X-A'], ['X-Request-Id', 'r1'], ['X-A', '1']), FWD);
    expect(pairs(out)).toEqual([...GATEWAY_HEADERS, ['X-Request-Id', 'r1'], ['X-A', '1']]);
  });

  test('Connection cannot strip the headers the gateway sets', () => {
    const out = buildUpstreamHeaders(raw(
      ['Connection', 'close, X-Forwarded-For, X-Real-IP, Host, X-Forwarded-Proto, X-Forwarded-Host'],
    ), FWD);
    expect(pairs(out)).toEqual(GATEWAY_HEADERS);
  });

  test('client copies of host / x-forwarded-* / x-real-ip / expect are replaced by the gateway values', () => {
    const out = buildUpstreamHeaders(raw(
      ['HOST', 'evil.example'], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Host', 'evil.example'],
      ['X-Real-IP', '6.6.6.6'], ['x-real-ip', '7.7.7.7'], ['Expect', '100-continue'], ['Accept', 'a'],
    ), FWD);
    expect(pairs(out)).toEqual([...GATEWAY_HEADERS, ['Accept', 'a']]);
  });

  test('X-Forwarded-For: every client copy is kept in order and the peer appended', () => {
    const out = buildUpstreamHeaders(raw(
      ['X-Forwarded-For', '198.51.100.1'], ['Accept', 'a'], ['x-forwarded-for', '198.51.100.2, 198.51.100.3'],
    ), FWD);
    expect(pairs(out)).toEqual([
      ['host', '10.0.0.5:9001'],
      ['x-forwarded-for', '198.51.100.1, 198.51.100.2, 198.51.100.3, 192.0.2.1'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'api.example.com'],
      ['x-real-ip', '203.0.113.7'],
      ['Accept', 'a'],
    ]);
    expect(out.filter((h) => h.toLowerCase() === 'x-forwarded-for')).toHaveLength(1);
  });

  test('identity headers are removed, in every spelling an upstream framework would fold (a plugin may add such names)', () => {
    const out = buildUpstreamHeaders(raw(
      ['X-User-Id', '1'], ['X_User_Id', '2'], ['x.user.id', '3'], ['X-USER-ID', '4'], ['x-user_id', '5'],
      ['X-Company-Id', '6'], ['x_company.id', '7'], ['X-Consumer-Username', 'root'], ['X_Consumer_Username', 'root'],
      ['X-Anonymous-Consumer', 'false'], ['x.anonymous.consumer', 'false'], ['Accept', 'a'],
    ), FWD);
    expect(pairs(out)).toEqual([...GATEWAY_HEADERS, ['Accept', 'a']]);
  });

  test('folded spellings of the forwarded headers are removed; X-Forwarded-For copies are merged only as spelled', () => {
    const out = buildUpstreamHeaders(raw(
      ['X_Forwarded_For', '6.6.6.6'], ['x.forwarded.for', '6.6.6.6'], ['X_Real_IP', '6.6.6.6'], ['X_Forwarded_Host', 'evil'],
      ['x-forwarded_proto', 'https'], ['X-Forwarded-For', '198.51.100.1'], ['X_Request_Id', 'kept'], ['X-Userid', 'kept'],
    ), FWD);
    expect(pairs(out)).toEqual([
      ['host', '10.0.0.5:9001'],
      ['x-forwarded-for', '198.51.100.1, 192.0.2.1'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'api.example.com'],
      ['x-real-ip', '203.0.113.7'],
      ['X_Request_Id', 'kept'],
      ['X-Userid', 'kept'],
    ]);
  });

  test('unrelated headers keep their order, original case and repeated values', () => {
    const out = buildUpstreamHeaders(raw(
      ['User-Agent', 'curl/8'], ['X-Trace', 'a'], ['Cookie', 'a=1'], ['x-trace', 'b'], ['Authorization', 'Bearer t'],
      ['Content-Type', 'application/json'], ['Content-Length', '2'], ['X-Request-Id', 'r1'], ['X_Custom_Thing', 'ok'],
    ), FWD);
    expect(pairs(out).slice(GATEWAY_HEADERS.length)).toEqual([
      ['User-Agent', 'curl/8'], ['X-Trace', 'a'], ['Cookie', 'a=1'], ['x-trace', 'b'], ['Authorization', 'Bearer t'],
      ['Content-Type', 'application/json'], ['Content-Length', '2'], ['X-Request-Id', 'r1'], ['X_Custom_Thing', 'ok'],
    ]);
  });

  test('does not modify the list it was given', () => {
    const input = raw(['Host', 'a'], ['Connection', 'X-A'], ['X-A', '1'], ['X-User-Id', '1']);
    const copy = [...input];
    buildUpstreamHeaders(input, FWD);
    expect(input).toEqual(copy);
  });

  test('preserved host and empty X-Forwarded-Host are passed through as given', () => {
    const out = buildUpstreamHeaders(raw(['Host', 'api.example.com']), { ...FWD, host: 'api.example.com', clientHost: '', proto: 'http' });
    expect(out[UPSTREAM_HOST_INDEX]).toBe('api.example.com');
    expect(pairs(out)).toContainEqual(['x-forwarded-host', '']);
  });
});

describe('clientHeaders (before the plugins)', () => {
  test('the usual request comes back as the very same list: nothing copied', () => {
    const input = raw(['Host', 'a'], ['Connection', 'keep-alive'], ['Accept', '*/*'], ['X-Request-Id', 'r1']);
    expect(clientHeaders(input)).toBe(input);
    const closing = raw(['Host', 'a'], ['connection', 'Close']);
    expect(clientHeaders(closing)).toBe(closing);
    const empty: string[] = [];
    expect(clientHeaders(empty)).toBe(empty);
  });

  test('names listed in Connection are removed, in any case, across several Connection headers', () => {
    const out = clientHeaders(raw(
      ['X-A', '1'], ['Connection', 'close, X-A ,x-b'], ['X-B', '2'], ['connection', 'X-C'], ['X-C', '3'], ['X-D', '4'],
    ));
    expect(pairs(out)).toEqual([['Connection', 'close, X-A ,x-b'], ['connection', 'X-C'], ['X-D', '4']]);
  });

  test('Host and Content-Length are never removed by a token', () => {
    const input = raw(['Host', 'a'], ['Content-Length', '5'], ['Connection', 'close, Host, content-length, keep-alive']);
    expect(clientHeaders(input)).toBe(input);
  });

  test('a name with _ or . is dropped (nginx underscores_in_headers off, and . as ignore_invalid_headers does)', () => {
    const out = clientHeaders(raw(
      ['X_Forwarded_For', '6.6.6.6'], ['X.Forwarded.For', '6.6.6.6'], ['X_Real_IP', '6.6.6.6'], ['X_Forwarded_Host', 'e'],
      ['X_Forwarded_Proto', 'https'], ['X_Authenticated_User', 'root'], ['x-user.id', '1'], ['Accept', 'a'], ['X-Trace-2', 'b'],
    ));
    expect(pairs(out)).toEqual([['Accept', 'a'], ['X-Trace-2', 'b']]);
  });

  test('then a header a plugin adds survives the client naming it in Connection', () => {
    const own = clientHeaders(raw(['Connection', 'close, X-Request-Id, X-Forwarded-For'], ['X-Request-Id', 'client'], ['Accept', 'a']));
    const afterPlugin = [...own, 'X-Request-Id', 'from-plugin'];
    const out = buildUpstreamHeaders(afterPlugin, FWD);
    expect(pairs(out)).toEqual([...GATEWAY_HEADERS, ['Accept', 'a'], ['X-Request-Id', 'from-plugin']]);
  });

  test('does not modify the raw list it was given', () => {
    const input = raw(['Connection', 'X-A'], ['X-A', '1'], ['X_B', '2']);
    const copy = [...input];
    clientHeaders(input);
    expect(input).toEqual(copy);
  });
});

describe('buildDownstreamHeaders', () => {
  test('drops hop-by-hop headers and keeps the rest in order', () => {
    const out = buildDownstreamHeaders([
      'content-type', 'text/plain',
      'connection', 'keep-alive',
      'keep-alive', 'timeout=5',
      'transfer-encoding', 'chunked',
      'upgrade', 'h2c',
      'trailer', 'x-sum',
      'te', 'trailers',
      'proxy-connection', 'keep-alive',
      'etag', '"1"',
    ]);
    expect(pairs(out)).toEqual([['content-type', 'text/plain'], ['etag', '"1"']]);
  });

  test('drops the names the upstream Connection header lists (string or array)', () => {
    expect(pairs(buildDownstreamHeaders(['connection', 'close, X-Internal', 'x-internal', 'secret', 'x-kept', '1']))).toEqual([['x-kept', '1']]);
    expect(pairs(buildDownstreamHeaders(['connection', 'x-a', 'x-a', '1', 'connection', 'X-B', 'x-b', '2', 'x-c', '3']))).toEqual([['x-c', '3']]);
  });

  test('keeps repeated fields (set-cookie) apart, and returns the list itself when nothing is dropped', () => {
    const list = ['set-cookie', 'a=1; Path=/', 'set-cookie', 'b=2; HttpOnly', 'vary', 'accept'];
    const out = buildDownstreamHeaders(list);
    expect(out).toBe(list);
    expect(pairs(out)).toEqual([['set-cookie', 'a=1; Path=/'], ['set-cookie', 'b=2; HttpOnly'], ['vary', 'accept']]);
  });
});

describe('appendIdentityHeaders', () => {
  const id = { consumer: 'alice', user_id: '1001', company_id: '42', anonymous: false, attributes: { user_id: '1001', company_id: '42' } };

  test('sends the identity as the only identity headers, after the client copies were removed', () => {
    const out = buildUpstreamHeaders(['X-User-Id', '666', 'X_Company_Id', '1', 'Accept', '*/*'], FWD);
    appendIdentityHeaders(out, id);
    const pairs = Object.fromEntries(Array.from({ length: out.length / 2 }, (_, i) => [out[2 * i]!.toLowerCase(), out[2 * i + 1]]));
    expect(pairs['x-user-id']).toBe('1001');
    expect(pairs['x-company-id']).toBe('42');
    expect(pairs['x-consumer-username']).toBe('alice');
    expect(pairs['x-anonymous-consumer']).toBeUndefined();
    expect(out.filter((n, i) => i % 2 === 0 && /user.id/i.test(n))).toHaveLength(1);
  });

  test('marks anonymous identities and drops values that could split a header', () => {
    const out: string[] = [];
    appendIdentityHeaders(out, { ...id, anonymous: true, user_id: '1\r\nX-Admin: 1', company_id: null });
    expect(out).toEqual(['x-consumer-username', 'alice', 'x-anonymous-consumer', 'true']);
  });
});
