// The errors of a sandbox create or delete that could not finish its undo,
// and of a create that was aborted.
import { abortError as abortWith } from '../abort.js';
import { ErrorJSON, errorToJSON, NstoolError } from '../errors.js';
import { RollbackError } from './rollback.js';

export class SandboxError extends NstoolError {
  /** The step whose undo (or removal, in a delete) stopped: it and the older ones are left for gc. */
  readonly step: string;
  /** Every secondary failure: the undo that stopped, the further errors it carried, a failed state write. */
  readonly suppressed: RollbackError[];

  constructor(message: string, f: { cause: unknown; step: string; suppressed: RollbackError[] }) {
    const c = f.cause as Partial<NstoolError> | undefined;
    super(message, {
      code: typeof c?.code === 'string' ? c.code : 'ERR_NSTOOL_SANDBOX',
      ...(c?.errno !== undefined ? { errno: c.errno } : {}),
      ...(c?.syscall !== undefined ? { syscall: c.syscall } : {}),
      ...(c?.path !== undefined ? { path: c.path } : {}),
      hint: `what is left is recorded in the sandbox state (pendingUndo); \`nstool sandbox delete\` or \`nstool gc\` finishes it once the cause of "${f.step}" is fixed`,
      cause: f.cause,
    });
    this.name = 'SandboxError';
    this.step = f.step;
    this.suppressed = f.suppressed;
  }

  /** The original error whole (its code is this one's), the step, and each secondary failure with the step it belongs to. */
  override toJSON(): ErrorJSON {
    return {
      ...super.toJSON(),
      step: this.step,
      cause: errorToJSON(this.cause),
      suppressed: this.suppressed.map((r) => ({ ...errorToJSON(r.cause), step: r.undo })),
    };
  }

  /** @deprecated the same list as suppressed. */
  get rollbackErrors(): RollbackError[] {
    return this.suppressed;
  }
}

/** The undo failure of STEP and whatever further errors it carried (a CNI DEL's other plugins, ...). */
export function undoFailures(step: string, err: unknown): RollbackError[] {
  const out = [new RollbackError(step, err)];
  const more = (err as { otherErrors?: unknown[] } | null)?.otherErrors;
  if (Array.isArray(more)) for (const e of more) out.push(new RollbackError(step, e));
  return out;
}

export function abortError(reason: unknown): NstoolError {
  return abortWith('sandbox create was aborted; what it had made was rolled back', reason);
}
