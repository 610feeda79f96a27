// The public shapes of the sandbox API and the directories one instance uses.
import path from 'node:path';
import { DEFAULT_CACHE_DIR } from '../cni/index.js';
import { invalidArg, requireAbsolute } from '../errors.js';
import type { IdMapInput } from '../idmap.js';
import { DEFAULT_PIN_DIR, DEFAULT_USERNS_PIN_DIR } from '../netns.js';
import type { Mode } from '../rootless/mode.js';
import type { Phase } from './state.js';
import { isRootless, RootlessDirs, rootlessDirs, unsupported } from './rootless.js';
import { DEFAULT_STATE_DIR } from './state.js';

export const DEFAULT_BUNDLE_DIR = '/run/nstool/bundles';
/** Where a sandbox without a pause container pins its ipc and uts namespaces. */
export const DEFAULT_IPC_PIN_DIR = '/run/nstool/ipc';
export const DEFAULT_UTS_PIN_DIR = '/run/nstool/uts';
export const DEFAULT_CNI_CACHE_DIR = DEFAULT_CACHE_DIR;

export interface SandboxNetwork {
  /** A config list object (or a single plugin config), or load one from confDir. */
  list?: Record<string, unknown>;
  confDir?: string;
  /** Network name to pick from confDir. */
  name?: string;
  ifName?: string;
  pluginPath?: string | string[];
  /** Run the plugins inside this netns (a test or node netns). */
  nodeNetns?: string;
  capabilityArgs?: Record<string, unknown>;
  /** Rootless only (CNI needs root): the user-mode network program, 'auto' by default. */
  backend?: 'auto' | 'pasta' | 'slirp4netns';
  /** Rootless only: ports of the host forwarded into the pod. */
  ports?: ReadonlyArray<{ hostIp?: string; hostPort: number; podPort: number; protocol: 'tcp' | 'udp' }>;
  /** Rootless only: the pod interface's MTU. */
  mtu?: number;
}

export interface SandboxRuntime {
  binary?: string;
  /** runc --root. */
  root?: string;
}

export interface SandboxDirs {
  /**
   * State files (default /run/nstool/sandboxes). Its absolute path names the
   * instance: everything a sandbox makes is named and marked with it, and
   * only this instance's delete and gc remove it.
   */
  stateDir?: string;
  /** Pause container bundles (default /run/nstool/bundles); must be traversable by the pod's root. */
  bundleDir?: string;
  /** netns pins (default /run/netns). */
  pinDir?: string;
  /** userns pins (default /run/nstool/userns). */
  usernsPinDir?: string;
  /** ipc pins of sandboxes without a pause container (default /run/nstool/ipc). */
  ipcPinDir?: string;
  /** uts pins of sandboxes without a pause container (default /run/nstool/uts). */
  utsPinDir?: string;
  /** CNI result cache (default /var/lib/cni). */
  cniCacheDir?: string;
}

/** A point of create or delete, for tests and progress reports: "state", "before-netns", "after-ipc", "after-network", "before-remove-pause", ... */
export type StepHook = (point: string) => void | Promise<void>;

export interface CreateSandboxOptions extends SandboxDirs {
  id: string;
  /** The pod's uid map, or 'auto': a block of ids no live pod uses (createPodNetns's allocator). */
  uidMap: IdMapInput | 'auto';
  /** Defaults to uidMap; with 'auto' it is the same block (omit it or give 'auto'). */
  gidMap?: IdMapInput | 'auto';
  /** 'auto': where blocks come from and how large they are (see createPodNetns). */
  autoUser?: string;
  autoSize?: number;
  autoRange?: string;
  /** The id allocator's dir (default /run/nstool/idalloc; every caller must use the same): auto blocks and the overlap check of explicit maps. */
  allocDir?: string;
  setgroups?: 'allow' | 'deny';
  /** Passed to createPodNetns: allow a map that gives the pod host root. */
  allowHostRoot?: boolean;
  /** No network when omitted: the pod has only lo. */
  network?: SandboxNetwork;
  /**
   * A pause container holding the pod's namespaces (runtime made ipc and uts,
   * its own pid). Omitted or false: none runs; the ipc and uts namespaces are
   * pinned like the netns and userns, and containers join all four by path.
   */
  pause?: { rootfs: string; command?: string[]; hostname?: string } | false;
  /** The pod's host name (default: the id, cut to 63 characters); pause.hostname is the older spelling. */
  hostname?: string;
  runtime?: SandboxRuntime;
  /** Aborting between steps rolls back what was made and rejects with code ABORT_ERR. */
  signal?: AbortSignal;
  onStep?: StepHook;
}

export interface DeleteSandboxOptions extends SandboxDirs {
  onStep?: StepHook;
  /**
   * Aborting before the delete starts rejects with ABORT_ERR and changes
   * nothing; between two removals, it stops there (phase "deleting": the
   * next delete or gc finishes it).
   */
  signal?: AbortSignal;
}

export interface SandboxInfo {
  id: string;
  phase: Phase;
  /** Made as root, or by an unprivileged user (its pins held by the user's keeper). */
  mode: Mode;
  netnsPath?: string;
  usernsPath?: string;
  /** The ipc and uts pins of a sandbox without a pause container. */
  ipcPath?: string;
  utsPath?: string;
  ips: string[];
  pid?: number;
  containerId?: string;
  createdAt: string;
  pendingUndo?: string[];
}

export interface SandboxDetails extends SandboxInfo {
  /** The pause container as the runtime sees it now ("missing", or "unknown" when the runtime cannot tell). */
  status?: string;
  /** The netns pin still holds the namespace created for this sandbox. */
  netnsPresent: boolean;
}

export interface Dirs {
  state: string;
  bundle: string;
  pin: string;
  userns: string;
  ipc: string;
  uts: string;
  cniCache: string;
  /** Set in rootless mode: the pins are the keeper's (these dirs as it sees them). */
  rootless?: RootlessDirs;
}

function abs(p: string | undefined, fallback: string, what: string): string {
  return path.normalize(requireAbsolute(p ?? fallback, what));
}

/** The absolute, normalised dirs of O; the state dir names the instance. */
export function sandboxDirs(o: SandboxDirs = {}): Dirs {
  if (o === null || typeof o !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  if (isRootless()) return rootlessSandboxDirs(o);
  const d: Dirs = {
    state: abs(o.stateDir, DEFAULT_STATE_DIR, 'stateDir'),
    bundle: abs(o.bundleDir, DEFAULT_BUNDLE_DIR, 'bundleDir'),
    pin: abs(o.pinDir, DEFAULT_PIN_DIR, 'pinDir'),
    userns: abs(o.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir'),
    ipc: abs(o.ipcPinDir, DEFAULT_IPC_PIN_DIR, 'ipcPinDir'),
    uts: abs(o.utsPinDir, DEFAULT_UTS_PIN_DIR, 'utsPinDir'),
    cniCache: abs(o.cniCacheDir, DEFAULT_CNI_CACHE_DIR, 'cniCacheDir'),
  };
  // Every pin of a sandbox has one name: one dir for two kinds would make them one file.
  if (d.pin === d.userns) throw invalidArg('pinDir and usernsPinDir must differ');
  if (new Set([d.pin, d.userns, d.ipc, d.uts]).size !== 4) throw invalidArg('pinDir, usernsPinDir, ipcPinDir and utsPinDir must all differ');
  return d;
}

const ROOT_ONLY_DIRS = ['bundleDir', 'pinDir', 'usernsPinDir', 'ipcPinDir', 'utsPinDir', 'cniCacheDir'] as const;

/**
 * Without root: the state dir defaults to $XDG_RUNTIME_DIR/nstool/sandboxes
 * and the pins are the keeper's, where no other dir can be chosen.
 */
function rootlessSandboxDirs(o: SandboxDirs): Dirs {
  const given = ROOT_ONLY_DIRS.find((k) => o[k] !== undefined);
  if (given) throw unsupported(`${given}`, `leave ${given} unset: without root the pins live in the user's keeper (and there is no pause container or CNI)`);
  const r = rootlessDirs();
  return {
    state: abs(o.stateDir, r.state, 'stateDir'),
    bundle: path.join(r.rt.dir, 'bundles'),
    pin: r.pin,
    userns: r.userns,
    ipc: r.ipc,
    uts: r.uts,
    cniCache: path.join(r.rt.dir, 'cni'),
    rootless: r,
  };
}
