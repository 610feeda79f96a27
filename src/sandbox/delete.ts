// Delete: the resource table walked backwards. Each removal is persisted as
// it happens; the first that fails stops the walk, and the state keeps what
// is left (phase failed, pendingUndo) for the next delete or gc.
import { throwIfAborted, validateSignal } from '../abort.js';
import { channels, step, traced } from '../trace.js';
import { SandboxError, undoFailures } from './errors.js';
import { validateSandboxId } from './instance.js';
import { REMOVAL_ORDER, removeResource } from './resources.js';
import { RollbackError } from './rollback.js';
import { ensureStateDir, readState, removeState, SandboxLock, SandboxState, writeState } from './state.js';
import { DeleteSandboxOptions, sandboxDirs, StepHook } from './types.js';

/**
 * Removes what ST records, newest first, then the state file. The caller
 * holds the lock and has persisted the phase. The state on disk is not
 * rewritten after each removal: every removal probes first (a pin that is
 * gone is skipped, CNI DEL is idempotent), so a crash that leaves the record
 * of something removed only makes the next delete find it gone. When the
 * walk stops short (a failure, an abort), what is left is persisted.
 */
export async function teardown(st: SandboxState, stateDir: string, onStep?: StepHook, signal?: AbortSignal): Promise<void> {
  const left = REMOVAL_ORDER.filter((r) => r.recorded(st));
  let removed = false;
  try {
    for (const [i, r] of left.entries()) {
      throwIfAborted(signal, `deleting sandbox ${st.id}`);
      step('delete', st.id, r.step, 'before');
      await onStep?.(`before-remove-${r.step}`);
      try {
        await removeResource(r, st);
      } catch (err) {
        step('delete', st.id, r.step, 'failed', { error: err });
        const suppressed = undoFailures(r.step, err);
        st.phase = 'failed';
        st.pendingUndo = left.slice(i).map((x) => x.step).reverse();
        removed = false; // persisted here, with what is left
        await writeState(stateDir, st).catch((e: unknown) => suppressed.push(new RollbackError('state file', e)));
        throw new SandboxError(`deleting sandbox ${st.id} stopped at "${r.step}": ${(err as Error)?.message ?? String(err)}`, { cause: err, step: r.step, suppressed });
      }
      step('delete', st.id, r.step, 'after');
      await onStep?.(`after-remove-${r.step}`);
      r.forget(st);
      removed = true;
    }
  } catch (err) {
    // Stopped between removals: the next delete starts from what is left.
    if (removed) await writeState(stateDir, st).catch(() => {});
    throw err;
  }
  await removeState(stateDir, st.id);
  step('delete', st.id, 'state', 'after');
}

/** Tears the sandbox down in reverse; a missing sandbox is not an error. */
export async function deleteSandbox(id: string, o: DeleteSandboxOptions = {}): Promise<{ id: string; existed: boolean }> {
  validateSandboxId(id);
  const dirs = sandboxDirs(o);
  const signal = validateSignal(o.signal);
  throwIfAborted(signal, `deleting sandbox ${id}`);
  return traced(channels.sandboxDelete, () => ({ id }), () => remove(id, dirs, o, signal));
}

async function remove(id: string, dirs: ReturnType<typeof sandboxDirs>, o: DeleteSandboxOptions, signal?: AbortSignal): Promise<{ id: string; existed: boolean }> {
  await ensureStateDir(dirs.state);
  const lock = await SandboxLock.acquire(dirs.state, id, signal);
  let removeLockFile = false;
  try {
    const st = await readState(dirs.state, id, true);
    if (!st) {
      removeLockFile = true;
      return { id, existed: false };
    }
    st.phase = 'deleting';
    delete st.pendingUndo;
    await writeState(dirs.state, st);
    await teardown(st, dirs.state, o.onStep, signal);
    removeLockFile = true;
    return { id, existed: true };
  } finally {
    await lock.release(dirs.state, id, removeLockFile);
  }
}
