import { openDestination } from '../config/logger.ts';
import type { Destination } from '../config/logger.ts';
import type { AccessLogConf } from '../config/types.ts';
import type { Exchange } from './exchange.ts';
import { LineBatch } from './line-batch.ts';

/**
 * The access log: one JSON line per request, written by the worker through an
 * asynchronous stream (never a synchronous write on the reactor), in one write
 * per event-loop turn, or with `buffer` per `buffer` bytes or `flush` interval
 * as nginx's `access_log … buffer= flush=` (see LineBatch). A graceful stop, a
 * reload's drain and USR1 write what is waiting; an exiting worker waits for
 * the last write to land (a flushSync cannot take over an async write in
 * flight, and a thread that exits under it loses those lines).
 * Lines are assembled by hand rather than through a logger: the fields are
 * fixed, and this runs on every request.
 *
 *   {"time":"…","remote_addr":"…","method":"GET","path":"/x","protocol":"HTTP/2.0","status":200,"bytes":512,
 *    "request_time":0.004,"upstream_addr":"127.0.0.1:9001","upstream_time":0.003,
 *    "route":"echo","request_id":"…","worker":1}
 */
export interface AccessLog {
  write(x: Exchange, status: number, bytes: number, now: number): void;
  reopen(): void;
  /** The worker is exiting: every line written, the file closed. */
  close(): Promise<void>;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

export function createAccessLog(conf: AccessLogConf, worker: number): AccessLog | null {
  if (conf.path === 'off') return null;
  const dest: Destination = openDestination(conf.path);
  const batch = new LineBatch(dest, conf.buffer, conf.flush);
  // ISO time at second precision, rebuilt once a second: nginx's $time_iso8601 is per second too.
  let stampSecond = 0;
  let stamp = '';
  return {
    write(x, status, bytes, now) {
      const wall = Date.now();
      const second = Math.floor(wall / 1000);
      if (second !== stampSecond) {
        stampSecond = second;
        stamp = new Date(second * 1000).toISOString();
      }
      batch.push(
        `{"time":"${stamp}","remote_addr":"${x.client}","method":"${x.method}","path":${JSON.stringify(x.path)},"protocol":"HTTP/${x.incoming.httpVersion}",` +
        `"status":${status},"bytes":${bytes},"request_time":${seconds(now - x.start)},` +
        `"upstream_addr":${x.upstreamAddr === null ? 'null' : `"${x.upstreamAddr}"`},` +
        `"upstream_time":${x.upstreamTime < 0 ? 'null' : seconds(x.upstreamTime)},` +
        `"route":${x.routeIndex < 0 ? 'null' : JSON.stringify(x.route.name)},` +
        `"request_id":${x.requestId === null ? 'null' : JSON.stringify(x.requestId)},"worker":${worker}}\n`,
      );
    },
    reopen: () => {
      batch.drain();
      dest.reopen();
    },
    close: () => {
      batch.drain();
      return dest.close();
    },
  };
}
