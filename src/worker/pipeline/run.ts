import { errorExit, PluginError } from '../../plugins/pdk/errors.ts';
import type { Exit } from '../../plugins/pdk/types.ts';
import { BodyReadError } from './body.ts';
import type { RequestStep, Step } from './chain.ts';
import type { Exchange } from '../exchange.ts';

/**
 * The phase runner (fastify's hookRunner idea): handlers are called
 * synchronously, and only a returned thenable is awaited, so a chain of
 * synchronous plugins finishes in one tick with no promise. A throw is logged
 * once with the plugin and phase; in rewrite/access it ends the request with
 * {@link PLUGIN_FAILED}, in later phases the response goes on without that
 * plugin's work. Nothing a plugin throws reaches the worker's event loop.
 */

/** The answer when a rewrite/access handler throws: a 500 that names no plugin internals. */
export const PLUGIN_FAILED: Exit = errorExit('GW_ERR_PLUGIN');

function logFailure(ctx: Exchange, step: Step<unknown>, cause: unknown): void {
  const err = new PluginError(step.plugin, step.phase, cause);
  ctx.chain.errorLog.error({ err: cause, code: err.code, plugin: step.plugin, phase: step.phase, route: ctx.route.name }, err.message);
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/**
 * rewrite then access. Returns the Exit that ends the request, null to go on
 * upstream, or a promise of either once some handler went async.
 */
export function runRequestPhases(ctx: Exchange, steps: readonly RequestStep[], from: number): Exit | null | Promise<Exit | null> {
  for (let i = from; i < steps.length; i++) {
    const step = steps[i]!;
    let r: unknown;
    try {
      r = step.fn(ctx);
    } catch (err) {
      logFailure(ctx, step, err);
      return PLUGIN_FAILED;
    }
    if (r !== undefined && r !== null) {
      if (isThenable(r)) return resumeAfter(ctx, steps, i, r);
      return r as Exit;
    }
    if (ctx.exited !== null) return ctx.exited;
  }
  return null;
}

async function resumeAfter(ctx: Exchange, steps: readonly RequestStep[], i: number, pending: PromiseLike<unknown>): Promise<Exit | null> {
  let r: unknown;
  try {
    r = await pending;
  } catch (err) {
    // A body read that failed is the client's doing: the gateway answers with the read's own error (413, 408).
    if (!(err instanceof BodyReadError)) logFailure(ctx, steps[i]!, err);
    return PLUGIN_FAILED;
  }
  if (r !== undefined && r !== null) return r as Exit;
  if (ctx.exited !== null) return ctx.exited;
  return runRequestPhases(ctx, steps, i + 1);
}

/** Header filters and log handlers: synchronous; a failure is logged and the others still run. */
function runEach(ctx: Exchange, steps: readonly Step<(ctx: Exchange) => void>[]): void {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    try {
      step.fn(ctx);
    } catch (err) {
      logFailure(ctx, step, err);
    }
  }
}

export function runHeaderFilter(ctx: Exchange): void {
  const steps = ctx.chain.headerFilter;
  if (steps !== null) runEach(ctx, steps);
}

/** A failing body filter passes its input through: the client gets the body as the plugins before it left it. */
export function runBodyFilter(ctx: Exchange, chunk: Uint8Array, eof: boolean): Uint8Array {
  const steps = ctx.chain.bodyFilter;
  if (steps === null) return chunk;
  let out = chunk;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    try {
      out = step.fn(ctx, out, eof);
    } catch (err) {
      logFailure(ctx, step, err);
    }
  }
  return out;
}

export function runLog(ctx: Exchange, status: number, end: number): void {
  const steps = ctx.chain.log;
  if (steps === null) return;
  ctx.finish(status, end);
  runEach(ctx, steps);
}
