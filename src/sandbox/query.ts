// Reading sandboxes back: from their state files, and checked against what
// is really there.
import { NstoolError } from '../errors.js';
import { probeNs } from '../kernel/ns.js';
import { pinHolds, pinPath, REMOVAL_ORDER } from './resources.js';
import { listStateIds, readState, SandboxState } from './state.js';
import { SandboxDetails, SandboxDirs, sandboxDirs, SandboxInfo } from './types.js';
import { validateSandboxId } from './instance.js';

/** The pod's addresses of a rootless network, as recorded (a record that is not a valid one shows none). */
function rootlessIps(st: SandboxState): string[] {
  const ips = (st.rootlessNet?.record as { ips?: unknown } | undefined)?.ips;
  return Array.isArray(ips) && ips.every((i) => typeof i === 'string') ? (ips as string[]) : [];
}

export function toInfo(st: SandboxState): SandboxInfo {
  const out: SandboxInfo = { id: st.id, phase: st.phase, mode: st.mode ?? 'root', ips: st.network?.ips ?? rootlessIps(st), createdAt: st.createdAt };
  // Without root: the paths through which the host reaches the keeper's pins.
  const at = (p: string) => pinPath(st, p);
  if (st.netns) out.netnsPath = at(st.netns.path);
  if (st.userns) out.usernsPath = at(st.userns.path);
  if (st.ipc) out.ipcPath = at(st.ipc.path);
  if (st.uts) out.utsPath = at(st.uts.path);
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

/** The namespaces a container of a sandbox joins, by path. */
export interface SandboxNamespaces {
  netns: string;
  userns: string;
  /** Pinned by a sandbox without a pause container; absent otherwise (the container gets its own). */
  ipc?: string;
  uts?: string;
}

function broken(id: string, p: string, why: string): NstoolError {
  return new NstoolError(`sandbox ${id} is broken: ${p} ${why}`, {
    code: 'ERR_NSTOOL_SANDBOX_BROKEN',
    path: p,
    hint: '`nstool gc` removes a broken sandbox; then create it again',
  });
}

/**
 * The namespace paths a container of sandbox ID joins (net, user and, for a
 * sandbox without a pause container, ipc and uts), each checked first: the
 * pin holds a namespace of its type, the very one the sandbox made, owned
 * by the sandbox's userns. A runtime handed them joins the pod and nothing else.
 */
export async function sandboxNamespaces(id: string, o: SandboxDirs = {}): Promise<SandboxNamespaces> {
  validateSandboxId(id);
  const dirs = sandboxDirs(o);
  const st = await readState(dirs.state, id);
  if (!st) throw new NstoolError(`no sandbox ${id}`, { code: 'ENOENT', hint: '`nstool sandbox list` shows the sandboxes' });
  if (st.phase !== 'ready' || !st.netns || !st.userns) {
    throw new NstoolError(`sandbox ${id} is not ready (${st.phase})`, {
      code: 'ERR_NSTOOL_SANDBOX_NOT_READY',
      hint: 'a create is running or was interrupted: wait, or `nstool sandbox delete` it',
    });
  }
  const look = async (p: string, type: string, inode: number | undefined) => {
    const info = await probeNs(pinPath(st, p)).catch((err: NodeJS.ErrnoException) => {
      throw broken(id, p, `cannot be read (${err.code ?? err.message})`);
    });
    if (info.state === 'missing') throw broken(id, p, 'is missing');
    if (info.state !== 'ns') throw broken(id, p, 'holds no namespace');
    if (info.type !== type) throw broken(id, p, `holds a ${info.type} namespace, not ${type}`);
    if (inode !== undefined && info.inode !== inode) throw broken(id, p, 'holds another namespace than the sandbox made');
    return info;
  };
  const user = await look(st.userns.path, 'user', st.userns.inode);
  const out: SandboxNamespaces = { netns: pinPath(st, st.netns.path), userns: pinPath(st, st.userns.path) };
  const joined: Array<['net' | 'ipc' | 'uts', { path: string; inode?: number } | undefined]> = [
    ['net', st.netns],
    ['ipc', st.ipc],
    ['uts', st.uts],
  ];
  for (const [type, rec] of joined) {
    if (!rec) continue;
    const info = await look(rec.path, type, rec.inode);
    if (!info.owner || info.owner.inode !== user.inode || info.owner.dev !== user.dev) throw broken(id, rec.path, `is not owned by the userns ${st.userns.path}`);
    if (type === 'ipc') out.ipc = pinPath(st, rec.path);
    if (type === 'uts') out.uts = pinPath(st, rec.path);
  }
  return out;
}
