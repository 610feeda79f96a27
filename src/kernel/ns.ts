// Namespaces: a userns with a netns owned by it, the id maps of a userns,
// and the one answer to "what is at this path": probeNs.
import { lstatSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { callAsync, callSync, fromNative } from '../errors.js';
import { core, poolCall, type CreateParams, type CreateResult, type NativeIdMaps, type NativeNsInfo, type PodNsParams, type PodNsResult, type Why } from './core.js';

/** CLONE_NEW* (what NS_GET_NSTYPE returns) to the names /proc/PID/ns uses. */
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

/** The user namespace that owns a namespace. */
export interface NsOwnerId {
  inode: number;
  dev: number;
  /** uid that created it (NS_GET_OWNER_UID). */
  uid: number;
  /** True when it is this process's own user namespace. */
  host: boolean;
}

/** What probeNs found at a path. */
export type NsProbe =
  /** A namespace: TYPE as /proc/PID/ns names it (or the number, for a type this table lacks). */
  | { state: 'ns'; path: string; type: string; inode: number; dev: number; owner: NsOwnerId | null }
  /** A regular file with nothing mounted on it: a pin whose namespace is gone. */
  | { state: 'stale'; path: string }
  | { state: 'missing'; path: string }
  /** A symbolic link, not followed. */
  | { state: 'symlink'; path: string }
  /** Anything else; it was not opened. */
  | { state: 'other'; path: string; what: OtherKind };

export type OtherKind = 'directory' | 'fifo' | 'socket' | 'character device' | 'block device';

/** A namespace, as probeNs describes it. */
export type NsInfo = Extract<NsProbe, { state: 'ns' }>;

/** A probe of a path that must be there (inspectNs). */
export type NsFound = Exclude<NsProbe, { state: 'missing' } | { state: 'symlink' }>;

export interface ProbeOptions {
  /** Follow a symbolic link at PATH (default false: a link is reported as one). */
  follow?: boolean;
  /** What the caller was doing, for the message of an error. */
  context?: string;
}

/** Nothing at the path any more: a missing component, a process gone from /proc. */
const GONE = new Set(['ENOENT', 'ENOTDIR', 'ESRCH']);

let selfUserns: { ino: number; dev: number } | undefined;
function isSelfUserns(ino: number, dev: number): boolean {
  selfUserns ??= statSync('/proc/self/ns/user');
  return ino === selfUserns.ino && dev === selfUserns.dev;
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Classifies by (l)stat what need not be opened; undefined for a regular file, which must be. */
function byStat(p: string, st: Stats): NsProbe | undefined {
  if (st.isFile()) return undefined;
  if (st.isSymbolicLink()) return { state: 'symlink', path: p };
  const what: OtherKind = st.isDirectory() ? 'directory' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'character device' : 'block device';
  return { state: 'other', path: p, what };
}

function byOpen(p: string, info: NativeNsInfo): NsProbe {
  if (!info.nsfs) return { state: 'stale', path: p };
  const owner = info.owner ? { inode: info.owner.ino, dev: info.owner.dev, uid: info.owner.uid, host: isSelfUserns(info.owner.ino, info.owner.dev) } : null;
  return { state: 'ns', path: p, type: NS_TYPES[info.type] ?? String(info.type), inode: info.ino, dev: info.dev, owner };
}

/** The file changed between the stat and the open: what the open's error says is there now. */
function raced(p: string, err: unknown, follow: boolean): NsProbe | undefined {
  const code = codeOf(err);
  if (code !== undefined && GONE.has(code)) return { state: 'missing', path: p };
  if (code === 'ELOOP' && !follow) return { state: 'symlink', path: p };
  return undefined;
}

// STRICT (inspectNs): nothing there, or a link not followed, is the error opening it gives.
async function probe(p: string, o: ProbeOptions, strict: boolean): Promise<NsProbe> {
  const follow = o.follow === true;
  const context = o.context ?? `inspecting ${p}`;
  let st: Stats | undefined;
  try {
    st = await (follow ? stat : lstat)(p);
  } catch (err) {
    if (!strict) {
      if (GONE.has(codeOf(err) ?? '')) return { state: 'missing', path: p };
      throw fromNative(err, context);
    }
  }
  const early = st && byStat(p, st);
  // Strictly, nothing there or a link not followed is what the open says (ENOENT, ELOOP...).
  if (early && !(strict && early.state === 'symlink')) return early;
  try {
    return byOpen(p, await core().inspectNs(p, !follow));
  } catch (err) {
    const now = strict ? undefined : raced(p, err, follow);
    if (now) return now;
    throw fromNative(err, context);
  }
}

function probeSync(p: string, o: ProbeOptions, strict: boolean): NsProbe {
  const follow = o.follow === true;
  const context = o.context ?? `inspecting ${p}`;
  let st: Stats | undefined;
  try {
    st = (follow ? statSync : lstatSync)(p);
  } catch (err) {
    if (!strict) {
      if (GONE.has(codeOf(err) ?? '')) return { state: 'missing', path: p };
      throw fromNative(err, context);
    }
  }
  const early = st && byStat(p, st);
  // Strictly, nothing there or a link not followed is what the open says (ENOENT, ELOOP...).
  if (early && !(strict && early.state === 'symlink')) return early;
  try {
    return byOpen(p, core().inspectNsSync(p, !follow));
  } catch (err) {
    const now = strict ? undefined : raced(p, err, follow);
    if (now) return now;
    throw fromNative(err, context);
  }
}

/**
 * What is at P, without blocking and, unless FOLLOW, without following a
 * link: a namespace (type, inode, owner), a stale pin, nothing, a link, or
 * something else. Only a regular file is opened (O_NONBLOCK, O_NOFOLLOW):
 * a FIFO or device there is reported, never touched. Real failures (EACCES,
 * EIO, ...) throw an NstoolError.
 */
export async function probeNs(p: string, o: ProbeOptions = {}): Promise<NsProbe> {
  return probe(p, o, false);
}

export function probeNsSync(p: string, o: ProbeOptions = {}): NsProbe {
  return probeSync(p, o, false);
}

/**
 * probeNs for a path that must be there: nothing there, or a link not
 * followed, is the error opening it gives (ENOENT, ENOTDIR, ELOOP...).
 */
export async function inspectNs(p: string, o: ProbeOptions = {}): Promise<NsFound> {
  return (await probe(p, o, true)) as NsFound;
}

export function inspectNsSync(p: string, o: ProbeOptions = {}): NsFound {
  return probeSync(p, o, true) as NsFound;
}

/**
 * The uid_map, gid_map and setgroups of the userns at P (OWNER: of the
 * userns that owns the namespace at P), read by a helper that joins it.
 */
export async function readIdMaps(p: string, owner: boolean, why: Why = {}): Promise<NativeIdMaps> {
  return callAsync(() => core().readIdMaps(p, owner), why.context, why.hints);
}

export function readIdMapsSync(p: string, owner: boolean, why: Why = {}): NativeIdMaps {
  return callSync(() => core().readIdMapsSync(p, owner), why.context, why.hints);
}

/** A user namespace and a netns owned by it, maps written, pinned (a helper child makes them). */
export function createUsernsNetns(params: CreateParams, why: Why = {}): Promise<CreateResult> {
  // Not async itself: poolCall's promise is handed on as it is (an async
  // function returning a promise would settle a tick or two after it).
  return poolCall(() => core().createUsernsNetns(params), why.context, why.hints);
}

export function createUsernsNetnsSync(params: CreateParams, why: Why = {}): CreateResult {
  return callSync(() => core().createUsernsNetnsSync(params), why.context, why.hints);
}

/**
 * New ipc and/or uts namespaces owned by the userns at params.userns (made by
 * a child that joins it), pinned at ipcPin / utsPin, the host name set in the
 * uts one.
 */
export async function createPodNs(params: PodNsParams, why: Why = {}): Promise<PodNsResult> {
  return callAsync(() => core().createPodNs(params), why.context, why.hints);
}

/**
 * The core's own answer for a namespace file (nsfs, NS_GET_NSTYPE number,
 * inode, owner), for the few callers that keep that shape; probeNs is the
 * one to use elsewhere. Opens the path (O_NONBLOCK; NOFOLLOW refuses a link).
 */
export async function inspectNsRaw(p: string, nofollow: boolean, why: Why = {}): Promise<NativeNsInfo> {
  return callAsync(() => core().inspectNs(p, nofollow), why.context, why.hints);
}

export function inspectNsRawSync(p: string, nofollow: boolean, why: Why = {}): NativeNsInfo {
  return callSync(() => core().inspectNsSync(p, nofollow), why.context, why.hints);
}
