// Every option of createSandbox checked before the first side effect, so
// bad input leaves nothing behind and nothing stored can fail the checks a
// later delete makes.
import { accessSync, constants, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_IFNAME,
  findPlugin,
  loadNetworkList,
  pluginPath,
  ResultCache,
  toNetworkList,
  validateIfName,
} from '../cni/index.js';
import type { NetworkConfigList } from '../cni/index.js';
import { invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import { IdMapInput, IdMapping, parseIdMap, toHostId } from '../idmap.js';
import { validateHostname } from '../oci/build.js';
import { podSpec } from '../pod/container.js';
import { Instance, instanceOf, resourceName, validateSandboxId } from './instance.js';
import { unsupported } from './rootless.js';
import { CreateSandboxOptions, Dirs, SandboxNetwork, sandboxDirs, StepHook } from './types.js';

const NAME_MAX = 255;

/** A rootless sandbox's network, as asked for (recorded in the state before it starts). */
export interface RootlessNetPlan {
  backend: 'auto' | 'pasta' | 'slirp4netns';
  ports: Array<{ hostIp?: string; hostPort: number; podPort: number; protocol: 'tcp' | 'udp' }>;
  ifName?: string;
  mtu?: number;
}

export interface Plan {
  id: string;
  /** The name of its pins, container, bundle and CNI container id. */
  name: string;
  inst: Instance;
  dirs: Dirs;
  /** With auto, a stand-in for the checks: the netns step records the block it got. */
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /** uidMap 'auto': what createPodNetns's allocator needs. */
  auto?: { autoUser?: string; autoSize?: number; autoRange?: string };
  /** The id allocator's dir: auto blocks, and the overlap check of explicit maps. */
  allocDir?: string;
  setgroups: 'allow' | 'deny';
  allowHostRoot?: boolean;
  network?: {
    list: NetworkConfigList;
    /** The list as stored in the state (without where it was read from). */
    plain: Record<string, unknown>;
    ifName: string;
    pluginPath: string[];
    nodeNetns?: string;
    capabilityArgs?: Record<string, unknown>;
  };
  /** The pod's host name: the pause container's, or set in the pinned uts namespace. */
  hostname: string;
  /** Rootless: the user-mode network (CNI needs root). */
  rootlessNet?: RootlessNetPlan;
  /** Absent: no pause container; the ipc and uts namespaces are pinned instead. */
  pause?: { rootfs: string; command: string[]; runtime: { binary: string; root?: string } };
  /** Written into the pause container's spec: which sandbox and instance it belongs to. */
  annotations: Record<string, string>;
  signal?: AbortSignal;
  onStep?: StepHook;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function planNetwork(n: SandboxNetwork, name: string, dirs: Dirs): Promise<Plan['network']> {
  if (!isObject(n as unknown)) throw invalidArg('network must be an object', 'ERR_INVALID_ARG_TYPE');
  let list: NetworkConfigList;
  if (n.list !== undefined) list = toNetworkList(n.list);
  else {
    if (n.confDir !== undefined) requireAbsolute(n.confDir, 'network.confDir');
    list = await loadNetworkList({ ...(n.confDir ? { dir: n.confDir } : {}), ...(n.name !== undefined ? { name: n.name } : {}) });
  }
  const ifName = validateIfName(n.ifName ?? DEFAULT_IFNAME);
  const dirsOfPlugins = pluginPath(n.pluginPath);
  // A missing plugin is bad input: say so before anything is created.
  for (const p of list.plugins) findPlugin(p.type, dirsOfPlugins);
  if (n.nodeNetns !== undefined) requireAbsolute(n.nodeNetns, 'network.nodeNetns');
  if (n.capabilityArgs !== undefined && !isObject(n.capabilityArgs)) throw invalidArg('network.capabilityArgs must be an object', 'ERR_INVALID_ARG_TYPE');
  // The result cache file is named <network>-<container id>-<ifname>.
  const key = { network: list.name, containerId: name, ifName };
  new ResultCache(dirs.cniCache).pathOf(key);
  if (Buffer.byteLength(`${list.name}-${name}-${ifName}`) > NAME_MAX) {
    throw invalidArg(`network name ${JSON.stringify(list.name)} is too long for a CNI cache file name with this sandbox id`);
  }
  const { source: _s, ...plain } = list;
  return {
    list,
    plain: plain as Record<string, unknown>,
    ifName,
    pluginPath: dirsOfPlugins,
    ...(n.nodeNetns !== undefined ? { nodeNetns: path.normalize(n.nodeNetns) } : {}),
    ...(n.capabilityArgs !== undefined ? { capabilityArgs: n.capabilityArgs } : {}),
  };
}

/** The runtime binary as given, after checking it can be run: a path, or a name found on PATH. */
function checkRuntimeBinary(binary: unknown): string {
  if (typeof binary !== 'string' || binary === '' || binary.includes('\0')) throw invalidArg('runtime.binary must be a non-empty string');
  const candidates = binary.includes('/')
    ? [requireAbsolute(binary, 'runtime.binary')]
    : (process.env['PATH'] ?? '').split(':').filter((d) => d.startsWith('/')).map((d) => path.join(d, binary));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return binary;
    } catch {
      // not here
    }
  }
  throw new NstoolError(`the runtime ${binary} was not found${binary.includes('/') ? '' : ' on PATH'}`, {
    code: 'ENOENT',
    path: binary,
    hint: 'install runc (apt-get install runc) or give the runtime binary by its path',
  });
}

async function checkRootfs(rootfs: string): Promise<void> {
  const st = await stat(rootfs).catch((err: NodeJS.ErrnoException) => {
    throw new NstoolError(`pause.rootfs ${rootfs}: ${err.message}`, { code: err.code ?? 'EIO', path: rootfs, syscall: 'stat', hint: 'give the root filesystem of the pause container' });
  });
  if (!st.isDirectory()) throw new NstoolError(`pause.rootfs ${rootfs} is not a directory`, { code: 'ENOTDIR', path: rootfs });
}

const CNI_KEYS = ['list', 'confDir', 'name', 'pluginPath', 'nodeNetns', 'capabilityArgs'] as const;
const ROOTLESS_NET_KEYS = ['backend', 'ports', 'mtu'] as const;

/**
 * Without root: what only root can do is refused here, before anything is
 * made (a pause container, CNI), and the netns step's own checks
 * (subordinate ids or the auto pool, newuidmap, the runtime dir) run now too.
 */
async function planRootless(o: CreateSandboxOptions, name: string, uidMap: IdMapping[], gidMap: IdMapping[], isAuto: boolean): Promise<{ net?: Plan['rootlessNet']; setgroups: 'allow' | 'deny' }> {
  if (o.allocDir !== undefined) throw unsupported('allocDir', 'leave allocDir unset: the allocation lock of uidMap auto lives in your runtime dir');
  if (isObject(o.pause)) throw unsupported('a pause container', 'leave pause unset: a rootless sandbox pins its ipc and uts namespaces instead');
  let net: Plan['rootlessNet'];
  if (o.network !== undefined) {
    if (!isObject(o.network as unknown)) throw invalidArg('network must be an object', 'ERR_INVALID_ARG_TYPE');
    const n = o.network as Record<string, unknown>;
    const cni = CNI_KEYS.find((k) => n[k] !== undefined);
    if (cni) throw unsupported(`CNI (network.${cni})`, 'without root the pod network is slirp4netns or pasta: give network.backend and network.ports only');
    net = await planRootlessNet(o.network);
  }
  // Loaded only without root, as createPodNetns does.
  const { checkPodNetnsRootless } = await import('../rootless/netns.js');
  // With auto, the pool is checked now (the caller's own subordinate ids); the block is chosen when the netns is made.
  const { setgroups } = checkPodNetnsRootless({
    name,
    ...(isAuto
      ? {
          uidMap: 'auto' as const,
          ...(o.autoUser !== undefined ? { autoUser: o.autoUser } : {}),
          ...(o.autoSize !== undefined ? { autoSize: o.autoSize } : {}),
          ...(o.autoRange !== undefined ? { autoRange: o.autoRange } : {}),
        }
      : { uidMap, gidMap }),
    ...(o.setgroups !== undefined ? { setgroups: o.setgroups } : {}),
    ...(o.allowHostRoot !== undefined ? { allowHostRoot: o.allowHostRoot } : {}),
  });
  return { ...(net ? { net } : {}), setgroups };
}

/** The user-mode network's options, checked now (the backend's presence is checked when it starts). */
async function planRootlessNet(n: SandboxNetwork): Promise<Plan['rootlessNet']> {
  const backend = n.backend ?? 'auto';
  if (!['auto', 'pasta', 'slirp4netns'].includes(backend)) throw invalidArg('network.backend must be "auto", "pasta" or "slirp4netns"');
  if (n.ports !== undefined && !Array.isArray(n.ports)) throw invalidArg('network.ports must be an array', 'ERR_INVALID_ARG_TYPE');
  const { parsePortSpec } = await import('../rootless/network.js');
  const seen = new Set<string>();
  const ports = (n.ports ?? []).map((f, i) => {
    if (!isObject(f as unknown)) throw invalidArg(`network.ports[${i}] must be an object`, 'ERR_INVALID_ARG_TYPE');
    if (f.protocol !== 'tcp' && f.protocol !== 'udp') throw invalidArg(`network.ports[${i}].protocol must be "tcp" or "udp"`);
    if (typeof f.hostPort !== 'number' || typeof f.podPort !== 'number' || (f.hostIp !== undefined && typeof f.hostIp !== 'string')) {
      throw invalidArg(`network.ports[${i}] needs numbers hostPort and podPort (and a string hostIp)`, 'ERR_INVALID_ARG_TYPE');
    }
    // The spec parser checks the ranges and the address.
    const fwd = parsePortSpec(`${f.hostIp !== undefined ? `${f.hostIp}:` : ''}${f.hostPort}:${f.podPort}/${f.protocol}`);
    const key = `${fwd.protocol} ${fwd.hostPort}`;
    if (seen.has(key)) throw invalidArg(`host port ${fwd.hostPort}/${fwd.protocol} is forwarded twice`);
    seen.add(key);
    return fwd;
  });
  if (n.mtu !== undefined && (!Number.isInteger(n.mtu) || n.mtu < 1280 || n.mtu > 65520)) throw invalidArg('network.mtu must be a whole number from 1280 to 65520');
  return {
    backend,
    ports,
    ...(n.ifName !== undefined ? { ifName: validateIfName(n.ifName) } : {}),
    ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
  };
}

export async function planSandbox(o: CreateSandboxOptions): Promise<Plan> {
  if (!isObject(o)) throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const id = validateSandboxId(o.id);
  const dirs = sandboxDirs(o);
  const inst = instanceOf(dirs.state);
  const name = resourceName(inst, id);
  const isAuto = o.uidMap === 'auto';
  if (!isAuto && o.gidMap === 'auto') throw invalidArg("gidMap 'auto' goes with uidMap 'auto'");
  if (isAuto && o.gidMap !== undefined && o.gidMap !== 'auto') throw invalidArg("with uidMap 'auto' the gid map is the same block: omit gidMap");
  const autoOpts = ['autoUser', 'autoSize', 'autoRange'] as const;
  if (o.autoSize !== undefined && (!Number.isInteger(o.autoSize) || o.autoSize < 1 || o.autoSize >= 2 ** 32 - 1)) {
    throw invalidArg('autoSize must be an integer from 1 to 4294967294');
  }
  if (!isAuto && autoOpts.some((k) => o[k] !== undefined)) throw invalidArg(`${autoOpts.join(', ')} go with uidMap 'auto'`);
  // With auto the block is chosen when the netns is made; the checks below run on a stand-in of the same shape.
  const uidMap = isAuto ? [{ containerID: 0, hostID: 100000, size: o.autoSize ?? 65536 }] : parseIdMap(o.uidMap as IdMapInput, 'uidMap');
  const gidMap = isAuto ? uidMap : parseIdMap((o.gidMap ?? o.uidMap) as IdMapInput, 'gidMap');
  const auto = isAuto
    ? {
        ...(o.autoUser !== undefined ? { autoUser: o.autoUser } : {}),
        ...(o.autoSize !== undefined ? { autoSize: o.autoSize } : {}),
        ...(o.autoRange !== undefined ? { autoRange: o.autoRange } : {}),
      }
    : undefined;
  if (o.allocDir !== undefined) requireAbsolute(o.allocDir, 'allocDir');
  if (toHostId(uidMap, 0) === undefined || toHostId(gidMap, 0) === undefined) {
    throw invalidArg("uidMap and gidMap must map container id 0: the pod's containers run as its root");
  }
  let rootlessSetgroups: 'allow' | 'deny' | undefined;
  const setgroups = o.setgroups ?? 'allow';
  if (setgroups !== 'allow' && setgroups !== 'deny') throw invalidArg('setgroups must be "allow" or "deny"');
  if (o.allowHostRoot !== undefined && typeof o.allowHostRoot !== 'boolean') throw invalidArg('allowHostRoot must be a boolean', 'ERR_INVALID_ARG_TYPE');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArg('signal must be an AbortSignal', 'ERR_INVALID_ARG_TYPE');
  if (o.onStep !== undefined && typeof o.onStep !== 'function') throw invalidArg('onStep must be a function', 'ERR_INVALID_ARG_TYPE');

  let network: Plan['network'];
  let rootlessNet: Plan['rootlessNet'];
  if (dirs.rootless) {
    const r = await planRootless(o, name, uidMap, gidMap, isAuto);
    rootlessNet = r.net;
    rootlessSetgroups = r.setgroups;
  } else {
    const n = o.network as Record<string, unknown> | undefined;
    const rl = n && isObject(n) ? ROOTLESS_NET_KEYS.find((k) => n[k] !== undefined) : undefined;
    if (rl) throw invalidArg(`network.${rl} is for rootless mode: as root the network is CNI's (the portmap plugin forwards ports)`);
    network = o.network !== undefined ? await planNetwork(o.network, name, dirs) : undefined;
  }

  if (o.pause !== undefined && o.pause !== false && !isObject(o.pause)) throw invalidArg('pause must be an object with a rootfs, or false', 'ERR_INVALID_ARG_TYPE');
  const pauseOpts = isObject(o.pause) ? o.pause : undefined;
  if (o.hostname !== undefined && pauseOpts?.hostname !== undefined && o.hostname !== pauseOpts.hostname) {
    throw invalidArg('hostname and pause.hostname differ: give one');
  }
  const hostname = validateHostname(o.hostname ?? pauseOpts?.hostname ?? id.slice(0, 63));
  if (o.runtime !== undefined && !isObject(o.runtime)) throw invalidArg('runtime must be an object', 'ERR_INVALID_ARG_TYPE');

  const netnsPath = path.join(dirs.pin, name);
  const annotations = { 'nstool.sandbox': id, 'nstool.instance': inst.stateDir, 'nstool.netns': netnsPath };
  let pause: Plan['pause'];
  if (pauseOpts) {
    const rootfs = path.normalize(requireAbsolute(pauseOpts.rootfs, 'pause.rootfs'));
    const command = pauseOpts.command ?? ['sleep', '2147483647'];
    if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string' && !a.includes('\0'))) {
      throw invalidArg('pause.command must be a non-empty array of strings');
    }
    const binary = checkRuntimeBinary(o.runtime?.binary ?? 'runc');
    const root = o.runtime?.root !== undefined ? path.normalize(requireAbsolute(o.runtime.root, 'runtime.root')) : undefined;
    await checkRootfs(rootfs);
    // The spec the pause container will get, built now for its checks (command, user...).
    // Neither namespace exists yet: the userns will own the netns by construction.
    podSpec({ rootfs, command, hostname, netnsPath, usernsPath: path.join(dirs.userns, name), uidMap, gidMap, setgroups, spec: { annotations } });
    pause = { rootfs, command, runtime: { binary, ...(root ? { root } : {}) } };
  }

  return {
    id,
    name,
    inst,
    dirs,
    uidMap,
    gidMap,
    ...(auto ? { auto } : {}),
    ...(o.allocDir !== undefined ? { allocDir: path.normalize(o.allocDir) } : {}),
    setgroups: rootlessSetgroups ?? setgroups,
    ...(o.allowHostRoot !== undefined ? { allowHostRoot: o.allowHostRoot } : {}),
    ...(network ? { network } : {}),
    ...(rootlessNet ? { rootlessNet } : {}),
    hostname,
    ...(pause ? { pause } : {}),
    annotations,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onStep ? { onStep: o.onStep } : {}),
  };
}
