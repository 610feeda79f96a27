// Root or rootless. nstool runs as "root" when it holds CAP_SYS_ADMIN in the
// initial user namespace, the only place where it may mount pins in the host's
// mount namespace; anywhere else it runs rootless (src/rootless/).
import { readFileSync, statSync } from 'node:fs';

export type Mode = 'root' | 'rootless';

const CAP_SYS_ADMIN = 21n;

/** Whether the CapEff line of /proc/self/status text holds CAP_SYS_ADMIN. */
export function hasSysAdmin(status: string): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return m !== null && ((BigInt(`0x${m[1]}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
}

/**
 * Whether uid_map text is the initial user namespace's: every id mapped to
 * itself. A child user namespace cannot be told apart from it with
 * NS_GET_PARENT (EPERM at the top of every caller's own view), and
 * /proc/1/ns/user may be unreadable or, in a container, share our own
 * namespace; the full identity map is what only the initial one has (unless
 * host root made a copy of it on purpose).
 */
export function isInitialUidMap(uidMap: string): boolean {
  const lines = uidMap.split('\n').filter((l) => l.trim() !== '');
  return lines.length === 1 && /^\s*0\s+0\s+4294967295\s*$/.test(lines[0]!);
}

function read(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** Differs from pid 1's user namespace, when that one can be seen at all. */
function nestedBelowPid1(): boolean {
  try {
    return statSync('/proc/1/ns/user').ino !== statSync('/proc/self/ns/user').ino;
  } catch {
    return false; // unreadable (hidepid, another user's pid 1): no evidence either way
  }
}

export function detectMode(): Mode {
  const status = read('/proc/self/status') ?? '';
  const uidMap = read('/proc/self/uid_map') ?? '';
  return hasSysAdmin(status) && isInitialUidMap(uidMap) && !nestedBelowPid1() ? 'root' : 'rootless';
}

let cached: Mode | undefined;
/** This process's mode, decided once (capabilities do not come back). */
export function currentMode(): Mode {
  cached ??= detectMode();
  return cached;
}
