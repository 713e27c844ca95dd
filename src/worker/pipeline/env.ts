import { randomUUID } from 'node:crypto';
import type { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { SharedDict } from '../../shdict/index.ts';
import { GatewayError } from '../../plugins/pdk/errors.ts';
import type { Consumers, Ids, Offload, PluginDef, PluginEnv } from '../../plugins/pdk/types.ts';

export interface EnvOptions {
  readonly log: Logger;
  readonly workerId: number;
  /** Which workers live (workerData.liveness); default: every worker, for a gateway made outside a worker. */
  readonly workerAlive?: (id: number) => boolean;
  /** The master's zones (workerData.zones). */
  readonly zones: Readonly<Record<string, SharedArrayBuffer>>;
  readonly consumers: Consumers;
  /** Injected in tests; default Date.now, crypto.randomUUID and Math.random. */
  readonly now?: () => number;
  readonly ids?: Ids;
  readonly random?: () => number;
}

export interface PluginEnvs {
  envFor(def: PluginDef): PluginEnv;
  /** Stops the offload pool if it was ever started. */
  close(): Promise<void>;
}

const systemIds: Ids = { uuid: () => randomUUID() };
const everyWorkerAlive = (): boolean => true;

/**
 * The per-worker services plugins reach through their env. Dicts are
 * attached once per zone with this worker's owner id (so the master can
 * release a lock a crashed worker held); the offload pool starts on first
 * use, so a conf without CPU-heavy plugins spawns no threads and does not
 * even load piscina (about 2 MB a worker thread).
 */
export function createPluginEnvs(opts: EnvOptions): PluginEnvs {
  const dicts = new Map<string, SharedDict>();
  let pool: Promise<Piscina> | null = null;

  const dict = (name: string): SharedDict => {
    let d = dicts.get(name);
    if (d === undefined) {
      const buf = opts.zones[name];
      if (buf === undefined) throw new GatewayError('GW_ERR_NO_DICT', `shared dict "${name}" is not declared in shared_dicts`);
      d = SharedDict.attach(buf, { owner: opts.workerId });
      dicts.set(name, d);
    }
    return d;
  };

  const offload: Offload = {
    run<R>(module: URL | string, input: unknown, name = 'default'): Promise<R> {
      // One small pool per worker: the reactors already take a core each, so offloaded work gets a thread or two beside them.
      pool ??= import('piscina').then(({ Piscina }) => new Piscina({ minThreads: 0, maxThreads: 2, idleTimeout: 30_000 }));
      const filename = typeof module === 'string' ? module : module.href;
      return pool.then((p) => p.run(input, { filename, name }) as Promise<R>);
    },
  };

  const envs = new Map<string, PluginEnv>();
  return {
    envFor(def) {
      let env = envs.get(def.name);
      if (env === undefined) {
        env = Object.freeze({
          log: opts.log.child({ plugin: def.name }),
          now: opts.now ?? Date.now,
          random: opts.random ?? Math.random,
          ids: opts.ids ?? systemIds,
          workerId: opts.workerId,
          workerAlive: opts.workerAlive ?? everyWorkerAlive,
          consumers: opts.consumers,
          dict,
          offload,
        });
        envs.set(def.name, env);
      }
      return env;
    },
    close: async () => {
      if (pool !== null) await (await pool).destroy();
    },
  };
}
