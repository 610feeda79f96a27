// One state file per sandbox, written atomically (tmp + fsync + rename, and
// an fsync of the directory) so a crash leaves the old or the new file,
// never a torn one; and a per-sandbox flock so concurrent create/delete of
// one id are serialised and gc can tell a running create from a dead one.
import { fstatSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { callSync, NstoolError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { IdMapping } from '../idmap.js';
import { native } from '../native.js';

export const DEFAULT_STATE_DIR = '/run/nstool/sandboxes';
const SUFFIX = '.json';

export type Phase = 'creating' | 'ready' | 'deleting' | 'failed';

export interface SandboxState {
  version: 1;
  id: string;
  phase: Phase;
  createdAt: string;
  /** Set when a rollback or delete stopped part way: what is left, for gc. */
  pendingUndo?: string[];
  netns?: { name: string; path: string; pinDir: string; usernsPath?: string; usernsPinDir: string; inode?: number };
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  network?: {
    /** The full config list, so DEL works after a restart without the caller's files. */
    list: Record<string, unknown>;
    ifName: string;
    cacheDir: string;
    pluginPath: string[];
    nodeNetns?: string;
    capabilityArgs?: Record<string, unknown>;
    result?: Record<string, unknown>;
    ips?: string[];
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
  return path.join(dir, id + '.lock');
}

export async function ensureStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

export async function writeState(dir: string, st: SandboxState): Promise<void> {
  await writeFileAtomic(stateFile(dir, st.id), JSON.stringify(st, null, 2) + '\n');
}

/** The state of ID, or null when there is none. A torn or foreign file is an error. */
export async function readState(dir: string, id: string): Promise<SandboxState | null> {
  const file = stateFile(dir, id);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const st = JSON.parse(text) as SandboxState;
    if (st.version !== 1 || st.id !== id) throw new Error('unexpected content');
    return st;
  } catch (err) {
    throw new NstoolError(`sandbox state ${file} is unreadable: ${(err as Error).message}`, {
      code: 'ERR_NSTOOL_STATE',
      path: file,
      hint: '`nstool gc` cleans what it can find from the pins and the CNI cache',
      cause: err,
    });
  }
}

export async function removeState(dir: string, id: string): Promise<void> {
  await unlink(stateFile(dir, id)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export async function listStateIds(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith(SUFFIX)).map((n) => n.slice(0, -SUFFIX.length)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** An exclusive lock on one sandbox id; release() is idempotent. */
export class SandboxLock {
  private constructor(private fd: number | null) {}

  /**
   * Waits for the lock by polling with LOCK_NB: a blocking flock would hold
   * a libuv pool thread, and a few waiters on one id could starve the pool
   * the holder needs to finish.
   */
  static async acquire(dir: string, id: string): Promise<SandboxLock> {
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
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
        fd = callSync(() => native.lockFileSync(lockFile(dir, id), false));
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
    native.closeFdSync(fd);
    return false;
  }

  /** Releases the lock, removing the lock file first when the sandbox is gone. */
  async release(dir: string, id: string, removeFile: boolean): Promise<void> {
    if (this.fd === null) return;
    if (removeFile) await unlink(lockFile(dir, id)).catch(() => {});
    native.closeFdSync(this.fd);
    this.fd = null;
  }
}
