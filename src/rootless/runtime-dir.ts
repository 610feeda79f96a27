// The per-user runtime directory: $XDG_RUNTIME_DIR/nstool, else
// /run/user/UID/nstool, mode 0700. The keeper's socket and pid file live in
// it, and its pins under pins/ (a tmpfs in the keeper's own mount namespace;
// on the host that directory stays empty).
import { lstatSync, mkdirSync, Stats } from 'node:fs';
import path from 'node:path';
import { showValue } from '../names.js';
import { rootlessError, RUNTIME_DIR } from './errors.js';

export interface RuntimeDirs {
  /** $XDG_RUNTIME_DIR or /run/user/UID. */
  base: string;
  /** base/nstool */
  dir: string;
  /** dir/pins: the keeper's tmpfs. */
  pins: string;
  /** dir/pins/netns and dir/pins/userns, as the keeper sees them. */
  netns: string;
  userns: string;
  sock: string;
  pidFile: string;
  lock: string;
}

/** sockaddr_un.sun_path holds 107 bytes and a NUL. */
const SUN_PATH_MAX = 107;

const HINT =
  'set XDG_RUNTIME_DIR to a directory of yours with mode 0700 (a login through systemd-logind makes ' +
  '/run/user/UID; `loginctl enable-linger USER` keeps it while logged out)';

/** Where the directories are, from the environment; nothing is touched. */
export function runtimeDirs(env: Record<string, string | undefined> = process.env, uid = process.getuid?.() ?? 0): RuntimeDirs {
  const xdg = env['XDG_RUNTIME_DIR'];
  let base: string;
  if (xdg !== undefined && xdg !== '') {
    if (!xdg.startsWith('/') || xdg.includes('\0')) {
      throw rootlessError(RUNTIME_DIR, `XDG_RUNTIME_DIR ${showValue(xdg)} is not an absolute path`, HINT);
    }
    base = path.normalize(xdg);
  } else {
    base = `/run/user/${uid}`;
  }
  const dir = path.join(base, 'nstool');
  const pins = path.join(dir, 'pins');
  const d: RuntimeDirs = {
    base,
    dir,
    pins,
    netns: path.join(pins, 'netns'),
    userns: path.join(pins, 'userns'),
    sock: path.join(dir, 'keeper.sock'),
    pidFile: path.join(dir, 'keeper.pid'),
    lock: path.join(dir, 'keeper.lock'),
  };
  if (Buffer.byteLength(d.sock) > SUN_PATH_MAX) {
    throw rootlessError(RUNTIME_DIR, `the keeper's socket path ${showValue(d.sock)} is longer than a unix socket takes (${SUN_PATH_MAX} bytes)`, HINT);
  }
  return d;
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw rootlessError(RUNTIME_DIR, `cannot look at ${p}: ${(err as Error).message}`, HINT, { path: p, cause: err });
  }
}

/**
 * A directory of ours that no one else may write: not a symlink, owned by
 * this uid, and (when PRIVATE) closed to everyone else.
 */
function checkDir(p: string, st: Stats | null, uid: number, isPrivate: boolean): void {
  if (!st) {
    throw rootlessError(RUNTIME_DIR, `the runtime directory ${p} does not exist`, HINT, { path: p, errno: -2, syscall: 'lstat' });
  }
  if (!st.isDirectory()) throw rootlessError(RUNTIME_DIR, `${p} is not a directory (nstool never follows a symlink here)`, HINT, { path: p });
  if (st.uid !== uid) throw rootlessError(RUNTIME_DIR, `${p} belongs to uid ${st.uid}, not to this user (uid ${uid})`, HINT, { path: p });
  const open = isPrivate ? st.mode & 0o077 : st.mode & 0o022;
  if (open !== 0) {
    throw rootlessError(RUNTIME_DIR, `${p} is open to other users (mode ${(st.mode & 0o777).toString(8)})`, `chmod 700 ${p}`, { path: p });
  }
}

function ensureDir(p: string, uid: number): void {
  try {
    mkdirSync(p, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw rootlessError(RUNTIME_DIR, `cannot create ${p}: ${(err as Error).message}`, HINT, { path: p, cause: err });
    }
  }
  checkDir(p, lstatOrNull(p), uid, true);
}

/** The base must exist and be ours: refused before any side effect. */
export function checkRuntimeBase(d: RuntimeDirs, uid = process.getuid?.() ?? 0): void {
  checkDir(d.base, lstatOrNull(d.base), uid, false);
}

/** Creates dir and dir/pins (0700) under a checked base. */
export function ensureRuntimeDirs(d: RuntimeDirs, uid = process.getuid?.() ?? 0): void {
  checkRuntimeBase(d, uid);
  ensureDir(d.dir, uid);
  ensureDir(d.pins, uid);
}
