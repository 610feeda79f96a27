// Pod network namespaces without root. The same steps as src/netns.ts, with
// the two that need privilege over the host done another way:
//   - maps: the caller's own uid/gid alone are written from here; wider maps
//     (from /etc/subuid, /etc/subgid) by newuidmap/newgidmap, on the pid of
//     a helper the core holds open (native HeldNs) until they are written;
//   - pins: the helper's namespace fds go over a unix socket to the user's
//     keeper, which bind-mounts them in its own mount namespace. The host
//     reaches them through /proc/KEEPER_PID/root/..., the path reported.
import { readFileSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';
import type { ExecInNetnsOptions, RunResult } from '../exec.js';
import { runInNamespaces } from '../exec.js';
import { assertNoHostRoot, formatIdMap, IdMapping, parseIdMap, parseKernelMap, sameIdMap, toKernelMap } from '../idmap.js';
import { heldCloseSync, heldReadMapsSync, heldSend, heldUsernsNetns, heldWriteSync, type HeldHelper } from '../kernel/held.js';
import { inspectNsRaw, inspectNsRawSync, NS_TYPES, readIdMaps } from '../kernel/ns.js';
import type { NativeNsInfo } from '../kernel/core.js';
import { showValue, validatePinName } from '../names.js';
import type { CreatePodNetnsOptions, DeleteResult, ListEntry, NetnsInfo, NsOwner, PinDirs, PodNetns } from '../netns.js';
import { DEFAULT_PIN_DIR, DEFAULT_USERNS_PIN_DIR, generateName, hostUsernsInode } from '../netns.js';
import { KEEPER, NEWIDMAP_FAILED, ROOTLESS_UNSUPPORTED, rootlessError, usernsDisabled } from './errors.js';
import { ensureKeeper, findKeeper, hostPath, KEEPER_TIMEOUT_MS, keeperCall, keeperGone } from './keeper.js';
import { checkReply, KeeperRef, parsePidLine } from './protocol.js';
import { checkRuntimeBase, ensureRuntimeDirs, RuntimeDirs, runtimeDirs } from './runtime-dir.js';
import { Caller, checkSubidMap, findIdmapTool, IdmapTool, isOwnIdOnly, writeWithTool } from './subid.js';
import { allocateRootless, AutoPlan, checkAllocDir, dropClaim, planAuto, RootlessRangeMode } from './idalloc.js';

/** Where a rootless pin is, besides the host path in `path`. */
export interface KeeperPin {
  /** The keeper holding the pin: `nsenter --user --mount --target PID` sees pinPath. */
  keeperPid: number;
  /** The pin inside the keeper's mount namespace. */
  pinPath: string;
}

export interface RootlessPodNetns extends PodNetns, KeeperPin {
  usernsPath: string;
}

const MAX_PIN_ATTEMPTS = 3;

// ---- input -------------------------------------------------------------------

/** Rootless pins live in the keeper; only the default pin dirs are accepted. */
function checkPinDirs(o: PinDirs | undefined): void {
  for (const [key, def] of [['pinDir', DEFAULT_PIN_DIR], ['usernsPinDir', DEFAULT_USERNS_PIN_DIR]] as const) {
    const v = o?.[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0')) throw invalidArg(`${key} must be an absolute path`);
    if (path.normalize(v) !== def) {
      throw rootlessError(
        ROOTLESS_UNSUPPORTED,
        `${key} ${showValue(v)} cannot be used without root: an unprivileged user cannot mount in the host's mount namespace`,
        "leave it unset: the pins live in the user's keeper (see `nstool list --json`: keeperPid, pinPath)",
      );
    }
  }
}

function caller(): Caller {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let user = String(uid);
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry: /etc/subuid may still name the uid
  }
  return { uid, gid, user };
}

function sysctl(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The switches that forbid unprivileged user namespaces, read before any side effect. */
function checkUsernsAllowed(): void {
  if (sysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') throw usernsDisabled('kernel.unprivileged_userns_clone is 0');
  if (sysctl('/proc/sys/user/max_user_namespaces') === '0') throw usernsDisabled('user.max_user_namespaces is 0');
}

interface Plan {
  name: string;
  /** Explicit maps; with auto, chosen under the allocation lock (empty until then). */
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  mode: RootlessRangeMode;
  auto?: AutoPlan;
  setgroups: 'allow' | 'deny';
  /** Set when the map needs newuidmap / newgidmap. */
  uidTool?: IdmapTool;
  gidTool?: IdmapTool;
  dirs: RuntimeDirs;
}

function optionalBool(v: unknown, what: string): boolean {
  if (v !== undefined && typeof v !== 'boolean') throw invalidArg(`${what} must be a boolean, got ${showValue(v)}`, 'ERR_INVALID_ARG_TYPE');
  return v === true;
}

function plan(opts: CreatePodNetnsOptions): Plan {
  if (opts === null || typeof opts !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  checkPinDirs(opts);
  const name = opts.name === undefined ? generateName() : validatePinName(opts.name);
  if (opts.setgroups !== undefined && opts.setgroups !== 'allow' && opts.setgroups !== 'deny') {
    throw invalidArg(`setgroups must be "allow" or "deny", got ${showValue(opts.setgroups)}`);
  }
  const allowHostRoot = optionalBool(opts.allowHostRoot, 'allowHostRoot');
  const shared = optionalBool(opts.allowSharedRanges, 'allowSharedRanges');
  const exclusive = optionalBool(opts.exclusiveRanges, 'exclusiveRanges');
  const isAuto = opts.uidMap === 'auto';
  if (shared && (exclusive || isAuto)) throw invalidArg(`allowSharedRanges cannot be combined with ${isAuto ? "uidMap 'auto'" : 'exclusiveRanges'}`);
  const mode: RootlessRangeMode = isAuto ? 'auto' : exclusive ? 'exclusive' : shared ? 'shared' : 'default';
  const c = caller();
  if (isAuto) {
    if (opts.gidMap !== undefined && opts.gidMap !== 'auto') throw invalidArg("gidMap must be omitted or 'auto' when uidMap is 'auto' (the pod gets one block for both)");
    const auto = planAuto({ ...opts, allowHostRoot }, c);
    // A block of subordinate ids: written by newuidmap and newgidmap.
    const p: Plan = { name, uidMap: [], gidMap: [], mode, auto, setgroups: opts.setgroups ?? 'allow', dirs: runtimeDirs() };
    p.uidTool = findIdmapTool('newuidmap');
    p.gidTool = findIdmapTool('newgidmap');
    checkRuntimeBase(p.dirs);
    checkUsernsAllowed();
    return p;
  }
  for (const k of ['autoUser', 'autoSize', 'autoRange'] as const) {
    if (opts[k] !== undefined) throw invalidArg(`${k} applies only with uidMap 'auto'`);
  }
  if (opts.gidMap === 'auto') throw invalidArg("gidMap 'auto' needs uidMap 'auto'");
  checkAllocDir(opts.allocDir);
  const uidMap = parseIdMap(opts.uidMap, 'uidMap');
  const gidMap = parseIdMap(opts.gidMap ?? opts.uidMap, 'gidMap');
  if (!allowHostRoot) {
    assertNoHostRoot(uidMap, 'uidMap');
    assertNoHostRoot(gidMap, 'gidMap');
  }
  const uidDirect = isOwnIdOnly(uidMap, c.uid);
  const gidDirect = isOwnIdOnly(gidMap, c.gid);
  // The kernel takes an unprivileged gid map only with setgroups denied:
  // otherwise the pod could drop the user's groups and pass deny-by-group
  // permissions.
  if (gidDirect && opts.setgroups === 'allow') {
    throw rootlessError(
      ROOTLESS_UNSUPPORTED,
      `setgroups "allow" needs a gid map written by newgidmap; gidMap ${formatIdMap(gidMap)} maps only your own gid`,
      'use setgroups "deny" (the default for such a map), or map gids from your /etc/subgid range',
    );
  }
  const p: Plan = { name, uidMap, gidMap, mode, setgroups: opts.setgroups ?? (gidDirect ? 'deny' : 'allow'), dirs: runtimeDirs() };
  if (!uidDirect) checkSubidMap(uidMap, 'uid', c, '/etc/subuid');
  if (!gidDirect) checkSubidMap(gidMap, 'gid', c, '/etc/subgid');
  if (!uidDirect) p.uidTool = findIdmapTool('newuidmap');
  if (!gidDirect) p.gidTool = findIdmapTool('newgidmap');
  checkRuntimeBase(p.dirs);
  checkUsernsAllowed();
  return p;
}

/**
 * Every check createPodNetnsRootless makes before its first side effect, for
 * callers that must refuse bad input before their own (sandbox create);
 * the setgroups it would write.
 */
export function checkPodNetnsRootless(opts: CreatePodNetnsOptions): { setgroups: 'allow' | 'deny' } {
  return { setgroups: plan(opts).setgroups };
}

// ---- create ------------------------------------------------------------------

async function startHelper(): Promise<HeldHelper> {
  try {
    return await heldUsernsNetns({ context: 'creating a user namespace and a network namespace' });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'EPERM' || code === 'EACCES') throw usernsDisabled(`clone(CLONE_NEWUSER) failed with ${code}`, err);
    throw err;
  }
}

function writeProc(h: HeldHelper, leaf: 'uid_map' | 'gid_map' | 'setgroups', text: string): void {
  heldWriteSync(h.handle, leaf, text, { context: `writing ${leaf} of the helper (pid ${h.pid})` });
}

/** Writes the maps, setgroups before the gid map, then reads them back. */
async function writeMaps(h: HeldHelper, p: Plan): Promise<void> {
  const tools: Array<Promise<void>> = [];
  if (p.uidTool) tools.push(writeWithTool(p.uidTool, h.pid, p.uidMap));
  else writeProc(h, 'uid_map', toKernelMap(p.uidMap));
  if (p.gidTool) {
    // newgidmap leaves a "deny" in place (it writes one itself only for a lone own gid).
    if (p.setgroups === 'deny') writeProc(h, 'setgroups', 'deny');
    tools.push(writeWithTool(p.gidTool, h.pid, p.gidMap));
  } else {
    writeProc(h, 'setgroups', 'deny');
    writeProc(h, 'gid_map', toKernelMap(p.gidMap));
  }
  // The two tools run at once, and both are waited for even when one
  // fails: the helper is reaped (its pid free for reuse) only after neither
  // can still write to /proc/<pid>.
  const failed = (await Promise.allSettled(tools)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  // The kernel's own view, so a newuidmap that exits 0 having written
  // something else (or nothing) never yields a pin.
  const m = heldReadMapsSync(h.handle, { context: `reading the maps of the helper (pid ${h.pid})` });
  const got = { uid: parseKernelMap(m.uidMap), gid: parseKernelMap(m.gidMap), setgroups: m.setgroups.trim() };
  if (!sameIdMap(got.uid, p.uidMap) || !sameIdMap(got.gid, p.gidMap) || got.setgroups !== p.setgroups) {
    throw rootlessError(
      NEWIDMAP_FAILED,
      `the new user namespace holds uid map ${formatIdMap(got.uid) || 'none'}, gid map ${formatIdMap(got.gid) || 'none'}, ` +
        `setgroups ${got.setgroups}; asked for ${formatIdMap(p.uidMap)}, ${formatIdMap(p.gidMap)}, ${p.setgroups}`,
      'newuidmap / newgidmap on PATH did not write what was asked: check which programs those are',
    );
  }
}

/** Hands both fds to the keeper; a keeper that is gone (or never was) is (re)started. */
async function pinInKeeper(d: RuntimeDirs, h: HeldHelper, name: string): Promise<KeeperRef> {
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await heldSend(h.handle, d.sock, `pin ${name}\n`, KEEPER_TIMEOUT_MS, { context: `pinning ${name}` });
      const ref = parsePidLine(`${checkReply(reply, 'pin')}\n`);
      if (!ref) throw rootlessError(KEEPER, `the keeper answered ${showValue(reply)} to pin`, 'nstool and its keeper disagree: kill the keeper and retry');
      return ref;
    } catch (err) {
      if (!keeperGone(err) || attempt >= MAX_PIN_ATTEMPTS) throw err;
      await ensureKeeper(d);
    }
  }
}

async function unpinQuietly(d: RuntimeDirs, name: string): Promise<void> {
  try {
    await keeperCall(d, `unpin ${name}`);
  } catch {
    // the keeper is gone: so is the pin
  }
}

/** createPodNetns without root (see the file comment). */
export async function createPodNetnsRootless(opts: CreatePodNetnsOptions): Promise<RootlessPodNetns> {
  const p = plan(opts);
  ensureRuntimeDirs(p.dirs);
  return allocateRootless(p.dirs, { name: p.name, mode: p.mode, ...(p.auto ? { auto: p.auto } : { uidMap: p.uidMap, gidMap: p.gidMap }) }, async (uidMap, gidMap) => {
    const out = await createWith({ ...p, uidMap, gidMap });
    return { value: out, usernsIno: out.usernsInode, undo: () => unpinQuietly(p.dirs, p.name) };
  });
}

async function createWith(p: Plan): Promise<RootlessPodNetns> {
  const h = await startHelper();
  try {
    await writeMaps(h, p);
    const ref = await pinInKeeper(p.dirs, h, p.name);
    const pinPath = path.join(p.dirs.netns, p.name);
    const usernsPinPath = path.join(p.dirs.userns, p.name);
    const out: RootlessPodNetns = {
      name: p.name,
      path: hostPath(ref, pinPath),
      netnsInode: h.netnsIno,
      usernsInode: h.usernsIno,
      usernsPath: hostPath(ref, usernsPinPath),
      uidMap: p.uidMap,
      gidMap: p.gidMap,
      setgroups: p.setgroups,
      keeperPid: ref.pid,
      pinPath,
    };
    // The pin as the host reaches it must be the namespace we made.
    const seen = await inspectNsRaw(out.path, true, { context: `inspecting ${out.path}` }).catch((err: unknown) => err as Error);
    if (seen instanceof Error || !seen.nsfs || seen.ino !== h.netnsIno) {
      await unpinQuietly(p.dirs, p.name);
      throw rootlessError(KEEPER, `the keeper's pin ${out.path} is not the namespace that was made`, 'kill the keeper (its pid is in keeper.pid) and retry', {
        path: out.path,
        ...(seen instanceof Error ? { cause: seen } : {}),
      });
    }
    return out;
  } finally {
    heldCloseSync(h.handle);
  }
}

// ---- delete, inspect, list, exec ---------------------------------------------------

interface Target {
  /** Set for a pin the keeper holds. */
  name?: string;
  keeper?: KeeperRef;
  /** What to open: a pin's host path, or a path given as it is. */
  path: string;
}

function noPin(name: string, d: RuntimeDirs): NstoolError {
  return new NstoolError(`no pin ${showValue(name)}: no keeper runs for this user (${d.pidFile})`, {
    code: 'ENOENT',
    errno: -2,
    path: path.join(d.netns, name),
    hint: 'no namespace is pinned; `nstool list` shows the pinned namespaces',
  });
}

/**
 * A name, or a pin's path as the keeper sees it, or as the host reaches it
 * (/proc/KEEPER/root/...): a pin of the keeper. Any other absolute path
 * stands for itself.
 */
function resolveTarget(nameOrPath: string, o: PinDirs, d: RuntimeDirs): Target {
  checkPinDirs(o);
  let name: string | undefined;
  if (typeof nameOrPath === 'string' && nameOrPath.startsWith('/')) {
    if (nameOrPath.includes('\0')) throw invalidArg('path must not contain NUL');
    const p = path.normalize(nameOrPath);
    const viaProc = /^\/proc\/([1-9]\d*)\/root(\/.*)$/.exec(p);
    const inner = viaProc ? viaProc[2]! : p;
    if (path.dirname(inner) !== d.netns) return { path: p };
    const keeper = findKeeper(d);
    if (viaProc && keeper?.pid !== Number(viaProc[1])) return { path: p };
    name = validatePinName(path.basename(inner));
  } else {
    name = validatePinName(nameOrPath);
  }
  const keeper = findKeeper(d);
  if (!keeper) return { name, path: path.join(d.netns, name) };
  return { name, keeper, path: hostPath(keeper, path.join(d.netns, name)) };
}

function dirsForRead(): RuntimeDirs {
  const d = runtimeDirs();
  checkRuntimeBase(d);
  return d;
}

function toOwner(info: NativeNsInfo): NsOwner | null {
  if (!info.owner) return null;
  return { inode: info.owner.ino, uid: info.owner.uid, host: info.owner.ino === hostUsernsInode() };
}

/** deletePodNetns without root: the keeper unpins (and exits after the last). */
export async function deletePodNetnsRootless(nameOrPath: string, opts: PinDirs = {}): Promise<DeleteResult> {
  const d = dirsForRead();
  const t = resolveTarget(nameOrPath, opts, d);
  if (t.name === undefined) {
    throw rootlessError(ROOTLESS_UNSUPPORTED, `${showValue(t.path)} is not a pin of this user's keeper: without root only those can be deleted`, 'give the pin name; `nstool list` shows them');
  }
  const out: DeleteResult = { name: t.name, path: t.path, existed: false, stale: false };
  let reply: string;
  try {
    reply = await keeperCall(d, `unpin ${t.name}`);
  } catch (err) {
    if (keeperGone(err)) return out; // no keeper: no pin
    throw err;
  }
  const [net, user] = reply.split(' ');
  out.existed = net === '1' || user === '1';
  dropClaim(d, t.name);
  if (user === '1' && t.keeper) out.usernsPath = hostPath(t.keeper, path.join(d.userns, t.name));
  return out;
}

/** inspectNetns without root: a pin through its keeper, or any namespace file. */
export async function inspectNetnsRootless(nameOrPath: string, opts: PinDirs = {}): Promise<NetnsInfo & Partial<KeeperPin>> {
  const d = dirsForRead();
  const t = resolveTarget(nameOrPath, opts, d);
  if (t.name !== undefined && !t.keeper) throw noPin(t.name, d);
  const named = t.name !== undefined;
  const info = await inspectNsRaw(t.path, named, { context: `inspecting ${t.path}` });
  if (!info.nsfs) {
    throw new NstoolError(`${t.path} is not a namespace (nothing is mounted on it)`, { code: 'EINVAL', path: t.path, hint: 'a stale pin: `nstool delete` removes it' });
  }
  const type = NS_TYPES[info.type] ?? String(info.type);
  const maps = await readIdMaps(t.path, type !== 'user', { context: `reading id maps of ${t.path}` });
  const out: NetnsInfo & Partial<KeeperPin> = {
    path: t.path,
    type,
    inode: info.ino,
    dev: info.dev,
    owner: toOwner(info),
    uidMap: parseKernelMap(maps.uidMap),
    gidMap: parseKernelMap(maps.gidMap),
    setgroups: maps.setgroups.trim(),
  };
  if (t.name !== undefined && t.keeper) {
    out.name = t.name;
    const upath = hostPath(t.keeper, path.join(d.userns, t.name));
    try {
      const u = inspectNsRawSync(upath, true);
      if (u.nsfs && info.owner && u.ino === info.owner.ino) out.usernsPath = upath;
    } catch {
      // no userns pin for this name
    }
    out.keeperPid = t.keeper.pid;
    out.pinPath = path.join(d.netns, t.name);
  }
  return out;
}

/** listNetns without root: the pins the user's keeper holds (none without a keeper). */
export async function listNetnsRootless(pinDir?: string): Promise<Array<ListEntry & KeeperPin>> {
  checkPinDirs(pinDir === undefined ? {} : { pinDir });
  const d = dirsForRead();
  const keeper = findKeeper(d);
  if (!keeper) return [];
  const dir = hostPath(keeper, d.netns);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []; // it exited meanwhile
    throw err;
  }
  const out: Array<ListEntry & KeeperPin> = [];
  for (const name of names.sort()) {
    const p = path.join(dir, name);
    const base = { name, path: p, keeperPid: keeper.pid, pinPath: path.join(d.netns, name) };
    const st = await lstat(p).catch(() => null);
    if (!st) continue;
    if (!st.isFile()) {
      out.push({ ...base, kind: 'other' });
      continue;
    }
    try {
      const info = await inspectNsRaw(p, true);
      if (info.nsfs && NS_TYPES[info.type] === 'net') out.push({ ...base, kind: 'netns', inode: info.ino, owner: toOwner(info) });
      else out.push({ ...base, kind: info.nsfs ? 'other' : 'stale' });
    } catch {
      out.push({ ...base, kind: 'other' });
    }
  }
  return out;
}

/**
 * execInNetns without root: the netns is joined after the user namespace
 * that owns it (only that one gives an unprivileged caller the right to),
 * and the caller's supplementary groups stay (dropping them needs privilege
 * in the caller's own namespace).
 */
export async function execInNetnsRootless(nameOrPath: string, argv: readonly string[], opts: ExecInNetnsOptions = {}): Promise<RunResult> {
  const { userns = true, pinDir, usernsPinDir, ...rest } = opts;
  const d = dirsForRead();
  const t = resolveTarget(nameOrPath, { ...(pinDir !== undefined ? { pinDir } : {}), ...(usernsPinDir !== undefined ? { usernsPinDir } : {}) }, d);
  if (!userns) {
    throw rootlessError(ROOTLESS_UNSUPPORTED, 'without root a netns can be joined only together with the user namespace that owns it', 'drop --no-userns (userns: false)');
  }
  if (t.name !== undefined && !t.keeper) throw noPin(t.name, d);
  const info = await inspectNsRaw(t.path, t.name !== undefined, { context: `inspecting ${t.path}` });
  if (!info.nsfs || NS_TYPES[info.type] !== 'net') {
    throw new NstoolError(`${t.path} is not a network namespace`, {
      code: 'EINVAL',
      path: t.path,
      hint: info.nsfs ? 'give the path of a netns' : 'a stale pin: `nstool delete` removes it',
    });
  }
  const joinOwner = info.owner !== null && info.owner.ino !== hostUsernsInode();
  return runInNamespaces(argv, { ...rest, netns: t.path, ownerUserns: joinOwner, dropGroups: false });
}
