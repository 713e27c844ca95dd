import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';

// Preloaded into bin/sluice by test/integration/module-footprint.test.ts (NODE_OPTIONS=--import):
// each thread, the master and every worker, records the URL of every module it loads, and when it
// exits writes them to $SLUICE_MODULE_TRACE/<pid>-<threadId>.json with whether it loaded amaro,
// Node's TypeScript stripper, which only its internal module list shows. JavaScript, because a
// TypeScript preload would load amaro itself.
const urls = [];
registerHooks({
  load(url, context, next) {
    urls.push(url);
    return next(url, context);
  },
});
process.on('exit', () => {
  const amaro = process.moduleLoadList.some((m) => m.includes('amaro'));
  writeFileSync(join(process.env.SLUICE_MODULE_TRACE, `${process.pid}-${threadId}.json`), JSON.stringify({ master: isMainThread, amaro, urls }));
});
