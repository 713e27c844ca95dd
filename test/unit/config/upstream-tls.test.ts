import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConf, readConf } from '../../../src/config/load.ts';
import { loadUpstreamTls } from '../../../src/config/tls-certificates.ts';
import { makeCa, makeCert } from '../../helpers/certs.ts';

/** `-t`'s checks of upstreams.*.tls on real openssl files, each fault at its file:line:col; the clock is injected. */
let dir: string;
const DAY = 86_400_000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-upstream-tls-conf-'));
  const ca = makeCa(dir, 'internal-ca');
  makeCert(dir, 'client', ['gateway.client'], ca, 30);
  copyFileSync(makeCert(dir, 'other', ['other.client'], ca, 30).key, join(dir, 'mismatch.key'));
});

function confFile(yaml: string): string {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

const upstream = (tls: string): string => `upstreams:
  billing:
    targets: [ { address: "billing.internal:8443" } ]
    tls: ${tls}
`;

const issuesOf = (file: string): string[] => {
  const r = loadConf(file, { prefix: dir });
  return r.ok ? [] : r.issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`);
};

describe('upstreams.*.tls', () => {
  it('reads the CA and the client pair into the resolved conf, as PEM text: workers never read files', () => {
    const r = loadConf(confFile(upstream('{ verify: true, ca: internal-ca.pem, server_name: billing.internal, cert: client.pem, key: client.key }')), { prefix: dir });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.conf.upstreams['billing']!.tls).toEqual({
      verify: true,
      server_name: 'billing.internal',
      caPem: readFileSync(join(dir, 'internal-ca.pem'), 'utf8'),
      certPem: readFileSync(join(dir, 'client.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'client.key'), 'utf8'),
    });
    expect(r.warnings).toEqual([]);
    const defaults = loadConf(confFile(upstream('{}')), { prefix: dir });
    expect(defaults.ok && defaults.conf.upstreams['billing']!.tls).toEqual({ verify: true, server_name: null, caPem: null, certPem: null, keyPem: null });
    const plain = loadConf(confFile('upstreams:\n  billing:\n    targets: ["127.0.0.1:80"]\n'), { prefix: dir });
    expect(plain.ok && plain.conf.upstreams['billing']!.tls).toBeNull();
  });

  it('lists every fault at once, each at its line: unreadable CA, a CA file with no certificate, a key not the certificate\'s, a cert without key, an IP as server_name', () => {
    const file = confFile(`upstreams:
  a:
    targets: ["127.0.0.1:1"]
    tls: { ca: missing.pem }
  b:
    targets: ["127.0.0.1:1"]
    tls:
      ca: client.key
  c:
    targets: ["127.0.0.1:1"]
    tls:
      cert: client.pem
      key: mismatch.key
  d:
    targets: ["127.0.0.1:1"]
    tls:
      cert: client.pem
      server_name: 10.0.0.1
`);
    expect(issuesOf(file)).toEqual([
      expect.stringMatching(/^4:\d+ upstreams\.a\.tls\.ca: cannot read .*missing\.pem: ENOENT$/),
      expect.stringMatching(/^8:11 upstreams\.b\.tls\.ca: .*client\.key holds no PEM certificate$/),
      expect.stringMatching(/^13:12 upstreams\.c\.tls\.key: .*mismatch\.key is not the key of .*client\.pem$/),
      '17:13 upstreams.d.tls.cert: a client certificate needs its key: set both cert and key, or neither',
      expect.stringMatching(/^18:20 upstreams\.d\.tls\.server_name: an IP address is not a server name/),
    ]);
  });

  it('an expired client certificate is an error, one expiring within 14 days a warning (clock injected)', () => {
    const yaml = upstream('\n      cert: client.pem\n      key: client.key');
    const late = readConf(confFile(yaml));
    expect(loadUpstreamTls(late.data, dir, late.reporter, Date.now() + 31 * DAY)).toBeNull();
    expect(late.reporter.issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([expect.stringMatching(/^5 upstreams\.billing\.tls\.cert: .*client\.pem expired on \d{4}-/)]);
    const soon = readConf(confFile(yaml));
    expect(loadUpstreamTls(soon.data, dir, soon.reporter, Date.now() + 20 * DAY)).not.toBeNull();
    expect(soon.reporter.warnings.map((i) => `${i.line} ${i.message}`)).toEqual([expect.stringMatching(/^5 .*client\.pem expires on .*, in \d+ days$/)]);
  });

  it('verify: false runs, with a warning at its line (nginx proxy_ssl_verify off deserves one)', () => {
    const r = loadConf(confFile(upstream('{ verify: false }')), { prefix: dir });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.conf.upstreams['billing']!.tls!.verify).toBe(false);
    expect(r.warnings.map((w) => `${w.line}:${w.col} ${w.path}: ${w.message}`)).toEqual([
      expect.stringMatching(/^4:\d+ upstreams\.billing\.tls\.verify: certificates of upstream "billing" are not verified/),
    ]);
  });
});
