export { SharedDict } from './dict.ts';
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
} from './dict.ts';
export type { DictValue } from './codec.ts';
export { ShdictError } from './errors.ts';
export type { ShdictErrorCode } from './errors.ts';
