// A container in a pod's pinned namespaces: it joins the netns and the
// userns that owns it, with the maps read from that userns. The shared
// rootfs is the read-only lower layer of an overlay of the container's own
// (src/pod/rootfs.ts); root-owned volumes are shown to the pod's root
// through idmapped mounts nstool makes itself when the runtime cannot
// (runc 1.1.5).
//
// Files at rest: BUNDLE is 0710 root:<pod root's host gid> (the runtime's
// init runs as the pod's root and must pass through it; nobody else may),
// every file in it 0600; the dirs above it that nstool makes are 0711.
//
// Without root the same steps run with the runtime in its rootless mode, as
// the user: bundles, runtime state and logs in the user's runtime dir (0700),
// the rootfs read-only with no mount on the host, and what only root can do
// refused up front (src/rootless/pod.ts, src/oci/rootless.ts).
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchownSync, openSync, realpathSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readdir, readFile, realpath, rm, rmdir, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { abortError, throwIfAborted, validateSignal } from '../abort.js';
import { writeFileAtomic } from '../atomic-file.js';
import { invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import { IdMapping, toHostId, validateIdMap } from '../idmap.js';
import { buildSpec, specNeedsIdmap, writeBundle } from '../oci/index.js';
import type { BuildSpecOptions, MountRequest, Spec } from '../oci/index.js';
import { readMountInfo } from '../oci/mounts.js';
import { renameNoReplace } from '../kernel/fs.js';
import { unpin } from '../kernel/pin.js';
import { DEFAULT_USERNS_PIN_DIR, PinDirs, validateName } from '../netns.js';
import { validateContainerId } from '../runc/args.js';
import { RuncClient, RuncClientOptions } from '../runc/client.js';
import { isExists, isNotFound } from '../runc/error.js';
import { idmapSupport } from '../runc/idmap-gate.js';
import { applyIdmapFallback, checkIdmapVolumes, unstage } from './idmap-fallback.js';
import { checkOverlayPath, makeOverlayDirs, mountOverlay, rootfsLayout, stageLower } from './rootfs.js';
import { pinPodUserns, planPodUserns } from './userns.js';
import { untrustedPath } from '../trusted-path.js';
import { channels, traced } from '../trace.js';
import { rootlessSpec } from '../oci/rootless.js';
import { currentMode } from '../rootless/mode.js';
import { ROOTLESS_UNSUPPORTED, rootlessError } from '../rootless/errors.js';
import {
  checkRootlessBase,
  checkRootlessOptions,
  checkUserDir,
  ensureUserDirs,
  rootlessPodDirs,
  rootlessRuntime,
  rootlessStateDir,
  withoutKeeperPinDirs,
  type RootlessPodDirs,
} from '../rootless/pod.js';

export const DEFAULT_STATE_DIR = '/run/nstool/containers';
/** nstool's own dir: it and the dirs under it on a bundle's way are kept 0711. */
const NSTOOL_RUN_DIR = '/run/nstool';
const STATE_FILE = 'nstool-container.json';
const BUNDLE_MODE = 0o710;
const PARENT_MODE = 0o711;
/** ".<bundle name>.tmp-<12 hex>": a bundle being built, renamed into place once it has a record. */
const LITTER_RE = /^\.(.+)\.tmp-[0-9a-f]{12}$/;
const TMP_SUFFIX_LEN = '..tmp-'.length + 12;
const NAME_MAX = 255;
const RECORD_MAX = 1 << 20;

export interface PodContainerOptions extends PinDirs {
  id: string;
  /** The pod netns: a pin name or a path. */
  netns: string;
  /** The pod's ipc and uts namespaces to join (a sandbox's pins: sandboxNamespaces); new ones when absent. */
  ipcPath?: string;
  utsPath?: string;
  /** Root filesystem on the host; the read-only lower layer of the container's overlay unless idmapRootfs is false. */
  rootfs: string;
  command: string[];
  env?: Record<string, string> | string[];
  cwd?: string;
  user?: string | number;
  hostname?: string;
  mounts?: MountRequest[];
  /** A client, or options for one (default: runc with its default root). */
  runtime?: RuncClient | RuncClientOptions;
  /** Where bundles live (default /run/nstool/containers); bundleDir overrides it for one container. */
  stateDir?: string;
  bundleDir?: string;
  /**
   * Show the rootfs through a read-only idmapped mount of the pod's userns,
   * under a writable overlay of this container's own (default true). False
   * hands the rootfs to the runtime as it is.
   */
  idmapRootfs?: boolean;
  /**
   * Allow writable idmapped volumes whose source other host users can reach
   * (refused by default: the pod's root writes there as host root).
   */
  allowUnsafeIdmapVolumes?: boolean;
  /** Further buildSpec options (capabilities, annotations, ...). */
  spec?: Partial<BuildSpecOptions>;
  /** Aborting between steps removes what was made and rejects with code ABORT_ERR. */
  signal?: AbortSignal;
  /** Called at each point of the create (RUN_POD_STEPS), for tests and progress reports. */
  onStep?: StepHook;
}

/** A point of runPodContainer: "planned", "after-userns", "before-lower", ... */
export type StepHook = (point: string) => void | Promise<void>;

/** The points runPodContainer passes, in order ("before-volume" once per staged volume). */
export const RUN_POD_STEPS = [
  'planned',
  'after-bundle-tmp',
  'after-bundle-record',
  'after-bundle',
  'after-userns',
  'before-lower',
  'after-lower',
  'before-overlay',
  'after-overlay',
  'before-volume',
  'after-volumes',
  'after-config',
  'after-stdio',
  'after-create',
  'after-pid',
  'after-start',
] as const;

/** run-pod's abort: what it had made is removed before this is thrown. */
function runPodAborted(reason: unknown): NstoolError {
  return abortError('run-pod was aborted; what it had made was removed', reason);
}

/** What removal needs, saved in the bundle so `rm-pod` works from another process. */
export interface PodContainerRecord {
  id: string;
  bundle: string;
  netnsPath: string;
  usernsPath: string;
  /** True when this container made the userns pin (removed with it). */
  usernsPinned: boolean;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /** rootless: the runtime ran in its rootless mode, as the user (src/rootless/pod.ts). */
  runtime: { binary: string; root?: string; rootless?: boolean };
  /** Staging mounts nstool made (unmounted on removal). */
  staged: string[];
  stdout: string;
  stderr: string;
  pid?: number;
}

function client(r: PodContainerOptions['runtime']): RuncClient {
  return r instanceof RuncClient ? r : new RuncClient(r ?? {});
}

function absPath(p: unknown, what: string): string {
  return path.normalize(requireAbsolute(p, what));
}

/** DIR and every dir above it, from "/" down. */
function selfAndAncestors(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    out.unshift(d);
    if (d === path.dirname(d)) return out;
  }
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Whether the pod's root (host UID/GID, no other groups) may search a dir with these stats. */
function podCanSearch(st: Stats, uid: number, gid: number): boolean {
  if (st.uid === uid) return (st.mode & 0o100) !== 0;
  if (st.gid === gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

function notTraversable(dir: string, st: Stats, hostUid: number, what: string, p: string): NstoolError {
  return new NstoolError(`the pod's root (host uid ${hostUid}) cannot reach ${what} ${p}: ${dir} has mode ${(st.mode & 0o7777).toString(8)}`, {
    code: 'ERR_NSTOOL_BUNDLE_PATH',
    path: dir,
    hint: `give every directory on the way search permission for others (chmod o+x ${dir}) or choose another place`,
  });
}

/**
 * The pod's root (an unmapped-to-host uid) must traverse every directory on
 * the way to P: refuse a path with a dir it cannot search.
 */
async function checkTraversable(p: string, hostUid: number, hostGid: number, what: string): Promise<void> {
  for (const dir of selfAndAncestors(path.dirname(p)).reverse()) {
    const st = await stat(dir).catch(() => null);
    if (st && st.isDirectory() && !podCanSearch(st, hostUid, hostGid)) throw notTraversable(dir, st, hostUid, what, p);
  }
}

async function ownRunDir(): Promise<string> {
  return realpath(NSTOOL_RUN_DIR).catch(() => NSTOOL_RUN_DIR);
}

function isOwn(dir: string, own: string): boolean {
  return dir === own || dir.startsWith(`${own}/`);
}

/**
 * Checks, without side effects, that BUNDLE can be made: it does not exist;
 * every existing dir above it is root's and writable by root alone (or
 * sticky), so nobody can swap the bundle for a link between our checks and
 * our mounts; and the pod's root can pass through each (nstool's own dirs
 * are fixed to 0711 when made).
 */
async function checkBundlePath(bundle: string, id: string, hostUid: number, hostGid: number): Promise<void> {
  if (await exists(bundle)) {
    throw new NstoolError(`cannot make the bundle ${bundle}: it exists`, {
      code: 'EEXIST',
      path: bundle,
      hint: `container ${id} exists or was not removed: \`nstool rm-pod ${id}\``,
    });
  }
  let d = path.dirname(bundle);
  while (!(await exists(d))) d = path.dirname(d);
  await checkParentsTrusted(bundle, d);
  const real = await realpath(d).catch((err: NodeJS.ErrnoException) => {
    throw new NstoolError(`the bundle ${bundle} cannot be made: ${d}: ${err.message}`, { code: 'ERR_NSTOOL_BUNDLE_PATH', path: d, cause: err });
  });
  const own = await ownRunDir();
  for (const dir of selfAndAncestors(real)) {
    const st = await stat(dir);
    if (!podCanSearch(st, hostUid, hostGid) && !isOwn(dir, own)) throw notTraversable(dir, st, hostUid, 'the bundle', bundle);
  }
}

/**
 * Refuses (ERR_NSTOOL_BUNDLE_PATH) a bundle whose existing dirs up to DIR
 * another user could swap: one not root's, writable by others without the
 * sticky bit, or a link that is not root's (followed only when it is).
 */
async function checkParentsTrusted(bundle: string, dir: string): Promise<void> {
  const bad = await untrustedPath(dir, true);
  if (bad === undefined) return;
  throw new NstoolError(`the bundle ${bundle} cannot be made safely: ${bad.dir} ${bad.why}; another user could swap the bundle for a link`, {
    code: 'ERR_NSTOOL_BUNDLE_PATH',
    path: bad.dir,
    hint: 'keep bundles under directories owned by root and writable by root alone (the default /run/nstool/containers)',
  });
}

/**
 * Makes the missing dirs above a bundle 0711 (the pod's root passes
 * through; nobody lists them) and sets nstool's own dirs on the way
 * (/run/nstool and below) to 0711. Other existing dirs are left as they
 * are: checkBundlePath refused unsafe ones.
 */
async function ensureParents(dir: string, bundle: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; !(await exists(d)); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      await mkdir(d, { mode: PARENT_MODE });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // made meanwhile: not ours to chmod
      throw err;
    }
    await chmod(d, PARENT_MODE); // the umask narrowed it
  }
  const own = await ownRunDir();
  for (const d of selfAndAncestors(await realpath(dir))) {
    if (!isOwn(d, own)) continue;
    const st = await lstat(d);
    if (st.isDirectory() && st.uid === 0 && (st.mode & 0o7777) !== PARENT_MODE) await chmod(d, PARENT_MODE);
  }
  // A dir another user made between checkBundlePath and here (in a sticky
  // dir such as /tmp) would let them swap the bundle: checked again, whole.
  await checkParentsTrusted(bundle, dir);
}

async function saveRecord(r: PodContainerRecord, dir = r.bundle): Promise<void> {
  await writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(r, null, 2), 0o600);
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY).catch(() => null);
  if (dh) await dh.sync().catch(() => {}).finally(() => dh.close());
}

/**
 * Makes the bundle with its record in one step: built under a temporary
 * sibling name and renamed into place (never over an existing one), so a
 * bundle under its final name always has a record, and a crash leaves at
 * most a ".<name>.tmp-..." dir that removeBundleLitter takes away.
 */
async function createBundle(r: PodContainerRecord, rootGid: number | undefined, step: StepHook): Promise<void> {
  const tmp = path.join(path.dirname(r.bundle), `.${path.basename(r.bundle)}.tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    await step('after-bundle-tmp');
    await saveRecord(r, tmp);
    // Without root (no rootGid) the bundle stays the user's, 0700: only the runtime, as the user, reads it.
    if (rootGid !== undefined) {
      await chown(tmp, 0, rootGid);
      await chmod(tmp, BUNDLE_MODE);
    }
    await step('after-bundle-record');
    await renameNoReplace(tmp, r.bundle, {
      context: `making the bundle ${r.bundle}`,
      hints: {
        EEXIST: `container ${r.id} exists or was not removed: \`nstool rm-pod ${r.id}\``,
        ENOTEMPTY: `container ${r.id} exists or was not removed: \`nstool rm-pod ${r.id}\``,
      },
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
  await syncDir(path.dirname(r.bundle));
}

function isAbsNormal(p: unknown): p is string {
  return typeof p === 'string' && p.startsWith('/') && !p.includes('\0') && path.normalize(p) === p && (p === '/' || !p.endsWith('/'));
}

function isIdMap(m: unknown): m is IdMapping[] {
  if (!Array.isArray(m) || m.some((x) => x === null || typeof x !== 'object')) return false;
  try {
    validateIdMap(m as IdMapping[]);
    return true;
  } catch {
    return false;
  }
}

interface RecordExpect {
  id: string;
  bundle: string;
  /** Dirs a userns pin the container made may be in. */
  usernsPinDirs: string[];
}

/** RAW as a record of the container ID in BUNDLE, or undefined when any field could lead elsewhere. */
function validRecord(raw: unknown, e: RecordExpect): PodContainerRecord | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const inBundle = (p: unknown) => isAbsNormal(p) && p.startsWith(`${e.bundle}/`);
  const rt = r['runtime'] as Record<string, unknown> | null;
  const ok =
    r['id'] === e.id &&
    r['bundle'] === e.bundle &&
    isAbsNormal(r['netnsPath']) &&
    isAbsNormal(r['usernsPath']) &&
    typeof r['usernsPinned'] === 'boolean' &&
    (!r['usernsPinned'] || (e.usernsPinDirs.includes(path.dirname(r['usernsPath'])) && validName(path.basename(r['usernsPath'])))) &&
    isIdMap(r['uidMap']) &&
    isIdMap(r['gidMap']) &&
    rt !== null &&
    typeof rt === 'object' &&
    typeof rt['binary'] === 'string' &&
    (isAbsNormal(rt['binary']) || /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(rt['binary'])) &&
    (rt['root'] === undefined || isAbsNormal(rt['root'])) &&
    (rt['rootless'] === undefined || typeof rt['rootless'] === 'boolean') &&
    Array.isArray(r['staged']) &&
    r['staged'].every(inBundle) &&
    r['stdout'] === path.join(e.bundle, 'stdout.log') &&
    r['stderr'] === path.join(e.bundle, 'stderr.log') &&
    (r['pid'] === undefined || (Number.isInteger(r['pid']) && (r['pid'] as number) > 0));
  return ok ? (raw as PodContainerRecord) : undefined;
}

/** Who owns nstool's bundles: root, or the user itself without root. */
function ownerUid(): number {
  return currentMode() === 'rootless' ? (process.getuid?.() ?? 0) : 0;
}

/**
 * The bundle dir run-pod, rm-pod and logs use: STATE_DIR, where the
 * default (root's) stands for the user's own dir without root.
 */
export function podStateDir(stateDir?: string): string {
  if (currentMode() === 'rootless') return rootlessStateDir(stateDir, DEFAULT_STATE_DIR, rootlessPodDirs());
  return absPath(stateDir ?? DEFAULT_STATE_DIR, 'stateDir');
}

function validName(n: string): boolean {
  try {
    validateName(n);
    return true;
  } catch {
    return false;
  }
}

/**
 * The record of container ID in BUNDLE, validated before any of its paths
 * is used: a record that is missing, not root's, unreadable or that names
 * anything outside the bundle (or a pin outside the pin dirs) is no record.
 */
export async function readRecord(bundle: string, id: string, o: Pick<PinDirs, 'usernsPinDir'> = {}): Promise<PodContainerRecord | undefined> {
  const owner = ownerUid();
  try {
    const dir = await lstat(bundle);
    if (!dir.isDirectory() || dir.uid !== owner) return undefined;
    const fh = await open(path.join(bundle, STATE_FILE), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.uid !== owner || (st.mode & 0o022) !== 0 || st.size > RECORD_MAX) return undefined;
      const raw = JSON.parse(await fh.readFile('utf8')) as unknown;
      const pinDirs = [DEFAULT_USERNS_PIN_DIR, ...(o.usernsPinDir !== undefined ? [path.normalize(o.usernsPinDir)] : [])];
      return validRecord(raw, { id, bundle, usernsPinDirs: pinDirs });
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

export interface LitterOptions {
  /** Only litter of the bundle with this name (default: any). */
  name?: string;
  /** Only litter of bundles whose name starts with this (gc: its instance's names). */
  prefix?: string;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Leave litter younger than this (default 60 s): a create in flight holds one for milliseconds. */
  minAgeMs?: number;
}

/**
 * Removes what a create killed before its bundle was renamed into place left
 * in DIR (a dir holding bundles): root's dirs named ".<name>.tmp-<12 hex>"
 * that hold nothing but a record and have nothing mounted under them.
 * Anything else is left alone. Returns the paths removed.
 */
export async function removeBundleLitter(dir: string, o: LitterOptions = {}): Promise<string[]> {
  const parent = absPath(dir, 'dir');
  const minAge = o.minAgeMs ?? 60_000;
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return removed;
  }
  for (const n of names.sort()) {
    const m = LITTER_RE.exec(n);
    if (!m || (o.name !== undefined && m[1] !== o.name) || (o.prefix !== undefined && !m[1]!.startsWith(o.prefix))) continue;
    const p = path.join(parent, n);
    try {
      const st = await lstat(p);
      if (!st.isDirectory() || st.uid !== ownerUid() || Date.now() - st.mtimeMs < minAge) continue;
      if (mountsUnder(p, true).length > 0) continue;
      const entries = await readdir(p);
      if (!entries.every((e) => e === STATE_FILE || e.startsWith(`.${STATE_FILE}.tmp-`))) continue;
      if (o.dryRun) {
        removed.push(p);
        continue;
      }
      for (const e of entries) await unlink(path.join(p, e));
      await rmdir(p);
      removed.push(p);
    } catch {
      // gone meanwhile, or not what it looked like: leave it
    }
  }
  return removed;
}

/**
 * Files the container's root can open as its stdio (a socketpair or
 * root-owned pipe it cannot). Without root they stay the user's: the
 * container writes to the fd it inherits, but cannot reopen it by path.
 */
function openStdio(file: string, uid: number, gid: number, chownTo: boolean): number {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_APPEND, 0o600);
  if (!chownTo) return fd;
  try {
    fchownSync(fd, uid, gid);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Builds the spec a pod container gets (without side effects but reading the rootfs's /etc/passwd). */
export function podSpec(o: {
  rootfs: string;
  command: string[];
  netnsPath: string;
  usernsPath: string;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  env?: Record<string, string> | string[];
  cwd?: string;
  user?: string | number;
  hostname?: string;
  ipcPath?: string;
  utsPath?: string;
  mounts?: MountRequest[];
  spec?: Partial<BuildSpecOptions>;
  /** The userns's setgroups, when the caller planned usernsPath as the netns's owner (it may not be pinned yet). */
  setgroups?: string;
}): Spec {
  return buildSpec({
    ...o.spec,
    rootfs: o.rootfs,
    command: o.command,
    netnsPath: o.netnsPath,
    usernsPath: o.usernsPath,
    uidMappings: o.uidMap,
    gidMappings: o.gidMap,
    ...(o.env !== undefined ? { env: o.env } : {}),
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
    ...(o.ipcPath !== undefined ? { ipcPath: o.ipcPath } : {}),
    ...(o.utsPath !== undefined ? { utsPath: o.utsPath } : {}),
    ...(o.mounts !== undefined ? { mounts: o.mounts } : {}),
    ...(o.setgroups !== undefined ? { namespacesChecked: { setgroups: o.setgroups } } : {}),
  });
}

/**
 * Creates and starts a container in the pod's namespaces. Everything is
 * checked before the first side effect; on any later failure, everything
 * made so far is undone (container, staging mounts, bundle, userns pin).
 */
export async function runPodContainer(o: PodContainerOptions): Promise<PodContainerRecord> {
  if (o === null || typeof o !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  if (o.onStep !== undefined && typeof o.onStep !== 'function') throw invalidArg('onStep must be a function', 'ERR_INVALID_ARG_TYPE');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArg('signal must be an AbortSignal', 'ERR_INVALID_ARG_TYPE');
  if (o.signal?.aborted) throw runPodAborted(o.signal.reason);
  const id = validateContainerId(o.id);
  const rootfs = absPath(o.rootfs, 'rootfs');
  if (!Array.isArray(o.command) || o.command.length === 0) throw invalidArg('command must be a non-empty array');
  // Without root: the user's dirs, the runtime's rootless mode, and no option only root can honour.
  const rl = currentMode() === 'rootless' ? rootlessPodDirs() : undefined;
  if (rl) {
    checkRootlessBase(rl);
    checkRootlessOptions(o);
  }
  const stateDir = rl ? rootlessStateDir(o.stateDir, DEFAULT_STATE_DIR, rl) : absPath(o.stateDir ?? DEFAULT_STATE_DIR, 'stateDir');
  let bundle = o.bundleDir !== undefined ? absPath(o.bundleDir, 'bundleDir') : path.join(stateDir, id);
  if (rl) bundle = checkUserDir(bundle, 'bundleDir', rl);
  if (bundle === '/') throw invalidArg('bundleDir must not be /');
  if (Buffer.byteLength(path.basename(bundle)) > NAME_MAX - TMP_SUFFIX_LEN) {
    throw invalidArg(`the bundle name ${path.basename(bundle)} is longer than ${NAME_MAX - TMP_SUFFIX_LEN} bytes`);
  }
  const idmapRootfs = o.idmapRootfs !== false;
  if (idmapRootfs && !rl) checkOverlayPath(bundle);
  const runtime = rl ? rootlessRuntime(o.runtime, rl) : client(o.runtime);
  const signal = validateSignal(o.signal);
  throwIfAborted(signal, `running container ${id}`);
  return traced(channels.podRun, () => ({ id, netns: o.netns }), () => runChecked(o, id, rootfs, bundle, idmapRootfs, runtime, signal, rl));
}

/** Without root: the bundle must not exist; its dirs are the user's own (made 0700). */
async function checkRootlessBundle(bundle: string, id: string): Promise<void> {
  if (await exists(bundle)) {
    throw new NstoolError(`cannot make the bundle ${bundle}: it exists`, {
      code: 'EEXIST',
      path: bundle,
      hint: `container ${id} exists or was not removed: \`nstool rm-pod ${id}\``,
    });
  }
}

async function runChecked(
  o: PodContainerOptions,
  id: string,
  rootfs: string,
  bundle: string,
  idmapRootfs: boolean,
  runtime: RuncClient,
  signal: AbortSignal | undefined,
  rl: RootlessPodDirs | undefined,
): Promise<PodContainerRecord> {
  // Each point is a place to report progress (tests) and to stop when aborted: the catch below undoes.
  const step = async (point: string): Promise<void> => {
    await o.onStep?.(point);
    if (signal?.aborted) throw runPodAborted(signal.reason);
  };
  const plan = await planPodUserns(o.netns, rl ? withoutKeeperPinDirs(o, rl) : o);
  const { uidMap, gidMap } = plan.netns;
  const rootUid = toHostId(uidMap, 0);
  const rootGid = toHostId(gidMap, 0);
  if (rootUid === undefined || rootGid === undefined) {
    throw new NstoolError(`the pod userns of ${plan.netns.path} maps no container root`, { code: 'ERR_NSTOOL_NO_ROOT_MAPPING', hint: 'map container id 0 in the pod userns' });
  }
  if (rl && plan.needsPin) {
    // Only the keeper can pin, and it pins a netns and its userns together.
    throw rootlessError(
      ROOTLESS_UNSUPPORTED,
      `the user namespace that owns ${plan.netns.path} is not pinned, and without root nstool cannot pin it`,
      'run the container in a pod netns made by `nstool create-pod-netns` as this user (its userns is pinned with it)',
      { path: plan.netns.path },
    );
  }
  // The plan's userns is the netns's owner (inspected, and checked again when pinned).
  const spec = podSpec({ ...o, rootfs, netnsPath: plan.netns.path, usernsPath: plan.usernsPath, uidMap, gidMap, setgroups: plan.netns.setgroups });
  if (rl) {
    rootlessSpec(spec, { rootfs, readonlyRootfs: idmapRootfs, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
    await checkRootlessBundle(bundle, id);
  } else {
    await checkBundlePath(bundle, id, rootUid, rootGid);
  }
  // A child path, so the rootfs directory itself is checked too. Without root it is always handed over as it is.
  if (!idmapRootfs || rl) await checkTraversable(path.join(rootfs, 'x'), rootUid, rootGid, 'the rootfs');
  if (!rl) await checkIdmapVolumes(spec.mounts, uidMap, o.allowUnsafeIdmapVolumes === true);
  await step('planned');

  let record: PodContainerRecord | undefined;
  let createTried = false;
  const fds: number[] = [];
  try {
    if (rl) {
      ensureUserDirs(path.dirname(bundle), rl);
      // The runtime would make its root with its own mode: made here, 0700 and checked.
      if (runtime.root === rl.runc) ensureUserDirs(rl.runc, rl);
    } else await ensureParents(path.dirname(bundle), bundle);
    // The record (with the userns pin this call will make) is in place before
    // the pin: a crash at any later point leaves a bundle rm-pod finishes from.
    const r: PodContainerRecord = {
      id,
      bundle,
      netnsPath: plan.netns.path,
      usernsPath: plan.usernsPath,
      usernsPinned: plan.needsPin,
      uidMap,
      gidMap,
      runtime: { binary: runtime.binary, ...(runtime.root ? { root: runtime.root } : {}), ...(rl ? { rootless: true } : {}) },
      staged: [],
      stdout: path.join(bundle, 'stdout.log'),
      stderr: path.join(bundle, 'stderr.log'),
    };
    await createBundle(r, rl ? undefined : rootGid, step);
    record = r;
    await step('after-bundle');
    const pod = await pinPodUserns(plan).catch(async (err: unknown) => {
      // EEXIST: another container of the pod pinned it meanwhile; that pin is not ours to remove.
      if ((err as NodeJS.ErrnoException | null)?.code === 'EEXIST' && r.usernsPinned) {
        r.usernsPinned = false;
        await saveRecord(r);
      }
      throw err;
    });
    await step('after-userns');
    if (idmapRootfs && !rl) {
      const layout = rootfsLayout(bundle);
      await makeOverlayDirs(layout);
      // Each staging path is saved before its mount: a crash in between still finds it.
      record.staged.push(layout.lower);
      await saveRecord(record);
      await step('before-lower');
      await stageLower(rootfs, layout, pod.usernsPath);
      await step('after-lower');
      record.staged.push(layout.target);
      await saveRecord(record);
      await step('before-overlay');
      await mountOverlay(layout);
      await step('after-overlay');
      spec.root.path = layout.target;
    }
    if (specNeedsIdmap(spec) && !(await idmapSupport(runtime)).supported) {
      const rec = record;
      const fb = await applyIdmapFallback(spec.mounts, {
        stagingDir: bundle,
        usernsPath: pod.usernsPath,
        uidMap,
        gidMap,
        // Saved before its mount, like the rootfs's.
        beforeStage: async (target) => {
          rec.staged.push(target);
          await saveRecord(rec);
          await step('before-volume');
        },
      });
      spec.mounts = fb.mounts;
      await step('after-volumes');
    }
    await writeBundle(bundle, spec);
    await step('after-config');
    fds.push(openStdio(record.stdout, rootUid, rootGid, !rl));
    fds.push(openStdio(record.stderr, rootUid, rootGid, !rl));
    await step('after-stdio');
    createTried = true;
    const pidFile = path.join(bundle, 'pid');
    // The idmap gate ran above (and the fallback replaced what it refuses).
    await runtime.create(id, bundle, { pidFile, stdio: ['ignore', fds[0]!, fds[1]!], skipIdmapGate: true, ...(signal ? { signal } : {}) });
    for (const fd of fds.splice(0)) closeSync(fd);
    await step('after-create');
    await chmod(pidFile, 0o600); // the runtime made it with its umask
    record.pid = Number((await readFile(pidFile, 'utf8')).trim());
    await saveRecord(record);
    await step('after-pid');
    await runtime.start(id);
    await step('after-start');
    return record;
  } catch (err) {
    for (const fd of fds.splice(0)) closeSync(fd);
    // Without a record the bundle is not ours (or not made), and no pin was made yet: nothing to undo.
    // A create the runtime refused because the id exists names someone else's container: never delete it.
    const undone = record ? undo(runtime, record, createTried && !isExists(err)) : Promise.resolve();
    const undoError = await undone.then(
      () => undefined,
      (e: unknown) => e ?? new Error('undo failed'),
    );
    // A failed undo leaves things behind: say so on the error thrown, in the
    // one list of secondary failures (undoError: deprecated alias, one release).
    if (undoError !== undefined && err !== null && typeof err === 'object') {
      const e = err as { suppressed?: unknown; undoError?: unknown };
      e.suppressed = [...(Array.isArray(e.suppressed) ? (e.suppressed as unknown[]) : []), undoError];
      e.undoError = undoError;
    }
    throw err;
  }
}

/** Mount points below DIR (and DIR itself with SELF), deepest first. */
function mountsUnder(dir: string, self = false): string[] {
  // mountinfo shows resolved paths: a symlink on the way must not hide a mount.
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // not there: nothing can be mounted under it
  }
  return readMountInfo()
    .map((m) => m.point)
    .filter((m) => m.startsWith(`${real}/`) || (self && m === real))
    .sort((a, b) => b.length - a.length);
}

async function unpinUserns(p: string): Promise<void> {
  await unpin(p, { context: `removing the userns pin ${p}` });
}

/**
 * Removes the bundle, first unmounting anything still mounted in it: a
 * recursive delete through an idmapped mount would delete the source's
 * files. Anything but a real directory (a link put in its place) is left.
 */
async function removeBundle(bundle: string): Promise<void> {
  const st = await lstat(bundle).catch(() => null);
  if (!st || !st.isDirectory()) return;
  for (const m of mountsUnder(bundle)) await unstage(m);
  const left = mountsUnder(bundle);
  if (left.length > 0) {
    throw new NstoolError(`${left[0]} is still mounted; the bundle ${bundle} was kept`, { code: 'EBUSY', path: left[0]!, hint: `umount ${left[0]} and remove ${bundle}` });
  }
  // The record goes last: a removal cut short (a second Ctrl-C, a kill)
  // leaves a bundle that still says whose it is, which the next delete or
  // gc finishes; without it the bundle would be left alone for good.
  for (const e of await readdir(bundle)) {
    if (e !== STATE_FILE) await rm(path.join(bundle, e), { recursive: true, force: true });
  }
  await rm(bundle, { recursive: true, force: true });
}

async function undo(runtime: RuncClient, r: PodContainerRecord, container: boolean): Promise<void> {
  if (container) {
    try {
      await runtime.delete(r.id, { force: true });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const t of [...r.staged].reverse()) await unstage(t);
  await removeBundle(r.bundle);
  if (r.usernsPinned) await unpinUserns(r.usernsPath);
}

export interface RemoveOptions extends Pick<PinDirs, 'usernsPinDir'> {
  stateDir?: string;
  bundleDir?: string;
  /** Overrides the runtime saved with the container. */
  runtime?: RuncClient | RuncClientOptions;
  /** Rejects with ABORT_ERR before it starts, or while the runtime says whether the container exists (nothing removed yet). */
  signal?: AbortSignal;
}

/**
 * Kills and deletes the container, unmounts its staging mounts and removes
 * the bundle (and litter a crashed create of it left). Idempotent.
 */
export async function removePodContainer(id: string, o: RemoveOptions = {}): Promise<{ id: string; existed: boolean }> {
  validateContainerId(id);
  const rl = currentMode() === 'rootless' ? rootlessPodDirs() : undefined;
  let bundle = o.bundleDir !== undefined ? absPath(o.bundleDir, 'bundleDir') : path.join(podStateDir(o.stateDir), id);
  if (rl) bundle = checkUserDir(bundle, 'bundleDir', rl);
  const signal = validateSignal(o.signal);
  throwIfAborted(signal, `removing container ${id}`);
  return traced(channels.podRemove, () => ({ id }), () => removeChecked(id, bundle, o, signal, rl));
}

async function removeChecked(id: string, bundle: string, o: RemoveOptions, signal: AbortSignal | undefined, rl: RootlessPodDirs | undefined): Promise<{ id: string; existed: boolean }> {
  const rec = await readRecord(bundle, id, o);
  let runtime: RuncClient;
  if (rl) runtime = rootlessRuntime(o.runtime ?? (rec ? { binary: rec.runtime.binary, ...(rec.runtime.root ? { root: rec.runtime.root } : {}) } : undefined), rl);
  else runtime = o.runtime ? client(o.runtime) : new RuncClient(rec?.runtime ?? {});
  // runc's delete --force succeeds on a missing container: ask state to tell.
  // Once removal starts it runs to the end: a half-removed container helps nobody.
  let known = true;
  await runtime.state(id, signal ? { signal } : {}).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
    known = false;
  });
  if (known) {
    await runtime.kill(id, 'SIGKILL', { all: true }).catch(() => undefined); // stopped already: delete --force copes
    try {
      await runtime.delete(id, { force: true });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  if (bundle !== '/') await removeBundleLitter(path.dirname(bundle), { name: path.basename(bundle) });
  // Neither a record nor a container: BUNDLE is not nstool's, leave it alone.
  if (!known && rec === undefined) return { id, existed: false };
  for (const t of [...(rec?.staged ?? [])].reverse()) await unstage(t);
  await removeBundle(bundle);
  if (rec?.usernsPinned) await unpinUserns(rec.usernsPath);
  return { id, existed: true };
}
