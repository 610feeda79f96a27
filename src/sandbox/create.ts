// Create: every option checked first, then one loop over the resource
// table. Each resource's record (its undo) is written before its step, and
// what the step made right after, so a crash at any point leaves a state
// that delete and gc finish from.
import { isAbort } from '../abort.js';
import { NstoolError } from '../errors.js';
import { channels, step, traced } from '../trace.js';
import { abortError, SandboxError, undoFailures } from './errors.js';
import { Plan, planSandbox } from './plan.js';
import { removeResource, RESOURCES } from './resources.js';
import type { Resource } from './resources.js';
import { Rollback, RollbackError } from './rollback.js';
import { ensureStateDir, readState, removeState, SandboxLock, SandboxState, writeState } from './state.js';
import { toInfo } from './query.js';
import type { CreateSandboxOptions, SandboxInfo } from './types.js';

/**
 * Creates the sandbox: netns pin, userns pin, ipc and uts pins (without a
 * pause container, the default), CNI ADD (with a network), pause container
 * (when asked for). A failure or an abort undoes every earlier step in
 * reverse and rethrows; if an undo fails, a SandboxError names it and the
 * state keeps what is left for delete or gc.
 */
export async function createSandbox(o: CreateSandboxOptions): Promise<SandboxInfo> {
  const p = await planSandbox(o);
  if (p.signal?.aborted) throw abortError(p.signal.reason);
  return traced(channels.sandboxCreate, () => ({ id: p.id }), () => create(p));
}

// Pins are removed by their path alone, which their record holds before
// the step. What a pin step learns (inodes, the maps) is read by a later
// undo only once the network or the pause container exists, and the write
// before those steps holds it. So the records of consecutive pin steps go to
// disk in one write, before the first of them. Other steps (and any step
// not named here) get a write of their own.
const PINS: ReadonlySet<string> = new Set(['netns', 'userns', 'ipc', 'uts']);

async function create(p: Plan): Promise<SandboxInfo> {
  const { dirs, id } = p;
  await ensureStateDir(dirs.state);
  const lock = await SandboxLock.acquire(dirs.state, id, p.signal);
  let removeLockFile = false;
  try {
    if (await readState(dirs.state, id, true)) {
      throw new NstoolError(`sandbox ${id} already exists`, { code: 'EEXIST', hint: '`nstool sandbox delete` it first, or choose another id' });
    }
    const st: SandboxState = { version: 1, id, phase: 'creating', createdAt: new Date().toISOString(), instance: p.inst.stateDir, ...(p.dirs.rootless ? { mode: 'rootless' as const } : {}), uidMap: p.uidMap, gidMap: p.gidMap };
    // The steps this sandbox has (record() on a scratch copy only says whether).
    const steps = RESOURCES.filter((r) => r.record({ ...st }, p));
    // steps[0..recorded) have their records in st; steps[0..started) have run or are running, or are made by one that has or is.
    let recorded = 0;
    let started = 0;
    /** Records the steps from STARTED (at least up to END) that go in one write, and writes: what the previous steps made too. */
    const writeAhead = async (end: number) => {
      const from = started;
      recorded = end;
      if (PINS.has(steps[from]!.step)) while (recorded < steps.length && PINS.has(steps[recorded]!.step)) recorded++;
      for (const r of steps.slice(from, recorded)) r.record(st, p);
      await writeState(dirs.state, st);
    };
    const rb = new Rollback();
    // The state file goes first so delete and gc can find a create that dies part way.
    rb.push('state file', tracedUndo(id, 'state', () => removeState(dirs.state, id)));
    let current = 'state';
    try {
      if (steps.length > 0) await writeAhead(groupEnd(steps, 0));
      else await writeState(dirs.state, st);
      step('create', id, 'state', 'after');
      await p.onStep?.('state');
      for (const [i, r] of steps.entries()) {
        // A step's undo goes on the stack before it runs, and so do the undos
        // of the steps it makes in the same call (madeBy): their records are
        // in the same write ahead (pins), and a failure from here on removes them.
        if (i === started) {
          const end = groupEnd(steps, i);
          if (end > recorded) await writeAhead(end);
          for (const m of steps.slice(started, end)) {
            rb.push(m.step, tracedUndo(id, m.step, async () => {
              await removeResource(m, st);
              m.forget(st);
              await writeState(dirs.state, st);
            }));
          }
          started = end;
        }
        step('create', id, (current = r.step), 'before');
        await p.onStep?.(`before-${r.step}`);
        checkAborted(p);
        await r.make(st, p);
        step('create', id, r.step, 'after');
        await p.onStep?.(`after-${r.step}`);
      }
      current = 'ready';
      checkAborted(p);
      st.phase = 'ready';
      await writeState(dirs.state, st);
      return toInfo(st);
    } catch (err) {
      step('create', id, current, 'failed', { error: err });
      // Records written ahead for steps that never ran name nothing to undo.
      for (const r of steps.slice(started, recorded)) r.forget(st);
      // An abort seen by a step (a plugin or runtime killed) is the create's abort.
      const e = p.signal?.aborted && isAbort(err) ? abortError(p.signal.reason) : err;
      await rollBack(st, rb, e, dirs.state);
      removeLockFile = true;
      throw e;
    }
  } finally {
    await lock.release(dirs.state, id, removeLockFile);
  }
}

/** The end of the group of steps that steps[FROM] makes: itself and those made by it. */
function groupEnd(steps: readonly Resource[], from: number): number {
  let end = from + 1;
  while (end < steps.length && steps[end]!.madeBy === steps[from]!.step) end++;
  return end;
}

/** RUN as a traced undo of STEP: rollback steps before, after, or failed. */
function tracedUndo(id: string, name: string, run: () => Promise<void>): () => Promise<void> {
  return async () => {
    step('rollback', id, name, 'before');
    try {
      await run();
    } catch (error) {
      step('rollback', id, name, 'failed', { error });
      throw error;
    }
    step('rollback', id, name, 'after');
  };
}

function checkAborted(p: Plan): void {
  if (p.signal?.aborted) throw abortError(p.signal.reason);
}

async function rollBack(st: SandboxState, rb: Rollback, err: unknown, stateDir: string): Promise<void> {
  // What the failed step learnt (a CNI error to recognise on DEL) is kept first.
  await writeState(stateDir, st).catch(() => {});
  const failures = await rb.unwind();
  if (failures.length === 0) return;
  const step = failures[0]!.undo;
  const suppressed = failures.flatMap((f) => undoFailures(f.undo, f.cause));
  st.phase = 'failed';
  st.pendingUndo = rb.pending();
  await writeState(stateDir, st).catch((e: unknown) => suppressed.push(new RollbackError('state file', e)));
  throw new SandboxError(`creating sandbox ${st.id} failed (${(err as Error)?.message ?? String(err)}) and its rollback stopped at "${step}"`, { cause: err, step, suppressed });
}
