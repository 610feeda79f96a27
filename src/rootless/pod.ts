// Containers in a rootless pod: where their files live and what is refused.
// The runtime runs in its rootless mode as the user, with its state, logs
// and the bundles under the user's runtime dir (all 0700, files 0600):
//   $XDG_RUNTIME_DIR/nstool/containers/ID   bundles (config.json, record, logs)
//   $XDG_RUNTIME_DIR/nstool/runc            the runtime's --root
//   $XDG_RUNTIME_DIR/nstool/runtime-logs    per-command logs (src/runc/client.ts)
// Nothing is mounted on the host: the runtime makes every mount inside the
// container's own mount namespace (src/oci/rootless.ts).
import { lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { invalidArg } from '../errors.js';
import type { MountRequest } from '../oci/index.js';
import { RuncClient, RuncClientOptions } from '../runc/client.js';
import { showValue } from '../names.js';
import { ROOTLESS_UNSUPPORTED, rootlessError, RUNTIME_DIR } from './errors.js';
import type { RootlessPodDirs } from './pod-dirs.js';
import { checkRuntimeBase, ensureRuntimeDirs } from './runtime-dir.js';

export { rootlessPodDirs } from './pod-dirs.js';
export type { RootlessPodDirs } from './pod-dirs.js';

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(`${dir}/`);
}

function refuse(what: string, why: string, hint: string): never {
  throw rootlessError(ROOTLESS_UNSUPPORTED, `${what} cannot be used without root: ${why}`, hint);
}

/**
 * A dir a rootless container's files may go in: the user's runtime dir or
 * below it. Anywhere else another user could reach them, or nstool could
 * not clean them up; refused (ERR_NSTOOL_ROOTLESS_UNSUPPORTED).
 */
export function checkUserDir(p: string, what: string, d: RootlessPodDirs): string {
  const n = path.normalize(p);
  if (!under(n, d.base)) {
    refuse(`${what} ${showValue(p)}`, `a rootless container keeps its files in the user's runtime dir (${d.base})`, `leave ${what} unset (default under ${d.dir})`);
  }
  return n;
}

/** The bundle dir: the default state dir (root's path) means the user's own. */
export function rootlessStateDir(stateDir: string | undefined, rootDefault: string, d: RootlessPodDirs): string {
  if (stateDir === undefined || path.normalize(stateDir) === rootDefault) return d.containers;
  return checkUserDir(stateDir, 'stateDir', d);
}

/**
 * The runtime client for a rootless container: rootless, with its --root and
 * logs in the user's runtime dir unless given there.
 */
export function rootlessRuntime(r: RuncClient | RuncClientOptions | undefined, d: RootlessPodDirs): RuncClient {
  const o: RuncClientOptions =
    r instanceof RuncClient
      ? { binary: r.binary, ...(r.root !== undefined ? { root: r.root } : {}), logDir: r.logDir, timeoutMs: r.timeoutMs, systemdCgroup: r.systemdCgroup, rootless: r.rootless }
      : { ...(r ?? {}) };
  if (o.rootless === false) refuse('rootless: false', "the runtime runs as the user and must use its rootless mode", 'leave rootless unset');
  if (o.systemdCgroup) refuse('systemdCgroup', 'nstool gives rootless containers no cgroup', 'leave systemdCgroup unset');
  if (o.root !== undefined) checkUserDir(o.root, 'the runtime root', d);
  if (o.logDir !== undefined) checkUserDir(o.logDir, 'the runtime logDir', d);
  return new RuncClient({ ...o, root: o.root ?? d.runc, rootless: true });
}

/** Options only root can honour: refused before any side effect. */
export function checkRootlessOptions(o: { mounts?: MountRequest[]; allowUnsafeIdmapVolumes?: boolean; spec?: { cgroupsPath?: unknown } }): void {
  if (o.allowUnsafeIdmapVolumes === true) {
    refuse('allowUnsafeIdmapVolumes', 'idmapped volumes need CAP_SYS_ADMIN on the host', 'drop --allow-unsafe-idmap-volumes');
  }
  if (o.mounts !== undefined && !Array.isArray(o.mounts)) throw invalidArg('mounts must be an array', 'ERR_INVALID_ARG_TYPE');
  (o.mounts ?? []).forEach((m, i) => {
    if (m !== null && typeof m === 'object' && m.idmap !== undefined && m.idmap !== false) {
      refuse(`mounts[${i}] with idmap`, 'an idmapped mount needs CAP_SYS_ADMIN on the host', 'drop idmap: the pod sees the volume with its host owners (unmapped ones as nobody)');
    }
  });
  if (o.spec?.cgroupsPath !== undefined) {
    refuse('cgroupsPath', 'the user has no delegated cgroup to put the container in', 'leave cgroupsPath unset');
  }
}

function ensurePrivateDir(p: string, uid: number): void {
  try {
    mkdirSync(p, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw rootlessError(RUNTIME_DIR, `cannot create ${p}: ${(err as Error).message}`, 'check the runtime dir', { path: p, cause: err });
    }
  }
  const st = lstatSync(p);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw rootlessError(RUNTIME_DIR, `${p} is not a private directory of this user (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`, `remove ${p}; nstool makes it again`, { path: p });
  }
}

/** The user's nstool dir, then DIR and the dirs between, each 0700 and the user's. */
export function ensureUserDirs(dir: string, d: RootlessPodDirs): void {
  const uid = process.getuid?.() ?? 0;
  ensureRuntimeDirs(d, uid);
  const chain: string[] = [];
  for (let p = dir; under(p, d.dir) && p !== d.dir; p = path.dirname(p)) chain.unshift(p);
  if (!under(dir, d.dir)) {
    // Elsewhere under the runtime dir: made as asked, 0700.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return;
  }
  for (const p of chain) ensurePrivateDir(p, uid);
}

/**
 * Pin dirs as the API takes them, less the keeper's own (as the host
 * reaches them, /proc/KEEPER/root/...: what a rootless sandbox records):
 * rootless inspect finds those pins by the netns path alone, and refuses
 * any other pin dir.
 */
export function withoutKeeperPinDirs<T extends { pinDir?: string; usernsPinDir?: string }>(o: T, d: RootlessPodDirs): T {
  const out = { ...o };
  const keeperDir = (p: unknown, inner: string) => {
    if (typeof p !== 'string') return false;
    const m = /^\/proc\/[1-9]\d*\/root(\/.*)$/.exec(path.normalize(p));
    return m !== null && m[1] === inner;
  };
  if (keeperDir(out.pinDir, d.netns)) delete out.pinDir;
  if (keeperDir(out.usernsPinDir, d.userns)) delete out.usernsPinDir;
  return out;
}

/** The runtime base must exist and be the user's: checked before any side effect. */
export function checkRootlessBase(d: RootlessPodDirs): void {
  checkRuntimeBase(d);
}
