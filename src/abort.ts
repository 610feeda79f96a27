// The AbortSignal contract of every async API that can wait: an abort
// rejects with code ABORT_ERR and name AbortError (as Node's own APIs do),
// and a signal already aborted rejects before any side effect.
import { invalidArg, NstoolError } from './errors.js';

/** An NstoolError shaped like Node's AbortError: code ABORT_ERR, the signal's reason as cause. */
export function abortError(message: string, reason?: unknown): NstoolError {
  const e = new NstoolError(message, { code: 'ABORT_ERR', ...(reason !== undefined ? { cause: reason } : {}) });
  e.name = 'AbortError';
  return e;
}

/** SIGNAL itself, after checking it is an AbortSignal (or absent). */
export function validateSignal(signal: unknown, what = 'signal'): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArg(`${what} must be an AbortSignal`, 'ERR_INVALID_ARG_TYPE');
  return signal;
}

/** Throws ABORT_ERR naming WHAT when SIGNAL is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(`${what} was aborted`, signal.reason);
}

/** True when ERR is an abort (ours, the process runner's or Node's). */
export function isAbort(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ABORT_ERR';
}
