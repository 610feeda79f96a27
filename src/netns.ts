// Pod network namespaces: a netns owned by a fresh user namespace, pinned
// under a pin dir (/run/netns by default, shared with `ip netns`).
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { lstatSync, mkdirSync, Stats, statSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { abortError, throwIfAborted, validateSignal } from './abort.js';
import { callAsync, callSync, invalidArg, NstoolError, requireAbsolute } from './errors.js';
import { assertNoHostRoot, IdMapInput, IdMapping, parseIdMap, parseKernelMap, toKernelMap } from './idmap.js';
import { native, NativeNsInfo } from './native.js';
import { showValue, validatePinName } from './names.js';
import { currentMode } from './rootless/mode.js';
import { syncNeedsRoot } from './rootless/errors.js';
import { channels, traced } from './trace.js';

// Rootless code is loaded only in rootless mode: root never pays for it.
const rootless = () => import('./rootless/netns.js');

export const DEFAULT_PIN_DIR = '/run/netns';
export const DEFAULT_USERNS_PIN_DIR = '/run/nstool/userns';
/** Longest path the kernel takes (PATH_MAX, with its NUL). */
const PATH_MAX = 4096;

export const NS_TYPES: Record<number, string> = {
  0x00020000: 'mnt',
  0x02000000: 'cgroup',
  0x04000000: 'uts',
  0x08000000: 'ipc',
  0x10000000: 'user',
  0x20000000: 'pid',
  0x40000000: 'net',
  0x00000080: 'time',
};

export interface PinDirs {
  /** Where netns pins live (default /run/netns). */
  pinDir?: string;
  /** Where userns pins live (default /run/nstool/userns). */
  usernsPinDir?: string;
}

export interface CreatePodNetnsOptions extends PinDirs {
  /** Pin name; generated (pod-<hex>) when omitted. */
  name?: string;
  uidMap: IdMapInput;
  /** Defaults to uidMap. */
  gidMap?: IdMapInput;
  /** "allow" (default) keeps setgroups(2) usable in the pod. */
  setgroups?: 'allow' | 'deny';
  /** Also pin the userns (so runtimes can join it by path). */
  pinUserns?: boolean;
  /**
   * Accept maps under which a pod id is host uid or gid 0. Off by default:
   * such a pod's root (or another of its ids) is host root.
   */
  allowHostRoot?: boolean;
  /** Aborting rejects with ABORT_ERR (while waiting for a turn, or undoing a create that finished meanwhile). */
  signal?: AbortSignal;
}

export interface PodNetns {
  name: string;
  path: string;
  netnsInode: number;
  usernsInode: number;
  usernsPath?: string;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  setgroups: 'allow' | 'deny';
}

/** Pin names: one plain path component (the rule lives in names.ts). */
export { validatePinName as validateName } from './names.js';

function checkPathLength(p: string, what: string): string {
  if (Buffer.byteLength(p) >= PATH_MAX) throw invalidArg(`${what} ${showValue(p)} is longer than the kernel takes (${PATH_MAX - 1} bytes)`);
  return p;
}

function absDir(dir: string | undefined, fallback: string, what: string): string {
  return path.normalize(checkPathLength(requireAbsolute(dir ?? fallback, what), what));
}

export function generateName(prefix = 'pod'): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

/** A name resolves under the pin dir; an absolute path stands for itself. */
export function resolvePin(nameOrPath: string, pinDir?: string): { name?: string; path: string; named: boolean } {
  if (typeof nameOrPath === 'string' && nameOrPath.startsWith('/')) {
    if (nameOrPath.includes('\0')) throw invalidArg('path must not contain NUL');
    // Any other byte may be in a pin another tool made, so deleting it by path stays possible.
    const p = path.normalize(checkPathLength(nameOrPath, 'path'));
    // A path inside the pin dir is the pin of that name (its userns pin too).
    const named = path.dirname(p) === absDir(pinDir, DEFAULT_PIN_DIR, 'pinDir');
    return { name: path.basename(p), path: p, named };
  }
  const name = validatePinName(nameOrPath);
  return { name, path: path.join(absDir(pinDir, DEFAULT_PIN_DIR, 'pinDir'), name), named: true };
}

interface Prepared {
  name: string;
  dir: string;
  netnsPin: string;
  usernsDir?: string;
  usernsPin?: string;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  setgroups: 'allow' | 'deny';
}

const readyDirs = new Set<string>();

function prepare(opts: CreatePodNetnsOptions): Prepared {
  if (opts === null || typeof opts !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const name = opts.name === undefined ? generateName() : validatePinName(opts.name);
  const dir = absDir(opts.pinDir, DEFAULT_PIN_DIR, 'pinDir');
  const uidMap = parseIdMap(opts.uidMap, 'uidMap');
  const gidMap = parseIdMap(opts.gidMap ?? opts.uidMap, 'gidMap');
  const setgroups = opts.setgroups ?? 'allow';
  if (setgroups !== 'allow' && setgroups !== 'deny') throw invalidArg(`setgroups must be "allow" or "deny", got ${showValue(setgroups)}`);
  if (opts.allowHostRoot !== undefined && typeof opts.allowHostRoot !== 'boolean') {
    throw invalidArg(`allowHostRoot must be a boolean, got ${showValue(opts.allowHostRoot)}`, 'ERR_INVALID_ARG_TYPE');
  }
  if (opts.allowHostRoot !== true) {
    assertNoHostRoot(uidMap, 'uidMap');
    assertNoHostRoot(gidMap, 'gidMap');
  }
  const p: Prepared = { name, dir, netnsPin: checkPathLength(path.join(dir, name), 'pin path'), uidMap, gidMap, setgroups };
  if (opts.pinUserns) {
    p.usernsDir = absDir(opts.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir');
    p.usernsPin = checkPathLength(path.join(p.usernsDir, name), 'userns pin path');
  }
  return p;
}

/**
 * Makes DIR a shared pin dir (once per process). It must be root's and
 * writable by root alone: pins in a dir another user controls could be
 * swapped for links or files between our checks and our mounts.
 */
export function ensurePinDir(dir: string): void {
  if (readyDirs.has(dir)) return;
  try {
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
  } catch {
    // the core's own checks below say what is wrong with the path
  }
  let st: Stats | undefined;
  try {
    st = lstatSync(dir);
  } catch {
    st = undefined;
  }
  // A missing dir is made by the core (root's, 0755); a symlink it refuses.
  if (st?.isDirectory() && (st.uid !== 0 || (st.mode & 0o022) !== 0)) {
    throw new NstoolError(`pin dir ${dir} is not owned by root or is writable by others`, {
      code: 'ERR_NSTOOL_PIN_DIR_UNSAFE',
      path: dir,
      hint: `chown root ${dir} && chmod go-w ${dir}, or choose another pin dir`,
    });
  }
  callSync(() => native.ensurePinDirSync(dir), `preparing pin dir ${dir}`);
  readyDirs.add(dir);
}

function ensureDirs(p: Prepared): void {
  ensurePinDir(p.dir);
  if (p.usernsDir) ensurePinDir(p.usernsDir);
}

function result(p: Prepared, r: { netnsIno: number; usernsIno: number }): PodNetns {
  const out: PodNetns = {
    name: p.name,
    path: p.netnsPin,
    netnsInode: r.netnsIno,
    usernsInode: r.usernsIno,
    uidMap: p.uidMap,
    gidMap: p.gidMap,
    setgroups: p.setgroups,
  };
  if (p.usernsPin) out.usernsPath = p.usernsPin;
  return out;
}

function nativeParams(p: Prepared) {
  return {
    uidMap: toKernelMap(p.uidMap),
    gidMap: toKernelMap(p.gidMap),
    setgroups: p.setgroups,
    netnsPin: p.netnsPin,
    ...(p.usernsPin ? { usernsPin: p.usernsPin } : {}),
  };
}

// Namespace creation is kernel CPU work on libuv's pool. With every pool
// thread in it, the main thread competes with all of them for the cores and
// the event loop stalls; one core is left to it.
const MAX_IN_FLIGHT = Math.max(1, Math.min(4, availableParallelism() - 1));
let inFlight = 0;
const waiting: Array<() => void> = [];

async function limited<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  // A finishing call hands its slot straight to the next waiter, so a new
  // caller cannot slip in between and exceed the limit.
  if (inFlight >= MAX_IN_FLIGHT) await waitTurn(signal);
  else inFlight++;
  try {
    throwIfAborted(signal, 'creating a pod netns');
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else inFlight--;
  }
}

/** Waits for a slot; an abort leaves the queue and rejects (no slot is taken). */
function waitTurn(signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      waiting.splice(waiting.indexOf(go), 1);
      reject(abortError('creating a pod netns was aborted', signal!.reason));
    };
    const go = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    waiting.push(go);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Creates a user namespace, a netns owned by it, writes maps and pins. */
export async function createPodNetns(opts: CreatePodNetnsOptions): Promise<PodNetns> {
  const signal = validateSignal(opts?.signal);
  throwIfAborted(signal, 'creating a pod netns');
  if (currentMode() === 'rootless') return (await rootless()).createPodNetnsRootless(opts);
  const p = prepare(opts);
  return traced(channels.netnsCreate, () => ({ name: p.name, path: p.netnsPin }), async () => {
    ensureDirs(p);
    const r = await limited(() => callAsync(() => native.createUsernsNetns(nativeParams(p)), `creating pod netns ${p.name}`), signal);
    if (signal?.aborted) {
      // Aborted while the kernel worked: what it made is undone, as if never asked.
      for (const pin of [p.usernsPin, p.netnsPin]) if (pin) await native.unpin(pin).catch(() => {});
      throw abortError('creating a pod netns was aborted', signal.reason);
    }
    return result(p, r);
  });
}

export function createPodNetnsSync(opts: CreatePodNetnsOptions): PodNetns {
  if (currentMode() === 'rootless') throw syncNeedsRoot();
  const p = prepare(opts);
  ensureDirs(p);
  const r = callSync(() => native.createUsernsNetnsSync(nativeParams(p)), `creating pod netns ${p.name}`);
  return result(p, r);
}

export interface DeleteResult {
  name?: string;
  path: string;
  /** False when nothing was there: deleting twice is fine. */
  existed: boolean;
  /** A file was there but nothing was mounted on it (a stale pin). */
  stale: boolean;
  usernsPath?: string;
}

/** Unmounts and removes a pin (and the userns pin of the same name). */
export async function deletePodNetns(nameOrPath: string, opts: PinDirs & { signal?: AbortSignal } = {}): Promise<DeleteResult> {
  // Checked before it starts only: a delete half done is worse than one finished.
  throwIfAborted(validateSignal(opts?.signal), 'deleting a pod netns');
  if (currentMode() === 'rootless') return (await rootless()).deletePodNetnsRootless(nameOrPath, opts);
  const pin = resolvePin(nameOrPath, opts.pinDir);
  return traced(channels.netnsDelete, () => ({ path: pin.path }), () => unpinPod(pin, opts));
}

async function unpinPod(pin: ReturnType<typeof resolvePin>, opts: PinDirs): Promise<DeleteResult> {
  const r = await callAsync(() => native.unpin(pin.path), `deleting ${pin.path}`);
  const out: DeleteResult = { path: pin.path, existed: r.removed || r.unmounted, stale: r.removed && !r.unmounted };
  if (pin.name) out.name = pin.name;
  if (pin.named && pin.name) {
    const upath = path.join(absDir(opts.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir'), pin.name);
    const u = await callAsync(() => native.unpin(upath), `deleting ${upath}`);
    if (u.removed || u.unmounted) {
      out.usernsPath = upath;
      out.existed = true;
    }
  }
  return out;
}

export interface NsOwner {
  inode: number;
  /** uid that created the owning userns (NS_GET_OWNER_UID). */
  uid: number;
  /** True when the owner is this process's own user namespace. */
  host: boolean;
}

export interface NetnsInfo {
  name?: string;
  path: string;
  type: string;
  inode: number;
  dev: number;
  owner: NsOwner | null;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  setgroups: string;
  usernsPath?: string;
}

let hostUserns: number | undefined;
export function hostUsernsInode(): number {
  hostUserns ??= statSync('/proc/self/ns/user').ino;
  return hostUserns;
}

function notNamespace(p: string): NstoolError {
  return new NstoolError(`${p} is not a namespace (nothing is mounted on it)`, {
    code: 'EINVAL',
    path: p,
    hint: 'a stale pin: `nstool delete` removes it',
  });
}

function toOwner(info: NativeNsInfo): NsOwner | null {
  if (!info.owner) return null;
  return { inode: info.owner.ino, uid: info.owner.uid, host: info.owner.ino === hostUsernsInode() };
}

/** Type, inode, owning userns and its maps of a namespace file. */
export async function inspectNetns(nameOrPath: string, opts: PinDirs = {}): Promise<NetnsInfo> {
  if (currentMode() === 'rootless') return (await rootless()).inspectNetnsRootless(nameOrPath, opts);
  const pin = resolvePin(nameOrPath, opts.pinDir);
  const info = await callAsync(() => native.inspectNs(pin.path, pin.named), `inspecting ${pin.path}`);
  if (!info.nsfs) throw notNamespace(pin.path);
  const type = NS_TYPES[info.type] ?? String(info.type);
  // A userns file is inspected as itself; anything else through its owner.
  const maps = await callAsync(() => native.readIdMaps(pin.path, type !== 'user'), `reading id maps of ${pin.path}`);
  const out: NetnsInfo = {
    path: pin.path,
    type,
    inode: info.ino,
    dev: info.dev,
    owner: toOwner(info),
    uidMap: parseKernelMap(maps.uidMap),
    gidMap: parseKernelMap(maps.gidMap),
    setgroups: maps.setgroups.trim(),
  };
  if (pin.name) out.name = pin.name;
  if (pin.named && pin.name) {
    const upath = path.join(absDir(opts.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir'), pin.name);
    try {
      const u = native.inspectNsSync(upath, true);
      if (u.nsfs && info.owner && u.ino === info.owner.ino) out.usernsPath = upath;
    } catch {
      // no userns pin for this name
    }
  }
  return out;
}

export interface ListEntry {
  name: string;
  path: string;
  /** "netns": a mounted netns; "stale": a file with nothing mounted; "other": anything else. */
  kind: 'netns' | 'stale' | 'other';
  inode?: number;
  owner?: NsOwner | null;
}

/** Every entry of the pin dir, including pins made by `ip netns add`. */
export async function listNetns(pinDir?: string): Promise<ListEntry[]> {
  if (currentMode() === 'rootless') return (await rootless()).listNetnsRootless(pinDir);
  const dir = absDir(pinDir, DEFAULT_PIN_DIR, 'pinDir');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: ListEntry[] = [];
  for (const name of names.sort()) {
    const p = path.join(dir, name);
    const st = await lstat(p).catch(() => null);
    if (!st) continue;
    if (!st.isFile()) {
      out.push({ name, path: p, kind: 'other' });
      continue;
    }
    try {
      const info = await native.inspectNs(p, true);
      if (info.nsfs && NS_TYPES[info.type] === 'net') {
        out.push({ name, path: p, kind: 'netns', inode: info.ino, owner: toOwner(info) });
      } else {
        out.push({ name, path: p, kind: info.nsfs ? 'other' : 'stale' });
      }
    } catch {
      out.push({ name, path: p, kind: 'other' });
    }
  }
  return out;
}
