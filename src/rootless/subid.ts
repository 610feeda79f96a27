// Id maps without root. The kernel lets an unprivileged process map only
// its own uid and gid (the gid with setgroups denied); anything wider comes
// from the ranges /etc/subuid and /etc/subgid grant the user, written by the
// setuid newuidmap / newgidmap of the uidmap package.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { formatIdMap, IdMapping } from '../idmap.js';
import { showText } from '../show.js';
import { runProcess, which } from '../process.js';
import { NEWIDMAP_FAILED, NEWIDMAP_MISSING, NEWIDMAP_NOT_SETUID, rootlessError, SUBID } from './errors.js';

export interface SubidRange {
  start: number;
  count: number;
}

export interface Caller {
  uid: number;
  gid: number;
  user: string;
}

/** The ranges lines of /etc/subuid (or subgid) text grant USER (by name or uid). */
export function parseSubid(text: string, user: string, uid: number): SubidRange[] {
  const out: SubidRange[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(':');
    if (parts.length !== 3 || (parts[0] !== user && parts[0] !== String(uid))) continue;
    if (!/^\d{1,10}$/.test(parts[1]!) || !/^\d{1,10}$/.test(parts[2]!)) continue;
    const start = Number(parts[1]), count = Number(parts[2]);
    if (count > 0 && start + count <= 2 ** 32 - 1) out.push({ start, count });
  }
  return out;
}

/** The caller's ranges in FILE (/etc/subuid or /etc/subgid); none when it is missing. */
export function readRanges(file: string, c: Caller): SubidRange[] {
  try {
    return parseSubid(readFileSync(file, 'utf8'), c.user, c.uid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw rootlessError(SUBID, `cannot read ${file}: ${(err as Error).message}`, `make ${file} readable (mode 0644)`, { path: file, cause: err });
  }
}

/** True when MAP is one range of size 1 on ID: the kernel takes it without help. */
export function isOwnIdOnly(map: readonly IdMapping[], id: number): boolean {
  return map.length === 1 && map[0]!.size === 1 && map[0]!.hostID === id;
}

function covered(m: IdMapping, ranges: readonly SubidRange[], own: number): boolean {
  if (m.size === 1 && m.hostID === own) return true;
  return ranges.some((r) => m.hostID >= r.start && m.hostID + m.size <= r.start + r.count);
}

/**
 * Every mapping of MAP must lie in a range FILE grants the caller (or be the
 * caller's own id alone); else ERR_NSTOOL_SUBID naming the fix. Checked before
 * any side effect, so newuidmap never gets to refuse halfway.
 */
export function checkSubidMap(map: readonly IdMapping[], kind: 'uid' | 'gid', c: Caller, file: string): void {
  const own = kind === 'uid' ? c.uid : c.gid;
  const ranges = readRanges(file, c);
  const bad = map.find((m) => !covered(m, ranges, own));
  if (!bad) return;
  const fix =
    `as root: \`usermod --add-sub${kind}s 100000-165535 ${c.user}\` (or add the line "${c.user}:100000:65536" to ${file}); ` +
    `or map only your own ${kind}: --${kind}map 0:${own}:1`;
  if (ranges.length === 0) {
    throw rootlessError(SUBID, `${file} grants no subordinate ${kind}s to ${showText(c.user)} (${kind} ${own}), so ${kind}Map ${formatIdMap(map)} cannot be written`, fix, { path: file });
  }
  const granted = ranges.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ');
  throw rootlessError(
    SUBID,
    `${kind}Map range ${formatIdMap([bad])} is not within what ${file} grants ${showText(c.user)} (${granted}) or ${kind} ${own} alone`,
    `map host ${kind}s from ${granted}, or ${fix}`,
    { path: file },
  );
}

export interface IdmapTool {
  name: 'newuidmap' | 'newgidmap';
  path: string;
  /** setuid root: without it (and without file capabilities) it cannot write maps. */
  setuid: boolean;
}

/** Finds newuidmap / newgidmap on PATH; ERR_NSTOOL_NEWIDMAP_MISSING when absent. */
export function findIdmapTool(name: 'newuidmap' | 'newgidmap', envPath = process.env['PATH']): IdmapTool {
  let p: string;
  try {
    p = which(name, envPath || '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin');
    accessSync(p, constants.X_OK);
  } catch (err) {
    throw rootlessError(
      NEWIDMAP_MISSING,
      `${name} is not installed (not found on PATH): it writes maps of subordinate ids for unprivileged users`,
      'install the uidmap package (as root: apt-get install uidmap); or map only your own ids: --uidmap 0:UID:1 --gidmap 0:GID:1',
      { path: name, syscall: 'execve', cause: err },
    );
  }
  const st = statSync(p);
  return { name, path: p, setuid: (st.mode & 0o4000) !== 0 && st.uid === 0 };
}

/**
 * Runs `newuidmap PID inside outside count...` (or newgidmap) with an
 * argument array, through the one process runner.
 */
export async function writeWithTool(tool: IdmapTool, pid: number, map: readonly IdMapping[]): Promise<void> {
  const args = map.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)]);
  const r = await runProcess([tool.path, String(pid), ...args], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    timeoutMs: 10_000,
    maxOutput: 4096,
  });
  if (r.exitCode === 0) return;
  const said = showText(r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode ?? r.signal}`);
  if (!tool.setuid) {
    throw rootlessError(
      NEWIDMAP_NOT_SETUID,
      `${tool.path} is not setuid root and could not write the map: ${said}`,
      `as root: \`chmod u+s ${tool.path}\` (or \`setcap cap_setuid,cap_setgid+ep ${tool.path}\`), or reinstall the uidmap package`,
      { path: tool.path },
    );
  }
  throw rootlessError(
    NEWIDMAP_FAILED,
    `${tool.name} refused ${formatIdMap(map)}: ${said}`,
    tool.name === 'newuidmap' ? 'check /etc/subuid for this user' : 'check /etc/subgid for this user',
    { path: tool.path },
  );
}
