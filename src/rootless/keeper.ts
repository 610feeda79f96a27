// The keeper: one process per user that holds that user's pins in a mount
// namespace of its own (native/keeper/nstool-keeper.cc says how). Here: how
// to find it, start it, tell a live one from a stale pid file, and talk to it.
import { closeSync, lstatSync, openSync, readFileSync, readSync, statSync, constants, unlinkSync } from 'node:fs';
import path from 'node:path';
import { NstoolError } from '../errors.js';
import { keeperCall as keeperCallCore } from '../kernel/held.js';
import { closeFdSync, lockFile } from '../kernel/lock.js';
import { runProcess, spawnHelper } from '../process.js';
import { showText } from '../show.js';
import { KEEPER, rootlessError, usernsDisabled } from './errors.js';
import { checkReply, errnoCode, KEEPER_PROTOCOL, KeeperRef, parsePidLine } from './protocol.js';
import { RuntimeDirs } from './runtime-dir.js';

/** Bound on each request to the keeper (connect, send, reply). */
export const KEEPER_TIMEOUT_MS = 10_000;

let found: { key: string; path: string } | undefined;

/** The keeper executable: NSTOOL_KEEPER, else next to the spawn helper. */
export function keeperBinary(): string {
  const override = process.env['NSTOOL_KEEPER'];
  const key = `${override}\0${process.env['NSTOOL_SPAWN']}\0${process.env['NSTOOL_ADDON']}`;
  if (found?.key === key) return found.path;
  const p = override ? path.resolve(override) : path.join(path.dirname(spawnHelper()), 'nstool-keeper');
  try {
    if (!statSync(p).isFile()) throw new Error('not a file');
  } catch (err) {
    throw new NstoolError(`nstool: the keeper (nstool-keeper) is not built; looked at ${p}`, {
      code: 'ERR_NSTOOL_NATIVE',
      path: p,
      hint: 'run `npm install` (or `npx node-gyp rebuild`) in the package directory',
      cause: err,
    });
  }
  found = { key, path: p };
  return p;
}

/** The path through which the host reaches a pin the keeper holds. */
export function hostPath(ref: KeeperRef, pinPath: string): string {
  return `/proc/${ref.pid}/root${pinPath}`;
}

/**
 * A failure of the socket itself that means "no keeper listens there" (no
 * socket file, nobody bound, closed unanswered): the request was never read.
 */
export function keeperGone(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown } | null;
  return (
    (e?.syscall === 'connect' || e?.syscall === 'sendmsg' || e?.syscall === 'recvmsg') &&
    (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET')
  );
}

/** The keeper's pid file, or null when missing or malformed. */
export function readPidFile(d: RuntimeDirs): KeeperRef | null {
  let fd: number;
  try {
    fd = openSync(d.pidFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(64);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return parsePidLine(buf.subarray(0, n).toString('latin1'));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Start time and comm of a live process from /proc/PID/stat, else null. */
function procStat(pid: number): { comm: string; start: string; state: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const open = text.indexOf('('), close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); starttime is field 22.
  const start = fields[19];
  if (!start) return null;
  return { comm: text.slice(open + 1, close), start, state: fields[0]! };
}

/**
 * Whether REF is a live keeper of this user: the pid runs nstool-keeper,
 * started when the pid file says (not a reused pid), and is ours.
 */
export function isLiveKeeper(ref: KeeperRef, uid = process.getuid?.() ?? 0): boolean {
  const st = procStat(ref.pid);
  if (!st || st.start !== ref.start || st.comm !== 'nstool-keeper' || st.state === 'Z') return false;
  try {
    return statSync(`/proc/${ref.pid}`).uid === uid;
  } catch {
    return false;
  }
}

/** The live keeper of this user, or null (none, or a stale pid file). */
export function findKeeper(d: RuntimeDirs): KeeperRef | null {
  const ref = readPidFile(d);
  return ref && isLiveKeeper(ref) ? ref : null;
}

/** One request without fds; the reply line without its newline. */
export async function keeperCall(d: RuntimeDirs, request: string): Promise<string> {
  const reply = await keeperCallCore(d.sock, `${request}\n`, KEEPER_TIMEOUT_MS, { context: 'asking the keeper', hints: KEEPER_HINTS });
  return checkReply(reply, request);
}

const KEEPER_HINTS: Record<string, string> = {
  ETIMEDOUT: 'the keeper does not answer; `cat $XDG_RUNTIME_DIR/nstool/keeper.pid` names it: kill it and nstool starts another (its pins go with it)',
};

function removeIf(p: string, kind: 'socket' | 'file'): void {
  try {
    const st = lstatSync(p);
    if (kind === 'socket' ? st.isSocket() : st.isFile()) unlinkSync(p);
  } catch {
    // gone already
  }
}

async function waitGone(ref: KeeperRef, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (!isLiveKeeper(ref)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isLiveKeeper(ref);
}

/** Starts a keeper (the caller holds the lock and removed any stale files). */
async function startKeeper(d: RuntimeDirs): Promise<KeeperRef> {
  const r = await runProcess([keeperBinary(), 'start', d.dir], { env: {}, timeoutMs: 15_000, maxOutput: 4096 });
  const ref = parsePidLine(r.stdout);
  if (r.exitCode === 0 && ref) return ref;
  const m = /^err ([a-z0-9-]{1,32}) (\d{1,5})\n?$/.exec(r.stdout);
  if (m && m[1] === 'unshare' && ['EPERM', 'EACCES'].includes(errnoCode(Number(m[2])))) {
    throw usernsDisabled(`the keeper's unshare(CLONE_NEWUSER) failed with ${errnoCode(Number(m[2]))}`);
  }
  const why = m ? `${m[1]} failed with ${errnoCode(Number(m[2]))}` : `it said ${JSON.stringify(showText((r.stdout + r.stderr).trim(), 200))}`;
  throw rootlessError(KEEPER, `the keeper did not start: ${why}`, 'look at the runtime directory ($XDG_RUNTIME_DIR/nstool): it must be yours, mode 0700, on a filesystem that takes unix sockets', {
    ...(m ? { syscall: m[1]!, errno: -Number(m[2]) } : {}),
    path: d.dir,
  });
}

/**
 * The live keeper, started when there is none. Serialised per user by a
 * lock file, so two callers never start two keepers; a pid file naming a
 * dead process or a reused pid is stale, and its socket and pid file go.
 */
export async function ensureKeeper(d: RuntimeDirs): Promise<KeeperRef> {
  const lock = await lockFile(d.lock, true, { context: `locking ${d.lock}` });
  try {
    const ref = readPidFile(d);
    if (ref && isLiveKeeper(ref)) {
      try {
        const words = (await keeperCall(d, 'ping')).split(' ');
        if (words[0] !== 'nstool-keeper' || words[1] !== String(KEEPER_PROTOCOL) || words[2] !== String(ref.pid)) {
          throw rootlessError(KEEPER, `the keeper (pid ${ref.pid}) speaks another protocol (${showText(words.slice(0, 2).join(' '), 60)})`, `it comes from another nstool build: kill ${ref.pid} (its pins go with it) and retry`);
        }
        return ref;
      } catch (err) {
        if (!keeperGone(err)) throw err;
        // No socket: it is exiting (its last pin went). Let it finish.
        if (!(await waitGone(ref, 2000))) {
          throw rootlessError(KEEPER, `the keeper (pid ${ref.pid}) runs but its socket ${d.sock} does not answer`, `kill ${ref.pid} (its pins go with it) and retry`, { path: d.sock, cause: err });
        }
      }
    }
    removeIf(d.sock, 'socket');
    removeIf(d.pidFile, 'file');
    return await startKeeper(d);
  } finally {
    closeFdSync(lock);
  }
}
