import { s, Type, valuePatternFault } from '../pdk/index.ts';
import type { Static } from '../pdk/index.ts';

/**
 * traffic-split's conf (issue 15): `rules`, each `when` (all keys must match)
 * and `upstream` (a name or a `tenant-{company_id}` template) or `weighted`;
 * `sticky` makes the weighted choice stable per key.
 */

/** Keys that read the request itself: header names are RFC 9110 tokens, cookie and query names anything non-empty. */
const REQUEST_KEY = "^(header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\\s;=]+|query:.+)$";
/** What `sticky` may key on: any `when` key. */
const STICKY_KEY = `^(consumer|user_id|company_id|ip|${REQUEST_KEY.slice(2, -2)})$`;

/**
 * The headers auth plugins' identities are sent as: a rule on them would read
 * what the client sent, the very thing `company_id` exists to avoid.
 */
const IDENTITY_HEADERS = /^header:(x-consumer-username|x-user-id|x-company-id|x-anonymous-consumer)$/i;

const Value = Type.Union([
  Type.Refine(Type.String({ minLength: 1 }), (v) => valuePatternFault(v) === null, (v) => valuePatternFault(v) ?? ''),
  Type.Integer(),
], { expected: 'a string (exact, or "~ regex" matching the whole value) or an integer' });

const Values = Type.Union([Value, Type.Array(Value, { minItems: 1 })], {
  description: 'The accepted values: one, or a list (any of them); each exact, or "~ regex" matched against the whole value',
});

const Cidrs = Type.Union([s.ipOrCidr({ description: 'An IP or CIDR' }), Type.Array(s.ipOrCidr({ description: 'An IP or CIDR' }), { minItems: 1 })], {
  description: 'The client address (after server.real_ip) is in one of these',
});

const WhenSchema = Type.Refine(
  Type.Object({
    consumer: Type.Optional(Values),
    user_id: Type.Optional(Values),
    company_id: Type.Optional(Values),
    ip: Type.Optional(Cidrs),
  }, {
    additionalProperties: false,
    patternProperties: { [REQUEST_KEY]: Values },
    description: 'All must match: consumer, user_id, company_id (the identity auth plugins verified), ip, header:NAME, cookie:NAME, query:NAME',
  }),
  (w) => !Object.keys(w).some((k) => IDENTITY_HEADERS.test(k)),
  (w) => `${Object.keys(w).find((k) => IDENTITY_HEADERS.test(k))!} reads the client's own header: use consumer, user_id or company_id, which only auth plugins set`,
);

/** `when` as `create` gets it: the fixed keys, and any `header:`, `cookie:` or `query:` key. */
export type When = Static<typeof WhenSchema> & Readonly<Record<`${'header' | 'cookie' | 'query'}:${string}`, Static<typeof Values>>>;
export type WhenValues = Static<typeof Values>;

const UpstreamName = s.upstream({ description: 'An upstream name, or a template such as tenant-{company_id} (skipped when the conf defines no such upstream)' });

const Weighted = Type.Refine(
  Type.Array(s.object({
    upstream: UpstreamName,
    weight: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1, description: 'Relative share' }),
  }), { minItems: 1, description: 'A share of the traffic to each upstream' }),
  (w) => w.some((x) => x.weight > 0),
  () => 'weights are all zero: nothing could be chosen',
);

const Rule = Type.Refine(
  Type.Object({
    when: Type.Optional(WhenSchema),
    upstream: Type.Optional(UpstreamName),
    weighted: Type.Optional(Weighted),
  }, { additionalProperties: false, description: 'Requests matching `when` (every request without it) go to `upstream` or a `weighted` set' }),
  (r) => (r.upstream === undefined) !== (r.weighted === undefined),
  () => 'a rule takes exactly one of upstream or weighted',
);

export const Schema = s.object({
  rules: Type.Array(Rule, { minItems: 1, description: 'Tried in order: the first rule that matches and names a defined upstream wins; none: the route\'s upstream' }),
  sticky: Type.Union([Type.String({ pattern: STICKY_KEY }), Type.Null()], {
    default: null,
    description: 'A when-style key (company_id): the weighted choice is a hash of its value, so a tenant stays on one side; null = random per request',
  }),
}, { description: 'Tenant and canary routing: send requests to other upstreams by identity, address, header, cookie or query' });

export type Conf = Static<typeof Schema>;
export type RuleConf = Conf['rules'][number];
