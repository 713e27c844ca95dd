/**
 * Programmer errors (bad key, bad value type, bad size, misuse) and the lock-timeout escape
 * hatch. Data outcomes such as "not found", "exists" or "no memory" are return values.
 */
export type ShdictErrorCode =
  | 'SHDICT_ERR_BAD_KEY'
  | 'SHDICT_ERR_KEY_TOO_LONG'
  | 'SHDICT_ERR_BAD_VALUE'
  | 'SHDICT_ERR_BAD_TTL'
  | 'SHDICT_ERR_BAD_SIZE'
  | 'SHDICT_ERR_BAD_OWNER'
  | 'SHDICT_ERR_BAD_ZONE'
  | 'SHDICT_ERR_REENTRANT'
  | 'SHDICT_ERR_LOCK_TIMEOUT'
  | 'SHDICT_ERR_CORRUPT';

export class ShdictError extends Error {
  readonly code: ShdictErrorCode;

  constructor(code: ShdictErrorCode, message: string) {
    super(message);
    this.name = 'ShdictError';
    this.code = code;
  }
}
