import { threadId } from 'node:worker_threads';
import type { ValidateFunction } from 'ajv';
import { compileSchema, validateJson } from './validator.ts';
import type { BodyOutcome } from './validator.ts';

export interface ValidateTask {
  /** schemaKey(schema): the compiled function is cached under it in this thread. */
  readonly key: string;
  readonly schema: unknown;
  readonly body: Uint8Array;
}

export type ValidateResult = BodyOutcome & { /** The pool thread that did the work (tests check it is not the reactor). */ readonly threadId: number };

// Per pool thread: a compiled validator is a function and cannot be sent here, so each thread compiles a schema once.
const compiled = new Map<string, ValidateFunction>();

/** Runs in an offload pool thread: parse, validate and re-serialise a large body. */
export default function validateBody(task: ValidateTask): ValidateResult {
  let validate = compiled.get(task.key);
  if (validate === undefined) {
    validate = compileSchema(task.schema, 'body');
    compiled.set(task.key, validate);
  }
  return { ...validateJson(validate, task.body), threadId };
}
