// A container in a pod's pinned namespaces: it joins the netns and the
// userns that owns it, with the maps read from that userns. Root-owned
// rootfs and volumes are shown to the pod's root through idmapped mounts
// nstool makes itself when the runtime cannot (runc 1.1.5).
import { closeSync, constants, fchownSync, openSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { callAsync, invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import { IdMapping, toHostId } from '../idmap.js';
import { buildSpec, specNeedsIdmap, writeBundle } from '../oci/index.js';
import type { BuildSpecOptions, MountRequest, Spec } from '../oci/index.js';
import { readMountInfo } from '../oci/mounts.js';
import { native } from '../native.js';
import { PinDirs } from '../netns.js';
import { validateContainerId } from '../runc/args.js';
import { RuncClient, RuncClientOptions } from '../runc/client.js';
import { RuntimeError } from '../runc/error.js';
import { idmapSupport } from '../runc/idmap-gate.js';
import { applyIdmapFallback, stageIdmapped, unstage } from './idmap-fallback.js';
import { podUserns } from './userns.js';

export const DEFAULT_STATE_DIR = '/run/nstool/containers';
const STATE_FILE = 'nstool-container.json';

export interface PodContainerOptions extends PinDirs {
  id: string;
  /** The pod netns: a pin name or a path. */
  netns: string;
  /** Root filesystem on the host; shown idmapped to the pod unless idmapRootfs is false. */
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
  /** Show the rootfs through an idmapped mount of the pod's userns (default true). */
  idmapRootfs?: boolean;
  /** Further buildSpec options (capabilities, annotations, ...). */
  spec?: Partial<BuildSpecOptions>;
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
  runtime: { binary: string; root?: string };
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

/**
 * The pod's root (an unmapped-to-host uid) must traverse every directory on
 * the way to the bundle and rootfs: refuse a path with a dir lacking o+x.
 */
async function checkTraversable(p: string, hostUid: number, what: string): Promise<void> {
  let dir = path.dirname(p);
  for (;;) {
    const st = await stat(dir).catch(() => null);
    if (st && st.isDirectory() && st.uid !== hostUid && (st.mode & 0o001) === 0) {
      throw new NstoolError(`the pod's root (host uid ${hostUid}) cannot reach ${what} ${p}: ${dir} has mode ${(st.mode & 0o7777).toString(8)}`, {
        code: 'ERR_NSTOOL_BUNDLE_PATH',
        path: dir,
        hint: `give every directory on the way search permission for others (chmod o+x ${dir}) or choose another place`,
      });
    }
    const up = path.dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}

async function saveRecord(r: PodContainerRecord): Promise<void> {
  await writeFileAtomic(path.join(r.bundle, STATE_FILE), JSON.stringify(r, null, 2), 0o600);
}

export async function readRecord(bundle: string): Promise<PodContainerRecord | undefined> {
  try {
    return JSON.parse(await readFile(path.join(bundle, STATE_FILE), 'utf8')) as PodContainerRecord;
  } catch {
    return undefined;
  }
}

/** Files the container's root can open as its stdio (a socketpair or root-owned pipe it cannot). */
function openStdio(file: string, uid: number, gid: number): number {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_APPEND, 0o600);
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
  mounts?: MountRequest[];
  spec?: Partial<BuildSpecOptions>;
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
    ...(o.mounts !== undefined ? { mounts: o.mounts } : {}),
  });
}

/**
 * Creates and starts a container in the pod's namespaces. On any failure,
 * everything made so far is undone (container, staging mounts, bundle).
 */
export async function runPodContainer(o: PodContainerOptions): Promise<PodContainerRecord> {
  if (o === null || typeof o !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const id = validateContainerId(o.id);
  const rootfs = absPath(o.rootfs, 'rootfs');
  if (!Array.isArray(o.command) || o.command.length === 0) throw invalidArg('command must be a non-empty array');
  const stateDir = absPath(o.stateDir ?? DEFAULT_STATE_DIR, 'stateDir');
  const bundle = o.bundleDir !== undefined ? absPath(o.bundleDir, 'bundleDir') : path.join(stateDir, id);
  const runtime = client(o.runtime);

  const pod = await podUserns(o.netns, o);
  let record: PodContainerRecord | undefined;
  let createTried = false;
  const fds: number[] = [];
  try {
    const { uidMap, gidMap } = pod.netns;
    const rootUid = toHostId(uidMap, 0);
    const rootGid = toHostId(gidMap, 0);
    if (rootUid === undefined || rootGid === undefined) {
      throw new NstoolError(`the pod userns of ${pod.netns.path} maps no container root`, { code: 'ERR_NSTOOL_NO_ROOT_MAPPING', hint: 'map container id 0 in the pod userns' });
    }
    const spec = podSpec({ ...o, rootfs, netnsPath: pod.netns.path, usernsPath: pod.usernsPath, uidMap, gidMap });
    await checkTraversable(path.join(bundle, 'rootfs'), rootUid, 'the bundle');
    // A child path, so the rootfs directory itself is checked too.
    if (o.idmapRootfs === false) await checkTraversable(path.join(rootfs, 'x'), rootUid, 'the rootfs');

    await mkdir(path.dirname(bundle), { recursive: true, mode: 0o755 });
    await mkdir(bundle, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
      throw new NstoolError(`cannot make the bundle ${bundle}: ${err.message}`, {
        code: err.code ?? 'EIO',
        path: bundle,
        hint: err.code === 'EEXIST' ? `container ${id} exists or was not removed: \`nstool rm-pod ${id}\`` : undefined,
      });
    });
    record = {
      id,
      bundle,
      netnsPath: pod.netns.path,
      usernsPath: pod.usernsPath,
      usernsPinned: pod.pinned,
      uidMap,
      gidMap,
      runtime: { binary: runtime.binary, ...(runtime.root ? { root: runtime.root } : {}) },
      staged: [],
      stdout: path.join(bundle, 'stdout.log'),
      stderr: path.join(bundle, 'stderr.log'),
    };
    await saveRecord(record);
    if (o.idmapRootfs !== false) {
      const staged = path.join(bundle, 'rootfs');
      record.staged.push(staged);
      await saveRecord(record); // before the mount: a crash in between still finds it
      await stageIdmapped(rootfs, staged, { usernsPath: pod.usernsPath, recursive: true });
      spec.root.path = staged;
    }
    if (specNeedsIdmap(spec) && !(await idmapSupport(runtime)).supported) {
      const fb = await applyIdmapFallback(spec.mounts, { stagingDir: bundle, usernsPath: pod.usernsPath, uidMap, gidMap });
      spec.mounts = fb.mounts;
      record.staged.push(...fb.staged);
      await saveRecord(record);
    }
    await writeBundle(bundle, spec);
    fds.push(openStdio(record.stdout, rootUid, rootGid));
    fds.push(openStdio(record.stderr, rootUid, rootGid));
    createTried = true;
    const pidFile = path.join(bundle, 'pid');
    // The idmap gate ran above (and the fallback replaced what it refuses).
    await runtime.create(id, bundle, { pidFile, stdio: ['ignore', fds[0]!, fds[1]!], skipIdmapGate: true });
    for (const fd of fds.splice(0)) closeSync(fd);
    record.pid = Number((await readFile(pidFile, 'utf8')).trim());
    await saveRecord(record);
    await runtime.start(id);
    return record;
  } catch (err) {
    for (const fd of fds.splice(0)) closeSync(fd);
    // Without a record the bundle is not ours (or not made): only the pin is undone.
    const undone = record ? undo(runtime, record, createTried) : pod.pinned ? unpinUserns(pod.usernsPath) : Promise.resolve();
    const undoError = await undone.then(
      () => undefined,
      (e: unknown) => e ?? new Error('undo failed'),
    );
    // A failed undo leaves things behind: say so on the error thrown.
    if (undoError !== undefined && err !== null && typeof err === 'object') (err as { undoError?: unknown }).undoError = undoError;
    throw err;
  }
}

function mountsUnder(dir: string): string[] {
  // mountinfo shows resolved paths: a symlink on the way must not hide a mount.
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // not there: nothing can be mounted under it
  }
  return readMountInfo()
    .map((m) => m.point)
    .filter((m) => m.startsWith(`${real}/`))
    .sort((a, b) => b.length - a.length);
}

async function unpinUserns(p: string): Promise<void> {
  await callAsync(() => native.unpin(p), `removing the userns pin ${p}`);
}

/**
 * Removes the bundle, first unmounting anything still mounted in it: a
 * recursive delete through an idmapped mount would delete the source's files.
 */
async function removeBundle(bundle: string): Promise<void> {
  for (const m of mountsUnder(bundle)) await unstage(m);
  const left = mountsUnder(bundle);
  if (left.length > 0) {
    throw new NstoolError(`${left[0]} is still mounted; the bundle ${bundle} was kept`, { code: 'EBUSY', path: left[0]!, hint: `umount ${left[0]} and remove ${bundle}` });
  }
  await rm(bundle, { recursive: true, force: true });
}

function missing(err: unknown): boolean {
  return err instanceof RuntimeError && /does not exist|not found/i.test(err.runtimeMessage);
}

async function undo(runtime: RuncClient, r: PodContainerRecord, container: boolean): Promise<void> {
  if (container) {
    try {
      await runtime.delete(r.id, { force: true });
    } catch (err) {
      if (!missing(err)) throw err;
    }
  }
  for (const t of [...r.staged].reverse()) await unstage(t);
  await removeBundle(r.bundle);
  if (r.usernsPinned) await unpinUserns(r.usernsPath);
}

export interface RemoveOptions {
  stateDir?: string;
  bundleDir?: string;
  /** Overrides the runtime saved with the container. */
  runtime?: RuncClient | RuncClientOptions;
}

/** Kills and deletes the container, unmounts its staging mounts and removes the bundle. Idempotent. */
export async function removePodContainer(id: string, o: RemoveOptions = {}): Promise<{ id: string; existed: boolean }> {
  validateContainerId(id);
  const bundle = o.bundleDir !== undefined ? absPath(o.bundleDir, 'bundleDir') : path.join(absPath(o.stateDir ?? DEFAULT_STATE_DIR, 'stateDir'), id);
  const rec = await readRecord(bundle);
  const runtime = o.runtime ? client(o.runtime) : new RuncClient(rec?.runtime ?? {});
  // runc's delete --force succeeds on a missing container: ask state to tell.
  let known = true;
  await runtime.state(id).catch((err: unknown) => {
    if (!missing(err)) throw err;
    known = false;
  });
  if (known) {
    await runtime.kill(id, 'SIGKILL', { all: true }).catch(() => undefined); // stopped already: delete --force copes
    try {
      await runtime.delete(id, { force: true });
    } catch (err) {
      if (!missing(err)) throw err;
    }
  }
  // Neither a record nor a container: BUNDLE is not nstool's, leave it alone.
  if (!known && rec === undefined) return { id, existed: false };
  for (const t of [...(rec?.staged ?? [])].reverse()) await unstage(t);
  await removeBundle(bundle);
  if (rec?.usernsPinned) await unpinUserns(rec.usernsPath);
  return { id, existed: true };
}
