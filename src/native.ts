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
export interface CreateResult { netnsIno: number; netnsDev: number; usernsIno: number; usernsDev: number }
export interface NativeNsInfo {
  nsfs: boolean;
  type: number;
  ino: number;
  dev: number;
  owner: { ino: number; dev: number; uid: number } | null;
}
export interface NativeIdMaps { uidMap: string; gidMap: string; setgroups: string }
export interface UnpinResult { unmounted: boolean; removed: boolean }
export interface ExecParams {
  netns?: string;
  userns?: string;
  /** Join the userns that owns netns (NS_GET_USERNS). */
  ownerUserns?: boolean;
  becomeRoot?: boolean;
  file: string;
  argv: string[];
  env: string[];
  cwd?: string;
  stdio?: [number, number, number];
  input?: string | Buffer;
  timeoutMs?: number;
  maxOutput?: number;
}
export interface ExecResult {
  pid: number;
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  stdout: Buffer;
  stderr: Buffer;
}

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
  execSync(p: ExecParams): ExecResult;
  exec(p: ExecParams): Promise<ExecResult>;
  idmapMountSync(source: string, target: string, userns: string, recursive: boolean, readonly: boolean, nosuid?: boolean, nodev?: boolean): void;
  /** flock(LOCK_EX) on a file; returns the fd holding the lock. */
  lockFileSync(path: string, wait: boolean): number;
  lockFile(path: string, wait: boolean): Promise<number>;
  closeFdSync(fd: number): void;
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
