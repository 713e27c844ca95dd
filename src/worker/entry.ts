import { enableCompileCache } from 'node:module';

// Each thread has its own module loader: the compile cache the master enabled does not reach
// this one (see src/master/entry.ts), so a worker enables it before it imports anything else.
enableCompileCache();
await import('./main.ts');
