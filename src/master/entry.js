import { enableCompileCache } from 'node:module';

// The one file of the master that is not TypeScript, on purpose. Node strips a .ts file's types
// with amaro, a WebAssembly module that costs a thread about 26 MB of RSS (measured), unless the
// compile cache already holds the file; and the entry is read before any line of it runs, so an
// entry.ts loaded amaro on every start. From here everything is TypeScript, whose stripped form
// and V8 code the compile cache (node --compile-cache, in os.tmpdir() or $NODE_COMPILE_CACHE)
// keeps on disk keyed by each file's content: from the second run on, amaro is never loaded, and
// an edited file is stripped afresh (never a stale copy). `sluice -t` also costs a third less CPU.
enableCompileCache();
const { main } = await import('./cli.ts');

const code = await main(process.argv.slice(2));
// A final answer (a test, a signal sent, a failed start) exits now, even if something that
// failed to start is still winding down; stdout and stderr are synchronous here (Linux).
if (code >= 0) process.exit(code);
