import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEchoUpstream } from './echo-upstream.ts';

/**
 * `npm start`: the demo upstream on 127.0.0.1:9001 plus the gateway in the
 * foreground on the shipped conf/sluice.yaml. Ctrl-C stops both.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const upstream = await startEchoUpstream(9001);
const gateway = spawn(`${root}bin/sluice`, ['-c', 'conf/sluice.yaml', '-p', root], { stdio: 'inherit', cwd: root });

process.stdout.write(`
demo upstream on http://127.0.0.1:9001; gateway on http://127.0.0.1:8080, status on http://127.0.0.1:9145

  curl -i http://127.0.0.1:8080/ping
  curl -s http://127.0.0.1:8080/echo/hello?x=1
  curl -s -X POST --data 'hi' http://127.0.0.1:8080/v1/orders
  curl -i http://127.0.0.1:8080/assets/
  curl -s http://127.0.0.1:9145/status
  bin/sluice -s reload

`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => gateway.kill(signal));
}
gateway.on('exit', (code) => {
  upstream.close();
  process.exit(code ?? 0);
});
