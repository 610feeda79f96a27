// Unprivileged users for rootless tests: made by root (useradd), given
// exactly the /etc/subuid and /etc/subgid lines a test asks for, and removed
// with those lines and every process they left, even when a test fails.
// nstool runs as such a user through setpriv, with its own XDG_RUNTIME_DIR.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');
export const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/index.js');
export const SYS_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Its XDG_RUNTIME_DIR (0700, its own). */
  run: string;
}

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

export function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** ARGS (a program and its arguments) run as U. */
export function userCommand(u: TestUser, args: string[]): string[] {
  return ['/usr/bin/setpriv', '--reuid', u.name, '--regid', u.name, '--init-groups', '--', ...args];
}

export function userArgv(u: TestUser, args: string[]): string[] {
  return userCommand(u, [process.execPath, BIN, ...args]);
}

export function userEnv(u: TestUser, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ PATH: SYS_PATH, XDG_RUNTIME_DIR: u.run, LANG: 'C', ...env })) if (v !== undefined) out[k] = v;
  return out;
}

/** nstool as U; ENV replaces PATH / XDG_RUNTIME_DIR (undefined removes one). */
export function as(u: TestUser, args: string[], env: Record<string, string | undefined> = {}, timeout = 30_000): CliResult {
  const argv = userArgv(u, args);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout, cwd: '/', env: userEnv(u, env) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

export function asAsync(u: TestUser, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const argv = userArgv(u, args);
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, cwd: '/', env: userEnv(u, env) }, (err, out, errOut) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: errOut });
    });
  });
}

export function json<T>(r: CliResult): T {
  try {
    return JSON.parse(r.out) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.out}\n${r.err}`);
  }
}

/** Pids whose real, effective, saved or fs uid is UID (zombies too). */
export function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
      if (m && m.slice(1).some((x) => Number(x) === uid)) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Waits (no timing asserted) until UID has no process left; returns what is left. */
export async function settle(uid: number, ms = 30_000): Promise<number[]> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (processesOf(uid).length === 0) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  return processesOf(uid);
}

export const SUBID_FILES = ['/etc/subuid', '/etc/subgid'];

/** A range no other test maps: 65536 ids somewhere in 3e9..4e9. */
export function randomSubidBase(): number {
  return 3_000_000_000 + Math.floor(Math.random() * 15_000) * 65_536;
}

/**
 * The users of one test file, named from its prefix P. cleanup() ends their
 * processes, removes their subid lines, the users and their temp dirs.
 */
export function testUsers(P: string) {
  const users: TestUser[] = [];
  const tmpDirs: string[] = [];
  const strays: number[] = [];
  /** What we added, per file: the lines and whether a newline had to go before each. */
  const added = new Map<string, Array<{ line: string; sep: boolean }>>();

  function rewrite(file: string, text: string): void {
    const st = statSync(file);
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${P}`);
    writeFileSync(tmp, text, { mode: st.mode & 0o7777 });
    chownSync(tmp, st.uid, st.gid);
    chmodSync(tmp, st.mode & 0o7777);
    renameSync(tmp, file);
  }

  function addSubid(file: string, line: string): void {
    const text = readFileSync(file, 'utf8');
    const sep = text !== '' && !text.endsWith('\n');
    added.set(file, [...(added.get(file) ?? []), { line, sep }]);
    rewrite(file, `${text}${sep ? '\n' : ''}${line}\n`);
  }

  function removeSubids(file: string): void {
    for (const a of (added.get(file) ?? []).reverse()) {
      const text = readFileSync(file, 'utf8');
      const mine = `${a.sep ? '\n' : ''}${a.line}\n`;
      const at = text.lastIndexOf(mine);
      if (at >= 0) rewrite(file, text.slice(0, at) + text.slice(at + mine.length));
      else if (text.includes(`${a.line}\n`)) rewrite(file, text.replace(`${a.line}\n`, ''));
    }
    added.delete(file);
  }

  /** A user with no subordinate ids (the test adds what it wants) and its own runtime dir. */
  function makeUser(name: string): TestUser {
    sh(['useradd', '-m', '-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', '-s', '/usr/sbin/nologin', name]);
    const uid = Number(sh(['id', '-u', name]).trim());
    const gid = Number(sh(['id', '-g', name]).trim());
    const run = mkdtempSync(`/tmp/${P}-run-`);
    tmpDirs.push(run);
    chmodSync(run, 0o700);
    chownSync(run, uid, gid);
    const u = { name, uid, gid, run };
    users.push(u);
    return u;
  }

  /** A user with 65536 subordinate uids and gids from BASE. */
  function makeUserWithRange(name: string, base: number): TestUser {
    const u = makeUser(name);
    addSubid('/etc/subuid', `${u.name}:${base}:65536`);
    addSubid('/etc/subgid', `${u.name}:${base}:65536`);
    return u;
  }

  async function cleanup(): Promise<void> {
    for (const u of users) {
      // Whatever a failed test left running as this user (its keeper, a sleep): ours to end.
      for (const pid of processesOf(u.uid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const pid of strays.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const u of users) await settle(u.uid, 10_000);
    for (const f of SUBID_FILES) removeSubids(f);
    for (const u of users.splice(0)) spawnSync('userdel', ['-r', u.name], { encoding: 'utf8' });
    for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }

  /** Checks for afterAll: nothing of P left in the subid files or the user database. */
  function leftovers(): string[] {
    const out: string[] = [];
    for (const f of SUBID_FILES) if (readFileSync(f, 'utf8').includes(P)) out.push(f);
    if (sh(['getent', 'passwd']).includes(P)) out.push('passwd');
    return out;
  }

  /**
   * The file's hooks: SETUP in beforeAll (everything cleaned up if it
   * throws); afterAll ends it all and checks that no process of the users
   * and nothing of P in the user database or subid files is left.
   */
  function lifecycle(setup: () => void): void {
    beforeAll(async () => {
      try {
        setup();
      } catch (err) {
        await cleanup();
        throw err;
      }
    });
    afterAll(async () => {
      const uids = users.map((u) => u.uid);
      await cleanup();
      for (const uid of uids) expect(processesOf(uid)).toEqual([]);
      expect(leftovers()).toEqual([]);
    });
  }

  return { makeUser, makeUserWithRange, addSubid, cleanup, leftovers, lifecycle, strays, tmpDirs };
}
