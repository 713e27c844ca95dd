import { enableCompileCache } from 'node:module';

// V8's compiled code, TypeScript already stripped, kept on disk between runs (node
// --compile-cache, in os.tmpdir()): `sluice -t` costs about a third less CPU from the second
// run on. Enabled before anything else is imported, which is why the rest comes by import().
enableCompileCache();
const { main } = await import('./cli.ts');

const code = await main(process.argv.slice(2));
// A final answer (a test, a signal sent, a failed start) exits now, even if something that
// failed to start is still winding down; stdout and stderr are synchronous here (Linux).
if (code >= 0) process.exit(code);
