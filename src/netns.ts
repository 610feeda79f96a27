// Pod network namespaces: a netns owned by a fresh user namespace, pinned
// under a pin dir (/run/netns by default, shared with `ip netns`).
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { lstatSync, mkdirSync, Stats, statSync } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { abortError, throwIfAborted, validateSignal } from './abort.js';
import { invalidArg, NstoolError, requireAbsolute } from './errors.js';
import {
  allocatorIndexPath,
  allocatorInUse,
  allocatorSeen,
  Chosen,
  DEFAULT_ALLOC_DIR,
  DEFAULT_AUTO_SIZE,
  DEFAULT_AUTO_USER,
  IDS_EXHAUSTED,
  IdRange,
  parseIdRange,
  pickBlock,
  RangeMode,
  runSection,
  runSectionSync,
  SectionPlan,
  subidPool,
  subtractRanges,
  validateSubidUser,
} from './idalloc.js';
import { assertNoHostRoot, IdMapInput, IdMapping, parseIdMap, parseKernelMap, toKernelMap } from './idmap.js';
import type { CreateResult, UnpinResult } from './kernel/core.js';
import { createUsernsNetns, createUsernsNetnsSync, inspectNs, probeNs, readIdMaps, type NsInfo } from './kernel/ns.js';
import { ensurePinDirSync, unpinAll, unpinAllSync, unpinSync } from './kernel/pin.js';
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

export interface PinDirs {
  /** Where netns pins live (default /run/netns). */
  pinDir?: string;
  /** Where userns pins live (default /run/nstool/userns). */
  usernsPinDir?: string;
}

export interface CreatePodNetnsOptions extends PinDirs {
  /** Pin name; generated (pod-<hex>) when omitted. */
  name?: string;
  /**
   * The pod's uid map, or 'auto': a block of autoSize host ids, mapped at
   * container id 0, that no live pod's uid or gid map overlaps.
   */
  uidMap: IdMapInput | 'auto';
  /** Defaults to uidMap ('auto': the same block). */
  gidMap?: IdMapInput | 'auto';
  /** "allow" (default) keeps setgroups(2) usable in the pod. */
  setgroups?: 'allow' | 'deny';
  /** Also pin the userns (so runtimes can join it by path). */
  pinUserns?: boolean;
  /**
   * Accept maps under which a pod id is host uid or gid 0. Off by default:
   * such a pod's root (or another of its ids) is host root.
   */
  allowHostRoot?: boolean;
  /** auto: the user whose /etc/subuid and /etc/subgid ranges blocks come from (default "containers"). */
  autoUser?: string;
  /** auto: ids per block (default 65536). */
  autoSize?: number;
  /** auto: take blocks from this host range ("start:count") instead of the subid files. */
  autoRange?: string | IdRange;
  /**
   * Explicit maps: accept a map that overlaps host ids a live pod holds
   * alone (an auto pod, or one made with exclusiveRanges). Off by default.
   */
  allowSharedRanges?: boolean;
  /**
   * Explicit maps: refuse a map that overlaps any live pod's host ids, and
   * hold these ids alone afterwards, like an auto block.
   */
  exclusiveRanges?: boolean;
  /** Where the id allocation lock and index live (default /run/nstool/idalloc). */
  allocDir?: string;
  /** Aborting rejects with ABORT_ERR (while waiting for a turn, or undoing a create that finished meanwhile). */
  signal?: AbortSignal;
}

export interface DeleteOptions extends PinDirs {
  /** The id allocation dir the pod was recorded in (default /run/nstool/idalloc). */
  allocDir?: string;
  /** Checked before the delete starts only: a delete half done is worse than one finished. */
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

const absDirs = new Map<string, string>();

function absDir(dir: string | undefined, fallback: string, what: string): string {
  const d = dir ?? fallback;
  // Callers pass the same few dirs over and over.
  const hit = typeof d === 'string' ? absDirs.get(d) : undefined;
  if (hit !== undefined) return hit;
  const out = path.normalize(checkPathLength(requireAbsolute(d, what), what));
  if (absDirs.size < 64) absDirs.set(d, out);
  return out;
}

/** DIR/NAME for a normalized absolute DIR and a validated name (what path.join gives, without its work). */
function under(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
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
  return { name, path: under(absDir(pinDir, DEFAULT_PIN_DIR, 'pinDir'), name), named: true };
}

interface Prepared {
  name: string;
  dir: string;
  netnsPin: string;
  usernsDir: string;
  usernsPin?: string;
  /** Explicit maps; for auto, chosen under the allocation lock. */
  uidMap?: IdMapping[];
  gidMap?: IdMapping[];
  /** Explicit maps as the kernel takes them. */
  uidText?: string;
  gidText?: string;
  setgroups: 'allow' | 'deny';
  mode: RangeMode;
  allocDir: string;
  /** The gid map is the uid map (auto, or no gidMap given). */
  gidFromUid: boolean;
  pool?: IdRange[];
  size?: number;
}

const readyDirs = new Set<string>();

function optionalBool(v: unknown, what: string): boolean {
  if (v !== undefined && typeof v !== 'boolean') throw invalidArg(`${what} must be a boolean, got ${showValue(v)}`, 'ERR_INVALID_ARG_TYPE');
  return v === true;
}

const HOST_ROOT: IdRange = { start: 0, count: 1 };

interface ParsedMap {
  map: IdMapping[];
  text: string;
}

// Explicit maps given as text, parsed and validated once per text: a
// runtime passes the same few over and over. Only maps that parsed are kept.
const parsedMaps = new Map<string, ParsedMap>();

function parseMap(input: IdMapInput, what: string): ParsedMap {
  if (typeof input !== 'string') {
    const map = parseIdMap(input, what);
    return { map, text: toKernelMap(map) };
  }
  let hit = parsedMaps.get(input);
  if (!hit) {
    const map = parseIdMap(input, what);
    hit = { map, text: toKernelMap(map) };
    if (parsedMaps.size >= 64) parsedMaps.clear();
    parsedMaps.set(input, hit);
  }
  return hit;
}

/** Each caller gets objects of its own. */
function copyMap(map: readonly IdMapping[]): IdMapping[] {
  return map.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
}

function prepare(opts: CreatePodNetnsOptions): Prepared {
  if (opts === null || typeof opts !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const name = opts.name === undefined ? generateName() : validatePinName(opts.name);
  const dir = absDir(opts.pinDir, DEFAULT_PIN_DIR, 'pinDir');
  const auto = opts.uidMap === 'auto';
  const setgroups = opts.setgroups ?? 'allow';
  if (setgroups !== 'allow' && setgroups !== 'deny') throw invalidArg(`setgroups must be "allow" or "deny", got ${showValue(setgroups)}`);
  const allowHostRoot = optionalBool(opts.allowHostRoot, 'allowHostRoot');
  const shared = optionalBool(opts.allowSharedRanges, 'allowSharedRanges');
  const exclusive = optionalBool(opts.exclusiveRanges, 'exclusiveRanges');
  if (shared && (exclusive || auto)) throw invalidArg(`allowSharedRanges cannot be combined with ${auto ? "uidMap 'auto'" : 'exclusiveRanges'}`);
  const usernsDir = absDir(opts.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir');
  const allocDir = absDir(opts.allocDir, DEFAULT_ALLOC_DIR, 'allocDir');
  const p: Prepared = {
    name,
    dir,
    netnsPin: checkPathLength(under(dir, name), 'pin path'),
    usernsDir,
    setgroups,
    mode: auto ? 'auto' : exclusive ? 'exclusive' : shared ? 'shared' : 'default',
    allocDir,
    gidFromUid: opts.gidMap === undefined || opts.gidMap === 'auto',
  };
  if (auto) {
    if (opts.gidMap !== undefined && opts.gidMap !== 'auto') throw invalidArg("gidMap must be omitted or 'auto' when uidMap is 'auto' (the pod gets one block for both)");
    const size = opts.autoSize ?? DEFAULT_AUTO_SIZE;
    if (!Number.isInteger(size) || size < 1 || size >= 2 ** 32 - 1) throw invalidArg(`autoSize must be an integer from 1 to 4294967294, got ${showValue(size)}`);
    if (opts.autoRange !== undefined && opts.autoUser !== undefined) throw invalidArg('autoUser and autoRange are alternatives: give one');
    let pool = opts.autoRange !== undefined ? [parseIdRange(opts.autoRange, 'autoRange')] : subidPool(validateSubidUser(opts.autoUser ?? DEFAULT_AUTO_USER));
    // Host id 0 is host root; no block holds it unless asked for.
    if (!allowHostRoot) pool = subtractRanges(pool, [HOST_ROOT]);
    if (pickBlock(pool, [], size) === undefined) {
      throw new NstoolError(`no range of the pool ${pool.map((r) => `${r.start}:${r.count}`).join(',') || '(empty)'} holds a block of ${size} ids`, {
        code: IDS_EXHAUSTED,
        hint: 'give the subid user a range of at least autoSize ids, or use a smaller autoSize',
      });
    }
    p.pool = pool;
    p.size = size;
  } else {
    for (const k of ['autoUser', 'autoSize', 'autoRange'] as const) {
      if (opts[k] !== undefined) throw invalidArg(`${k} applies only with uidMap 'auto'`);
    }
    if (opts.gidMap === 'auto') throw invalidArg("gidMap 'auto' needs uidMap 'auto'");
    const u = parseMap(opts.uidMap, 'uidMap');
    // One parse when the gid map is the uid map; the result still gets its own objects.
    const g = opts.gidMap === undefined ? u : parseMap(opts.gidMap as IdMapInput, 'gidMap');
    p.uidMap = copyMap(u.map);
    p.gidMap = copyMap(g.map);
    p.uidText = u.text;
    p.gidText = g.text;
    if (!allowHostRoot) {
      assertNoHostRoot(p.uidMap, 'uidMap');
      assertNoHostRoot(p.gidMap, 'gidMap');
    }
  }
  if (opts.pinUserns) p.usernsPin = checkPathLength(under(usernsDir, name), 'userns pin path');
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
  ensurePinDirSync(dir, { context: `preparing pin dir ${dir}` });
  readyDirs.add(dir);
}

function ensureDirs(p: Prepared): void {
  ensurePinDir(p.dir);
  if (p.usernsPin) ensurePinDir(p.usernsDir);
}

function result(p: Prepared, r: CreateResult, maps: Chosen): PodNetns {
  const out: PodNetns = {
    name: p.name,
    path: p.netnsPin,
    netnsInode: r.netnsIno,
    usernsInode: r.usernsIno,
    uidMap: maps.uidMap,
    gidMap: maps.gidMap,
    setgroups: p.setgroups,
  };
  if (p.usernsPin) out.usernsPath = p.usernsPin;
  return out;
}

function nativeParams(p: Prepared, maps: Chosen) {
  const uidMap = toKernelMap(maps.uidMap);
  const gidMap = p.gidFromUid ? uidMap : toKernelMap(maps.gidMap);
  return p.usernsPin
    ? { uidMap, gidMap, setgroups: p.setgroups, netnsPin: p.netnsPin, usernsPin: p.usernsPin }
    : { uidMap, gidMap, setgroups: p.setgroups, netnsPin: p.netnsPin };
}

/**
 * An explicit create made without the lock: the core also reports whether
 * the allocator's index exists once it has pinned (see latePlan).
 */
function explicitParams(p: Prepared) {
  const guard = allocatorIndexPath(p.allocDir);
  const { uidText: uidMap, gidText: gidMap, setgroups, netnsPin } = p as Required<Prepared>;
  return p.usernsPin ? { uidMap, gidMap, setgroups, netnsPin, usernsPin: p.usernsPin, guard } : { uidMap, gidMap, setgroups, netnsPin, guard };
}

function explicitMaps(p: Prepared): Chosen {
  return { uidMap: p.uidMap!, gidMap: p.gidMap! };
}

/**
 * The allocation section a create needs: always for auto and exclusive
 * maps; for other explicit maps only when the allocator is in use (then
 * the create records itself, and a default one is checked against pods
 * that hold their ranges alone).
 */
function createPlan(p: Prepared): SectionPlan | undefined {
  if (p.mode !== 'auto' && p.mode !== 'exclusive' && !allocatorSeen(p.allocDir)) return undefined;
  const plan: SectionPlan = {
    allocDir: p.allocDir,
    pins: [{ dir: p.dir, name: p.name }, ...(p.usernsPin ? [{ dir: p.usernsDir, name: p.name }] : [])],
    scanDirs: [p.dir, p.usernsDir],
    mode: p.mode,
  };
  if (p.mode === 'auto') {
    plan.pool = p.pool!;
    plan.size = p.size!;
  } else {
    plan.uidMap = p.uidMap!;
    plan.gidMap = p.gidMap!;
  }
  return plan;
}

function outcome(r: CreateResult) {
  return { value: r, outcome: { userns: { id: r.usernsId, dev: r.usernsDev, ino: r.usernsIno } } };
}

/**
 * An explicit create made without the lock, because this process had not
 * seen an index: if there is one now (another process uses the allocator,
 * or its first auto create raced with this one), record the pod, and check a
 * default one against the pods that hold their ids alone, else undo it.
 */
function latePlan(p: Prepared, r: CreateResult): SectionPlan | undefined {
  // The core looked for the index right after pinning; only then is it asked again (and remembered).
  if (!r.guarded || !allocatorInUse(p.allocDir)) return undefined;
  return {
    allocDir: p.allocDir,
    pins: [{ dir: p.dir, name: p.name }, ...(p.usernsPin ? [{ dir: p.usernsDir, name: p.name }] : [])],
    scanDirs: [p.dir, p.usernsDir],
    mode: p.mode,
    uidMap: p.uidMap!,
    gidMap: p.gidMap!,
    late: true,
  };
}

function undoPins(p: Prepared): void {
  for (const pin of [p.netnsPin, ...(p.usernsPin ? [p.usernsPin] : [])]) {
    try {
      unpinSync(pin);
    } catch {
      // the original error says what went wrong
    }
  }
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
  // return await: a promise returned as it is from an async function settles its own a tick or two later.
  return await traced(channels.netnsCreate, () => ({ name: p.name, path: p.netnsPin }), () => createRoot(p, signal));
}

async function createRoot(p: Prepared, signal: AbortSignal | undefined): Promise<PodNetns> {
  ensureDirs(p);
  const what = `creating pod netns ${p.name}`;
  const plan = createPlan(p);
  let out: PodNetns;
  if (!plan) {
    const maps = explicitMaps(p);
    const r = await limited(() => createUsernsNetns(explicitParams(p), { context: what }), signal);
    const late = latePlan(p, r);
    if (late) {
      try {
        await runSection(late, async () => outcome(r));
      } catch (err) {
        undoPins(p);
        throw err;
      }
    }
    out = result(p, r, maps);
  } else {
    const { value, chosen } = await runSection(plan, async (maps) =>
      outcome(await limited(() => createUsernsNetns(nativeParams(p, maps!), { context: what }), signal)),
    );
    out = result(p, value, chosen!);
  }
  if (signal?.aborted) {
    // Aborted while the kernel worked: what it made is undone, as if never asked.
    undoPins(p);
    throw abortError('creating a pod netns was aborted', signal.reason);
  }
  return out;
}

export function createPodNetnsSync(opts: CreatePodNetnsOptions): PodNetns {
  if (currentMode() === 'rootless') throw syncNeedsRoot();
  const p = prepare(opts);
  ensureDirs(p);
  const what = `creating pod netns ${p.name}`;
  const plan = createPlan(p);
  if (!plan) {
    const maps = explicitMaps(p);
    const r = createUsernsNetnsSync(explicitParams(p), { context: what });
    const late = latePlan(p, r);
    if (late) {
      try {
        runSectionSync(late, () => outcome(r));
      } catch (err) {
        undoPins(p);
        throw err;
      }
    }
    return result(p, r, maps);
  }
  const { value, chosen } = runSectionSync(plan, (maps) => outcome(createUsernsNetnsSync(nativeParams(p, maps!), { context: what })));
  return result(p, value, chosen!);
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

interface DeletePlan {
  pin: { name?: string; path: string; named: boolean };
  /** The userns pin of the same name (for a pin named in the pin dir), whether or not there is one. */
  upath?: string;
  allocDir: string;
}

function planDelete(nameOrPath: string, opts: DeleteOptions): DeletePlan {
  if (opts === null || typeof opts !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const pin = resolvePin(nameOrPath, opts.pinDir);
  const upath = pin.named && pin.name ? under(absDir(opts.usernsPinDir, DEFAULT_USERNS_PIN_DIR, 'usernsPinDir'), pin.name) : undefined;
  const out: DeletePlan = { pin, allocDir: absDir(opts.allocDir, DEFAULT_ALLOC_DIR, 'allocDir') };
  if (upath) out.upath = upath;
  return out;
}

/**
 * Without the allocator, a delete is one call into the core: both pins (a
 * missing userns pin is "already gone"), and in that same call the check
 * that no index has appeared (if one has, the core does nothing and the
 * delete goes the allocator's way, deleteSection). Undefined once this
 * process has seen the index.
 */
function fastTargets(d: DeletePlan): string[] | undefined {
  if (allocatorSeen(d.allocDir)) return undefined;
  return d.upath ? [d.pin.path, d.upath] : [d.pin.path];
}

/** With the allocator in use, the delete records itself under its lock; undefined when it is not in use. */
function deleteSection(d: DeletePlan): { section?: SectionPlan; targets: string[] } {
  // Only a userns pin that is there joins the record.
  const upath = d.upath && lstatSync(d.upath, { throwIfNoEntry: false }) ? d.upath : undefined;
  const targets = upath ? [d.pin.path, upath] : [d.pin.path];
  if (!allocatorInUse(d.allocDir)) return { targets };
  const section: SectionPlan = {
    allocDir: d.allocDir,
    pins: targets.map((t) => ({ dir: path.dirname(t), name: path.basename(t) })),
    scanDirs: [],
  };
  return { section, targets };
}

const deleting = (pin: string) => `deleting ${pin}`;

function deleteResult(d: DeletePlan, rs: UnpinResult[]): DeleteResult {
  const r = rs[0]!;
  const u = rs[1];
  const out: DeleteResult = { path: d.pin.path, existed: r.removed || r.unmounted, stale: r.removed && !r.unmounted };
  if (d.pin.name) out.name = d.pin.name;
  if (u && (u.removed || u.unmounted)) {
    out.usernsPath = d.upath!;
    out.existed = true;
  }
  return out;
}

async function deleteRoot(d: DeletePlan): Promise<DeleteResult> {
  const fast = fastTargets(d);
  if (fast) {
    const rs = await unpinAll(fast, allocatorIndexPath(d.allocDir), deleting);
    if (rs) return deleteResult(d, rs);
  }
  const { section, targets } = deleteSection(d);
  const unpinBoth = async () => deleteResult(d, (await unpinAll(targets, undefined, deleting))!);
  if (!section) return unpinBoth();
  return (await runSection(section, async () => ({ value: await unpinBoth() }))).value;
}

/** Unmounts and removes a pin (and the userns pin of the same name). */
export async function deletePodNetns(nameOrPath: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
  throwIfAborted(validateSignal(opts?.signal), 'deleting a pod netns');
  if (currentMode() === 'rootless') return (await rootless()).deletePodNetnsRootless(nameOrPath, opts);
  const d = planDelete(nameOrPath, opts);
  return await traced(channels.netnsDelete, () => ({ path: d.pin.path }), () => deleteRoot(d));
}

/** deletePodNetns, blocking (for exit handlers, which cannot await). */
export function deletePodNetnsSync(nameOrPath: string, opts: DeleteOptions = {}): DeleteResult {
  if (currentMode() === 'rootless') throw syncNeedsRoot();
  const d = planDelete(nameOrPath, opts);
  const fast = fastTargets(d);
  if (fast) {
    const rs = unpinAllSync(fast, allocatorIndexPath(d.allocDir), deleting);
    if (rs) return deleteResult(d, rs);
  }
  const { section, targets } = deleteSection(d);
  const unpinBoth = () => deleteResult(d, unpinAllSync(targets, undefined, deleting)!);
  if (!section) return unpinBoth();
  return runSectionSync(section, () => ({ value: unpinBoth() })).value;
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

/** What stands at P instead of a namespace; delete is suggested only for what it removes (an empty file). */
async function notNamespace(p: string, follow: boolean): Promise<NstoolError> {
  const st = await (follow ? stat(p) : lstat(p)).catch(() => null);
  if (st?.isFile() && st.size === 0) {
    return new NstoolError(`${p} is not a namespace (nothing is mounted on it)`, { code: 'EINVAL', path: p, hint: 'a stale pin: `nstool delete` removes it' });
  }
  return new NstoolError(`${p} is ${fileKind(st)}, not a namespace pin`, {
    code: 'EINVAL',
    path: p,
    hint: 'nstool never removes what is not a pin (`nstool delete` leaves it alone); remove it yourself if it does not belong there',
  });
}

function fileKind(st: Stats | null): string {
  if (!st) return 'not a namespace';
  if (st.isFile()) return `a regular file of ${st.size} bytes`;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a namespace';
}

function toOwner(info: NsInfo): NsOwner | null {
  if (!info.owner) return null;
  return { inode: info.owner.inode, uid: info.owner.uid, host: info.owner.host };
}

/** Type, inode, owning userns and its maps of a namespace file. */
export async function inspectNetns(nameOrPath: string, opts: PinDirs = {}): Promise<NetnsInfo> {
  if (currentMode() === 'rootless') return (await rootless()).inspectNetnsRootless(nameOrPath, opts);
  const pin = resolvePin(nameOrPath, opts.pinDir);
  const info = await inspectNs(pin.path, { follow: !pin.named, context: `inspecting ${pin.path}` });
  if (info.state !== 'ns') throw await notNamespace(pin.path, !pin.named);
  const type = info.type;
  // A userns file is inspected as itself; anything else through its owner.
  const maps = await readIdMaps(pin.path, type !== 'user', { context: `reading id maps of ${pin.path}` });
  const out: NetnsInfo = {
    path: pin.path,
    type,
    inode: info.inode,
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
      const u = await probeNs(upath);
      if (u.state === 'ns' && info.owner && u.inode === info.owner.inode) out.usernsPath = upath;
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
    try {
      const info = await probeNs(p);
      if (info.state === 'missing') continue;
      if (info.state === 'ns' && info.type === 'net') {
        out.push({ name, path: p, kind: 'netns', inode: info.inode, owner: toOwner(info) });
      } else {
        out.push({ name, path: p, kind: info.state === 'stale' ? 'stale' : 'other' });
      }
    } catch {
      out.push({ name, path: p, kind: 'other' });
    }
  }
  return out;
}
