// Loads the addon and types its surface. The core is mechanism only: every
// default and every validation lives in TypeScript.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { NstoolError } from './errors.js';

export interface NsId { ino: number; dev: number }
export interface CreateParams {
  uidMap: string;
  gidMap: string;
  setgroups?: 'allow' | 'deny';
  netnsPin: string;
  usernsPin?: string;
  /** A path whose existence (access F_OK) the core reports once pinned, as `guarded`. */
  guard?: string;
}
export interface CreateResult {
  netnsIno: number;
  netnsDev: number;
  usernsIno: number;
  usernsDev: number;
  /** NS_GET_ID of the userns; 0 before Linux 6.18. */
  usernsId: number;
  /** params.guard existed after pinning (false without a guard). */
  guarded?: boolean;
}
export interface NativeNsInfo {
  nsfs: boolean;
  type: number;
  ino: number;
  dev: number;
  /** NS_GET_ID: never reused, unlike inodes; 0 where the kernel lacks it (before 6.18). */
  id: number;
  owner: { ino: number; dev: number; uid: number; id: number } | null;
}

export interface NativeIdMaps { uidMap: string; gidMap: string; setgroups: string }
export interface UnpinResult { unmounted: boolean; removed: boolean }
/** What a path inside a root names; data only for a regular file of at most maxBytes. */
export interface RootFile { mode: number; size: number; data: Buffer | null }
/** At least one of ipcPin and utsPin; hostname goes with utsPin. */
export interface PodNsParams { userns: string; ipcPin?: string; utsPin?: string; hostname?: string; keeperSock?: string; ipcRequest?: string; utsRequest?: string }
export interface PodNsResult { ipcIno: number; ipcDev: number; utsIno: number; utsDev: number; usernsIno: number; usernsDev: number; ipcReply?: string; utsReply?: string }
/** auto: openat2(RESOLVE_IN_ROOT), else the O_PATH walk; the others force one (tests). */
export type ResolveHow = 'auto' | 'openat2' | 'walk';

export interface NativeCore {
  ensurePinDirSync(dir: string): void;
  pinSync(source: string, target: string): void;
  pin(source: string, target: string): Promise<void>;
  /** Pins the userns that owns the namespace at nsPath (NS_GET_USERNS). */
  pinOwnerSync(nsPath: string, target: string): void;
  pinOwner(nsPath: string, target: string): Promise<void>;
  unpinSync(target: string): UnpinResult;
  unpin(target: string): Promise<UnpinResult>;
  /**
   * Unpins each target in order, in one call; null (nothing done) when GUARD
   * exists. keepGoing: try every target, then throw the first error.
   */
  unpinAllSync(targets: string[], guard: string | undefined, keepGoing: boolean): UnpinResult[] | null;
  unpinAll(targets: string[], guard: string | undefined, keepGoing: boolean): Promise<UnpinResult[] | null>;
  unmountSync(target: string): boolean;
  createUsernsNetnsSync(p: CreateParams): CreateResult;
  createUsernsNetns(p: CreateParams): Promise<CreateResult>;
  inspectNsSync(path: string, nofollow: boolean): NativeNsInfo;
  inspectNs(path: string, nofollow: boolean): Promise<NativeNsInfo>;
  readIdMapsSync(path: string, owner: boolean): NativeIdMaps;
  readIdMaps(path: string, owner: boolean): Promise<NativeIdMaps>;
  idmapMountSync(source: string, target: string, userns: string, recursive: boolean, readonly: boolean, nosuid?: boolean, nodev?: boolean): void;
  /** flock(LOCK_EX) on a file; returns the fd holding the lock. */
  lockFileSync(path: string, wait: boolean): number;
  lockFile(path: string, wait: boolean): Promise<number>;
  closeFdSync(fd: number): void;
  /** An inotify fd (IN_NONBLOCK|IN_CLOEXEC); closing one takes milliseconds, so it is kept. */
  inotifyInitSync(): number;
  /** Watches names created, deleted or moved in DIR; returns the watch descriptor. */
  inotifyWatchDirSync(fd: number, dir: string): number;
  /** Every queued inotify event (struct inotify_event records); empty when none. */
  inotifyReadSync(fd: number): Buffer;
  /** Reads PATH resolved as if ROOT were "/"; null when a component is missing or not a directory. */
  readInRootSync(root: string, path: string, maxBytes: number, how?: ResolveHow): RootFile | null;
  readInRoot(root: string, path: string, maxBytes: number, how?: ResolveHow): Promise<RootFile | null>;
  idmapMount(source: string, target: string, userns: string, recursive: boolean, readonly: boolean, nosuid?: boolean, nodev?: boolean): Promise<void>;
  /** overlayfs with one lower layer at target (fsopen/fsconfig/fsmount/move_mount). */
  overlayMountSync(lower: string, upper: string, work: string, target: string, nosuid: boolean, nodev: boolean): void;
  overlayMount(lower: string, upper: string, work: string, target: string, nosuid: boolean, nodev: boolean): Promise<void>;
  /** renameat2(RENAME_NOREPLACE): EEXIST instead of replacing `to`. */
  renameNoReplaceSync(from: string, to: string): void;
  renameNoReplace(from: string, to: string): Promise<void>;
  /** Kernel interfaces, each called with arguments it must reject: 0 or the errno it gave (ENOSYS: absent). */
  probeSyscallsSync(): Record<string, number>;
  /** A child drops to uid/gid (when drop) and unshares a userns; step is "" when it worked. */
  probeUnprivilegedUsernsSync(uid: number, gid: number, drop: boolean): { step: string; errno: number };
  /** Makes a detached recursive clone of path's mounts read-only recursively; throws on failure. */
  probeRecursiveReadonlySync(path: string): void;
  /** A small tmpfs (0700, nosuid, nodev, noexec) at target. */
  mountTmpfsSync(target: string): void;
  /** New ipc and/or uts namespaces owned by the userns at `userns`, pinned at ipcPin and utsPin; the hostname set in the uts one (0 inodes for one not made). */
  createPodNsSync(p: PodNsParams): PodNsResult;
  createPodNs(p: PodNsParams): Promise<PodNsResult>;
  /**
   * Rootless: a helper in a new userns + netns, held open with no map
   * written; heldCloseSync (or GC) kills and reaps it and closes its fds.
   */
  heldUsernsNetns(): Promise<HeldHelper>;
  heldUsernsNetnsSync(): HeldHelper;
  /** One write() to /proc/<helper>/FILE. */
  heldWriteSync(handle: HeldHandle, file: 'uid_map' | 'gid_map' | 'setgroups', text: string): void;
  heldReadMapsSync(handle: HeldHandle): NativeIdMaps;
  /** REQUEST to the keeper's socket with the helper's netns and userns fds; the reply. */
  heldSend(handle: HeldHandle, socketPath: string, request: string, timeoutMs: number): Promise<string>;
  /** Idempotent. */
  heldCloseSync(handle: HeldHandle): void;
  /** REQUEST to the keeper's socket, no fds; the reply. */
  keeperCall(socketPath: string, request: string, timeoutMs: number): Promise<string>;
  keeperCallSync(socketPath: string, request: string, timeoutMs: number): string;
  /**
   * posix_spawn of FILE (the spawn helper) with fds 0-2 from SLOTS (an fd of
   * ours, or -1 /dev/null, -2 ours as is, -3 a pipe; a piped stdin reads
   * INPUT, or nothing) and fd 3 a report pipe; ON_EXIT runs once, on the loop,
   * when it ended. kill() sends SIGKILL until then.
   */
  spawnStart(file: string, argv: string[], env: string[], slots: [number, number, number], input: Buffer | null, maxOutput: number, onExit: (r: SpawnExit) => void): SpawnHandle;
}

export interface SpawnHandle { pid: number; kill(): void }
export interface SpawnExit {
  /** null when killed by a signal (then signal is its number). */
  exitCode: number | null;
  signal: number;
  stdout: Buffer;
  stderr: Buffer;
  /** The helper's report line ("STEP ERRNO"), empty once the program was exec'd. */
  report: string;
  truncated: boolean;
}

/** An opaque native handle to a held helper. */
export type HeldHandle = { readonly __held: unique symbol };
export interface HeldHelper {
  handle: HeldHandle;
  pid: number;
  netnsIno: number;
  netnsDev: number;
  usernsIno: number;
  usernsDev: number;
}

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The loader. The addon is loaded on the first call that needs it, so every
// pure module (id maps, names, CNI config, hook settings) imports and works without
// it, and a missing build is one typed error at that call, not at import.
let loaded: NativeCore | undefined;

const BUILD_HINT =
  'build it from source: apt-get install -y python3 make g++, then `npm rebuild nstool --build-from-source`; ' +
  'in a checkout, `npx node-gyp rebuild`';

function firstLine(err: unknown): string {
  return String((err as Error | undefined)?.message ?? err).split('\n')[0]!.trim();
}

function loadFile(file: string, what: string, hint: string): NativeCore {
  try {
    return require(file) as NativeCore;
  } catch (err) {
    throw new NstoolError(`the native core ${what} does not load: ${firstLine(err)}`, {
      code: 'ERR_NSTOOL_NATIVE',
      path: file,
      hint,
      cause: err,
    });
  }
}

/** The native core, loaded now if it is not yet: ERR_NSTOOL_NATIVE when it is missing or does not load. */
export function loadNative(): NativeCore {
  if (loaded) return loaded;
  // NSTOOL_ADDON points at another build of the same sources (the sanitizer build).
  const override = process.env['NSTOOL_ADDON'];
  if (override) {
    const file = path.resolve(override);
    return (loaded = loadFile(file, `named by NSTOOL_ADDON (${file})`, 'unset NSTOOL_ADDON or point it at a built nstool.node'));
  }
  // node-gyp-build's order: build/Release, build/Debug, then the prebuild
  // for this platform, arch and libc shipped in the package.
  let file: string;
  try {
    const gypBuild = require('node-gyp-build') as { path(dir: string): string };
    file = gypBuild.path(root);
  } catch {
    const where = `${process.platform}-${process.arch}`;
    throw new NstoolError(
      `the native core is not installed: no nstool.node in build/Release, build/Debug or prebuilds/${where} of ${root}`,
      { code: 'ERR_NSTOOL_NATIVE', path: root, hint: `reinstall without --ignore-scripts, or ${BUILD_HINT}` },
    );
  }
  return (loaded = loadFile(file, file, BUILD_HINT));
}

/** The native core's calls; the addon loads on the first one. */
export const native: NativeCore = new Proxy({} as NativeCore, {
  get: (_target, prop) => Reflect.get(loadNative(), prop) as unknown,
  has: (_target, prop) => Reflect.has(loadNative(), prop),
});
