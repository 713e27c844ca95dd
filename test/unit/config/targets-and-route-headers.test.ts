import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIssue } from '../../../src/config/format.ts';
import { loadConf } from '../../../src/config/load.ts';
import type { LoadResult } from '../../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-conf-'));
afterAll(() => rmSync(dir, { recursive: true }));

let n = 0;
function load(yaml: string): LoadResult {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, yaml);
  return loadConf(file, { prefix: dir });
}

/** The `sluice -t` lines, without the file name. */
function issues(yaml: string): string[] {
  const r = load(yaml);
  if (r.ok) throw new Error('unexpectedly loaded');
  return r.issues.map((i) => formatIssue(i).replace(/^[^:]*:/, ''));
}

describe('upstream targets: backup', () => {
  it('defaults to false, for plain addresses too', () => {
    const r = load(`
upstreams:
  u: { targets: [ "10.0.9.1:8000", { address: "10.0.9.2:8000", backup: true }, { address: "10.0.9.3:8000" } ] }
`);
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.conf.upstreams['u']!.targets.map((t) => [t.address, t.backup])).toEqual([
      ['10.0.9.1:8000', false],
      ['10.0.9.2:8000', true],
      ['10.0.9.3:8000', false],
    ]);
  });

  it('-t refuses an upstream whose targets are all backups, at its targets', () => {
    expect(issues(`
upstreams:
  u:
    targets: [ { address: "10.0.9.1:8000", backup: true }, { address: "10.0.9.2:8000", backup: true } ]
`)).toEqual(['4:14: upstreams.u.targets: every target is a backup: at least one must not be']);
  });

  it('-t refuses a backup that is not a boolean', () => {
    expect(issues(`
upstreams:
  u: { targets: [ { address: "10.0.9.1:8000", backup: "yes" } ] }
`)).toEqual(['3:55: upstreams.u.targets[0].backup: must be true or false']);
  });
});

describe('routes: headers', () => {
  it('defaults to none; names are lower-cased, values kept as written', () => {
    const r = load(`
upstreams: { u: { targets: ["10.0.0.1:80"] } }
routes:
  - { name: plain, paths: ["/"], upstream: u }
  - { name: acme, paths: ["/"], upstream: u, headers: { X-Tenant: ["acme", "~ acme-[0-9]+"] } }
`);
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.conf.routes.map((route) => route.headers)).toEqual([{}, { 'x-tenant': ['acme', '~ acme-[0-9]+'] }]);
  });

  it('-t refuses a bad regex, an empty value list, a name that is not a header name, and Host', () => {
    expect(issues(`
upstreams: { u: { targets: ["10.0.0.1:80"] } }
routes:
  - { name: a, paths: ["/"], upstream: u, headers: { X-Tenant: ["~ (acme"] } }
  - { name: b, paths: ["/"], upstream: u, headers: { X-Tenant: [] } }
  - { name: c, paths: ["/"], upstream: u, headers: { "X Tenant": ["acme"] } }
  - { name: d, paths: ["/"], upstream: u, headers: { Host: ["api.example.com"] } }
`)).toEqual([
      '4:65: routes[0].headers.X-Tenant[0]: bad regex: Invalid regular expression: /(acme/: Unterminated group',
      '5:64: routes[1].headers.X-Tenant: must not be empty',
      '6:52: routes[2].headers: "X Tenant" is not a header name',
      '7:52: routes[3].headers: match the Host header with hosts, not headers',
    ]);
  });
});
