import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConf, readConf } from '../../../src/config/load.ts';
import { loadCertificates } from '../../../src/config/tls-certificates.ts';
import { makeCa, makeCert } from '../../helpers/certs.ts';

/** `-t`'s certificate checks, on real openssl certificates, each fault at its file:line:col; the clock is injected. */
let dir: string;
const DAY = 86_400_000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-tls-conf-'));
  const ca = makeCa(dir);
  makeCert(dir, 'good', ['api.example.com', 'www.example.com'], ca, 30);
  copyFileSync(makeCert(dir, 'other', ['other.example.com'], ca, 30).key, join(dir, 'mismatch.key'));
});

function confFile(yaml: string): string {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

const TLS_LISTEN = `server:
  listen:
    - { address: "127.0.0.1:8443", tls: true }
  tls:
    certificates:
`;

describe('server.tls certificates', () => {
  it('loads a good pair with its SAN names', () => {
    const r = loadConf(confFile(`${TLS_LISTEN}      - { cert: good.pem, key: good.key }\n`), { prefix: dir });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.conf.server.tls.certificates[0]!.names).toEqual(['api.example.com', 'www.example.com']);
    expect(r.conf.server.listen[0]).toEqual({ host: '127.0.0.1', port: 8443, tls: true, http2: false });
    expect(r.warnings).toEqual([]);
  });

  it('lists every fault at once, each at its position: unreadable file, a key that is not the certificate\'s, a tls listener without certificates', () => {
    const file = confFile(`${TLS_LISTEN}      - { cert: missing.pem, key: good.key }\n      - { cert: good.pem, key: mismatch.key }\n`);
    const r = loadConf(file, { prefix: dir });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const lines = r.issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`);
    expect(lines).toEqual([
      expect.stringMatching(/^6:\d+ server\.tls\.certificates\[0\]\.cert: cannot read .*missing\.pem: ENOENT$/),
      expect.stringMatching(/^7:\d+ server\.tls\.certificates\[1\]\.key: .*mismatch\.key is not the key of .*good\.pem$/),
    ]);
    const none = loadConf(confFile('server:\n  listen:\n    - { address: "127.0.0.1:8443", tls: true }\n'), { prefix: dir });
    expect(none.ok ? [] : none.issues.map((i) => `${i.line} ${i.message}`)).toEqual(['3 a tls listener needs server.tls.certificates']);
  });

  it('an expired certificate is an error, one expiring within 14 days a warning (clock injected)', () => {
    const read = readConf(confFile(`${TLS_LISTEN}      - { cert: good.pem, key: good.key }\n`));
    expect(loadCertificates(read.data, dir, read.reporter, Date.now() + 31 * DAY)).toBeNull();
    expect(read.reporter.issues.map((i) => `${i.line} ${i.message}`)).toEqual([expect.stringMatching(/^6 .*good\.pem expired on \d{4}-/)]);
    const soon = readConf(confFile(`${TLS_LISTEN}      - { cert: good.pem, key: good.key }\n`));
    expect(loadCertificates(soon.data, dir, soon.reporter, Date.now() + 20 * DAY)).not.toBeNull();
    expect(soon.reporter.warnings.map((i) => `${i.line} ${i.message}`)).toEqual([expect.stringMatching(/^6 .*good\.pem expires on .*, in \d+ days$/)]);
  });

  it('refuses TLS 1.1, and http2 without tls (no cleartext h2c); http2 with tls is accepted', () => {
    const r = loadConf(confFile(`server:
  listen:
    - { address: "127.0.0.1:8443", tls: true, http2: true }
    - { address: "127.0.0.1:8080", http2: true }
  tls:
    protocols: [TLSv1.1]
    certificates:
      - { cert: good.pem, key: good.key }
`), { prefix: dir });
    expect(r.ok ? [] : r.issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([
      '4 server.listen[1].http2: http2 needs tls: HTTP/2 is offered by ALPN on a TLS listener (no cleartext h2c)',
      expect.stringMatching(/^6 server\.tls\.protocols\[0\]: .*TLSv1\.2 or TLSv1\.3/),
    ]);
  });
});
