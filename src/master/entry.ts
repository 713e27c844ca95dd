import { main } from './cli.ts';

const code = await main(process.argv.slice(2));
// A final answer (a test, a signal sent, a failed start) exits now, even if something that
// failed to start is still winding down; stdout and stderr are synchronous here (Linux).
if (code >= 0) process.exit(code);
