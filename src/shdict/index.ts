export { SharedDict } from './shared-dict.ts';
export type {
  CasResult,
  CreateOptions,
  DictOptions,
  DictStats,
  ExpireResult,
  FlaggedValue,
  IncrResult,
  ListValue,
  PushResult,
  StaleValue,
  UpdateResult,
  WriteResult,
} from './results.ts';
export type { DictValue } from './codec.ts';
export { ShdictError } from './errors.ts';
export type { ShdictErrorCode } from './errors.ts';
