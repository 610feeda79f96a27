// Reading sandboxes back: from their state files, and checked against what
// is really there.
import { pinHolds, REMOVAL_ORDER } from './resources.js';
import { listStateIds, readState, SandboxState } from './state.js';
import { SandboxDetails, SandboxDirs, sandboxDirs, SandboxInfo } from './types.js';
import { validateSandboxId } from './instance.js';

export function toInfo(st: SandboxState): SandboxInfo {
  const out: SandboxInfo = { id: st.id, phase: st.phase, ips: st.network?.ips ?? [], createdAt: st.createdAt };
  if (st.netns) out.netnsPath = st.netns.path;
  if (st.userns) out.usernsPath = st.userns.path;
  if (st.pause?.pid) out.pid = st.pause.pid;
  if (st.pause) out.containerId = st.pause.containerId;
  if (st.pendingUndo) out.pendingUndo = st.pendingUndo;
  return out;
}

/** Reads a sandbox from its state file and checks what is really there. */
export async function loadSandbox(id: string, o: SandboxDirs = {}): Promise<SandboxDetails | null> {
  validateSandboxId(id);
  const dirs = sandboxDirs(o);
  const st = await readState(dirs.state, id);
  if (!st) return null;
  const out: SandboxDetails = { ...toInfo(st), netnsPresent: (await pinHolds(st)) === 'ours' };
  const pause = REMOVAL_ORDER.find((r) => r.step === 'pause')!;
  if (pause.recorded(st)) {
    const p = await pause.probe(st);
    out.status = p.presence === 'present' ? (p.detail ?? 'unknown') : p.presence === 'absent' ? 'missing' : 'unknown';
  }
  return out;
}

export async function listSandboxes(o: SandboxDirs = {}): Promise<SandboxInfo[]> {
  const dirs = sandboxDirs(o);
  const out: SandboxInfo[] = [];
  for (const id of await listStateIds(dirs.state)) {
    const st = await readState(dirs.state, id).catch(() => null);
    if (st) out.push(toInfo(st));
  }
  return out;
}
