// One state file per sandbox, written atomically (tmp + fsync + rename, and
// an fsync of the directory) so a crash leaves the old or the new file,
// never a torn one; and a per-sandbox flock so concurrent create/delete of
// one id are serialised and gc can tell a running create from a dead one.
import { closeSync, constants, fstatSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { chmod, mkdir, open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { throwIfAborted } from '../abort.js';
import { NstoolError } from '../errors.js';
import { inMemorySync, writeFileAtomic, writeFileAtomicInMemorySync } from '../atomic-file.js';
import type { IdMapping } from '../idmap.js';
import { closeFdSync, lockFileSync } from '../kernel/lock.js';
import { validateName } from '../netns.js';
import { validateContainerId } from '../cni/names.js';
import { validateSandboxId } from './instance.js';
import { untrustedPath, untrustedPathSync, type Untrusted } from '../trusted-path.js';
import { ensureRuntimeDirs } from '../rootless/runtime-dir.js';
import { isKeeperPin, isRootless, rootlessDirs, untrustedRootlessDir } from './rootless.js';
import type { RootlessNetPlan } from './plan.js';

export const DEFAULT_STATE_DIR = '/run/nstool/sandboxes';
const SUFFIX = '.json';
const LOCK_SUFFIX = '.lock';

export type Phase = 'creating' | 'ready' | 'deleting' | 'failed';
const PHASES: readonly Phase[] = ['creating', 'ready', 'deleting', 'failed'];

/**
 * One sandbox. Each resource has its record here, written before the step
 * that makes it (so a crash leaves it findable) and dropped once removed.
 */
export interface SandboxState {
  version: 1;
  id: string;
  phase: Phase;
  createdAt: string;
  /** The state dir that made it (the instance). */
  instance?: string;
  /** Made without root: the pins are the user's keeper's (see rootless.ts). */
  mode?: 'rootless';
  /** A rootless sandbox's network: what was asked for, and the process once it runs (checked where it is used). */
  rootlessNet?: RootlessNetPlan & { record?: unknown };
  /** Set when a rollback or delete stopped part way: what is left, for gc. */
  pendingUndo?: string[];
  /** The netns pin. usernsPath is only read from older files (see userns). */
  netns?: { name: string; path: string; pinDir: string; usernsPath?: string; usernsPinDir: string; inode?: number };
  /** The userns pin. */
  userns?: { path: string; inode?: number };
  /** The ipc and uts pins of a sandbox without a pause container (owned by the userns). */
  ipc?: { path: string; inode?: number };
  uts?: { path: string; inode?: number };
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  network?: {
    /** The full config list, so DEL works after a restart without the caller's files. */
    list: Record<string, unknown>;
    /** The CNI container id (older files: nstool-sb-<id>). */
    containerId?: string;
    ifName: string;
    cacheDir: string;
    pluginPath: string[];
    nodeNetns?: string;
    capabilityArgs?: Record<string, unknown>;
    result?: Record<string, unknown>;
    ips?: string[];
    /** The plugin error of a failed ADD: the same error from DEL means nothing was allocated. */
    addError?: { plugin: string; cniMsg?: string };
  };
  pause?: {
    containerId: string;
    bundle: string;
    runtime: { binary: string; root?: string };
    pid?: number;
  };
}

export function stateFile(dir: string, id: string): string {
  return path.join(dir, id + SUFFIX);
}

export function lockFile(dir: string, id: string): string {
  return path.join(dir, id + LOCK_SUFFIX);
}

/**
 * Refuses a state dir another user could write to or swap
 * (ERR_NSTOOL_STATE_DIR): its files name the binaries, plugins and paths
 * root then runs and removes. A missing dir passes (it holds nothing).
 */
export async function checkStateDir(dir: string): Promise<void> {
  // Without root the dir is the user's own, as are the pins it names.
  refuseUntrusted(dir, isRootless() ? untrustedRootlessDir(dir) : await untrustedPath(dir));
}

function refuseUntrusted(dir: string, bad: Untrusted | undefined): void {
  if (bad === undefined) return;
  throw new NstoolError(`the sandbox state dir ${dir} cannot be trusted: ${bad.dir} ${bad.why}`, {
    code: 'ERR_NSTOOL_STATE_DIR',
    path: dir,
    hint: isRootless()
      ? 'without root the state dir must be your own directory with mode 0700 (the default $XDG_RUNTIME_DIR/nstool/sandboxes)'
      : 'keep the state dir under directories owned by root and writable by root alone (the default /run/nstool/sandboxes)',
  });
}

/**
 * Makes the state dir (0700). Dirs made on the way get 0711: the bundles
 * usually sit next to it (/run/nstool/bundles) and the pod's root must be
 * able to pass through their common parent.
 */
export async function ensureStateDir(dir: string): Promise<void> {
  if (isRootless()) ensureRuntimeDirs(rootlessDirs().rt);
  else if (inMemorySync(dir)) {
    // There already, on a tmpfs (the usual /run): checked at once, each
    // lstat answered from memory, less than one trip to the pool each.
    refuseUntrusted(dir, untrustedPathSync(dir));
    return;
  }
  const parent = path.dirname(dir);
  const first = await mkdir(parent, { recursive: true, mode: 0o711 });
  if (first !== undefined) {
    // mkdir's mode is cut by the umask: set it on each dir made.
    for (let d = parent; ; d = path.dirname(d)) {
      await chmod(d, 0o711);
      if (d === first || d === path.dirname(d)) break;
    }
  }
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  // Made by someone else meanwhile, or before us: checked as it is now.
  await checkStateDir(dir);
}

export async function writeState(dir: string, st: SandboxState): Promise<void> {
  const file = stateFile(dir, st.id);
  const text = JSON.stringify(st, null, 2) + '\n';
  // On a tmpfs (the usual /run) at once: a write there costs less than one trip to the pool.
  if (!writeFileAtomicInMemorySync(file, text)) await writeFileAtomic(file, text);
}

function isAbs(p: unknown): p is string {
  return typeof p === 'string' && p.startsWith('/') && !p.includes('\0') && path.normalize(p) === p;
}

/**
 * Checks every field that forms a path or a command before anything acts on
 * it. The values CNI checks itself (ifName, network name) are left to the
 * network's probe, which never lets them make a delete fail for ever.
 */
function validateState(st: SandboxState, id: string, dir: string): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new Error(what);
  };
  need(st !== null && typeof st === 'object' && st.version === 1 && st.id === id, 'not a version 1 state of this id');
  need(PHASES.includes(st.phase), 'unknown phase');
  // A file copied from another instance's state dir would have this one remove that one's resources.
  need(st.instance === undefined || st.instance === path.normalize(dir), `made by the instance ${String(st.instance)}`);
  // A rootless sandbox's pins are paths in the user's keeper, and only those.
  need(st.mode === (isRootless() ? 'rootless' : undefined), isRootless() ? 'made as root' : 'made without root');
  if (st.mode === 'rootless') {
    const d = rootlessDirs();
    for (const r of [st.netns, st.userns, st.ipc, st.uts]) need(r === undefined || (typeof r.path === 'string' && isKeeperPin(r.path, d)), 'a pin outside the keeper');
    need(st.pause === undefined && st.network === undefined, 'root-only resources');
  }
  need(st.rootlessNet === undefined || (st.mode === 'rootless' && st.rootlessNet !== null && typeof st.rootlessNet === 'object'), 'rootlessNet');
  if (st.netns) {
    const n = st.netns;
    validateName(n.name, 'netns.name');
    need(isAbs(n.pinDir) && isAbs(n.usernsPinDir) && n.path === path.join(n.pinDir, n.name), 'netns paths');
    need(n.usernsPath === undefined || isAbs(n.usernsPath), 'netns.usernsPath');
    need(n.inode === undefined || Number.isSafeInteger(n.inode), 'netns.inode');
  }
  if (st.userns) {
    need(isAbs(st.userns.path) && path.basename(st.userns.path) !== '', 'userns.path');
    validateName(path.basename(st.userns.path), 'userns pin name');
    need(st.userns.inode === undefined || Number.isSafeInteger(st.userns.inode), 'userns.inode');
  }
  for (const k of ['ipc', 'uts'] as const) {
    const r = st[k];
    if (!r) continue;
    need(isAbs(r.path) && path.basename(r.path) !== '', `${k}.path`);
    validateName(path.basename(r.path), `${k} pin name`);
    need(r.inode === undefined || Number.isSafeInteger(r.inode), `${k}.inode`);
  }
  if (st.network) {
    const n = st.network;
    need(n.list !== null && typeof n.list === 'object', 'network.list');
    need(n.containerId === undefined || typeof n.containerId === 'string', 'network.containerId');
    need(typeof n.ifName === 'string' && isAbs(n.cacheDir), 'network.cacheDir');
    need(Array.isArray(n.pluginPath) && n.pluginPath.length > 0 && n.pluginPath.every(isAbs), 'network.pluginPath');
    need(n.nodeNetns === undefined || isAbs(n.nodeNetns), 'network.nodeNetns');
  }
  if (st.pause) {
    const p = st.pause;
    validateContainerId(p.containerId);
    need(isAbs(p.bundle) && path.basename(p.bundle) === p.containerId, 'pause.bundle');
    const r = p.runtime;
    need(r !== null && typeof r === 'object' && typeof r.binary === 'string' && r.binary !== '' && !r.binary.includes('\0'), 'pause.runtime.binary');
    need(r.root === undefined || isAbs(r.root), 'pause.runtime.root');
  }
}

// Never through a link, never waiting on a fifo: a planted file is an unreadable state (''), below.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

async function readStateText(file: string): Promise<string> {
  const fh = await open(file, READ_FLAGS);
  try {
    return (await fh.stat()).isFile() ? await fh.readFile('utf8') : '';
  } finally {
    await fh.close();
  }
}

function readStateTextSync(file: string): string {
  const fd = openSync(file, READ_FLAGS);
  try {
    return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : '';
  } finally {
    closeSync(fd);
  }
}

/**
 * The state of ID, or null when there is none. A torn, foreign or unsafe
 * file is an error. dirChecked: the caller has just checked DIR (ensureStateDir).
 */
export async function readState(dir: string, id: string, dirChecked = false): Promise<SandboxState | null> {
  validateSandboxId(id);
  if (!dirChecked) await checkStateDir(dir);
  const file = stateFile(dir, id);
  let text: string;
  try {
    // On a tmpfs at once (memory work, less than one trip to the pool).
    text = inMemorySync(dir) ? readStateTextSync(file) : await readStateText(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code !== 'ELOOP') throw err;
    text = '';
  }
  try {
    const st = JSON.parse(text) as SandboxState;
    validateState(st, id, dir);
    // Files from before the userns pin had its own record.
    if (st.netns?.usernsPath && !st.userns) st.userns = { path: st.netns.usernsPath };
    return st;
  } catch (err) {
    throw new NstoolError(`sandbox state ${file} is unreadable: ${(err as Error).message}`, {
      code: 'ERR_NSTOOL_STATE',
      path: file,
      hint: 'nstool did not write this; check it, then remove it by hand: `nstool gc` then cleans what the pins, containers and CNI cache show',
      cause: err,
    });
  }
}

export async function removeState(dir: string, id: string): Promise<void> {
  try {
    // On a tmpfs at once, as writes are.
    if (inMemorySync(dir)) unlinkSync(stateFile(dir, id));
    else await unlink(stateFile(dir, id));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function namesWith(dir: string, suffix: string): Promise<string[]> {
  await checkStateDir(dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
  const out: string[] = [];
  for (const n of names) {
    if (!n.endsWith(suffix)) continue;
    const id = n.slice(0, -suffix.length);
    try {
      out.push(validateSandboxId(id));
    } catch {
      // not a name nstool makes: never turned into a path
    }
  }
  return out.sort();
}

/** Ids with a state file (names that are not valid ids are skipped). */
export function listStateIds(dir: string): Promise<string[]> {
  return namesWith(dir, SUFFIX);
}

/** Ids with a lock file. */
export function listLockIds(dir: string): Promise<string[]> {
  return namesWith(dir, LOCK_SUFFIX);
}

/** An exclusive lock on one sandbox id; release() is idempotent. */
export class SandboxLock {
  private constructor(private fd: number | null) {}

  /**
   * Waits for the lock by polling with LOCK_NB: a blocking flock would hold
   * a libuv pool thread, and a few waiters on one id could starve the pool
   * the holder needs to finish.
   */
  static async acquire(dir: string, id: string, signal?: AbortSignal): Promise<SandboxLock> {
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
      throwIfAborted(signal, `waiting for the lock of sandbox ${id}`);
      const lock = SandboxLock.tryAcquire(dir, id);
      if (lock) return lock;
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Null when another live process holds it. */
  static tryAcquire(dir: string, id: string): SandboxLock | null {
    for (;;) {
      let fd: number;
      try {
        fd = lockFileSync(lockFile(dir, id), false);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return null;
        throw err;
      }
      if (SandboxLock.current(dir, id, fd)) return new SandboxLock(fd);
    }
  }

  // A holder removes the lock file when its sandbox is gone; a waiter that
  // then wins the lock on the unlinked file must retry on the new one.
  private static current(dir: string, id: string, fd: number): boolean {
    try {
      if (fstatSync(fd).ino === statSync(lockFile(dir, id)).ino) return true;
    } catch {
      // the file is gone: retry creates it
    }
    closeFdSync(fd);
    return false;
  }

  /** Releases the lock, removing the lock file first when the sandbox is gone. */
  async release(dir: string, id: string, removeFile: boolean): Promise<void> {
    if (this.fd === null) return;
    if (removeFile) {
      try {
        // Next to the state file: on a tmpfs at once.
        if (inMemorySync(dir)) unlinkSync(lockFile(dir, id));
        else await unlink(lockFile(dir, id));
      } catch {
        // gone already; gc removes lock files of ids without state
      }
    }
    closeFdSync(this.fd);
    this.fd = null;
  }
}
