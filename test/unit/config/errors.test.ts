import { join } from 'node:path';
import { Type } from 'typebox';
import type { TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../../src/config/format.ts';
import { loadConf } from '../../../src/config/load.ts';
import type { LoadOptions } from '../../../src/config/load.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/conf');

/** The `sluice -t` lines for a fixture, with the fixture directory cut off to keep expectations short. */
function issues(rel: string, opts: LoadOptions = {}): string[] {
  const r = loadConf(join(FIXTURES, rel), opts);
  if (r.ok) throw new Error(`${rel} unexpectedly loaded`);
  return r.issues.map((i) => formatIssue(i).replaceAll(`${FIXTURES}/`, ''));
}

describe('formatIssue', () => {
  it('omits the path for an issue about the whole file', () => {
    expect(formatIssue({ file: '/c/s.yaml', line: 2, col: 1, path: '', message: 'Map keys must be unique' })).toBe(
      '/c/s.yaml:2:1: Map keys must be unique',
    );
    expect(formatIssue({ file: '/c/s.yaml', line: 3, col: 5, path: 'routes[0]', message: 'x' })).toBe('/c/s.yaml:3:5: routes[0]: x');
  });
});

describe('loadConf reports every fault in one pass', () => {
  it('schema, units, addresses, CIDRs, references, duplicates, regexes and route targets', () => {
    const f = 'errors/schema.yaml';
    expect(issues(f)).toEqual([
      `${f}:1:19: worker_processes: must be >= 1`,
      `${f}:2:26: worker_shutdown_timeout: must be a duration such as 500ms, 10s, 5m or 1h`,
      `${f}:3:1: colour: unknown key "colour"`,
      `${f}:4:35: error_log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal"`,
      `${f}:6:11: shared_dicts.limits: invalid size "10q": expected an integer with an optional unit k, m or g`,
      `${f}:7:9: shared_dicts.tiny: shared dict is too small: at least 8k`,
      `${f}:9:28: server.listen[1]: IPv6 addresses are written in brackets, e.g. [::1]:8080`,
      `${f}:9:40: server.listen[2]: port 70000 is out of range 0..65535`,
      `${f}:9:59: server.listen[3]: duplicate listen address "0.0.0.0:8080"`,
      `${f}:10:25: server.client_max_body_size: invalid size "1x": expected an integer with an optional unit k, m or g`,
      `${f}:11:22: server.keepalive_timeout: invalid duration "5 minutes": expected a number and a unit (ms, s, m, h, d) at "5 minutes"`,
      `${f}:12:35: server.tls.session_ticket_rotation: session_ticket_rotation is too large: at most 7d`,
      `${f}:14:15: server.real_ip.trusted[0]: invalid prefix length "/33" (0..32)`,
      `${f}:14:30: server.real_ip.trusted[1]: "not-an-ip" is not an IP address`,
      `${f}:16:11: status.listen: expected host:port, got "nowhere"`,
      `${f}:19:16: upstreams.echo.algorithm: must be one of "round-robin", "least-conn", "consistent-hash", "ewma"`,
      `${f}:20:14: upstreams.echo.hash_on: must be ip, consumer, user_id, company_id, uri, header:NAME or cookie:NAME`,
      `${f}:22:20: upstreams.echo.targets[0].address: port 0 is out of range 1..65535`,
      `${f}:22:35: upstreams.echo.targets[0].wieght: unknown key "wieght"`,
      `${f}:23:9: upstreams.echo.targets[1]: must be an address "host:port" or a map { address, weight, backup }`,
      `${f}:25:14: upstreams.empty.targets: must not be empty`,
      `${f}:28:15: consumers[1].username: duplicate consumer "alice" (first defined at ${f}:27)`,
      `${f}:29:25: consumers[1].attributes.tier: must be a string or a number`,
      `${f}:32:13: routes[0].paths[0]: path must start with "/" (or use a modifier: = /exact, ^~ /prefix, ~ regex, ~* regex)`,
      `${f}:32:20: routes[0].paths[1]: bad regex: Invalid regular expression: /^/(unclosed/: Unterminated group`,
      `${f}:32:37: routes[0].paths[2]: a modifier is followed by a space, e.g. "= /x"`,
      `${f}:33:20: routes[0].methods[1]: unknown HTTP method "FETCH"`,
      `${f}:34:13: routes[0].hosts[0]: "bad_host.com" is not a host name (exact, or a leading "*." wildcard)`,
      `${f}:35:15: routes[0].upstream: upstream "nope" is not defined`,
      `${f}:36:5: routes[1]: a route needs one of upstream, return or root`,
      `${f}:36:11: routes[1].name: duplicate route name "a" (first defined at ${f}:31)`,
      `${f}:37:12: routes[1].paths: must not be empty`,
      `${f}:38:5: routes[2]: a route takes only one of upstream, return or root, not upstream and root`,
      `${f}:42:5: routes[3]: missing required key "name"`,
      `${f}:43:23: routes[3].return.status: must be <= 599`,
      `${f}:43:37: routes[3].return.headers: "bad name" is not a header name`,
      `${f}:44:16: routes[3].websocket: websocket needs an upstream route: a return route has nothing to tunnel to`,
      `${f}:45:36: access_log.buffer: access log buffer is too large: at most 1m`,
      `${f}:45:47: access_log.flush: invalid duration "soon": expected a number and a unit (ms, s, m, h, d) at "soon"`,
    ]);
  });

  it('YAML syntax errors and duplicate keys, at their position', () => {
    expect(issues('yaml-errors/sluice.yaml')).toEqual([
      'yaml-errors/sluice.yaml:2:1: Map keys must be unique',
      'yaml-errors/sluice.yaml:5:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('names defined in two files point at the second and name the first; a file included twice', () => {
    const main = `include-errors/sluice.yaml`;
    expect(issues('include-errors/sluice.yaml')).toEqual([
      `include-errors/conf.d/dup.yaml:1:1: worker_processes: "worker_processes" is set twice (first defined at ${main}:1)`,
      `include-errors/conf.d/dup.yaml:3:3: shared_dicts.cache: duplicate shared dict "cache" (first defined at ${main}:3)`,
      `include-errors/conf.d/dup.yaml:5:3: upstreams.echo: duplicate upstream "echo" (first defined at ${main}:5)`,
      `include-errors/conf.d/dup.yaml:8:11: routes[1].name: duplicate route name "echo" (first defined at ${main}:8)`,
      `include-errors/sluice.yaml:13:5: include[1]: include-errors/conf.d/dup.yaml is included twice (first by ${main}:12)`,
    ]);
  });

  it('an include cycle', () => {
    expect(issues('cycle/a.yaml')).toEqual([
      `cycle/b.yaml:1:11: include[0]: include cycle: cycle/a.yaml -> cycle/b.yaml -> cycle/a.yaml`,
    ]);
  });

  it('a missing included file (a glob matching nothing is fine, as in nginx)', () => {
    expect(issues('missing-include/sluice.yaml')).toEqual([
      `missing-include/sluice.yaml:1:32: include[1]: included file missing-include/absent.yaml does not exist`,
    ]);
  });

  it('a missing main file', () => {
    expect(issues('nope.yaml')).toEqual([expect.stringMatching(/^nope\.yaml:1:1: cannot read conf file: ENOENT/)]);
  });
});

describe('plugin confs with pluginSchemas', () => {
  const pluginSchemas = new Map<string, TSchema>([
    [
      'cors',
      Type.Object(
        {
          origins: Type.Optional(Type.Array(Type.String(), { default: ['*'] })),
          max_age: Type.Optional(Type.Integer({ minimum: 0, default: 3600 })),
          credentials: Type.Optional(Type.Boolean({ default: false })),
        },
        { additionalProperties: false },
      ),
    ],
    ['key-auth', Type.Object({ key_names: Type.Optional(Type.Array(Type.String(), { default: ['apikey'] })) }, { additionalProperties: false })],
  ]);

  it('reports unknown plugins and plugin conf faults at their position', () => {
    const f = 'plugins/sluice.yaml';
    expect(issues(f, { pluginSchemas })).toEqual([
      `${f}:2:20: plugins.cors.max_age: must be >= 0`,
      `${f}:3:3: plugins.nosuch: unknown plugin "nosuch"`,
      `${f}:9:31: routes[0].plugins.cors.credentialz: unknown key "credentialz"`,
    ]);
  });

  it('fills plugin defaults in', () => {
    const r = loadConf(join(FIXTURES, 'plugins-ok/sluice.yaml'), { pluginSchemas });
    expect(r.ok && r.conf.routes[0]?.plugins).toEqual({ cors: { origins: ['https://a.example'], max_age: 3600, credentials: false }, 'key-auth': { key_names: ['apikey'] } });
    expect(r.ok && r.conf.plugins).toEqual({ cors: { origins: ['*'], max_age: 60, credentials: false } });
  });

  it('without pluginSchemas, passes plugin confs through', () => {
    const r = loadConf(join(FIXTURES, 'plugins/sluice.yaml'));
    expect(r.ok && r.conf.plugins).toEqual({ cors: { max_age: -1 }, nosuch: {} });
  });
});
