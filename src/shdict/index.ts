export { SharedDict } from './shared-dict.ts';
export type * from './results.ts';
export type { DictValue } from './codec.ts';
export { ShdictError } from './errors.ts';
export type { ShdictErrorCode } from './errors.ts';
