import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorBody, errorExit, errorStatus, GATEWAY_ERRORS } from '../../../src/plugins/pdk/index.ts';
import type { GatewayErrorCode } from '../../../src/plugins/pdk/index.ts';

const root = new URL('../../../', import.meta.url);
const entries = Object.entries(GATEWAY_ERRORS) as [string, { status?: number; internal?: true; message: string }][];
const answered = entries.filter(([, e]) => e.internal !== true).map(([code]) => code as GatewayErrorCode);

/** Every .ts file under a folder of the repository. */
function sources(dir: string): string[] {
  return (readdirSync(new URL(dir, root), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(new URL(`${dir}/${f}`, root), 'utf8'));
}

/** The rows of README.md's "Error codes" table: code → status column. */
function documented(): Map<string, string> {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const start = readme.indexOf('\n## Error codes\n');
  expect(start).toBeGreaterThan(-1);
  const end = readme.indexOf('\n## ', start + 1);
  const rows = new Map<string, string>();
  for (const m of readme.slice(start, end === -1 ? undefined : end).matchAll(/^\| `(GW_ERR_[A-Z_]+)` \| ([^|]+) \|/gm)) {
    rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

describe('error catalogue', () => {
  it('names every code GW_ERR_*, with a message and a 4xx/5xx status or the internal mark', () => {
    for (const [code, e] of entries) {
      expect(code).toMatch(/^GW_ERR_[A-Z]+(_[A-Z]+)*$/);
      expect(e.message.length).toBeGreaterThan(0);
      if (e.internal === true) expect(e.status).toBeUndefined();
      else expect(e.status).toSatisfy((s: number) => Number.isInteger(s) && s >= 400 && s <= 599);
    }
  });

  it('keeps the statuses and messages of the gateway\'s own answers', () => {
    expect(Object.fromEntries(entries.slice(0, 15))).toEqual({
      GW_ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
      GW_ERR_BAD_PATH: { status: 400, message: 'bad request path' },
      GW_ERR_NO_ROUTE: { status: 404, message: 'no route matched' },
      GW_ERR_NOT_FOUND: { status: 404, message: 'not found' },
      GW_ERR_FORBIDDEN: { status: 403, message: 'forbidden' },
      GW_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
      GW_ERR_CLIENT_TIMEOUT: { status: 408, message: 'client timed out' },
      GW_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
      GW_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
      GW_ERR_BAD_HANDSHAKE: { status: 400, message: 'bad WebSocket handshake' },
      GW_ERR_WEBSOCKET_VERSION: { status: 426, message: 'unsupported WebSocket version' },
      GW_ERR_INTERNAL: { status: 500, message: 'internal error' },
      GW_ERR_UPSTREAM: { status: 502, message: 'upstream failed' },
      GW_ERR_NO_HEALTHY_UPSTREAM: { status: 503, message: 'no healthy upstream' },
      GW_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out' },
    });
  });

  it('holds every GW_ERR_* code the source uses', () => {
    const used = new Set<string>();
    for (const text of sources('src')) for (const [code] of text.matchAll(/GW_ERR_[A-Z_]*[A-Z]/g)) used.add(code);
    expect([...used].filter((c) => !(c in GATEWAY_ERRORS))).toEqual([]);
  });

  it('is the table of README.md "Error codes", with the same statuses', () => {
    const rows = documented();
    expect([...rows.keys()].sort()).toEqual(entries.map(([code]) => code).sort());
    for (const [code, e] of entries) expect(rows.get(code), code).toBe(e.internal === true ? '—' : String(e.status));
  });

  it('builds each body once as {"code","message"} JSON', () => {
    for (const code of answered) {
      expect(JSON.parse(errorBody(code).toString())).toEqual({ code, message: GATEWAY_ERRORS[code].message });
      expect(errorBody(code)).toBe(errorBody(code));
      expect(errorStatus(code)).toBe(GATEWAY_ERRORS[code].status);
    }
  });
});

describe('errorExit', () => {
  it('answers with the catalogue\'s status and message by default, frozen', () => {
    const exit = errorExit('GW_ERR_RATE_LIMITED');
    expect(exit).toEqual({ status: 429, body: { code: 'GW_ERR_RATE_LIMITED', message: 'rate limit exceeded' } });
    expect(Object.isFrozen(exit)).toBe(true);
    expect(Object.isFrozen(exit.body)).toBe(true);
  });

  it('takes a status, message and headers from the options; the code stays', () => {
    const headers = { 'Retry-After': '1' };
    const exit = errorExit('GW_ERR_RATE_LIMITED', { status: 503, message: 'slow down', headers });
    expect(exit).toEqual({ status: 503, body: { code: 'GW_ERR_RATE_LIMITED', message: 'slow down' }, headers: { 'Retry-After': '1' } });
    expect(Object.isFrozen(exit.headers)).toBe(true);
    headers['Retry-After'] = '2';
    expect(exit.headers).toEqual({ 'Retry-After': '1' });
  });
});
