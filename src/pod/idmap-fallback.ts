// When the runtime cannot make idmapped mounts, nstool makes them itself:
// the source is idmapped (with the pod's userns) onto a staging path, and
// the runtime gets a plain bind of that path. A bind of an idmapped mount
// keeps the idmap, so the pod's root owns what host root owns, without chown.
// Every staging mount is nosuid,nodev: it sits in the host's mount table.
import { lstat, mkdir, realpath, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import { IdMapping, sameIdMap, toHostId } from '../idmap.js';
import { idmapMount, unmountSync } from '../kernel/mount.js';
import type { Mount } from '../oci/types.js';
import { untrustedPath } from '../trusted-path.js';

export interface StageOptions {
  /** The user namespace whose maps the mount takes. */
  usernsPath: string;
  recursive?: boolean;
  readonly?: boolean;
}

/**
 * Idmaps SOURCE onto TARGET (created: a dir for a dir, an empty file for a
 * file), nosuid and nodev. Seen from the host, an id k on disk shows as the
 * host id the userns maps container id k to (host root's files show as the
 * pod root's uid); writes by that host id land as k on the source.
 */
export async function stageIdmapped(source: string, target: string, o: StageOptions): Promise<void> {
  for (const [p, what] of [[source, 'source'], [target, 'target'], [o.usernsPath, 'usernsPath']] as const) {
    requireAbsolute(p, what);
  }
  const st = await lstat(source).catch((err: NodeJS.ErrnoException) => {
    throw new NstoolError(`cannot stage ${source}: ${err.message}`, { code: err.code ?? 'ENOENT', path: source, syscall: 'lstat' });
  });
  if (st.isDirectory()) await mkdir(target, { mode: 0o755 });
  else await writeFile(target, '', { mode: 0o644, flag: 'wx' });
  try {
    await idmapMount(source, target, { userns: o.usernsPath, recursive: o.recursive ?? true, readonly: o.readonly ?? false, nosuid: true, nodev: true }, {
      context: `idmapping ${source} onto ${target}`,
      hints: {
        EINVAL: 'the filesystem of the source cannot be idmapped (tmpfs needs Linux 6.3+), or the userns has no maps',
        EPERM: 'idmapped mounts need root in the initial user namespace',
      },
    });
  } catch (err) {
    await removeTarget(target);
    throw err;
  }
}

async function removeTarget(target: string): Promise<void> {
  const st = await lstat(target).catch(() => null);
  if (!st) return;
  if (st.isDirectory()) await rmdir(target).catch(() => {});
  else await unlink(target).catch(() => {});
}

/** Undoes stageIdmapped: unmount (if mounted) and remove the staging path. Idempotent. */
export async function unstage(target: string): Promise<void> {
  // Loop: a target may carry a stack of mounts if staged twice by mistake.
  for (let i = 0; i < 8; i++) {
    if (!unmountSync(target, { context: `unmounting ${target}` })) break;
  }
  await removeTarget(target);
}


export interface FallbackResult<M> {
  mounts: M[];
  /** Staging paths made, in order; unstage each on removal. */
  staged: string[];
}

function wantsIdmap(m: Mount): boolean {
  const opts = m.options ?? [];
  return (m.uidMappings?.length ?? 0) > 0 || (m.gidMappings?.length ?? 0) > 0 || opts.includes('idmap') || opts.includes('ridmap');
}

/**
 * Why a host user other than root could reach SOURCE (undefined: none can).
 * Through a writable idmapped mount the pod's root writes files the host
 * sees as root's, setuid bits included; only a source no other user can
 * reach keeps those files from running as root for someone.
 */
export async function reachableByOthers(source: string, uidMap: readonly IdMapping[]): Promise<string | undefined> {
  // Missing: the mount itself fails later with ENOENT.
  const real = await realpath(source).catch(() => undefined);
  if (real === undefined) return undefined;
  // The mount resolves SOURCE again, later: a user who can swap a dir or link
  // on its way (even above a root-only dir) decides then what is mounted.
  const bad = await untrustedPath(path.dirname(source), true);
  if (bad !== undefined) return `${bad.dir} ${bad.why}: that user can swap what lies below it before it is mounted`;
  const dirs: string[] = [];
  for (let d = path.dirname(real); ; d = path.dirname(d)) {
    dirs.unshift(d);
    if (d === path.dirname(d)) break;
  }
  for (const d of dirs) {
    const st = await stat(d);
    // A non-root owner can chmod it; a group bit may name any group.
    if (st.uid === 0 && (st.mode & 0o011) === 0) return undefined;
  }
  const st = await stat(real);
  // The mount's root shows on-disk id k as the pod's k: if the pod maps k, its root may chmod it.
  if (toHostId(uidMap, st.uid) !== undefined) {
    return `every directory above ${real} is searchable by other users, and its owner (uid ${st.uid} on disk) is the pod's own uid ${st.uid} through the idmapped mount, so the pod's root can open it up`;
  }
  if (st.uid !== 0 || (st.mode & (st.isDirectory() ? 0o011 : 0o077)) !== 0) {
    return `every directory above ${real} is searchable by other users, and it is owned by uid ${st.uid} with mode ${(st.mode & 0o7777).toString(8)}`;
  }
  return undefined;
}

/**
 * Refuses a writable idmapped mount whose source other host users can reach
 * (ERR_NSTOOL_VOLUME_UNSAFE) unless ALLOW: what the pod's root writes there
 * is stored as host root's. Read-only idmapped mounts are fine.
 */
export async function checkIdmapVolumes(mounts: readonly Mount[], uidMap: readonly IdMapping[], allow = false): Promise<void> {
  if (allow) return;
  for (const m of mounts) {
    if (!wantsIdmap(m) || (m.options ?? []).includes('ro') || typeof m.source !== 'string' || !path.isAbsolute(m.source)) continue;
    const why = await reachableByOthers(m.source, uidMap);
    if (why === undefined) continue;
    throw new NstoolError(`the writable idmapped volume ${m.source} (at ${m.destination}) can be reached by other users: ${why}`, {
      code: 'ERR_NSTOOL_VOLUME_UNSAFE',
      path: m.source,
      hint:
        "the pod's root writes files there as host root (setuid ones too): mount it read-only, make a directory above it root-only (chmod 700), " +
        'or opt in with allowUnsafeIdmapVolumes (--allow-unsafe-idmap-volumes) if every local user may run what the pod writes there',
    });
  }
}

/**
 * Turns every idmapped mount of MOUNTS into a plain bind of a staging path
 * under STAGING_DIR that nstool idmapped itself. Mounts whose maps differ
 * from the pod's userns are refused: the staging mount can only take the
 * maps of a userns that exists.
 */
export async function applyIdmapFallback<M extends Mount>(
  mounts: readonly M[],
  o: {
    stagingDir: string;
    usernsPath: string;
    uidMap: IdMapping[];
    gidMap: IdMapping[];
    /** Called with each staging path before it is made (the caller records it). */
    beforeStage?: (target: string) => Promise<void>;
  },
): Promise<FallbackResult<M>> {
  const out: M[] = [];
  const staged: string[] = [];
  try {
    for (const [i, m] of mounts.entries()) {
      const opts = m.options ?? [];
      if (!wantsIdmap(m)) {
        out.push(m);
        continue;
      }
      if ((m.uidMappings && !sameIdMap(m.uidMappings, o.uidMap)) || (m.gidMappings && !sameIdMap(m.gidMappings, o.gidMap))) {
        throw new NstoolError(`the idmapped mount at ${m.destination} asks for maps other than the pod's`, {
          code: 'ERR_NSTOOL_IDMAP_UNSUPPORTED',
          hint: "without runtime support nstool can only idmap with the pod's own maps; use idmap: true",
        });
      }
      if (!m.source || !path.isAbsolute(m.source)) throw invalidArg(`the idmapped mount at ${m.destination} needs an absolute source`);
      const recursive = opts.includes('rbind') || opts.includes('ridmap');
      const readonly = opts.includes('ro');
      const target = path.join(o.stagingDir, `mount-${i}`);
      await o.beforeStage?.(target);
      await stageIdmapped(m.source, target, { usernsPath: o.usernsPath, recursive, readonly });
      staged.push(target);
      const { uidMappings: _u, gidMappings: _g, ...plain } = m;
      const rest = opts.filter((x) => x !== 'idmap' && x !== 'ridmap' && x !== 'bind' && x !== 'rbind');
      // The staging mount's flags are locked in the pod's userns: a remount (for "ro") must repeat them.
      for (const f of ['nosuid', 'nodev']) if (!rest.includes(f)) rest.push(f);
      out.push({ ...plain, type: 'bind', source: target, options: [recursive ? 'rbind' : 'bind', ...rest] } as M);
    }
  } catch (err) {
    for (const t of staged.reverse()) await unstage(t).catch(() => {});
    throw err;
  }
  return { mounts: out, staged };
}
