// What a sandbox owns, each described once: how its record is written into
// the state (before the step that makes it), how the step makes it, how it
// is probed (present | absent | unknown) and how it is removed. Create walks
// this table forwards, delete and gc walk it backwards. "unknown" never
// removes anything and never counts as gone.
import { lstat, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { addNetwork, CniError, delNetwork, toNetworkList, validateContainerId, validateIfName, validateNetworkName } from '../cni/index.js';
import type { CniResult } from '../cni/index.js';
import { inMemorySync } from '../atomic-file.js';
import { NstoolError } from '../errors.js';
import { createPodNs, probeNs, probeNsSync } from '../kernel/ns.js';
import { unpin as unpinAt } from '../kernel/pin.js';
import { createPodNetns, ensurePinDir } from '../netns.js';
import { USERNS_MISMATCH } from '../oci/namespaces.js';
import { removePodContainer, runPodContainer } from '../pod/container.js';
import { RuncClient } from '../runc/client.js';
import { isNotFound } from '../runc/error.js';
import { probeContainer } from '../runc/probe.js';
import { SANDBOX_PREFIX } from './instance.js';
import type { Plan } from './plan.js';
import { writeState } from './state.js';
import type { SandboxState } from './state.js';
import { hostOf, keeperUnpin, makeKeeperPodNs } from './rootless.js';

export type Presence = 'present' | 'absent' | 'unknown';

export interface Probe {
  presence: Presence;
  /** What was seen: the container's status, why it counts as absent, what could not be read. */
  detail?: string;
}

export interface Resource {
  /** Its step's name, in errors, pendingUndo and step points. */
  readonly step: string;
  /** What gc calls it in its report. */
  readonly gcKind: 'pin' | 'userns-pin' | 'ipc-pin' | 'uts-pin' | 'cni-result' | 'container';
  /** Writes the record of what the step will make; false when this sandbox has none. */
  record(st: SandboxState, p: Plan): boolean;
  /** The step: makes the resource and completes its record. */
  make(st: SandboxState, p: Plan): Promise<void>;
  recorded(st: SandboxState): boolean;
  /** Where it is (a path or a container id), for reports. */
  target(st: SandboxState): string;
  probe(st: SandboxState): Promise<Probe>;
  /** Why a ready sandbox is broken, judging by this resource; null when it is fine or cannot be told. */
  broken(st: SandboxState): Promise<string | null>;
  remove(st: SandboxState): Promise<void>;
  /**
   * The step whose make() makes this resource too (one native call): its
   * record is written and its undo registered before that step, and its own
   * make() only completes the record.
   */
  readonly madeBy?: string;
  /** remove() asks what is there itself and acts on nothing it cannot see: no probe first. */
  removeProbes?(st: SandboxState): boolean;
  forget(st: SandboxState): void;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** A file is there, is not, or cannot be told (EACCES, EIO...). */
async function fileProbe(p: string): Promise<Probe> {
  try {
    await lstat(p);
    return { presence: 'present' };
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { presence: 'absent' };
    return { presence: 'unknown', detail: `${p}: ${(err as Error).message}` };
  }
}

/** Where the host reaches the pin P of ST: P itself as root, through the keeper without root. */
export function pinPath(st: SandboxState, p: string): string {
  return st.mode === 'rootless' ? hostOf(p) : p;
}

async function unpin(p: string): Promise<void> {
  await unpinAt(p, { context: `removing the pin ${p}` });
}

/**
 * Removes the pin P as the core's unpin does, which looks first itself: a
 * missing pin is already gone, a path it cannot look at (EACCES, EIO...) or
 * that is not a pin fails with nothing removed. So no probe (a trip to the
 * pool) goes before it. A dir on the way that is no dir (ENOTDIR) is gone
 * too, as the probe said.
 */
async function removePin(p: string): Promise<void> {
  try {
    await unpin(p);
  } catch (err) {
    if (errCode(err) !== 'ENOTDIR') throw err;
  }
}

/**
 * What the netns pin holds: the netns this sandbox made ("ours"; also when
 * a crash came before its inode was recorded: the name is this instance's),
 * another namespace, nothing (missing or stale), or cannot be told.
 */
export async function pinHolds(st: SandboxState): Promise<'ours' | 'other' | 'none' | 'unknown'> {
  if (!st.netns) return 'none';
  try {
    const pin = pinPath(st, st.netns.path);
    // In a pin dir on a tmpfs (the usual /run/netns) at once: a stat and an
    // ioctl there cost less than the two trips to the pool of probeNs.
    const info = inMemorySync(path.dirname(pin)) ? probeNsSync(pin) : await probeNs(pin);
    // A link is not followed and cannot be told.
    if (info.state === 'symlink') return 'unknown';
    if (info.state !== 'ns') return 'none';
    if (info.type !== 'net') return 'other';
    return st.netns.inode === undefined || info.inode === st.netns.inode ? 'ours' : 'other';
  } catch {
    return 'unknown';
  }
}

const rootNetns: Resource = {
  step: 'netns',
  gcKind: 'pin',
  record(st, p) {
    st.netns = { name: p.name, path: path.join(p.dirs.pin, p.name), pinDir: p.dirs.pin, usernsPinDir: p.dirs.userns };
    return true;
  },
  async make(st, p) {
    // A stale pin of this name is this instance's own litter: the undo,
    // registered before this step, removes it with the rest. The userns is
    // pinned in the same call (both or neither), from the fd of the userns
    // that made the netns: nothing to read back or check afterwards.
    const pod = await createPodNetns({
      name: p.name,
      ...(p.auto ? { uidMap: 'auto' as const, ...p.auto } : { uidMap: p.uidMap, gidMap: p.gidMap }),
      ...(p.allocDir !== undefined ? { allocDir: p.allocDir } : {}),
      setgroups: p.setgroups,
      pinDir: p.dirs.pin,
      ...(st.userns ? { pinUserns: true, usernsPinDir: p.dirs.userns } : {}),
      ...(p.allowHostRoot !== undefined ? { allowHostRoot: p.allowHostRoot } : {}),
      ...(p.signal ? { signal: p.signal } : {}),
    });
    st.netns!.inode = pod.netnsInode;
    if (st.userns) st.userns.inode = pod.usernsInode;
    // The maps the pod really has (with 'auto', the block the allocator chose).
    st.uidMap = pod.uidMap;
    st.gidMap = pod.gidMap;
  },
  recorded: (st) => st.netns !== undefined,
  target: (st) => st.netns!.path,
  probe: (st) => fileProbe(st.netns!.path),
  async broken(st) {
    const h = await pinHolds(st);
    return h === 'none' ? 'netns pin missing' : h === 'other' ? 'netns pin holds another namespace' : null;
  },
  removeProbes: () => true,
  remove: (st) => removePin(st.netns!.path),
  forget(st) {
    delete st.netns;
  },
};

const rootUserns: Resource = {
  step: 'userns',
  gcKind: 'userns-pin',
  record(st, p) {
    st.userns = { path: path.join(p.dirs.userns, p.name) };
    return true;
  },
  // Pinned by the netns step (so later containers can join it after the pause container is gone).
  madeBy: 'netns',
  async make() {},
  recorded: (st) => st.userns !== undefined,
  target: (st) => st.userns!.path,
  probe: (st) => fileProbe(st.userns!.path),
  broken: async () => null,
  removeProbes: () => true,
  remove: (st) => removePin(st.userns!.path),
  forget(st) {
    delete st.userns;
    if (st.netns) delete st.netns.usernsPath;
  },
};

/**
 * The kinds the step of KIND makes: the ipc step makes the uts pin too (one
 * child for both) when the uts pin is recorded; the uts step makes its pin
 * only when the ipc step has not (its inode is not recorded yet).
 */
function kindsToMake(st: SandboxState, kind: 'ipc' | 'uts'): { ipc: boolean; uts: boolean } {
  return kind === 'ipc' ? { ipc: true, uts: st.uts !== undefined } : { ipc: false, uts: st.uts!.inode === undefined };
}

/** The userns pin was made a step ago: one swapped since is not the pod's (the undo removes the new pins). */
function checkUsernsStill(st: SandboxState, usernsIno: number): void {
  if (st.userns!.inode !== undefined && usernsIno !== st.userns!.inode) {
    throw new NstoolError(`the userns pin ${st.userns!.path} no longer holds the pod's user namespace`, { code: USERNS_MISMATCH, path: st.userns!.path });
  }
}

/**
 * The ipc or uts pin of a sandbox without a pause container: a namespace
 * made inside the pod's userns (so it owns it, as it owns the netns), the
 * host name set in the uts one, pinned next to the netns and userns pins.
 */
function podNamespacePin(kind: 'ipc' | 'uts'): Resource {
  const rec = (st: SandboxState) => st[kind]!;
  return {
    step: kind,
    gcKind: `${kind}-pin`,
    record(st, p) {
      if (p.pause) return false;
      st[kind] = { path: path.join(p.dirs[kind], p.name) };
      return true;
    },
    ...(kind === 'uts' ? { madeBy: 'ipc' } : {}),
    async make(st, p) {
      const k = kindsToMake(st, kind);
      if (!k.ipc && !k.uts) return;
      if (k.ipc) ensurePinDir(p.dirs.ipc);
      if (k.uts) ensurePinDir(p.dirs.uts);
      const r = await createPodNs(
        { userns: st.userns!.path, ...(k.ipc ? { ipcPin: st.ipc!.path } : {}), ...(k.uts ? { utsPin: st.uts!.path, hostname: p.hostname } : {}) },
        { context: `making the ${kind === 'ipc' && k.uts ? 'ipc and uts namespaces' : `${kind} namespace`} of sandbox ${st.id}` },
      );
      checkUsernsStill(st, r.usernsIno);
      if (k.ipc) st.ipc!.inode = r.ipcIno;
      if (k.uts) st.uts!.inode = r.utsIno;
    },
    recorded: (st) => st[kind] !== undefined,
    target: (st) => rec(st).path,
    probe: (st) => fileProbe(rec(st).path),
    async broken(st) {
      // A pin that cannot be read (EACCES, EIO) is not called broken: unknown never removes.
      const info = await probeNs(pinPath(st, rec(st).path)).catch(() => null);
      if (!info || info.state === 'symlink') return null;
      if (info.state === 'missing' || info.state === 'stale') return `${kind} pin missing`;
      if (info.state !== 'ns') return `${kind} pin holds another namespace`;
      const ino = rec(st).inode;
      return info.type !== kind || (ino !== undefined && info.inode !== ino) ? `${kind} pin holds another namespace` : null;
    },
    removeProbes: () => true,
    remove: (st) => removePin(rec(st).path),
    forget(st) {
      delete st[kind];
    },
  };
}

const rootIpc = podNamespacePin('ipc');
const rootUts = podNamespacePin('uts');

// ---- without root: the same four pins, held by the user's keeper ----------
// Records name the pins as the keeper sees them (see rootless.ts); probes go
// through the live keeper; removals are the keeper's unpins, where a keeper
// that is gone means the pin is gone.

const keeperProbe = (st: SandboxState, p: string) => fileProbe(pinPath(st, p));

const rlNetns: Resource = {
  ...rootNetns,
  async make(st, p) {
    // The userns is pinned with it (one request); its record and undo come
    // before this step (madeBy), and this removal takes both anyway.
    const pod = await createPodNetns({
      name: p.name,
      ...(p.auto ? { uidMap: 'auto' as const, ...p.auto } : { uidMap: p.uidMap, gidMap: p.gidMap }),
      setgroups: p.setgroups,
      ...(p.allowHostRoot !== undefined ? { allowHostRoot: p.allowHostRoot } : {}),
    });
    st.netns!.inode = pod.netnsInode;
    st.uidMap = pod.uidMap;
    st.gidMap = pod.gidMap;
  },
  probe: (st) => keeperProbe(st, st.netns!.path),
  // The keeper's pins are probed first, through the live keeper.
  removeProbes: () => false,
  async remove(st) {
    await keeperUnpin('net+user', st.netns!.name);
  },
};

const rlUserns: Resource = {
  ...rootUserns,
  async make(st) {
    // Pinned by the netns step; here it is checked to own that netns.
    const u = await probeNs(pinPath(st, st.userns!.path));
    const n = await probeNs(pinPath(st, st.netns!.path));
    if (u.state !== 'ns' || u.type !== 'user' || n.state !== 'ns' || n.owner?.inode !== u.inode) {
      throw new NstoolError(`the keeper's userns pin ${st.userns!.path} is not the owner of the sandbox's netns`, { code: USERNS_MISMATCH, path: st.userns!.path });
    }
    st.userns!.inode = u.inode;
  },
  probe: (st) => keeperProbe(st, st.userns!.path),
  removeProbes: () => false,
  async remove(st) {
    await keeperUnpin('user', path.basename(st.userns!.path));
  },
};

function rlPodNamespacePin(kind: 'ipc' | 'uts', root: Resource): Resource {
  const rec = (st: SandboxState) => st[kind]!;
  return {
    ...root,
    async make(st, p) {
      const k = kindsToMake(st, kind);
      if (!k.ipc && !k.uts) return;
      const r = await makeKeeperPodNs(k, pinPath(st, st.userns!.path), p.name, p.hostname);
      checkUsernsStill(st, r.usernsInode);
      if (k.ipc) st.ipc!.inode = r.ipcInode!;
      if (k.uts) st.uts!.inode = r.utsInode!;
    },
    probe: (st) => keeperProbe(st, rec(st).path),
    removeProbes: () => false,
    async remove(st) {
      await keeperUnpin(kind, path.basename(rec(st).path));
    },
  };
}

const rlIpc = rlPodNamespacePin('ipc', rootIpc);
const rlUts = rlPodNamespacePin('uts', rootUts);

/** One entry of the table: the root way, or (for a state made without root) the keeper's. */
function byMode(root: Resource, rootless: Resource): Resource {
  const pick = (st: SandboxState) => (st.mode === 'rootless' ? rootless : root);
  return {
    step: root.step,
    gcKind: root.gcKind,
    record: (st, p) => pick(st).record(st, p),
    make: (st, p) => pick(st).make(st, p),
    recorded: (st) => pick(st).recorded(st),
    target: (st) => pick(st).target(st),
    probe: (st) => pick(st).probe(st),
    broken: (st) => pick(st).broken(st),
    remove: (st) => pick(st).remove(st),
    forget: (st) => pick(st).forget(st),
    removeProbes: (st) => pick(st).removeProbes?.(st) ?? false,
    // Both ways make the same resources together.
    ...(root.madeBy !== undefined ? { madeBy: root.madeBy } : {}),
  };
}

const netns = byMode(rootNetns, rlNetns);
const userns = byMode(rootUserns, rlUserns);
const ipc = byMode(rootIpc, rlIpc);
const uts = byMode(rootUts, rlUts);

function cniContainerId(st: SandboxState): string {
  return st.network!.containerId ?? SANDBOX_PREFIX + st.id;
}

/** The stored values ADD checks before it runs any plugin; a message when they fail. */
function storedNetworkRefused(st: SandboxState): string | null {
  const n = st.network!;
  try {
    validateContainerId(cniContainerId(st));
    validateIfName(n.ifName);
    validateNetworkName((n.list as { name?: unknown }).name);
    toNetworkList(n.list);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

const cniNetwork: Resource = {
  step: 'network',
  gcKind: 'cni-result',
  record(st, p) {
    if (!p.network) return false;
    const n = p.network;
    st.network = {
      list: n.plain,
      containerId: p.name,
      ifName: n.ifName,
      cacheDir: p.dirs.cniCache,
      pluginPath: n.pluginPath,
      ...(n.nodeNetns ? { nodeNetns: n.nodeNetns } : {}),
      ...(n.capabilityArgs ? { capabilityArgs: n.capabilityArgs } : {}),
    };
    return true;
  },
  async make(st, p) {
    const n = p.network!;
    const rt = { containerId: p.name, netns: st.netns!.path, ifName: n.ifName, ...(n.capabilityArgs ? { capabilityArgs: n.capabilityArgs } : {}) };
    let result: CniResult;
    try {
      result = await addNetwork(n.list, rt, {
        cacheDir: p.dirs.cniCache,
        pluginPath: n.pluginPath,
        delOnFailure: false, // the undo runs DEL
        // The cached result is marked as this instance's in the write that makes it.
        cacheOwner: p.inst.stateDir,
        ...(n.nodeNetns ? { nodeNetns: n.nodeNetns } : {}),
        ...(p.signal ? { signal: p.signal } : {}),
      });
    } catch (err) {
      if (err instanceof CniError) st.network!.addError = { plugin: err.plugin, ...(err.cniMsg !== undefined ? { cniMsg: err.cniMsg } : {}) };
      throw err;
    }
    st.network!.result = result as Record<string, unknown>;
    st.network!.ips = (result.ips ?? []).map((i) => i.address);
  },
  recorded: (st) => st.network !== undefined,
  target(st) {
    const n = st.network!;
    return path.join(n.cacheDir, 'results', `${String((n.list as { name?: unknown }).name)}-${cniContainerId(st)}-${n.ifName}`);
  },
  async probe(st) {
    // ADD refuses these values before running any plugin: nothing can have been allocated with them.
    const refused = storedNetworkRefused(st);
    if (refused) return { presence: 'absent', detail: `never added: ${refused}` };
    // Plugins keep their own state: only DEL can release it, and DEL is idempotent.
    return { presence: 'present' };
  },
  broken: async () => null,
  async remove(st) {
    const n = st.network!;
    // Gone, stale or replaced: DEL still runs (it releases the IP) with an empty CNI_NETNS.
    const netnsPath = (await pinHolds(st)) === 'ours' ? st.netns!.path : '';
    try {
      await delNetwork(
        toNetworkList(n.list),
        { containerId: cniContainerId(st), netns: netnsPath, ifName: n.ifName, ...(n.capabilityArgs ? { capabilityArgs: n.capabilityArgs } : {}) },
        { cacheDir: n.cacheDir, pluginPath: n.pluginPath, ...(n.nodeNetns ? { nodeNetns: n.nodeNetns } : {}) },
      );
    } catch (err) {
      // A plugin that refused its config on ADD and refuses it the same way on
      // DEL (say, an invalid subnet) never got as far as allocating anything.
      const a = n.addError;
      if (!(a && err instanceof CniError && err.plugin === a.plugin && err.cniMsg === a.cniMsg)) throw err;
    }
  },
  forget(st) {
    delete st.network;
  },
};

// Without root: the user-mode network process (src/rootless/network.ts),
// loaded only for a rootless sandbox. A process started but not yet
// recorded (a crash between the two) ends with the netns pin: the keeper
// holds its exit pipe for as long as the pin is there.
const rootlessNetwork = () => import('../rootless/network.js');

const rlNetwork: Resource = {
  step: 'network',
  gcKind: 'cni-result',
  record(st, p) {
    if (!p.rootlessNet) return false;
    st.rootlessNet = { ...p.rootlessNet };
    return true;
  },
  async make(st, p) {
    const n = st.rootlessNet!;
    const { startRootlessNetwork } = await rootlessNetwork();
    const rec = await startRootlessNetwork({
      netnsPath: pinPath(st, st.netns!.path),
      usernsPath: pinPath(st, st.userns!.path),
      backend: n.backend,
      ports: n.ports,
      ...(n.ifName !== undefined ? { ifname: n.ifName } : {}),
      ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
      ...(p.signal ? { signal: p.signal } : {}),
    });
    n.record = rec;
    // Saved at once: a crash from here on leaves the process and its files findable by pid and start time.
    await writeState(p.dirs.state, st);
  },
  recorded: (st) => st.rootlessNet !== undefined,
  target(st) {
    const r = st.rootlessNet!.record as { backend?: unknown; pid?: unknown } | undefined;
    return r ? `${String(r.backend)} pid ${String(r.pid)}` : 'network process';
  },
  async probe(st) {
    const r = st.rootlessNet!.record;
    if (r === undefined) return { presence: 'absent', detail: 'not started, or not recorded: it ends with the netns pin' };
    const { parseNetRecord, rootlessNetworkAlive } = await rootlessNetwork();
    const rec = parseNetRecord(r);
    if (!rec) return { presence: 'unknown', detail: 'the network record in the state is not one nstool writes' };
    if (rootlessNetworkAlive(rec)) return { presence: 'present' };
    // Its log (and API socket) outlive it: still there to remove.
    const files = [rec.log, rec.apiSocket].filter((f): f is string => f !== undefined);
    if ((await Promise.all(files.map((f) => fileProbe(f)))).some((x) => x.presence !== 'absent')) return { presence: 'present', detail: `${rec.backend} (pid ${rec.pid}) is gone; its files are left` };
    return { presence: 'absent', detail: `${rec.backend} (pid ${rec.pid}) is gone` };
  },
  async broken(st) {
    const r = st.rootlessNet!.record;
    if (r === undefined) return null;
    const { parseNetRecord, rootlessNetworkAlive } = await rootlessNetwork();
    const rec = parseNetRecord(r);
    return rec && !rootlessNetworkAlive(rec) ? 'network process gone' : null;
  },
  async remove(st) {
    const { parseNetRecord, stopRootlessNetwork } = await rootlessNetwork();
    const rec = parseNetRecord(st.rootlessNet!.record);
    if (rec) await stopRootlessNetwork(rec);
  },
  forget(st) {
    delete st.rootlessNet;
  },
};

export function runtimeClient(r: { binary?: string; root?: string } = {}): RuncClient {
  return new RuncClient({ binary: r.binary ?? 'runc', ...(r.root ? { root: r.root } : {}) });
}

/** The runtime says the container does not exist (as opposed to failing to say anything). */
export function containerMissing(err: unknown): boolean {
  return isNotFound(err);
}

const LIVE = ['running', 'created', 'paused'];

const pause: Resource = {
  step: 'pause',
  gcKind: 'container',
  record(st, p) {
    if (!p.pause) return false;
    st.pause = { containerId: p.name, bundle: path.join(p.dirs.bundle, p.name), runtime: p.pause.runtime };
    return true;
  },
  async make(st, p) {
    const rt = runtimeClient(p.pause!.runtime);
    // Only a container the runtime says is absent may be made: one it cannot answer for may be someone's.
    const there = await probeContainer(rt, p.name);
    if (there !== 'absent') {
      throw new NstoolError(`a container named ${p.name} ${there === 'present' ? 'already exists' : 'may exist (the runtime cannot tell)'}`, {
        code: 'EEXIST',
        hint: there === 'present' ? "it is this instance's litter: `nstool gc` removes it" : 'check the runtime (`runc list`) and its root',
      });
    }
    const rec = await runPodContainer({
      id: p.name,
      netns: st.netns!.path,
      pinDir: p.dirs.pin,
      usernsPinDir: p.dirs.userns,
      rootfs: p.pause!.rootfs,
      command: p.pause!.command,
      hostname: p.hostname,
      runtime: rt,
      bundleDir: st.pause!.bundle,
      spec: { annotations: p.annotations },
      ...(p.signal ? { signal: p.signal } : {}),
    });
    if (rec.pid !== undefined) st.pause!.pid = rec.pid;
  },
  recorded: (st) => st.pause !== undefined,
  target: (st) => st.pause!.containerId,
  async probe(st) {
    try {
      const s = await runtimeClient(st.pause!.runtime).state(st.pause!.containerId);
      return { presence: 'present', detail: s.status };
    } catch (err) {
      if (!containerMissing(err)) return { presence: 'unknown', detail: (err as Error).message };
    }
    const b = await fileProbe(st.pause!.bundle);
    return b.presence === 'present' ? { presence: 'present', detail: 'missing' } : b;
  },
  async broken(st) {
    const p = await this.probe(st);
    if (p.presence === 'unknown') return null;
    if (p.presence === 'absent') return 'pause container missing';
    return LIVE.includes(p.detail ?? '') ? null : `pause container ${p.detail}`;
  },
  // removePodContainer asks the runtime first and fails, removing nothing, when it cannot answer.
  removeProbes: () => true,
  async remove(st) {
    const { containerId, bundle, runtime } = st.pause!;
    // Unmounts the idmapped rootfs before the bundle goes; gone is success.
    await removePodContainer(containerId, { bundleDir: bundle, runtime: runtimeClient(runtime) });
    // A create killed between making the bundle dir and its record leaves it empty.
    await rmdir(bundle).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return;
      throw new NstoolError(`the bundle ${bundle} has no nstool record and was left alone: ${err.message}`, {
        code: err.code ?? 'EIO',
        path: bundle,
        hint: `check what is in it, then remove it by hand`,
      });
    });
  },
  forget(st) {
    delete st.pause;
  },
};

const network = byMode(cniNetwork, rlNetwork);

/** In creation order. */
export const RESOURCES: readonly Resource[] = [netns, userns, ipc, uts, network, pause];

/** Newest first: the order of undo, delete and gc. */
export const REMOVAL_ORDER: readonly Resource[] = [...RESOURCES].reverse();

/**
 * Removes R unless its probe says it is gone; "unknown" is an error, never
 * taken for gone. The caller drops the record (and persists) afterwards.
 */
export async function removeResource(r: Resource, st: SandboxState): Promise<void> {
  if (r.removeProbes?.(st)) return r.remove(st);
  const p = await r.probe(st);
  if (p.presence === 'absent') return;
  if (p.presence === 'unknown') {
    throw new NstoolError(`cannot tell whether the ${r.step} of sandbox ${st.id} (${r.target(st)}) is there: ${p.detail ?? 'unknown'}`, {
      code: 'ERR_NSTOOL_UNKNOWN_STATE',
      hint: 'nothing was removed; fix what keeps it from being read, then delete again',
    });
  }
  await r.remove(st);
}
