import { STATUS_CODES } from 'node:http';
import { definePlugin, errorExit, s, Type } from '../pdk/index.ts';
import type { Exit } from '../pdk/index.ts';

const Schema = Type.Refine(
  s.object({
    status_code: Type.Integer({ minimum: 100, maximum: 599, default: 503, description: 'Status to answer with' }),
    message: Type.Union([Type.String(), Type.Null()], { default: null, description: 'Sent as {"code": "GW_ERR_TERMINATED", "message": …}; default: the status text' }),
    body: Type.Union([Type.String(), Type.Null()], { default: null, description: 'Raw body, instead of message' }),
    content_type: Type.Union([Type.String(), Type.Null()], { default: null, description: 'Content-Type of body (default application/json; charset=utf-8)' }),
  }, { description: 'Answer every request itself, never reaching the upstream' }),
  (c) => c.message === null || c.body === null,
  () => 'message and body are mutually exclusive',
);

/** Kong's request-termination: the answer is built once per conf and returned as is. */
export const requestTermination = definePlugin({
  name: 'request-termination',
  version: '1.0.0',
  priority: 2, // Kong's: after auth and limits, so those still apply to a terminated route
  schema: Schema,
  create(conf) {
    const exit: Exit = conf.body !== null
      ? Object.freeze({ status: conf.status_code, body: conf.body, headers: Object.freeze({ 'content-type': conf.content_type ?? 'application/json; charset=utf-8' }) })
      : errorExit('GW_ERR_TERMINATED', { status: conf.status_code, message: conf.message ?? STATUS_CODES[conf.status_code] });
    return { access: () => exit };
  },
});
