// Loads the addon and types its surface. The core is mechanism only: every
// default and every validation lives in TypeScript.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface NsId { ino: number; dev: number }
export interface CreateParams {
  uidMap: string;
  gidMap: string;
  setgroups?: 'allow' | 'deny';
  netnsPin: string;
  usernsPin?: string;
}
export interface CreateResult {
  netnsIno: number;
  netnsDev: number;
  usernsIno: number;
  usernsDev: number;
  /** NS_GET_ID of the userns; 0 before Linux 6.18. */
  usernsId: number;
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
}

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeCore {
  // NSTOOL_ADDON points at another build of the same sources (the sanitizer build).
  const override = process.env['NSTOOL_ADDON'];
  if (override) return require(path.resolve(override)) as NativeCore;
  try {
    const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => unknown;
    return bindings({ bindings: 'nstool.node', module_root: root }) as NativeCore;
  } catch (err) {
    const e = new Error(
      'nstool: the native core (nstool.node) is not built or does not load. ' +
        `Looked under ${root}/build. Install a compiler and Python (apt-get install build-essential python3) ` +
        'and run `npm install` (or `npx node-gyp rebuild`) in the package directory.',
      { cause: err },
    );
    (e as NodeJS.ErrnoException).code = 'ERR_NSTOOL_NATIVE';
    throw e;
  }
}

export const native: NativeCore = load();
