import { enableCompileCache } from 'node:module';

// JavaScript for the reason src/master/entry.js gives: a worker thread whose modules are all in
// the compile cache never loads amaro (about 26 MB of RSS per thread). Each thread has its own
// module loader: the cache the master enabled does not reach this one, so a worker enables it
// before it imports anything else.
enableCompileCache();
await import('./main.ts');
