// Delete: the resource table walked backwards. Each removal is persisted as
// it happens; the first that fails stops the walk, and the state keeps what
// is left (phase failed, pendingUndo) for the next delete or gc.
import { SandboxError, undoFailures } from './errors.js';
import { validateSandboxId } from './instance.js';
import { REMOVAL_ORDER, removeResource } from './resources.js';
import { RollbackError } from './rollback.js';
import { ensureStateDir, readState, removeState, SandboxLock, SandboxState, writeState } from './state.js';
import { DeleteSandboxOptions, sandboxDirs, StepHook } from './types.js';

/** Removes what ST records, newest first, then the state file. The caller holds the lock. */
export async function teardown(st: SandboxState, stateDir: string, onStep?: StepHook): Promise<void> {
  const left = REMOVAL_ORDER.filter((r) => r.recorded(st));
  for (const [i, r] of left.entries()) {
    await onStep?.(`before-remove-${r.step}`);
    try {
      await removeResource(r, st);
    } catch (err) {
      const suppressed = undoFailures(r.step, err);
      st.phase = 'failed';
      st.pendingUndo = left.slice(i).map((x) => x.step).reverse();
      await writeState(stateDir, st).catch((e: unknown) => suppressed.push(new RollbackError('state file', e)));
      throw new SandboxError(`deleting sandbox ${st.id} stopped at "${r.step}": ${(err as Error)?.message ?? String(err)}`, { cause: err, step: r.step, suppressed });
    }
    await onStep?.(`after-remove-${r.step}`);
    r.forget(st);
    await writeState(stateDir, st);
  }
  await removeState(stateDir, st.id);
}

/** Tears the sandbox down in reverse; a missing sandbox is not an error. */
export async function deleteSandbox(id: string, o: DeleteSandboxOptions = {}): Promise<{ id: string; existed: boolean }> {
  validateSandboxId(id);
  const dirs = sandboxDirs(o);
  await ensureStateDir(dirs.state);
  const lock = await SandboxLock.acquire(dirs.state, id);
  let removeLockFile = false;
  try {
    const st = await readState(dirs.state, id);
    if (!st) {
      removeLockFile = true;
      return { id, existed: false };
    }
    st.phase = 'deleting';
    delete st.pendingUndo;
    await writeState(dirs.state, st);
    await teardown(st, dirs.state, o.onStep);
    removeLockFile = true;
    return { id, existed: true };
  } finally {
    await lock.release(dirs.state, id, removeLockFile);
  }
}
