// The container's mount list: the standard kernel filesystems, then the
// caller's binds (a caller mount on a standard destination replaces it).
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { invalidArg } from '../errors.js';
import { validateIdMap, type IdMapping } from '../idmap.js';
import type { Mount, MountRequest, Propagation } from './types.js';

const PROPAGATIONS: ReadonlySet<string> = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const LOCKABLE = ['nosuid', 'nodev', 'noexec'] as const;

export function checkAbsPath(p: unknown, what: string): string {
  if (typeof p !== 'string' || !path.isAbsolute(p)) throw invalidArg(`${what} must be an absolute path, got ${JSON.stringify(p)}`);
  if (p.includes('\0')) throw invalidArg(`${what} must not contain NUL`);
  if (p.split('/').includes('..')) throw invalidArg(`${what} must not contain ".." components: ${p}`);
  return p;
}

export interface StandardMountOptions {
  userns: boolean;
  cgroupMount: 'cgroupfs' | 'bind' | 'none';
  /**
   * Bind the host's /sys (recursively read-only) instead of a new sysfs: a
   * user namespace may mount sysfs only for a netns it owns, so one on the
   * host network gets EPERM.
   */
  sysBind?: boolean;
}

/** /sys as a read-only recursive bind of the host's (rro: runc 1.1+, Linux 5.12+). */
const SYS_BIND: Readonly<Mount> = { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'rro', 'nosuid', 'nodev', 'noexec'] };

export function standardMounts(o: StandardMountOptions): Mount[] {
  const pts = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
  // gid=5 names a group that is not mapped in a user namespace: the mount would fail.
  if (!o.userns) pts.push('gid=5');
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: pts },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    o.sysBind
      ? { ...SYS_BIND, options: [...SYS_BIND.options!] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  if (o.cgroupMount === 'cgroupfs') {
    mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
  } else if (o.cgroupMount === 'bind') {
    mounts.push({ destination: '/sys/fs/cgroup', type: 'bind', source: '/sys/fs/cgroup', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  }
  return mounts;
}

interface MountInfoEntry {
  point: string;
  options: Set<string>;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The per-mount flags of this process's mounts (later entries stack on earlier ones). */
export function readMountInfo(text = readFileSync('/proc/self/mountinfo', 'utf8')): MountInfoEntry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split(' ');
      return { point: unescapeMountinfo(f[4] ?? ''), options: new Set((f[5] ?? '').split(',')) };
    });
}

/**
 * Flags of the mount holding SOURCE that the kernel locks in a user
 * namespace: a bind remount (for "ro") that drops them fails with EPERM.
 */
export function lockedFlags(source: string, table: MountInfoEntry[]): string[] {
  let real: string;
  try {
    real = realpathSync(source);
  } catch {
    real = path.resolve(source); // not there yet: runc will fail on it anyway
  }
  let best: MountInfoEntry | undefined;
  for (const m of table) {
    const under = m.point === '/' || real === m.point || real.startsWith(`${m.point}/`);
    // The last of equally long matches is the one on top.
    if (under && (!best || m.point.length >= best.point.length)) best = m;
  }
  return best ? LOCKABLE.filter((f) => best!.options.has(f)) : [];
}

function checkMaps(maps: unknown, what: string): IdMapping[] {
  if (!Array.isArray(maps)) throw invalidArg(`${what} must be an array of mappings`, 'ERR_INVALID_ARG_TYPE');
  const out = maps.map((m: IdMapping) => ({ containerID: m?.containerID, hostID: m?.hostID, size: m?.size }));
  validateIdMap(out, what);
  return out;
}

export interface CallerMountContext {
  userns: boolean;
  podUidMappings?: IdMapping[];
  podGidMappings?: IdMapping[];
  mountTable: () => MountInfoEntry[];
}

export function callerMount(r: MountRequest, i: number, ctx: CallerMountContext): Mount {
  const what = `mounts[${i}]`;
  if (r === null || typeof r !== 'object') throw invalidArg(`${what} must be an object`, 'ERR_INVALID_ARG_TYPE');
  const destination = checkAbsPath(r.destination, `${what}.destination`);
  const type = r.type ?? 'bind';
  if (typeof type !== 'string' || type === '' || type.includes('\0')) throw invalidArg(`${what}.type must be a filesystem type`);
  const bind = type === 'bind';
  if (typeof r.source !== 'string' || r.source.includes('\0') || r.source === '') throw invalidArg(`${what}.source must be a non-empty string`);
  const source = bind ? checkAbsPath(r.source, `${what}.source`) : r.source;
  const extra = r.options ?? [];
  if (!Array.isArray(extra) || extra.some((o) => typeof o !== 'string' || o === '' || o.includes('\0') || o.includes(','))) {
    throw invalidArg(`${what}.options must be non-empty strings without commas`);
  }
  if (r.propagation !== undefined && !PROPAGATIONS.has(r.propagation)) {
    throw invalidArg(`${what}.propagation must be one of ${[...PROPAGATIONS].join(', ')}`);
  }

  const options: string[] = [];
  if (bind) options.push(r.recursive ? 'rbind' : 'bind');
  if (r.readonly) options.push('ro');
  if (r.propagation) options.push(r.propagation satisfies Propagation);
  if (bind && ctx.userns) for (const f of lockedFlags(source, ctx.mountTable())) options.push(f);

  const m: Mount = { destination, type, source, options };
  if (r.idmap !== undefined && r.idmap !== false) {
    if (!bind) throw invalidArg(`${what}: idmap works on bind mounts only`);
    if (r.idmap === true) {
      if (!ctx.podUidMappings || !ctx.podGidMappings) {
        throw invalidArg(`${what}: idmap: true uses the pod's maps, but no usernsPath with uidMappings/gidMappings was given`);
      }
      m.uidMappings = ctx.podUidMappings.map((x) => ({ ...x }));
      m.gidMappings = ctx.podGidMappings.map((x) => ({ ...x }));
    } else if (typeof r.idmap === 'object') {
      m.uidMappings = checkMaps(r.idmap.uidMappings, `${what}.idmap.uidMappings`);
      m.gidMappings = checkMaps(r.idmap.gidMappings, `${what}.idmap.gidMappings`);
    } else {
      throw invalidArg(`${what}.idmap must be a boolean or { uidMappings, gidMappings }`, 'ERR_INVALID_ARG_TYPE');
    }
    options.push(r.recursive ? 'ridmap' : 'idmap');
  }
  for (const o of extra) if (!options.includes(o)) options.push(o);
  return m;
}

/**
 * Standard mounts first, a caller mount on the same destination taking the
 * standard one's place; other caller mounts after, parents before children.
 */
export function mergeMounts(standard: Mount[], caller: Mount[]): Mount[] {
  const norm = (p: string) => path.posix.normalize(p).replace(/(.)\/$/, '$1');
  const byDest = new Map(caller.map((m) => [norm(m.destination), m]));
  const seen = new Set<string>();
  for (const m of caller) {
    const d = norm(m.destination);
    if (seen.has(d)) throw invalidArg(`two mounts have the destination ${d}`);
    seen.add(d);
  }
  const out = standard.map((s) => byDest.get(norm(s.destination)) ?? s);
  const used = new Set(out);
  const depth = (m: Mount) => norm(m.destination).split('/').filter(Boolean).length;
  const rest = caller.filter((m) => !used.has(m)).map((m, i) => ({ m, i }));
  rest.sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i);
  return [...out, ...rest.map((x) => x.m)];
}
