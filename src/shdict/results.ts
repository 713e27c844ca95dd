import type { DictValue } from './codec.ts';

/*
 * The public option and result types of SharedDict, and the frozen results its common
 * outcomes share so that they allocate nothing.
 */

export type DictOptions = {
  /** Clock in ms; inject one in tests. Default Date.now. */
  readonly now?: () => number;
  /**
   * This thread's lock owner id, >= 1 and distinct per thread (the master numbers its
   * workers). Default DEFAULT_OWNER_BASE + threadId, out of the way of small assigned ids.
   */
  readonly owner?: number;
  /** Give up on a stripe lock after this long (a dead holder nobody released). Default 5000. */
  readonly lockTimeoutMs?: number;
};

export type CreateOptions = DictOptions & {
  /** Lock stripes (a power of two). Default: one per MiB, 1 to 64. */
  readonly stripes?: number;
};

export type WriteResult = {
  readonly ok: boolean;
  readonly err?: 'exists' | 'not found' | 'no memory';
  /** Valid items were evicted to make room. */
  readonly forcible: boolean;
};
export type IncrResult = {
  readonly value?: number;
  readonly err?: 'not found' | 'not a number' | 'no memory';
  readonly forcible: boolean;
};
export type PushResult = { readonly length?: number; readonly err?: 'value not a list' | 'no memory' };
export type ExpireResult = { readonly ok: boolean; readonly err?: 'not found' };
export type FlaggedValue = { readonly value: DictValue; readonly flags: number };
export type StaleValue = { readonly value: DictValue; readonly flags: number; readonly stale: boolean };
export type CasResult = {
  readonly ok: boolean;
  /** The number stored after the call (absent when the key is missing). */
  readonly value?: number;
  readonly err?: 'not a number' | 'no memory';
  readonly forcible: boolean;
};
export type UpdateResult = {
  /** Whether the callback's result was stored. */
  readonly ok: boolean;
  /** The value stored after the call (absent when the key is missing). */
  readonly value?: DictValue;
  readonly err?: 'no memory';
  readonly forcible: boolean;
};
export type DictStats = { readonly capacity: number; readonly freeSpace: number; readonly keys: number };
export type ListValue = string | number;

export const OK: WriteResult = Object.freeze({ ok: true, forcible: false });
export const OK_FORCIBLE: WriteResult = Object.freeze({ ok: true, forcible: true });
export const EXISTS: WriteResult = Object.freeze({ ok: false, err: 'exists', forcible: false });
export const NOT_FOUND: WriteResult = Object.freeze({ ok: false, err: 'not found', forcible: false });
const NO_MEMORY: WriteResult = Object.freeze({ ok: false, err: 'no memory', forcible: false });
const NO_MEMORY_FORCIBLE: WriteResult = Object.freeze({ ok: false, err: 'no memory', forcible: true });
export const INCR_NOT_FOUND: IncrResult = Object.freeze({ err: 'not found', forcible: false });
export const INCR_NOT_A_NUMBER: IncrResult = Object.freeze({ err: 'not a number', forcible: false });
export const PUSH_NOT_A_LIST: PushResult = Object.freeze({ err: 'value not a list' });
export const PUSH_NO_MEMORY: PushResult = Object.freeze({ err: 'no memory' });
export const EXPIRE_OK: ExpireResult = Object.freeze({ ok: true });
export const EXPIRE_NOT_FOUND: ExpireResult = Object.freeze({ ok: false, err: 'not found' });
export const CAS_MISSING: CasResult = Object.freeze({ ok: false, forcible: false });
export const CAS_NOT_A_NUMBER: CasResult = Object.freeze({ ok: false, err: 'not a number', forcible: false });
export const UNCHANGED_MISSING: UpdateResult = Object.freeze({ ok: false, forcible: false });

export const noMemory = (forcible: boolean): WriteResult => (forcible ? NO_MEMORY_FORCIBLE : NO_MEMORY);
