import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isPeer, PEERS } from './peers.ts';
import type { Peer, PeerListen } from './peers.ts';

/**
 * Runs a Node peer gateway (peers.ts) the way their docs scale one past a
 * core, as several processes: `workers` of them, each listening on the same
 * port with SO_REUSEPORT (node's `reusePort`), so the kernel spreads the
 * connections over them as it does over Sluice's workers and nginx's. Not
 * node:cluster, whose primary accepts every connection and hands it to a
 * worker: a hop neither Sluice nor nginx has.
 *
 * This process is the workers' parent, so the bench counts their CPU time as
 * the system's; a worker exits when this process does (its IPC channel
 * closes), however this process ends. Prints `listening PORT` once every
 * worker listens.
 *
 *   node serve.ts <peer> <workers> <port> <upstream port>
 */
async function worker(peer: Peer, listen: PeerListen): Promise<void> {
  const { serve } = await import(`./${peer}.ts`) as { serve: (l: PeerListen) => Promise<void> };
  await serve(listen);
  process.on('disconnect', () => process.exit(0));
  process.send?.('listening');
}

async function primary(peer: Peer, workers: number, listen: PeerListen): Promise<void> {
  let ready = false;
  const children = Array.from({ length: workers }, () => {
    const c = fork(fileURLToPath(import.meta.url), process.argv.slice(2), { stdio: 'inherit' });
    c.once('exit', (code, signal) => {
      process.stderr.write(`${peer}: a worker exited (${code ?? signal})${ready ? '' : ' before listening'}\n`);
      process.exit(1);
    });
    return c;
  });
  await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve))));
  ready = true;
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write(`listening ${listen.port}\n`);
}

const [peer, workers, port, upstreamPort] = process.argv.slice(2);
if (!isPeer(peer)) throw new Error(`usage: node serve.ts <${Object.keys(PEERS).join('|')}> <workers> <port> <upstream port>`);
const listen = { port: Number(port), upstreamPort: Number(upstreamPort) };
// Forked by the primary (below) when it has an IPC channel; the bench starts the primary without one.
if (process.channel !== undefined) await worker(peer, listen);
else await primary(peer, Number(workers), listen);
