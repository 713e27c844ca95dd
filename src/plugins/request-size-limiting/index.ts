import { definePlugin, errorExit, s, Type } from '../pdk/index.ts';

const UNIT = { megabytes: 1024 * 1024, kilobytes: 1024, bytes: 1 } as const;

/**
 * Kong's request-size-limiting. A declared Content-Length over the limit is
 * refused before anything is read; a chunked body has no declared size, so
 * the limit is handed to the gateway (`ctx.req.bodyLimit`), which counts the
 * body as it streams upstream and answers 413 once it goes over.
 */
export const requestSizeLimiting = definePlugin({
  name: 'request-size-limiting',
  version: '1.0.0',
  priority: 951, // Kong's
  schema: s.object({
    allowed_payload_size: Type.Integer({ minimum: 1, default: 128, description: 'Largest body, in size_unit' }),
    size_unit: s.oneOf(['megabytes', 'kilobytes', 'bytes'], { default: 'megabytes', description: 'Unit of allowed_payload_size (powers of 1024)' }),
    require_content_length: Type.Boolean({ default: false, description: 'Refuse (411) a request without Content-Length' }),
  }, { description: 'Refuse request bodies above a size (413)' }),
  create(conf) {
    const limit = conf.allowed_payload_size * UNIT[conf.size_unit];
    const tooLarge = errorExit('GW_ERR_BODY_TOO_LARGE');
    const lengthRequired = errorExit('GW_ERR_LENGTH_REQUIRED');
    return {
      access(ctx) {
        const declared = ctx.req.headers.get('content-length');
        if (declared !== undefined) return Number(declared) > limit ? tooLarge : undefined;
        if (conf.require_content_length) return lengthRequired;
        ctx.req.bodyLimit = limit;
        return undefined;
      },
    };
  },
});
