// Is a sandbox whole? Each resource its state records is probed where it
// lives: the pins hold the namespaces made for it, the pause container runs
// in that netns, and the plugins' CHECK agrees with the cached ADD result.
// Reads only: no lock is taken and nothing is changed.
import { stat } from 'node:fs/promises';
import { checkNetwork, toNetworkList, versionHasVerb } from '../cni/index.js';
import { ErrorJSON, errorToJSON } from '../errors.js';
import { probeNs } from '../kernel/ns.js';
import { isNotFound } from '../runc/error.js';
import { SANDBOX_PREFIX, validateSandboxId } from './instance.js';
import { pinHolds, pinPath, runtimeClient } from './resources.js';
import { readState, SandboxState } from './state.js';
import { SandboxDirs, sandboxDirs } from './types.js';

export interface HealthCheck {
  /** "state", "netns", "userns", "pause" or "network". */
  name: string;
  ok: boolean;
  /** What was seen: why it is not ok, or what was not checked. */
  detail?: string;
  error?: ErrorJSON;
}

export interface SandboxHealth {
  id: string;
  healthy: boolean;
  checks: HealthCheck[];
}

const bad = (name: string, detail: string, err?: unknown): HealthCheck => ({ name, ok: false, detail, ...(err !== undefined ? { error: errorToJSON(err) } : {}) });

async function netnsCheck(st: SandboxState): Promise<HealthCheck> {
  const h = await pinHolds(st);
  if (h === 'ours') return { name: 'netns', ok: true };
  const why = { none: 'the netns pin is missing or stale', other: 'the netns pin holds another namespace', unknown: 'the netns pin cannot be read' }[h];
  return bad('netns', `${why} (${st.netns?.path ?? 'no pin recorded'})`);
}

async function usernsCheck(st: SandboxState): Promise<HealthCheck | null> {
  if (!st.userns) return null;
  try {
    const u = await probeNs(pinPath(st, st.userns.path));
    if (u.state !== 'ns' || u.type !== 'user') return bad('userns', `the userns pin ${st.userns.path} holds no user namespace`);
    if (st.userns.inode !== undefined && u.inode !== st.userns.inode) return bad('userns', `the userns pin ${st.userns.path} holds another user namespace`);
    const n = st.netns ? await probeNs(pinPath(st, st.netns.path)).catch(() => null) : null;
    if (n?.state === 'ns' && n.owner && n.owner.inode !== u.inode) return bad('userns', `the userns pinned at ${st.userns.path} does not own the netns`);
    // Without a pause container the pod's ipc and uts live in pins owned by the same userns.
    for (const kind of ['ipc', 'uts'] as const) {
      const rec = st[kind];
      if (!rec) continue;
      const x = await probeNs(pinPath(st, rec.path));
      if (x.state !== 'ns' || x.type !== kind) return bad('userns', `the ${kind} pin ${rec.path} holds no ${kind} namespace`);
      if ((rec.inode !== undefined && x.inode !== rec.inode) || !x.owner || x.owner.inode !== u.inode) {
        return bad('userns', `the ${kind} pin ${rec.path} holds another namespace than the sandbox made`);
      }
    }
    return { name: 'userns', ok: true };
  } catch (err) {
    return bad('userns', `the userns pin ${st.userns.path} cannot be read`, err);
  }
}

async function pauseCheck(st: SandboxState): Promise<HealthCheck | null> {
  if (!st.pause) return null;
  const { containerId, runtime, pid } = st.pause;
  let s;
  try {
    s = await runtimeClient(runtime).state(containerId);
  } catch (err) {
    return isNotFound(err) ? bad('pause', `the pause container ${containerId} is missing`) : bad('pause', `the runtime cannot say how the pause container is`, err);
  }
  if (s.status !== 'running') return bad('pause', `the pause container ${containerId} is ${s.status}`);
  if (pid !== undefined && s.pid !== pid) return bad('pause', `the pause container runs as pid ${s.pid}, not the ${pid} it was started as`);
  if (st.netns?.inode !== undefined) {
    const ino = await stat(`/proc/${s.pid}/ns/net`).then((x) => x.ino, () => undefined);
    if (ino !== st.netns.inode) return bad('pause', `the pause container (pid ${s.pid}) is not in the sandbox's netns`);
  }
  return { name: 'pause', ok: true };
}

async function networkCheck(st: SandboxState, netnsOk: boolean): Promise<HealthCheck> {
  if (st.rootlessNet) return rootlessNetworkCheck(st);
  const n = st.network;
  if (!n) return { name: 'network', ok: true, detail: 'no network: the pod has only lo' };
  if (!netnsOk || !st.netns) return bad('network', 'not checked: the netns is not there');
  try {
    const list = toNetworkList(n.list);
    if (!versionHasVerb(list.cniVersion, 'CHECK')) return { name: 'network', ok: true, detail: `not checked: cniVersion ${list.cniVersion} has no CHECK` };
    await checkNetwork(
      list,
      { containerId: n.containerId ?? SANDBOX_PREFIX + st.id, netns: st.netns.path, ifName: n.ifName, ...(n.capabilityArgs ? { capabilityArgs: n.capabilityArgs } : {}) },
      { cacheDir: n.cacheDir, pluginPath: n.pluginPath, ...(n.nodeNetns ? { nodeNetns: n.nodeNetns } : {}) },
    );
    return { name: 'network', ok: true };
  } catch (err) {
    return bad('network', `CNI CHECK failed: ${(err as Error)?.message ?? String(err)}`, err);
  }
}

/** Without root: the network process recorded for the sandbox still runs. */
async function rootlessNetworkCheck(st: SandboxState): Promise<HealthCheck> {
  const r = st.rootlessNet!.record;
  if (r === undefined) return bad('network', 'the network process was not started');
  const { parseNetRecord, rootlessNetworkAlive } = await import('../rootless/network.js');
  const rec = parseNetRecord(r);
  if (!rec) return bad('network', 'the network record in the state is not one nstool writes');
  return rootlessNetworkAlive(rec) ? { name: 'network', ok: true, detail: `${rec.backend} pid ${rec.pid}` } : bad('network', `${rec.backend} (pid ${rec.pid}) is gone`);
}

/** The health of sandbox ID, or null when it has no state. */
export async function checkSandbox(id: string, o: SandboxDirs = {}): Promise<SandboxHealth | null> {
  validateSandboxId(id);
  const st = await readState(sandboxDirs(o).state, id);
  if (!st) return null;
  const checks: HealthCheck[] = [];
  checks.push(st.phase === 'ready' ? { name: 'state', ok: true } : bad('state', `phase ${st.phase}${st.pendingUndo ? `, left to undo: ${st.pendingUndo.join(', ')}` : ''}`));
  const netns = await netnsCheck(st);
  checks.push(netns);
  for (const c of [await usernsCheck(st), await pauseCheck(st)]) if (c) checks.push(c);
  checks.push(await networkCheck(st, netns.ok));
  return { id, healthy: checks.every((c) => c.ok), checks };
}
