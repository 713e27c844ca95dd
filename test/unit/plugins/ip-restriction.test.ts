import { describe, expect, test } from 'vitest';
import { ipRestriction } from '../../../src/plugins/ip-restriction/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(ipRestriction, { deny: ['10.0.0.1'] }).conf).toEqual({ allow: [], deny: ['10.0.0.1'], status: 403, message: 'Your IP address is not allowed' });
  });
  test('IPv4, IPv6, CIDRs are valid', () => {
    expect(checkConf(ipRestriction, { allow: ['10.0.0.0/8', '2001:db8::/32', '::1', '::ffff:10.0.0.0/104'] }).ok).toBe(true);
  });
  test('a bad CIDR is reported at its path; an empty conf is refused', () => {
    expect(checkConf(ipRestriction, { allow: ['10.0.0.0/8', '10.0.0.0/33'] }).errors).toEqual(['/allow/1: invalid IP or CIDR "10.0.0.0/33"']);
    expect(checkConf(ipRestriction, {}).errors.join()).toMatch(/at least one of allow or deny/);
  });
});

describe('access', () => {
  const run = (conf: object, client: string) => harness([ipRestriction], { 'ip-restriction': conf }).run({ client });

  test('allow list: others get the status and message', async () => {
    expect((await run({ allow: ['10.0.0.0/8'] }, '10.9.9.9')).status).toBe(200);
    const r = await run({ allow: ['10.0.0.0/8'], status: 404, message: 'nope' }, '11.0.0.1');
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_IP_DENIED', message: 'nope' });
  });

  test('deny wins over allow', async () => {
    expect((await run({ allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] }, '10.1.2.3')).status).toBe(403);
  });

  test('IPv6 and IPv4-mapped addresses', async () => {
    expect((await run({ deny: ['2001:db8::/32'] }, '2001:db8::1')).status).toBe(403);
    expect((await run({ deny: ['2001:db8::/32'] }, '2001:db9::1')).status).toBe(200);
    expect((await run({ deny: ['::ffff:10.0.0.0/104'] }, '10.2.3.4')).status).toBe(403);
    expect((await run({ deny: ['10.0.0.0/8'] }, '::ffff:10.2.3.4')).status).toBe(403);
  });

  test('only the resolved client address counts, never a forwarded header', async () => {
    const h = harness([ipRestriction], { 'ip-restriction': { allow: ['10.0.0.1'] } });
    expect((await h.run({ client: '192.0.2.7', headers: { 'x-forwarded-for': '10.0.0.1', 'x-real-ip': '10.0.0.1' } })).status).toBe(403);
  });
});
