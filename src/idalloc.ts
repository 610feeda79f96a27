// Automatic per-pod id ranges (`uidMap: 'auto'`): each pod gets a block of
// host ids that no live pod's uid or gid map overlaps, so the root of one pod
// is nobody to another (KEP-127). Blocks come from a subordinate range
// (/etc/subuid and /etc/subgid of a user, "containers" by default).
//
// "Live" is read from the kernel, never from a record of past allocations
// alone: every namespace pinned in the pin dirs is a pod, its owning user
// namespace's maps are its ranges. When its pin goes, so does its block, so a
// crash or a reboot cannot leak one. Reading a userns's maps forks (the
// kernel shows them only to a process inside), so the maps are kept in an
// index under the allocation lock, keyed by the userns's identity, and a pin
// dir is only read again when its change time says someone other than
// nstool changed it:
//   - every nstool create and delete that runs while the index exists holds
//     the lock, watches the dirs it changes with inotify and, when the only
//     change was its own, records the dir's new change time with its entry;
//   - a dir whose change time differs from the recorded one (another tool,
//     a crash, an old nstool) is read again: each pin inspected, the maps of
//     an unknown userns read once.
// On filesystems with fine-grained change times (Linux 6.13+ multigrain
// timestamps: ext4, tmpfs, xfs, btrfs) any change after a stat() gets a new
// time, so an unchanged time proves an unchanged dir. Where times are coarse
// (one per clock tick), a time recorded in the current tick proves nothing
// and the dir is read again the next time.
import { close, closeSync, constants as fsc, existsSync, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { callSync, fromNative, invalidArg, NstoolError } from './errors.js';
import { formatIdMap, IdMapping, parseKernelMap } from './idmap.js';
import type { NativeNsInfo } from './kernel/core.js';
import { closeFdSync, lockFileSync } from './kernel/lock.js';
import { inspectNsRawSync, readIdMapsSync } from './kernel/ns.js';
import { inotifyInitSync, inotifyReadSync, inotifyWatchDirSync } from './kernel/watch.js';
import { showValue } from './names.js';

/** The user whose /etc/subuid and /etc/subgid entries auto blocks come from (as podman's --userns=auto). */
export const DEFAULT_AUTO_USER = 'containers';
/** Ids per auto block: a whole 16-bit id space, as Kubernetes gives each pod. */
export const DEFAULT_AUTO_SIZE = 65536;
/** Where the allocation lock and index live (root's, 0700). */
export const DEFAULT_ALLOC_DIR = '/run/nstool/idalloc';
/**
 * The pool when neither /etc/subuid nor /etc/subgid names the user: host ids
 * 2^31 to 2^32 - 65537, less every range those files delegate to anyone.
 * useradd hands out ranges below 600100000 (SUB_UID_MAX) and systemd keeps
 * its container ranges below 2^31, so this half of the id space is unused
 * on an ordinary host.
 */
export const BUILTIN_POOL: Readonly<IdRange> = Object.freeze({ start: 2 ** 31, count: 2 ** 31 - 65536 });

/** An explicit map overlaps the host ids a live pod holds alone. */
export const MAP_OVERLAP = 'ERR_NSTOOL_MAP_OVERLAP';
/** No free block is left in the pool. */
export const IDS_EXHAUSTED = 'ERR_NSTOOL_IDS_EXHAUSTED';
/** The subordinate id files name no usable range. */
export const SUBID = 'ERR_NSTOOL_SUBID';

const U32 = 2 ** 32;
/** How long the kept fds outlive the last section. */
const KEPT_IDLE_MS = 2000;
/** Coarse change times come from the tick clock; 50 ms covers HZ=100 twice over. */
const COARSE_MARGIN_NS = 50_000_000n;

// ---- ranges -------------------------------------------------------------------

/** Host ids [start, start + count). */
export interface IdRange {
  start: number;
  count: number;
}

export function rangeEnd(r: IdRange): number {
  return r.start + r.count;
}

/** Sorted, merged copy (pickBlock needs the pool sorted). */
export function normalizeRanges(rs: readonly IdRange[]): IdRange[] {
  const s = rs.filter((r) => r.count > 0).map((r) => ({ ...r })).sort((a, b) => a.start - b.start);
  const out: IdRange[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r.start <= rangeEnd(last)) last.count = Math.max(rangeEnd(last), rangeEnd(r)) - last.start;
    else out.push(r);
  }
  return out;
}

export function intersectRanges(a: readonly IdRange[], b: readonly IdRange[]): IdRange[] {
  const out: IdRange[] = [];
  for (const x of normalizeRanges(a)) {
    for (const y of normalizeRanges(b)) {
      const s = Math.max(x.start, y.start), e = Math.min(rangeEnd(x), rangeEnd(y));
      if (s < e) out.push({ start: s, count: e - s });
    }
  }
  return normalizeRanges(out);
}

export function subtractRanges(a: readonly IdRange[], b: readonly IdRange[]): IdRange[] {
  let cur = normalizeRanges(a);
  for (const y of normalizeRanges(b)) {
    const next: IdRange[] = [];
    for (const x of cur) {
      if (rangeEnd(y) <= x.start || y.start >= rangeEnd(x)) {
        next.push(x);
        continue;
      }
      if (y.start > x.start) next.push({ start: x.start, count: y.start - x.start });
      if (rangeEnd(y) < rangeEnd(x)) next.push({ start: rangeEnd(y), count: rangeEnd(x) - rangeEnd(y) });
    }
    cur = next;
  }
  return cur;
}

/** The host ranges of an id map. */
export function hostRanges(map: readonly IdMapping[]): IdRange[] {
  return map.map((m) => ({ start: m.hostID, count: m.size }));
}

function showRange(r: IdRange): string {
  return `${r.start}-${rangeEnd(r) - 1}`;
}

/** "START:COUNT" or { start, count }: a range of host ids, validated. */
export function parseIdRange(input: unknown, what = 'autoRange'): IdRange {
  let start: unknown, count: unknown;
  if (typeof input === 'string') {
    const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(input);
    if (!m) throw invalidArg(`${what}: ${showValue(input)} is not "start:count"`);
    start = Number(m[1]);
    count = Number(m[2]);
  } else if (input !== null && typeof input === 'object') {
    ({ start, count } = input as { start: unknown; count: unknown });
  } else {
    throw invalidArg(`${what} must be "start:count" or { start, count }, got ${showValue(input)}`, 'ERR_INVALID_ARG_TYPE');
  }
  for (const [k, v] of [['start', start], ['count', count]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= U32) {
      throw invalidArg(`${what}: ${k} must be an integer from 0 to 4294967295, got ${showValue(v)}`);
    }
  }
  const r = { start: start as number, count: count as number };
  if (r.count === 0) throw invalidArg(`${what}: count must be greater than 0`);
  // The kernel never maps id 4294967295.
  if (rangeEnd(r) >= U32) throw invalidArg(`${what}: ${r.start}:${r.count} reaches 4294967295, which is not a valid id`);
  return r;
}

// ---- the pool -------------------------------------------------------------------

/** Every line of a subid file: user (name or uid), start, count. */
export function parseSubidFile(text: string): Array<{ who: string; range: IdRange }> {
  const out: Array<{ who: string; range: IdRange }> = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [who, start, count, ...rest] = t.split(':');
    if (!who || rest.length > 0 || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) continue;
    const r = { start: Number(start), count: Number(count) };
    if (r.count === 0 || rangeEnd(r) >= U32) continue;
    out.push({ who, range: r });
  }
  return out;
}

export interface PoolSource {
  user: string;
  /** The user's uid, matched by lines naming a uid. */
  uid?: number;
  subuid: string;
  subgid: string;
  subuidFile?: string;
  subgidFile?: string;
}

/**
 * The host ids auto blocks come from, one set for uid and gid (a pod's block
 * is the same in both maps): the user's ranges common to both files; when
 * neither file names the user, BUILTIN_POOL less every delegated range. A
 * user named in one file only is a configuration error.
 */
export function resolvePool(src: PoolSource): IdRange[] {
  const uidLines = parseSubidFile(src.subuid);
  const gidLines = parseSubidFile(src.subgid);
  const mine = (l: { who: string }) => l.who === src.user || (src.uid !== undefined && l.who === String(src.uid));
  const u = uidLines.filter(mine).map((l) => l.range);
  const g = gidLines.filter(mine).map((l) => l.range);
  const files = `${src.subuidFile ?? '/etc/subuid'} and ${src.subgidFile ?? '/etc/subgid'}`;
  if (u.length === 0 && g.length === 0) {
    const pool = subtractRanges([BUILTIN_POOL], [...uidLines, ...gidLines].map((l) => l.range));
    if (pool.length === 0) {
      throw new NstoolError(`${files} name no range for ${showValue(src.user)}, and ranges delegated to others cover nstool's built-in one`, {
        code: SUBID,
        hint: `add "${src.user}:START:COUNT" lines to both files, or pass autoRange`,
      });
    }
    return pool;
  }
  const pool = intersectRanges(u, g);
  if (pool.length === 0) {
    throw new NstoolError(`${files} give ${showValue(src.user)} no range that is in both files`, {
      code: SUBID,
      hint: `give ${src.user} the same range in /etc/subuid and /etc/subgid (e.g. "${src.user}:2147483648:2147483648" in both)`,
    });
  }
  return pool;
}

/**
 * The lowest block of SIZE ids in POOL that overlaps none of USED (sorted by
 * start; ranges may overlap each other). Blocks are aligned to SIZE from the
 * start of each pool range, so they tile it. Linear in USED.
 */
export function pickBlock(pool: readonly IdRange[], used: ReadonlyArray<{ s: number; e: number }>, size: number): number | undefined {
  let i = 0;
  for (const p of pool) {
    const pEnd = rangeEnd(p);
    let cand = p.start;
    while (cand + size <= pEnd) {
      // A range left behind here ends before every later candidate too.
      while (i < used.length && used[i]!.e <= cand) i++;
      // Sorted by start, not by end: any range from i on that starts inside
      // the candidate block may be the one that blocks it.
      let blocker: { s: number; e: number } | undefined;
      for (let j = i; j < used.length && used[j]!.s < cand + size; j++) {
        if (used[j]!.e > cand) {
          blocker = used[j];
          break;
        }
      }
      if (!blocker) return cand;
      // Next aligned candidate at or after the blocker's end.
      const k = Math.ceil((blocker.e - p.start) / size);
      cand = p.start + k * size;
    }
  }
  return undefined;
}

// ---- the index (a journal of JSON lines) ----------------------------------------

/** One pinned namespace and the host ranges of its owning userns. */
export interface Entry {
  dir: string;
  name: string;
  /** Identity of the userns: "i<NS_GET_ID>" where the kernel has it, else "n<dev>:<ino>". */
  key: string;
  /** The pod holds its ranges alone (auto, or exclusiveRanges): explicit maps may not overlap them. */
  claimed: boolean;
  uid: IdRange[];
  gid: IdRange[];
}

export interface DirStamp {
  /** "<dev>:<ino>:<mtime ns>:<ctime ns>", "missing", or null (read it again). */
  stamp: string | null;
  /** Taken when the change time was already in the past (only matters on coarse filesystems). */
  settled: boolean;
}

export type JournalRecord =
  | ['h', 1, string, string]
  | ['d', string, string | null, 0 | 1]
  | ['+', string, string, string, 0 | 1, number[], number[]]
  | ['-', string, string]
  | ['p', string, string]
  | ['f', string, 0 | 1]
  | ['x', string];

const JOURNAL_VERSION = 1;

function flat(rs: readonly IdRange[]): number[] {
  return rs.flatMap((r) => [r.start, r.count]);
}

function unflat(a: unknown): IdRange[] {
  if (!Array.isArray(a) || a.length % 2 !== 0 || a.length > 2 * 340) throw new Error('bad ranges');
  const out: IdRange[] = [];
  for (let i = 0; i < a.length; i += 2) {
    const start = a[i], count = a[i + 1];
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count <= 0 || start + count >= U32) throw new Error('bad range');
    out.push({ start, count });
  }
  return out;
}

/** A name as another tool may have pinned it: one path component. */
function checkName(n: unknown): string {
  if (typeof n !== 'string' || n === '' || n === '.' || n === '..' || n.includes('/') || n.includes('\0') || Buffer.byteLength(n) > 255) {
    throw new Error('bad name');
  }
  return n;
}

function checkDir(d: unknown): string {
  if (typeof d !== 'string' || !d.startsWith('/') || d.includes('\0') || path.normalize(d) !== d || Buffer.byteLength(d) >= 4096) {
    throw new Error('bad dir');
  }
  return d;
}

/**
 * Parses and validates one journal line (read back from disk: everything
 * that becomes a path or a number is checked). Throws on anything else.
 */
export function decodeRecord(line: string): JournalRecord {
  const r = JSON.parse(line) as unknown;
  if (!Array.isArray(r) || typeof r[0] !== 'string') throw new Error('not a record');
  const bit = (v: unknown): 0 | 1 => {
    if (v !== 0 && v !== 1) throw new Error('bad flag');
    return v;
  };
  switch (r[0]) {
    case 'h':
      if (r.length !== 4 || r[1] !== JOURNAL_VERSION || typeof r[2] !== 'string' || typeof r[3] !== 'string') throw new Error('bad header');
      return ['h', 1, r[2], r[3]];
    case 'd':
      if (r.length !== 4 || (r[2] !== null && (typeof r[2] !== 'string' || !/^(missing|\d+:\d+:\d+:\d+)$/.test(r[2])))) throw new Error('bad dir record');
      return ['d', checkDir(r[1]), r[2] as string | null, bit(r[3])];
    case '+':
      if (r.length !== 7 || typeof r[3] !== 'string' || !/^(i\d+|n\d+:\d+)$/.test(r[3])) throw new Error('bad entry');
      unflat(r[5]);
      unflat(r[6]);
      return ['+', checkDir(r[1]), checkName(r[2]), r[3], bit(r[4]), r[5] as number[], r[6] as number[]];
    case '-':
    case 'p':
      if (r.length !== 3) throw new Error('bad removal');
      return [r[0], checkDir(r[1]), checkName(r[2])];
    case 'x':
      if (r.length !== 2) throw new Error('bad forget');
      return ['x', checkDir(r[1])];
    case 'f':
      if (r.length !== 3 || typeof r[1] !== 'string' || !/^\d+$/.test(r[1])) throw new Error('bad fs record');
      return ['f', r[1], bit(r[2])];
    default:
      throw new Error('unknown record');
  }
}

/** The in-memory state the journal describes, with the live ranges sorted for pickBlock. */
export class Ledger {
  readonly entries = new Map<string, Entry>();
  readonly dirs = new Map<string, DirStamp>();
  readonly pending = new Map<string, { dir: string; name: string }>();
  /** Fine-grained change times, per filesystem (st_dev). */
  readonly fine = new Map<string, boolean>();
  /** Every entry's uid and gid ranges, sorted by start: one item per range. */
  readonly used: Array<{ s: number; e: number; k: string }> = [];

  static key(dir: string, name: string): string {
    return `${dir}\0${name}`;
  }

  apply(r: JournalRecord): void {
    switch (r[0]) {
      case 'h':
        return;
      case 'd':
        this.dirs.set(r[1], { stamp: r[2], settled: r[3] === 1 });
        return;
      case '+': {
        const k = Ledger.key(r[1], r[2]);
        this.remove(k);
        const e: Entry = { dir: r[1], name: r[2], key: r[3], claimed: r[4] === 1, uid: unflat(r[5]), gid: unflat(r[6]) };
        this.entries.set(k, e);
        for (const x of [...e.uid, ...e.gid]) this.insertUsed({ s: x.start, e: rangeEnd(x), k });
        return;
      }
      case '-':
        this.remove(Ledger.key(r[1], r[2]));
        return;
      case 'p': {
        const k = Ledger.key(r[1], r[2]);
        this.remove(k);
        this.pending.set(k, { dir: r[1], name: r[2] });
        return;
      }
      case 'f':
        this.fine.set(r[1], r[2] === 1);
        return;
      case 'x':
        this.dirs.delete(r[1]);
    }
  }

  private remove(k: string): void {
    this.pending.delete(k);
    const e = this.entries.get(k);
    if (!e) return;
    this.entries.delete(k);
    for (const x of [...e.uid, ...e.gid]) {
      const i = this.lowerBound(x.start);
      for (let j = i; j < this.used.length && this.used[j]!.s === x.start; j++) {
        if (this.used[j]!.k === k && this.used[j]!.e === rangeEnd(x)) {
          this.used.splice(j, 1);
          break;
        }
      }
    }
  }

  private lowerBound(s: number): number {
    let lo = 0, hi = this.used.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.used[mid]!.s < s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insertUsed(u: { s: number; e: number; k: string }): void {
    this.used.splice(this.lowerBound(u.s), 0, u);
  }

  /** Entries overlapping any of RANGES (claimed ones only, when asked), other than SELF's. */
  overlapping(ranges: readonly IdRange[], claimedOnly: boolean): Array<{ entry: Entry; range: IdRange }> {
    const out: Array<{ entry: Entry; range: IdRange }> = [];
    for (const q of ranges) {
      const qEnd = rangeEnd(q);
      for (let j = 0; j < this.used.length && this.used[j]!.s < qEnd; j++) {
        const u = this.used[j]!;
        if (u.e <= q.start) continue;
        const entry = this.entries.get(u.k)!;
        if (claimedOnly && !entry.claimed) continue;
        out.push({ entry, range: { start: u.s, count: u.e - u.s } });
      }
    }
    return out;
  }

  entriesIn(dir: string): Entry[] {
    return [...this.entries.values()].filter((e) => e.dir === dir);
  }

  /** Records that rebuild this state from nothing. */
  snapshot(): JournalRecord[] {
    const out: JournalRecord[] = [];
    for (const [dev, f] of this.fine) out.push(['f', dev, f ? 1 : 0]);
    for (const [dir, d] of this.dirs) out.push(['d', dir, d.stamp, d.settled ? 1 : 0]);
    for (const e of this.entries.values()) out.push(['+', e.dir, e.name, e.key, e.claimed ? 1 : 0, flat(e.uid), flat(e.gid)]);
    for (const p of this.pending.values()) out.push(['p', p.dir, p.name]);
    return out;
  }
}

// ---- inotify events -------------------------------------------------------------

export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_Q_OVERFLOW = 0x4000;
const IN_ISDIR = 0x40000000;

export interface DirEvent {
  wd: number;
  mask: number;
  name: string;
}

/** struct inotify_event records in BUF (names are NUL-padded). */
export function parseInotify(buf: Buffer): DirEvent[] {
  const out: DirEvent[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const wd = buf.readInt32LE(off);
    const mask = buf.readUInt32LE(off + 4);
    const len = buf.readUInt32LE(off + 12);
    if (off + 16 + len > buf.length) break;
    const raw = buf.subarray(off + 16, off + 16 + len);
    const nul = raw.indexOf(0);
    out.push({ wd, mask, name: raw.subarray(0, nul < 0 ? raw.length : nul).toString() });
    off += 16 + len;
  }
  return out;
}

// ---- the store: lock, journal file, sections ---------------------------------------

let bootId: string | undefined;
let mntns: string | undefined;
let hostUser: { ino: number; dev: number } | undefined;

function hostIdentity(): { boot: string; mntns: string } {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  if (mntns === undefined) {
    const st = statSync('/proc/self/ns/mnt');
    mntns = `${st.dev}:${st.ino}`;
  }
  return { boot: bootId, mntns };
}

function isHostUserns(ino: number, dev: number): boolean {
  if (!hostUser) {
    const st = statSync('/proc/self/ns/user');
    hostUser = { ino: st.ino, dev: st.dev };
  }
  return ino === hostUser.ino && dev === hostUser.dev;
}

export function usernsKey(id: number, dev: number, ino: number): string {
  return id > 0 ? `i${id}` : `n${dev}:${ino}`;
}

function stampOf(dir: string): { stamp: string; ctimeNs: bigint; dev: string } {
  const st = statSync(dir, { bigint: true, throwIfNoEntry: false });
  if (!st) return { stamp: 'missing', ctimeNs: 0n, dev: '' };
  return { stamp: `${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`, ctimeNs: st.ctimeNs, dev: String(st.dev) };
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * One allocation dir: its ledger as this process last read it, and the fds
 * it keeps between sections (an inotify fd, whose close waits for an RCU
 * grace period of some milliseconds, and the journal), closed when idle.
 */
class Store {
  ledger = new Ledger();
  readonly lockPath: string;
  readonly journalPath: string;
  /** dev:ino of the journal the ledger reflects, '' when none. */
  private fileId = '';
  private offset = 0;
  private lines = 0;
  /** A journal to rewrite: torn tail, corrupt, from another boot, or too long. */
  private dirty = false;
  private dirReady = false;
  /** The journal existed when this process last looked (sections keep it so). */
  private seen = false;
  private kept: { inotify: number; journal: number; timer: NodeJS.Timeout | null } | null = null;
  /** How often this process read a dir again and read a userns's maps (forks). */
  readonly stats = { rescans: 0, mapReads: 0 };
  /** Held by a section of this process (sync sections cannot wait for async ones). */
  held = false;
  queue: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {
    this.lockPath = path.join(dir, 'lock');
    this.journalPath = path.join(dir, 'index');
  }

  /** Makes the dir (root's, 0700) and refuses one others could write. */
  ensureDir(): void {
    if (this.dirReady) return;
    // The parents as other nstool dirs have them (/run/nstool holds the userns pins too).
    mkdirSync(path.dirname(this.dir), { recursive: true, mode: 0o755 });
    try {
      mkdirSync(this.dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = lstatSync(this.dir);
    if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0) {
      throw new NstoolError(`allocation dir ${this.dir} is not a directory of this user with mode 0700`, {
        code: 'ERR_NSTOOL_ALLOC_DIR_UNSAFE',
        path: this.dir,
        hint: `chown root ${this.dir} && chmod 0700 ${this.dir}, or choose another allocDir`,
      });
    }
    this.dirReady = true;
  }

  /** Takes the lock (a blocking flock when WAIT, else EAGAIN when held); returns its fd. */
  lock(wait: boolean): number {
    this.ensureDir();
    try {
      return lockFileSync(this.lockPath, wait);
    } catch (err) {
      // The dir was removed under a running process: make it again, once.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.dirReady = false;
      this.ensureDir();
      return lockFileSync(this.lockPath, wait);
    }
  }

  exists(): boolean {
    this.seen ||= existsSync(this.journalPath);
    return this.seen;
  }

  get seenIndex(): boolean {
    return this.seen;
  }

  private keep(): NonNullable<Store['kept']> {
    if (!this.kept) {
      this.kept = { inotify: -1, journal: -1, timer: null };
      // A worker's fds outlive it (they are the process's) and its idle timer dies with it.
      if (!isMainThread && !this.exitHook) {
        this.exitHook = true;
        process.once('exit', () => this.closeKeptSync());
      }
    }
    return this.kept;
  }

  private exitHook = false;

  private closeKeptSync(): void {
    const k = this.kept;
    this.kept = null;
    if (!k) return;
    if (k.timer) clearTimeout(k.timer);
    for (const fd of [k.journal, k.inotify]) if (fd >= 0) closeSync(fd);
  }

  /** Reads what other processes appended since this one last looked (lock held). */
  refresh(): void {
    const st = statSync(this.journalPath, { throwIfNoEntry: false });
    if (!st) {
      this.reset();
      return;
    }
    this.seen = true;
    const k = this.keep();
    // The common case: the same file, nothing appended by anyone else.
    if (k.journal >= 0 && `${st.dev}:${st.ino}` === this.fileId && st.size === this.offset) return;
    if (k.journal < 0 || `${st.dev}:${st.ino}` !== this.fileId || st.size < this.offset) {
      if (k.journal >= 0) closeSync(k.journal);
      k.journal = -1;
      k.journal = openSync(this.journalPath, fsc.O_RDWR | fsc.O_NOFOLLOW);
      const fst = fstatSync(k.journal);
      const fid = `${fst.dev}:${fst.ino}`;
      if (fid !== this.fileId || fst.size < this.offset) {
        this.resetMemory();
        this.fileId = fid;
      }
    }
    const size = fstatSync(k.journal).size;
    if (size === this.offset) return;
    const buf = Buffer.allocUnsafe(size - this.offset);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(k.journal, buf, got, buf.length - got, this.offset + got);
      if (n === 0) break;
      got += n;
    }
    const text = buf.subarray(0, got).toString();
    const end = text.lastIndexOf('\n');
    // A line without its newline is what a writer that died mid-write left.
    if (end !== text.length - 1) this.dirty = true;
    if (end > 0 && !this.replay(text.slice(0, end).split('\n'), this.offset === 0)) {
      this.reset();
      return;
    }
    this.offset += end + 1;
  }

  private replay(lines: string[], fromStart: boolean): boolean {
    const host = hostIdentity();
    try {
      for (let i = 0; i < lines.length; i++) {
        const r = decodeRecord(lines[i]!);
        if (fromStart && i === 0) {
          // Pins do not outlive a boot or a mount namespace; neither does the index.
          if (r[0] !== 'h' || r[2] !== host.boot || r[3] !== host.mntns) return false;
          continue;
        }
        this.ledger.apply(r);
      }
      this.lines += lines.length;
      return true;
    } catch {
      return false;
    }
  }

  private resetMemory(): void {
    this.ledger = new Ledger();
    this.offset = 0;
    this.lines = 0;
  }

  /** Starts over from nothing: every dir is read again. */
  private reset(): void {
    this.resetMemory();
    this.fileId = '';
    this.dirty = true;
  }

  /** Appends RECORDS (already applied; lock held), rewriting the journal when it grew long or is dirty. */
  append(records: JournalRecord[]): void {
    const k = this.keep();
    if (this.dirty || k.journal < 0 || this.lines > 2 * (this.ledger.entries.size + this.ledger.pending.size + this.ledger.dirs.size) + 256) {
      this.rewrite();
      return;
    }
    if (records.length === 0) return;
    let text = '';
    for (const r of records) text += JSON.stringify(r) + '\n';
    const buf = Buffer.from(text);
    let done = 0;
    while (done < buf.length) done += writeSync(k.journal, buf, done, buf.length - done, this.offset + done);
    this.offset += buf.length;
    this.lines += records.length;
  }

  /**
   * Replaces the journal with the current state. No fsync: the index is
   * worth nothing after a reboot (its header names the boot), and a process
   * crash does not lose the page cache.
   */
  private rewrite(): void {
    const host = hostIdentity();
    const recs: JournalRecord[] = [['h', JOURNAL_VERSION, host.boot, host.mntns], ...this.ledger.snapshot()];
    const buf = Buffer.from(recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const tmp = path.join(this.dir, `.index.tmp-${randomBytes(6).toString('hex')}`);
    const fd = openSync(tmp, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      let done = 0;
      while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
      renameSync(tmp, this.journalPath);
    } catch (err) {
      closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        // already renamed or never made
      }
      throw err;
    }
    const st = fstatSync(fd);
    const k = this.keep();
    if (k.journal >= 0) closeSync(k.journal);
    k.journal = fd;
    this.fileId = `${st.dev}:${st.ino}`;
    this.offset = buf.length;
    this.lines = recs.length;
    this.dirty = false;
    this.seen = true;
  }

  /** Watches DIRS (those that exist) and forgets what happened before now. */
  watch(dirs: string[]): Map<string, number> {
    const k = this.keep();
    if (k.inotify < 0) k.inotify = inotifyInitSync({ context: 'watching pin dirs' });
    const wds = new Map<string, number>();
    for (const d of dirs) {
      try {
        // Each time: the path may now name another directory than last time.
        wds.set(d, inotifyWatchDirSync(k.inotify, d));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw fromNative(err, `watching ${d}`);
      }
    }
    this.events();
    return wds;
  }

  /** Events since the last call; null when some were lost (queue overflow). */
  events(): DirEvent[] | null {
    const fd = this.kept?.inotify ?? -1;
    if (fd < 0) return null;
    const buf = inotifyReadSync(fd);
    if (buf.length === 0) return [];
    const out = parseInotify(buf);
    return out.some((e) => e.mask & IN_Q_OVERFLOW) ? null : out;
  }

  /** Closes the kept fds once no section has run for a while. */
  idle(): void {
    const k = this.kept;
    if (!k) return;
    if (k.timer) k.timer.refresh();
    else {
      k.timer = setTimeout(() => {
        k.timer = null;
        if (this.held) this.idle();
        else void this.closeKept();
      }, KEPT_IDLE_MS);
      k.timer.unref();
    }
  }

  async closeKept(): Promise<void> {
    const k = this.kept;
    if (!k || this.held) return;
    this.kept = null;
    // The ledger stays; the next section reopens the journal and checks it is the same file.
    if (k.timer) clearTimeout(k.timer);
    if (k.journal >= 0) closeSync(k.journal);
    // On the pool: this close waits for a grace period.
    if (k.inotify >= 0) await new Promise<void>((resolve) => close(k.inotify, () => resolve()));
  }
}

const stores = new Map<string, Store>();

function storeFor(dir: string): Store {
  let s = stores.get(dir);
  if (!s) {
    s = new Store(dir);
    stores.set(dir, s);
  }
  return s;
}

/** Counters of this process for ALLOCDIR: dirs read again, userns maps read (each a fork). */
export function idAllocStats(allocDir: string): { rescans: number; mapReads: number } {
  return { ...storeFor(allocDir).stats };
}

/** Whether nstool keeps an index in ALLOCDIR (one stat): then every create and delete records itself. */
export function allocatorInUse(allocDir: string): boolean {
  return storeFor(allocDir).exists();
}

/**
 * The file allocatorInUse looks for, for a caller that asks the native core
 * to look in the same call as its own work (a syscall less, no extra pool trip).
 */
export function allocatorIndexPath(allocDir: string): string {
  return storeFor(allocDir).journalPath;
}

/** Whether this process has seen the index in ALLOCDIR (no syscall). */
export function allocatorSeen(allocDir: string): boolean {
  return storeFor(allocDir).seenIndex;
}

// ---- sections: what one create or delete does under the lock ---------------------

/** How a create treats the host ranges of other pods. */
export type RangeMode =
  /** uidMap 'auto': take a free block, hold it alone. */
  | 'auto'
  /** Explicit map, refused if it overlaps any live pod; then held alone. */
  | 'exclusive'
  /** Explicit map, refused if it overlaps a pod that holds its range alone (the default). */
  | 'default'
  /** Explicit map, never refused (allowSharedRanges). */
  | 'shared';

export interface SectionPlan {
  allocDir: string;
  /** Pins this operation creates or removes: dir and name each. */
  pins: Array<{ dir: string; name: string }>;
  /** Dirs whose pods count (the pin dir and userns pin dir of the call). */
  scanDirs: string[];
  /** Create: how ranges are chosen or checked. Delete: undefined. */
  mode?: RangeMode;
  /** auto: the pool and block size. */
  pool?: IdRange[];
  size?: number;
  /** Explicit maps (modes other than auto). */
  uidMap?: IdMapping[];
  gidMap?: IdMapping[];
  /**
   * The pins were made before this section, without the lock (no index
   * existed then): check them against the others, not against themselves,
   * and record them without claiming their dirs are up to date.
   */
  late?: boolean;
}

export interface Chosen {
  uidMap: IdMapping[];
  gidMap: IdMapping[];
}

/** The outcome of the operation, as the section records it. */
export interface Outcome {
  /** Create: the identity of the new userns (NS_GET_ID, else dev and inode). */
  userns?: { id: number; dev: number; ino: number };
}

class Section {
  private wdOf = new Map<string, number>();
  private readonly out: JournalRecord[] = [];
  /** Change dirs that were up to date when this section began (or were read again in it). */
  private readonly trusted = new Set<string>();
  private readonly changeDirs: string[];

  constructor(
    private readonly store: Store,
    private readonly plan: SectionPlan,
  ) {
    this.changeDirs = [...new Set(plan.pins.map((p) => p.dir))];
  }

  private get ledger(): Ledger {
    return this.store.ledger;
  }

  /** Lock held: read the index, watch our dirs, bring what the check needs up to date; returns the maps to create. */
  begin(): Chosen | undefined {
    this.store.refresh();
    if (this.changeDirs.length > 0 && !this.plan.late) this.wdOf = this.store.watch(this.changeDirs);
    const mode = this.plan.mode;
    const full = mode === 'auto' || mode === 'exclusive' || mode === 'default';
    if (full) {
      // Pods anywhere nstool recorded them, and whatever is pinned in the dirs of this call.
      // Every dir holding entries has a dir record (entries come with one; a dir is forgotten only empty).
      const dirs = new Set<string>([...this.plan.scanDirs, ...this.changeDirs, ...this.ledger.dirs.keys()]);
      for (const d of dirs) this.validate(d);
    } else {
      for (const d of this.changeDirs) if (this.upToDate(d)) this.trusted.add(d);
    }
    if (!this.plan.late) for (const d of this.changeDirs) this.probeFine(d);
    if (mode === undefined) return undefined;
    if (mode === 'auto') {
      const size = this.plan.size!;
      const block = pickBlock(this.plan.pool!, this.ledger.used, size);
      if (block === undefined) {
        throw new NstoolError(`no free block of ${size} ids is left in ${this.plan.pool!.map(showRange).join(', ')} (${this.ledger.entries.size} pins hold ranges)`, {
          code: IDS_EXHAUSTED,
          hint: 'delete pods that are no longer needed, give the subid user a larger range, or use a smaller autoSize',
        });
      }
      const map = [{ containerID: 0, hostID: block, size }];
      return { uidMap: map, gidMap: map.map((m) => ({ ...m })) };
    }
    const uid = this.plan.uidMap!, gid = this.plan.gidMap!;
    if (mode !== 'shared') {
      for (const [what, map] of [['uidMap', uid], ['gidMap', gid]] as const) {
        const self = new Set(this.plan.late ? this.plan.pins.map((x) => Ledger.key(x.dir, x.name)) : []);
        const hit = this.ledger.overlapping(hostRanges(map), mode === 'default').find((h) => !self.has(Ledger.key(h.entry.dir, h.entry.name)));
        if (hit) throw overlapError(what, map, hit.entry, hit.range);
      }
    }
    return { uidMap: uid, gidMap: gid };
  }

  /** Stamps taken in this section before the operation, by dir. */
  private readonly seenStamps = new Map<string, { stamp: string; ctimeNs: bigint; dev: string }>();

  private stamp(dir: string) {
    const st = stampOf(dir);
    this.seenStamps.set(dir, st);
    return st;
  }

  /** The change time of DIR is the one recorded, and proves nothing changed since. */
  private upToDate(dir: string): boolean {
    const rec = this.ledger.dirs.get(dir);
    const now = this.stamp(dir);
    if (!rec || rec.stamp === null) return false;
    if (now.stamp !== rec.stamp) return false;
    return rec.settled || now.stamp === 'missing' || this.ledger.fine.get(now.dev) === true;
  }

  private validate(dir: string): void {
    if (this.upToDate(dir)) {
      if (this.ledger.dirs.get(dir)?.stamp === 'missing' && !this.plan.scanDirs.includes(dir) && !this.changeDirs.includes(dir) && this.ledger.entriesIn(dir).length === 0) {
        this.emit(['x', dir]);
        return;
      }
      if (this.changeDirs.includes(dir)) this.trusted.add(dir);
      // Plain files seen earlier may have become pins since (mounting changes no time).
      for (const p of [...this.ledger.pending.values()]) if (p.dir === dir) this.inspectOne(dir, p.name);
      return;
    }
    this.rescan(dir);
    if (this.changeDirs.includes(dir)) this.trusted.add(dir);
  }

  /** Reads DIR again: each pin inspected, maps read for a userns not seen before. */
  private rescan(dir: string): void {
    this.store.stats.rescans++;
    const before = this.stamp(dir);
    let names: string[] = [];
    if (before.stamp !== 'missing') {
      try {
        names = readdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
      }
    }
    const seen = new Set(names);
    for (const e of this.ledger.entriesIn(dir)) if (!seen.has(e.name)) this.emit(['-', dir, e.name]);
    for (const p of [...this.ledger.pending.values()]) if (p.dir === dir && !seen.has(p.name)) this.emit(['-', dir, p.name]);
    for (const name of names) this.inspectOne(dir, name);
    this.emit(['d', dir, before.stamp, this.settled(before) ? 1 : 0]);
  }

  private settled(s: { stamp: string; ctimeNs: bigint }): boolean {
    return s.stamp === 'missing' || s.ctimeNs < nowNs() - COARSE_MARGIN_NS;
  }

  /** Brings the entry for DIR/NAME in line with what is pinned there now. */
  private inspectOne(dir: string, name: string): void {
    const k = Ledger.key(dir, name);
    const old = this.ledger.entries.get(k);
    const wasPending = this.ledger.pending.has(k);
    let nameOk = true;
    try {
      checkName(name);
    } catch {
      nameOk = false;
    }
    const p = path.join(dir, name);
    let info: NativeNsInfo | undefined;
    try {
      info = nameOk ? inspectNsRawSync(p, true) : undefined;
    } catch {
      info = undefined;
    }
    const drop = () => {
      if (old || wasPending) this.emit(['-', dir, name]);
    };
    if (!info || !info.nsfs) {
      // A plain empty file may be a pin about to be mounted: look again each time.
      const st = nameOk ? lstatSync(p, { throwIfNoEntry: false }) : undefined;
      if (st?.isFile()) {
        if (!wasPending) this.emit(['p', dir, name]);
      } else drop();
      return;
    }
    const isUser = info.type === 0x10000000;
    let key: string;
    if (isUser) key = usernsKey(info.id, info.dev, info.ino);
    else if (info.owner && !isHostUserns(info.owner.ino, info.owner.dev)) key = usernsKey(info.owner.id, info.owner.dev, info.owner.ino);
    else return drop(); // host-owned (ip netns add) or owner out of sight: no pod ranges
    if (isUser && isHostUserns(info.ino, info.dev)) return drop();
    if (old && old.key === key) return;
    // The same userns under another pin (its netns and userns pins) has the same maps;
    // only a never-reused id makes that safe to trust.
    let uid: IdRange[] | undefined, gid: IdRange[] | undefined, claimed = false;
    if (key.startsWith('i')) {
      for (const e of this.ledger.entries.values()) {
        if (e.key === key) {
          ({ uid, gid, claimed } = e);
          break;
        }
      }
    }
    if (!uid || !gid) {
      try {
        this.store.stats.mapReads++;
        const maps = readIdMapsSync(p, !isUser);
        uid = hostRanges(parseKernelMap(maps.uidMap));
        gid = hostRanges(parseKernelMap(maps.gidMap));
      } catch {
        // Gone meanwhile, or not readable: a pin that is gone holds nothing.
        return drop();
      }
    }
    this.emit(['+', dir, name, key, claimed ? 1 : 0, flat(uid), flat(gid)]);
  }

  /** Learns once per filesystem whether change times are fine-grained (see the top of the file). */
  private probeFine(dir: string): void {
    const seen = this.seenStamps.get(dir);
    if (seen && (seen.dev === '' || this.ledger.fine.has(seen.dev))) return;
    let fd: number;
    try {
      fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch {
      return; // gone, or not a plain dir: nothing to learn here
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (this.ledger.fine.has(String(st.dev))) return;
      // Three attribute changes within half a millisecond: coarse times (one
      // per tick, a tick >= 1 ms) cannot all differ, multigrain ones must.
      // Each sets the dir's own mode again, through the fd: nothing changes
      // but the change time, whatever the path names by now.
      const t0 = process.hrtime.bigint();
      const mode = Number(st.mode) & 0o7777;
      let last = st.ctimeNs;
      let distinct = true;
      for (let i = 0; i < 3; i++) {
        fchmodSync(fd, mode);
        const c = fstatSync(fd, { bigint: true }).ctimeNs;
        if (c <= last) distinct = false;
        last = c;
      }
      if (process.hrtime.bigint() - t0 > 500_000n) return; // preempted: ask again next time
      this.emit(['f', String(st.dev), distinct ? 1 : 0]);
    } finally {
      closeSync(fd);
    }
  }

  private emit(r: JournalRecord): void {
    this.out.push(r);
    this.ledger.apply(r);
  }

  /** After the operation: record it, and the dirs' new times when the only change was ours. */
  finish(chosen: Chosen | undefined, outcome: Outcome | undefined, ok: boolean): void {
    const events = this.changeDirs.length > 0 && !this.plan.late ? this.store.events() : null;
    const expect = this.plan.mode === undefined ? IN_DELETE : IN_CREATE;
    for (const d of this.changeDirs) {
      const wd = this.wdOf.get(d);
      // Explained: the dir was up to date before, and every event on it is ours.
      let explained = ok && !this.plan.late && this.trusted.has(d) && events !== null && wd !== undefined;
      for (let i = 0; explained && i < events!.length; i++) {
        const e = events![i]!;
        if (e.wd === wd && ((e.mask & ~IN_ISDIR) !== expect || !this.plan.pins.some((p) => p.dir === d && p.name === e.name))) explained = false;
      }
      // A delete in a dir the index never knew leaves nothing to record.
      if (this.plan.mode === undefined && !this.ledger.dirs.has(d)) continue;
      const now = stampOf(d);
      this.emit(['d', d, explained ? now.stamp : null, explained && this.settled(now) ? 1 : 0]);
    }
    if (ok) {
      if (this.plan.mode === undefined) {
        for (const p of this.plan.pins) this.emit(['-', p.dir, p.name]);
      } else if (chosen && outcome?.userns) {
        const u = outcome.userns;
        const key = usernsKey(u.id, u.dev, u.ino);
        const claimed = this.plan.mode === 'auto' || this.plan.mode === 'exclusive';
        for (const p of this.plan.pins) {
          this.emit(['+', p.dir, p.name, key, claimed ? 1 : 0, flat(hostRanges(chosen.uidMap)), flat(hostRanges(chosen.gidMap))]);
        }
      }
    }
  }

  /** Writes what this section learned. */
  close(): void {
    this.store.append(this.out);
  }
}

function overlapError(what: string, map: readonly IdMapping[], other: Entry, range: IdRange): NstoolError {
  const pin = path.join(other.dir, other.name);
  return new NstoolError(
    `${what} ${formatIdMap(map)} overlaps host ids ${showRange(range)} of the pod pinned at ${pin}${other.claimed ? ', which holds them alone' : ''}`,
    {
      code: MAP_OVERLAP,
      path: pin,
      hint: "choose host ids no live pod uses, or uidMap 'auto'; pass allowSharedRanges: true (--allow-shared-ranges) to share them knowingly",
    },
  );
}

function busyError(dir: string): NstoolError {
  return new NstoolError(`an id allocation in ${dir} is in progress in this process`, {
    code: 'ERR_NSTOOL_ALLOC_BUSY',
    path: dir,
    hint: 'a synchronous create or delete cannot wait for an asynchronous one of the same process: await it, or use the async call',
  });
}

function heldElsewhere(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}

/**
 * Runs OP (a native create or delete) with the allocation lock held:
 * begin() decides the maps before, finish() records what happened after.
 */
export function runSectionSync<T>(plan: SectionPlan, op: (chosen: Chosen | undefined) => { value: T; outcome?: Outcome }): { value: T; chosen: Chosen | undefined } {
  const store = storeFor(plan.allocDir);
  if (store.held) throw busyError(plan.allocDir);
  store.held = true;
  let lockFd = -1;
  try {
    lockFd = callSync(() => store.lock(true), `locking ${store.lockPath}`);
    const s = new Section(store, plan);
    let failed = true;
    try {
      const chosen = s.begin();
      let r: { value: T; outcome?: Outcome };
      try {
        r = op(chosen);
      } catch (err) {
        s.finish(chosen, undefined, false);
        throw err;
      }
      s.finish(chosen, r.outcome, true);
      failed = false;
      return { value: r.value, chosen };
    } finally {
      // What the section learned holds even when the create was refused or
      // failed; a failure to write it must not hide that first error.
      try {
        s.close();
      } catch (err) {
        if (!failed) throw err;
      }
    }
  } finally {
    if (lockFd >= 0) closeFdSync(lockFd);
    store.held = false;
    store.idle();
  }
}

export async function runSection<T>(
  plan: SectionPlan,
  op: (chosen: Chosen | undefined) => Promise<{ value: T; outcome?: Outcome }>,
): Promise<{ value: T; chosen: Chosen | undefined }> {
  const store = storeFor(plan.allocDir);
  // One section at a time per process; processes wait for each other on the flock.
  const prev = store.queue;
  let release!: () => void;
  store.queue = new Promise<void>((r) => (release = r));
  await prev;
  store.held = true;
  let lockFd = -1;
  try {
    // Polled with LOCK_NB: a blocking flock would hold a libuv pool thread.
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        lockFd = store.lock(false);
        break;
      } catch (err) {
        if (!heldElsewhere(err)) throw fromNative(err, `locking ${store.lockPath}`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
    const s = new Section(store, plan);
    let failed = true;
    try {
      const chosen = s.begin();
      let r: { value: T; outcome?: Outcome };
      try {
        r = await op(chosen);
      } catch (err) {
        s.finish(chosen, undefined, false);
        throw err;
      }
      s.finish(chosen, r.outcome, true);
      failed = false;
      return { value: r.value, chosen };
    } finally {
      // What the section learned holds even when the create was refused or
      // failed; a failure to write it must not hide that first error.
      try {
        s.close();
      } catch (err) {
        if (!failed) throw err;
      }
    }
  } finally {
    if (lockFd >= 0) closeFdSync(lockFd);
    store.held = false;
    store.idle();
    release();
  }
}

/**
 * Closes the inotify fd the allocator keeps between creates (it closes by
 * itself two seconds after the last one). For a clean shutdown, and tests
 * that count fds.
 */
export async function closeIdAllocator(): Promise<void> {
  for (const s of stores.values()) {
    await s.queue;
    await s.closeKept();
  }
}

// ---- pools from the subid files, cached by their change times --------------------

const poolCache = new Map<string, { stamp: string; pool: IdRange[] }>();

function fileText(file: string): { text: string; stamp: string } {
  try {
    const st = statSync(file, { bigint: true });
    return { text: readFileSync(file, 'utf8'), stamp: `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}` };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', stamp: 'missing' };
    throw new NstoolError(`cannot read ${file}: ${(err as Error).message}`, { code: SUBID, path: file, cause: err });
  }
}

/** The pool of USER from the subid files (see resolvePool). */
export function subidPool(user: string, files: { subuid?: string; subgid?: string } = {}): IdRange[] {
  const subuidFile = files.subuid ?? '/etc/subuid', subgidFile = files.subgid ?? '/etc/subgid';
  const u = fileText(subuidFile), g = fileText(subgidFile);
  const key = `${user}\0${subuidFile}\0${subgidFile}`;
  const stamp = `${u.stamp}|${g.stamp}`;
  const hit = poolCache.get(key);
  if (hit && hit.stamp === stamp) return hit.pool;
  const pool = resolvePool({ user, subuid: u.text, subgid: g.text, subuidFile, subgidFile, ...(/^\d+$/.test(user) ? { uid: Number(user) } : {}) });
  poolCache.set(key, { stamp, pool });
  return pool;
}

/** A subid user name as the files hold it: no ":", no newline, no NUL. */
export function validateSubidUser(user: unknown, what = 'autoUser'): string {
  if (typeof user !== 'string') throw invalidArg(`${what} must be a string, got ${showValue(user)}`, 'ERR_INVALID_ARG_TYPE');
  if (user === '' || user.length > 256 || /[:\n\r\0]/.test(user)) throw invalidArg(`${what} ${showValue(user)} is not a user name of /etc/subuid`);
  return user;
}
