import { cookieValue } from './cookie.ts';
import type { RequestCtx } from './types.ts';

/**
 * A value of the request named the way limiters' `by` and traffic-split's
 * `when` and `sticky` name them, compiled once per conf into a reader:
 *
 * - `consumer`, `user_id`, `company_id`: the identity an auth plugin verified
 *   (`ctx.identity`), never a client header;
 * - `ip`: the client address after `server.real_ip`;
 * - `route`: the route's name;
 * - `header:NAME`, `cookie:NAME`, `query:NAME`: the first value the request
 *   carries (header names are case-insensitive, cookie and query names are not);
 * - any other name: that attribute of the identity.
 *
 * The reader gives undefined or null when the request has no such value.
 * @example const company = requestValue('company_id'); company(ctx) // '42'
 */
export type ValueFn = (ctx: RequestCtx) => string | null | undefined;

export function requestValue(name: string): ValueFn {
  switch (name) {
    case 'consumer': return (ctx) => ctx.identity?.consumer;
    case 'user_id': return (ctx) => ctx.identity?.user_id;
    case 'company_id': return (ctx) => ctx.identity?.company_id;
    case 'ip': return (ctx) => ctx.client;
    case 'route': return (ctx) => ctx.route.name;
  }
  if (name.startsWith('header:')) {
    const header = name.slice('header:'.length).toLowerCase();
    return (ctx) => ctx.req.headers.get(header);
  }
  if (name.startsWith('cookie:')) {
    const cookie = name.slice('cookie:'.length);
    return (ctx) => {
      const h = ctx.req.headers.get('cookie');
      return h === undefined ? undefined : cookieValue(h, cookie);
    };
  }
  if (name.startsWith('query:')) {
    const arg = name.slice('query:'.length);
    return (ctx) => ctx.req.query.get(arg);
  }
  return (ctx) => ctx.identity?.attributes[name];
}
