// Automatic id blocks without root. The pool is the caller's own
// subordinate ids (ranges common to /etc/subuid and /etc/subgid); the ids in
// use are read from the kernel, as the maps of the user namespaces the
// user's keeper pins, so a create or a keeper that died can never leak a
// block. One lock file in the runtime dir ($XDG_RUNTIME_DIR/nstool/
// idalloc.lock, 0600) is held from choosing a block until its pin exists.
//
// Which pods hold their ids alone (auto blocks, exclusiveRanges maps) is
// marked by a claim file per pod (idalloc/NAME holding the userns inode); a
// claim counts only while a live userns pin of that name has that inode, so
// a stale one is harmless and is pruned by the next allocation.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';
import { formatIdMap, IdMapping, parseKernelMap } from '../idmap.js';
import { DEFAULT_ALLOC_DIR, DEFAULT_AUTO_SIZE, hostRanges, IdRange, IDS_EXHAUSTED, intersectRanges, MAP_OVERLAP, normalizeRanges, parseIdRange, pickBlock, rangeEnd, subtractRanges } from '../idalloc.js';
import { closeFdSync, lockFile } from '../kernel/lock.js';
import { inspectNsRawSync, NS_TYPES, readIdMapsSync } from '../kernel/ns.js';
import { showValue, validatePinName } from '../names.js';
import { ROOTLESS_UNSUPPORTED, rootlessError, SUBID } from './errors.js';
import { findKeeper, hostPath } from './keeper.js';
import type { RuntimeDirs } from './runtime-dir.js';
import { Caller, readRanges } from './subid.js';

/** How a rootless create treats the host ids of the user's other pods (as root's RangeMode). */
export type RootlessRangeMode = 'auto' | 'exclusive' | 'default' | 'shared';

export interface AutoPlan {
  pool: IdRange[];
  size: number;
}

/** A live pod of the user: its userns pin and the host ids its maps hold. */
export interface LivePod {
  name: string;
  usernsIno: number;
  ranges: IdRange[];
  /** The host path of its netns pin (for messages). */
  path: string;
}

/** Root's allocator dir is not ours: only its default (what the CLI passes) is accepted, and ignored. */
export function checkAllocDir(v: unknown): void {
  if (v === undefined) return;
  if (typeof v === 'string' && v.startsWith('/') && !v.includes('\0') && path.normalize(v) === DEFAULT_ALLOC_DIR) return;
  throw rootlessError(ROOTLESS_UNSUPPORTED, `allocDir ${showValue(v)} cannot be used without root: the allocation lock lives in your runtime dir`, 'leave allocDir unset');
}

const HOST_ROOT: IdRange = { start: 0, count: 1 };

function showRange(r: IdRange): string {
  return `${r.start}-${rangeEnd(r) - 1}`;
}

/**
 * The blocks an unprivileged auto create may take: the caller's ranges
 * common to both subid files, narrowed to autoRange. Never a built-in
 * pool: without root only the ids delegated to the user can be mapped.
 */
export function planAuto(o: { autoUser?: unknown; autoSize?: unknown; autoRange?: unknown; allocDir?: unknown; allowHostRoot?: boolean }, c: Caller): AutoPlan {
  const size = o.autoSize ?? DEFAULT_AUTO_SIZE;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size >= 2 ** 32 - 1) {
    throw invalidArg(`autoSize must be an integer from 1 to 4294967294, got ${showValue(size)}`);
  }
  if (o.autoRange !== undefined && o.autoUser !== undefined) throw invalidArg('autoUser and autoRange are alternatives: give one');
  if (o.autoUser !== undefined) {
    if (typeof o.autoUser !== 'string') throw invalidArg(`autoUser must be a string, got ${showValue(o.autoUser)}`, 'ERR_INVALID_ARG_TYPE');
    if (o.autoUser !== c.user && o.autoUser !== String(c.uid)) {
      throw rootlessError(ROOTLESS_UNSUPPORTED, `autoUser ${showValue(o.autoUser)} cannot be used without root: blocks come from your own subordinate ids`, 'leave autoUser unset (or give your own user name)');
    }
  }
  checkAllocDir(o.allocDir);
  const range = o.autoRange !== undefined ? parseIdRange(o.autoRange, 'autoRange') : undefined;
  const u = readRanges('/etc/subuid', c), g = readRanges('/etc/subgid', c);
  const fix = `as root: \`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${c.user}\` (the same range in both files)`;
  if (u.length === 0 && g.length === 0) {
    throw rootlessError(SUBID, `/etc/subuid and /etc/subgid grant no subordinate ids to ${showValue(c.user)} (uid ${c.uid}): uidMap 'auto' has nothing to take blocks from`, fix, { path: '/etc/subuid' });
  }
  let pool = intersectRanges(u, g);
  if (pool.length === 0) {
    throw rootlessError(SUBID, `/etc/subuid and /etc/subgid give ${showValue(c.user)} no range that is in both files`, fix, { path: '/etc/subgid' });
  }
  if (range) {
    const inside = intersectRanges(pool, [range]);
    if (inside.length !== 1 || inside[0]!.start !== range.start || inside[0]!.count !== range.count) {
      throw rootlessError(SUBID, `autoRange ${showRange(range)} is not within your subordinate ids (${pool.map(showRange).join(', ')})`, 'give an autoRange inside your ranges, or leave it unset', { path: '/etc/subuid' });
    }
    pool = [range];
  }
  if (o.allowHostRoot !== true) pool = subtractRanges(pool, [HOST_ROOT]);
  if (pickBlock(pool, [], size) === undefined) {
    throw new NstoolError(`no range of your subordinate ids ${pool.map(showRange).join(', ') || '(none)'} holds a block of ${size} ids`, {
      code: IDS_EXHAUSTED,
      hint: `use a smaller autoSize, or give ${c.user} a larger range (as root: usermod --add-subuids/--add-subgids)`,
    });
  }
  return { pool, size };
}

// ---- what the user's pods hold, read from the kernel -----------------------------

function claimsDir(d: RuntimeDirs): string {
  return path.join(d.dir, 'idalloc');
}

/** The user's live pods (userns pins of the keeper) NAMES among them, or all. */
export function livePods(d: RuntimeDirs, names?: readonly string[]): LivePod[] {
  const keeper = findKeeper(d);
  if (!keeper) return [];
  const dir = hostPath(keeper, d.userns);
  let list: readonly string[];
  if (names) list = names;
  else {
    try {
      list = readdirSync(dir);
    } catch {
      return []; // the keeper exited meanwhile: no pins
    }
  }
  const out: LivePod[] = [];
  for (const name of list) {
    const p = path.join(dir, name);
    try {
      const info = inspectNsRawSync(p, true);
      if (!info.nsfs || NS_TYPES[info.type] !== 'user') continue;
      const m = readIdMapsSync(p, false);
      const ranges = normalizeRanges([...hostRanges(parseKernelMap(m.uidMap)), ...hostRanges(parseKernelMap(m.gidMap))]);
      out.push({ name, usernsIno: info.ino, ranges, path: hostPath(keeper, path.join(d.netns, name)) });
    } catch {
      // unpinned meanwhile, or not a namespace: holds nothing
    }
  }
  return out;
}

/** Names with a claim file, and the inode each holds (undefined: pending). */
function readClaims(d: RuntimeDirs): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  let names: string[];
  try {
    names = readdirSync(claimsDir(d));
  } catch {
    return out;
  }
  for (const n of names) {
    let name: string;
    try {
      name = validatePinName(n);
    } catch {
      continue; // not ours: never forms a path
    }
    const text = readClaim(path.join(claimsDir(d), name));
    const ino = /^\d{1,20}\n?$/.test(text) ? Number(text) : undefined;
    out.set(name, ino);
  }
  return out;
}

/**
 * A claim's text, or '' (gone, or not a plain file: never followed as a
 * link, never waited on as a fifo).
 */
function readClaim(p: string): string {
  let fd: number;
  try {
    fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    if (!fstatSync(fd).isFile()) return '';
    const buf = Buffer.alloc(32);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('latin1');
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}

/**
 * Written to a new file renamed over NAME: whatever was there (a link, or
 * a hard link to another file of the user) is replaced, never written through.
 */
function writeClaim(d: RuntimeDirs, name: string, ino?: number): void {
  const tmp = path.join(d.dir, `idalloc.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, ino === undefined ? 'pending\n' : `${ino}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path.join(claimsDir(d), name));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Removes the claim of NAME (a pod deleted); nothing when there is none. */
export function dropClaim(d: RuntimeDirs, name: string): void {
  try {
    rmSync(path.join(claimsDir(d), validatePinName(name)), { force: true });
  } catch {
    // a stale claim is harmless (it names a userns inode no live pin has)
  }
}

function hasClaimsDir(d: RuntimeDirs): boolean {
  try {
    return lstatSync(claimsDir(d)).isDirectory();
  } catch {
    return false;
  }
}

function ensureClaimsDir(d: RuntimeDirs): void {
  try {
    mkdirSync(claimsDir(d), { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (!lstatSync(claimsDir(d)).isDirectory()) {
    throw rootlessError('ERR_NSTOOL_RUNTIME_DIR', `${claimsDir(d)} is not a directory`, 'remove it; nstool makes the directory again', { path: claimsDir(d) });
  }
}

/** The live pods that hold their ids alone: a claim whose inode is their userns's. */
function claimedPods(d: RuntimeDirs, claims: Map<string, number | undefined>, except?: string): LivePod[] {
  const names = [...claims.keys()].filter((n) => n !== except);
  if (names.length === 0) return [];
  return livePods(d, names).filter((p) => claims.get(p.name) === p.usernsIno);
}

function overlapError(what: string, map: readonly IdMapping[], other: LivePod, claimed: boolean): NstoolError | undefined {
  for (const r of hostRanges(map)) {
    const hit = other.ranges.find((o) => o.start < rangeEnd(r) && r.start < rangeEnd(o));
    if (!hit) continue;
    const s = Math.max(hit.start, r.start), e = Math.min(rangeEnd(hit), rangeEnd(r));
    return new NstoolError(
      `${what} ${formatIdMap(map)} overlaps host ids ${showRange({ start: s, count: e - s })} of your pod ${showValue(other.name)}${claimed ? ', which holds them alone' : ''}`,
      {
        code: MAP_OVERLAP,
        path: other.path,
        hint: "choose host ids none of your live pods uses, or uidMap 'auto'; pass allowSharedRanges: true (--allow-shared-ranges) to share them knowingly",
      },
    );
  }
  return undefined;
}

function checkOverlap(uidMap: readonly IdMapping[], gidMap: readonly IdMapping[], others: readonly LivePod[], claimed: boolean): void {
  for (const o of others) {
    const err = overlapError('uidMap', uidMap, o, claimed) ?? overlapError('gidMap', gidMap, o, claimed);
    if (err) throw err;
  }
}

// ---- the lock ----------------------------------------------------------------------

// One waiter per process: a flock wait occupies a libuv thread, and the
// holder's own create needs them.
let chain: Promise<unknown> = Promise.resolve();

async function withLock<T>(d: RuntimeDirs, fn: () => Promise<T>): Promise<T> {
  const run = chain.then(async () => {
    const fd = await lockFile(path.join(d.dir, 'idalloc.lock'), true, { context: 'locking the id allocation of this user' });
    try {
      return await fn();
    } finally {
      closeFdSync(fd);
    }
  });
  chain = run.catch(() => undefined);
  return run;
}

// ---- a create, with its ids chosen or checked ---------------------------------------

export interface AllocRequest {
  name: string;
  mode: RootlessRangeMode;
  auto?: AutoPlan;
  /** Explicit maps (modes other than auto). */
  uidMap?: IdMapping[];
  gidMap?: IdMapping[];
}

export interface Made<T> {
  value: T;
  usernsIno: number;
  /** Undoes the create (unpins), when a late check refuses it. */
  undo: () => Promise<void>;
}

/**
 * Runs CREATE with the maps to use: for auto a free block, for explicit maps
 * the ones given once checked against the user's live pods. The runtime
 * dirs exist. The lock is taken only when it matters: always for auto and
 * exclusive; for a default explicit map only once the user has used auto
 * (the claims dir exists), else it costs one lstat.
 */
export async function allocateRootless<T>(d: RuntimeDirs, req: AllocRequest, create: (uidMap: IdMapping[], gidMap: IdMapping[]) => Promise<Made<T>>): Promise<T> {
  if (req.mode === 'shared') return (await create(req.uidMap!, req.gidMap!)).value;
  if (req.mode === 'default' && !hasClaimsDir(d)) {
    const made = await create(req.uidMap!, req.gidMap!);
    // An auto create that began meanwhile may have read the pins before this
    // one existed: checked again, late, under the lock.
    if (!hasClaimsDir(d)) return made.value;
    try {
      await withLock(d, async () => checkOverlap(req.uidMap!, req.gidMap!, claimedPods(d, readClaims(d), req.name), true));
    } catch (err) {
      await made.undo();
      throw err;
    }
    return made.value;
  }
  return withLock(d, async () => {
    ensureClaimsDir(d);
    const claims = readClaims(d);
    let uidMap: IdMapping[], gidMap: IdMapping[];
    if (req.mode === 'default') {
      checkOverlap(req.uidMap!, req.gidMap!, claimedPods(d, claims, req.name), true);
      return (await create(req.uidMap!, req.gidMap!)).value;
    }
    const pods = livePods(d);
    // Claims of pods that are gone: pruned (we hold the lock, so none is in the making).
    const live = new Map(pods.map((p) => [p.name, p.usernsIno]));
    for (const [n, ino] of claims) if (live.get(n) !== ino) dropClaim(d, n);
    if (req.mode === 'auto') {
      const a = req.auto!;
      const used = pods.flatMap((p) => p.ranges).map((r) => ({ s: r.start, e: rangeEnd(r) })).sort((x, y) => x.s - y.s);
      const block = pickBlock(a.pool, used, a.size);
      if (block === undefined) {
        throw new NstoolError(`no free block of ${a.size} ids is left in your subordinate ids ${a.pool.map(showRange).join(', ')} (${pods.length} live pods hold ids)`, {
          code: IDS_EXHAUSTED,
          hint: 'delete pods you no longer need, use a smaller autoSize, or give your user a larger range (as root: usermod --add-subuids/--add-subgids)',
        });
      }
      uidMap = [{ containerID: 0, hostID: block, size: a.size }];
      gidMap = [{ containerID: 0, hostID: block, size: a.size }];
    } else {
      uidMap = req.uidMap!;
      gidMap = req.gidMap!;
      checkOverlap(uidMap, gidMap, pods.filter((p) => p.name !== req.name), false);
    }
    // A live pod of this name keeps its claim (the create will find the name taken).
    const mine = !live.has(req.name);
    if (mine) writeClaim(d, req.name);
    try {
      const made = await create(uidMap, gidMap);
      writeClaim(d, req.name, made.usernsIno);
      return made.value;
    } catch (err) {
      if (mine) dropClaim(d, req.name);
      throw err;
    }
  });
}
