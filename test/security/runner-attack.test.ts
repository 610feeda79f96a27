// Attacks on the native runner (native/run.cc: posix_spawn of the spawn
// helper, its exit seen through a pidfd on the loop): which fds the program
// really gets, fd numbers that wrap, failures half way through a start, a
// timeout that fires after the program ended, many runs, and a worker
// terminated while it starts programs. What could crash or exhaust the
// process runs in a Node child built from dist/.
import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { chmodSync, closeSync, copyFileSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runProcess, spawnHelper, startDetached, type StdioSlot } from '../../src/process.js';
import { spawnStart, type SpawnExit } from '../../src/kernel/spawn.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('runatk');
trackLeaks(prefix);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(root, 'dist');

const fail = (p: Promise<unknown>) => p.then(() => expect.fail('resolved'), (e: unknown) => e);

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs SCRIPT (an ES module; argv[1] is dist/, the rest ARGS) in a Node child, under bash's SETUP. */
function runNode(script: string, args: string[] = [], setup = '', env: NodeJS.ProcessEnv = process.env): Promise<ChildRun> {
  const wrapper = `${setup}\nexec "$@"`;
  const child = spawn('bash', ['-c', wrapper, 'bash', process.execPath, '--input-type=module', '-e', script, DIST, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

const exact = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/**
 * The fds of a program started with STDIO (and INPUT), read from outside
 * while it runs (a listing from inside would count the listing's own fd).
 */
async function programFds(stdio: [StdioSlot, StdioSlot, StdioSlot], input?: string): Promise<Record<string, string>> {
  const before = new Set(children());
  const ac = new AbortController();
  const running = runProcess(['sleep', '30'], { stdio, signal: ac.signal, ...(input !== undefined ? { input } : {}) }).catch((e: unknown) => e);
  try {
    // The name changes early in execve, before the close-on-exec fds are
    // closed: a listing counts only once two in a row agree.
    let last: string | undefined;
    for (let i = 0; i < 1000; i++) {
      const pid = children().find((p) => !before.has(p) && comm(p) === 'sleep');
      if (pid) {
        const out: Record<string, string> = {};
        try {
          for (const fd of readdirSync(`/proc/${pid}/fd`)) out[fd] = readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          last = undefined;
          continue;
        }
        const seen = JSON.stringify(out);
        if (seen === last) return out;
        last = seen;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('the program did not start');
  } finally {
    ac.abort();
    await running;
  }
}

describeRoot('native runner under attack', () => {
  let dir: string;

  beforeAll(() => {
    expect(existsSync(path.join(DIST, 'process.js')), 'dist missing: run `npx tsc -p .` first').toBe(true);
    dir = traversableTempDir(prefix);
  });

  afterAll(() => {
    if (dir) removeTree(dir);
  });

  it('the program sees exactly fds 0-2, whatever fds of ours fill the slots', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    const fa = openSync(a, 'w', 0o600);
    const fb = openSync(b, 'w', 0o600);
    try {
      const link = (n: number) => exact(readlinkSync(`/proc/self/fd/${n}`));
      const cases: Array<{ stdio: [StdioSlot, StdioSlot, StdioSlot]; want: [RegExp, RegExp, RegExp] }> = [
        // The same fd twice, and our fd given for a slot other than its number.
        { stdio: ['ignore', fa, fa], want: [/^\/dev\/null$/, exact(a), exact(a)] },
        { stdio: [fb, fa, 'pipe'], want: [exact(b), exact(a), /^pipe:/] },
        // Our 0-2 swapped around, and fd 3 (the report fd's number in the child) as a slot.
        { stdio: [2, 'pipe', 0], want: [link(2), /^pipe:/, link(0)] },
        { stdio: [3, 'pipe', 'pipe'], want: [link(3), /^pipe:/, /^pipe:/] },
      ];
      for (const { stdio, want } of cases) {
        const m = await programFds(stdio);
        expect(Object.keys(m).sort(), JSON.stringify({ stdio, m })).toEqual(['0', '1', '2']);
        want.forEach((re, i) => expect(m[String(i)], `fd ${i} of ${JSON.stringify(stdio)}`).toMatch(re));
      }
      // With input, stdin is a memory file, and still nothing else is there.
      const m = await programFds(['pipe', 'pipe', 'pipe'], 'x');
      expect(m).toEqual({ '0': '/memfd:nstool-input (deleted)', '1': expect.stringMatching(/^pipe:/), '2': expect.stringMatching(/^pipe:/) });
    } finally {
      closeSync(fa);
      closeSync(fb);
    }
  });

  it('fds the caller holds without O_CLOEXEC, given as slots, reach the program as 0-1 only', async () => {
    const a = path.join(dir, 'nocloexec-in');
    const b = path.join(dir, 'nocloexec-out');
    const script = `
const dist = process.argv[1];
const { runProcess } = await import(dist + '/process.js');
const { readdirSync, readFileSync, readlinkSync } = await import('node:fs');
const kids = () => readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'utf8').trim().split(/\\s+/).filter(Boolean));
const comm = (p) => { try { return readFileSync('/proc/' + p + '/comm', 'utf8').trim(); } catch { return ''; } };
const flags = (fd) => parseInt(readFileSync('/proc/self/fdinfo/' + fd, 'utf8').match(/flags:\\s*(\\d+)/)[1], 8);
if (flags(200) & 0o2000000 || flags(251) & 0o2000000) throw new Error('close-on-exec: the test would prove nothing');
const ac = new AbortController();
const running = runProcess(['sleep', '30'], { stdio: [200, 251, 'pipe'], signal: ac.signal }).catch(() => {});
// The name changes in execve before the close-on-exec fds are closed: a
// listing counts once two in a row agree.
let fds, last;
for (let i = 0; i < 1000 && !fds; i++) {
  await new Promise((r) => setTimeout(r, 5));
  const pid = kids().find((k) => comm(k) === 'sleep');
  if (!pid) continue;
  let seen;
  try {
    seen = JSON.stringify(Object.fromEntries(readdirSync('/proc/' + pid + '/fd').map((f) => [f, readlinkSync('/proc/' + pid + '/fd/' + f)])));
  } catch {
    last = undefined;
    continue;
  }
  if (seen === last) fds = JSON.parse(seen);
  last = seen;
}
ac.abort();
await running;
process.stdout.write(JSON.stringify(fds));
`;
    writeFileSync(a, '');
    const r = await runNode(script, [], `exec 200<'${a}' 251>>'${b}'`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ '0': a, '1': b, '2': expect.stringMatching(/^pipe:/) });
  });

  it('an fd number beyond 32 bits is refused, not wrapped onto another of our fds', async () => {
    const out = path.join(dir, 'wrapped');
    const fd = openSync(out, 'w', 0o600);
    try {
      // 2^32 + fd was taken as fd (and 2^32 - 3 as a pipe): the program wrote into a file it was never given.
      for (const slot of [2 ** 32 + fd, 2 ** 32 - 3, 2 ** 31]) {
        expect(await fail(runProcess(['sh', '-c', 'echo leaked'], { stdio: ['ignore', slot, 'pipe'] }))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      }
      expect(await fail(startDetached(['true'], { readyFd: 10, output: 2 ** 32 + fd }))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      expect(await fail(startDetached(['true'], { readyFd: 10, fds: [2 ** 32 + fd] }))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(out, 'utf8')).toBe('');
    // The core refuses them too, whoever calls it.
    const helper = spawnHelper();
    for (const slot of [2 ** 32 + 1, -4, 1.5, Number.NaN]) {
      expect(() => spawnStart(helper, [helper], [], ['ignore', slot, 'ignore'], null, 0, () => {}), String(slot)).toThrow(TypeError);
    }
  });

  it('a closed fd as a slot is a typed error with errno and an actionable hint, and nothing is left behind', async () => {
    const fd = openSync('/dev/null', 'r');
    closeSync(fd);
    const e = await fail(runProcess(['true'], { stdio: ['ignore', fd, 'pipe'] }));
    expect(e).toMatchObject({ name: 'ProcessError', code: 'EBADF', errno: -9, syscall: expect.any(String), hint: expect.stringMatching(/stdio/) });
    // The closed number is the lowest free one: the runner's own memory file,
    // pipe, or copy of another slot would take it and be handed over in its
    // place (the program's stdout was its input file, its stderr the read end
    // of its own stdout, or our fd 0).
    const before = readdirSync('/proc/self/fd').length;
    const probe = ['sh', '-c', 'echo out; echo err >&2'];
    const attempts: Array<Parameters<typeof runProcess>[1]> = [
      { input: 'x', stdio: ['pipe', fd, 'pipe'] },
      { stdio: ['ignore', 'pipe', fd] },
      { stdio: [0, fd, 'pipe'] },
    ];
    for (const o of attempts) {
      expect(await fail(runProcess(probe, o)), JSON.stringify(o)).toMatchObject({ code: 'EBADF' });
      expect(readdirSync('/proc/self/fd').length).toBe(before);
    }
  });

  it('a helper that is gone or not executable after it was found, and an argv too long, are typed errors that leave nothing', async () => {
    const helper = path.join(dir, 'nstool-spawn');
    copyFileSync(spawnHelper(), helper);
    chmodSync(helper, 0o755);
    const saved = process.env['NSTOOL_SPAWN'];
    process.env['NSTOOL_SPAWN'] = helper;
    const fds = () => readdirSync('/proc/self/fd').length;
    try {
      expect((await runProcess(['true'])).exitCode).toBe(0); // found, and remembered
      const before = { fds: fds(), kids: children() };
      chmodSync(helper, 0o644);
      expect(await fail(runProcess(['true']))).toMatchObject({ code: 'EACCES', errno: -13, syscall: 'posix_spawn', path: helper, hint: expect.stringMatching(/helper/) });
      rmSync(helper);
      expect(await fail(runProcess(['true']))).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'posix_spawn', path: helper, hint: expect.stringMatching(/helper/) });
      expect({ fds: fds(), kids: children() }).toEqual(before);
    } finally {
      if (saved === undefined) delete process.env['NSTOOL_SPAWN'];
      else process.env['NSTOOL_SPAWN'] = saved;
    }
    // One argument past the kernel's 128 KiB: not a broken package.
    const big = (await fail(runProcess(['true', 'x'.repeat(200_000)]))) as { hint: string };
    expect(big).toMatchObject({ name: 'ProcessError', code: 'E2BIG', errno: -7 });
    expect(big.hint).not.toMatch(/rebuild/);
  });

  it('running out of fds at any step of a start is a typed error (errno too) and leaves no fd and no child', async () => {
    // The child fills its fd table, then frees one fd at a time and starts a
    // program at each step (with and without input), so that each
    // allocation of a start (pipes, memory file, copies, pidfd) fails once.
    const script = `
const dist = process.argv[1];
const { runProcess } = await import(dist + '/process.js');
const { openSync, closeSync, readdirSync, readFileSync } = await import('node:fs');
let spare;
// Our fds and children; the listing needs fds of its own: the spare one is lent to it.
const snapshot = () => {
  closeSync(spare);
  const fds = readdirSync('/proc/self/fd').map(Number).sort((a, b) => a - b);
  const kids = readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'utf8').trim().split(/\\s+/).filter(Boolean));
  spare = openSync('/dev/null', 'r');
  return { fds: fds.filter((x) => x !== spare).join(','), kids };
};
await runProcess(['true']);
spare = openSync('/dev/null', 'r');
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
const seen = {};
let oks = 0;
for (let free = 0; free <= 16; free++) {
  if (free) closeSync(held.pop());
  for (const opts of [{}, { input: 'x' }]) {
    const before = snapshot();
    try {
      await runProcess(['true'], opts);
      oks++;
    } catch (e) {
      if (e.name !== 'ProcessError' || typeof e.code !== 'string' || typeof e.errno !== 'number' || typeof e.syscall !== 'string' || !e.hint) throw new Error('untyped: ' + JSON.stringify(e) + ' ' + e.stack);
      seen[e.code + ' ' + e.errno] = true;
    }
    const after = snapshot();
    if (after.fds !== before.fds) throw new Error('fds before ' + before.fds + ' after ' + after.fds);
    if (after.kids.length) throw new Error('children left: ' + after.kids);
  }
}
for (const fd of held) closeSync(fd);
process.stdout.write(JSON.stringify({ seen: Object.keys(seen), oks }));
`;
    // On the normal build: the sanitizers probe memory through a pipe of their
    // own, and with no fd left they report false errors.
    const { LD_PRELOAD, NSTOOL_ADDON, NSTOOL_SPAWN, ...plain } = process.env;
    const r = await runNode(script, [], 'ulimit -n 64', plain);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { seen: string[]; oks: number };
    expect(out.seen).toEqual(['EMFILE -24']);
    expect(out.oks).toBeGreaterThan(0);
  });

  it('a timeout that fires after the program ended on its own does not turn its result into ETIMEDOUT', async () => {
    const before = new Set(children());
    const running = runProcess(['true'], { timeoutMs: 1 });
    // Hold the loop until the program is a zombie: when the loop runs again,
    // the timer (timers come first) fires before the exit is read.
    const t0 = Date.now();
    for (;;) {
      const z = children().filter((p) => !before.has(p) && state(p) === 'Z');
      if (z.length && Date.now() - t0 > 5) break;
      if (Date.now() - t0 > 10_000) throw new Error('the program did not end');
    }
    const r = await running;
    expect(r).toMatchObject({ exitCode: 0, signal: null });
    // A program that was still running is killed and the timeout reported, as before.
    expect(await fail(runProcess(['sleep', '30'], { timeoutMs: 50 }))).toMatchObject({ code: 'ETIMEDOUT', result: { signal: 'SIGKILL' } });
  });

  it('one long-lived AbortSignal over many runs (ended, failed, timed out) keeps no listener', async () => {
    const ac = new AbortController();
    const runs: Array<Promise<unknown>> = [];
    for (let i = 0; i < 30; i++) {
      runs.push(runProcess(['true'], { signal: ac.signal }));
      runs.push(fail(runProcess([path.join(dir, 'missing')], { signal: ac.signal })));
      runs.push(fail(runProcess(['true'], { signal: ac.signal, stdio: ['ignore', 2 ** 31 - 1, 'pipe'] })));
    }
    runs.push(fail(runProcess(['sleep', '30'], { signal: ac.signal, timeoutMs: 20 })));
    await Promise.all(runs);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    // Aborting now reaches nothing.
    ac.abort();
  });

  it('kill() after the exit, and twice, acts on nothing', async () => {
    const helper = spawnHelper();
    let exit!: (x: SpawnExit) => void;
    const ended = new Promise<SpawnExit>((r) => (exit = r));
    const h = spawnStart(helper, [helper, '--report-fd', '3', '--', '/bin/sh', 'sh', '-c', 'exit 7'], [], ['ignore', 'ignore', 'ignore'], null, 0, exit);
    const x = await ended;
    expect(x).toMatchObject({ exitCode: 7, signal: 0 });
    // Its pid may be another process's by now: the runner must not signal it.
    expect(() => {
      h.kill();
      h.kill();
    }).not.toThrow();
    let exit2!: (x: SpawnExit) => void;
    const ended2 = new Promise<SpawnExit>((r) => (exit2 = r));
    const h2 = spawnStart(helper, [helper, '--report-fd', '3', '--', '/bin/sleep', 'sleep', '30'], [], ['ignore', 'ignore', 'ignore'], null, 0, exit2);
    h2.kill();
    h2.kill();
    expect(await ended2).toMatchObject({ exitCode: null, signal: 9 });
  });

  it('a program that closes its stdout early and runs on, output past maxOutput on both streams, and an unread 100 MB input', async () => {
    const early = await runProcess(['sh', '-c', 'echo one; exec 1>&-; sleep 0.2; echo two >&2; exit 4']);
    expect(early).toMatchObject({ stdout: 'one\n', stderr: 'two\n', exitCode: 4 });
    const both = await runProcess(['sh', '-c', 'head -c 5000000 /dev/zero >&2 & head -c 5000000 /dev/zero; wait'], { maxOutput: 10 });
    expect(both).toMatchObject({ exitCode: 0, truncated: true });
    expect([both.stdout.length, both.stderr.length]).toEqual([10, 10]);
    const unread = await runProcess(['true'], { input: Buffer.alloc(100 << 20) });
    expect(unread.exitCode).toBe(0);
  });

  it('a grandchild that writes without end after the program exited neither holds the loop nor outlives the pipe', async () => {
    // Tenant code run with `exec` can do this: the final read takes what is queued, not what keeps coming.
    const ticks: number[] = [];
    const t = setInterval(() => ticks.push(1), 5);
    let r;
    try {
      r = await runProcess(['sh', '-c', 'yes nstool & echo $! >&2'], { maxOutput: 1 << 20 });
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      clearInterval(t);
    }
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBeLessThanOrEqual(1 << 20);
    expect(ticks.length).toBeGreaterThan(0);
    const pid = Number(r.stderr.trim());
    expect(pid).toBeGreaterThan(1);
    // Our end is closed: the writer dies of SIGPIPE (its default; Node ignores it, the program must not).
    let alive = true;
    for (let i = 0; i < 500 && alive; i++) {
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'latin1');
        alive = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
      } catch {
        alive = false;
      }
      if (alive) await new Promise((res) => setTimeout(res, 10));
    }
    if (alive) process.kill(pid, 'SIGKILL');
    expect(alive).toBe(false);
  });

  it('a thousand runs leave no fd behind', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    await runProcess(['true'], { input: 'x' });
    const before = fds();
    for (let i = 0; i < 50; i++) {
      const rs = await Promise.all(Array.from({ length: 20 }, (_, j) => runProcess(['sh', '-c', `echo ${j}`], j % 2 ? { input: 'x' } : {})));
      rs.forEach((r, j) => expect(r.stdout).toBe(`${j}\n`));
    }
    expect(fds()).toBe(before);
  });

  it('a program started from the main thread or a worker has default signals, none blocked or caught', async () => {
    const status = (t: string) => t.match(/^Sig(Blk|Ign|Cgt):.*$/gm);
    const clean = ['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000', 'SigCgt:\t0000000000000000'];
    // The caller ignores SIGPIPE and SIGXFSZ and catches others (the test proves something only then).
    expect(readFileSync('/proc/thread-self/status', 'utf8')).toMatch(/^SigIgn:\t0*1001000$/m);
    // A bare environment: under the sanitizer job LD_PRELOAD would give cat the sanitizer's handlers.
    const env = { PATH: '/usr/bin:/bin' };
    expect(status((await runProcess(['cat', '/proc/self/status'], { env })).stdout)).toEqual(clean);
    const w = new Worker(
      `import { parentPort } from 'node:worker_threads';
       const { runProcess } = await import(${JSON.stringify(path.join(DIST, 'process.js'))});
       const r = await runProcess(['cat', '/proc/self/status'], { env: { PATH: '/usr/bin:/bin' } });
       parentPort.postMessage(r.stdout);`,
      { eval: true, execArgv: ['--input-type=module'] },
    );
    try {
      const out = await new Promise<string>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(status(out)).toEqual(clean);
    } finally {
      await w.terminate();
    }
  });

  it('a program started from a worker dies with a SIGKILLed Node', async () => {
    const pidFile = path.join(dir, 'worker-child.pid');
    const script = `
const dist = process.argv[1];
const pidFile = process.argv[2];
const { Worker } = await import('node:worker_threads');
new Worker(\`
import { parentPort } from 'node:worker_threads';
const { runProcess } = await import(\${JSON.stringify(dist + '/process.js')});
runProcess(['sh', '-c', 'echo $$ > "$0"; exec sleep 1000', \${JSON.stringify(pidFile)}]).catch(() => {});
\`, { eval: true });
setInterval(() => {}, 1000);
`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, DIST, pidFile], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    let sleeper = 0;
    let start = '';
    try {
      for (let i = 0; i < 1000 && !start; i++) {
        await new Promise((r) => setTimeout(r, 10));
        sleeper = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
        if (sleeper > 0 && comm(sleeper) === 'sleep') start = startTime(sleeper);
      }
      expect(start).not.toBe('');
      child.kill('SIGKILL');
      await exited;
      for (let i = 0; i < 500 && startTime(sleeper) === start; i++) await new Promise((r) => setTimeout(r, 10));
      expect(startTime(sleeper)).not.toBe(start);
    } finally {
      if (sleeper && start && startTime(sleeper) === start) process.kill(sleeper, 'SIGKILL');
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('workers terminated while they start programs do not crash the process and leave no child', async () => {
    // Each worker loads the core and starts programs in a loop; terminate()
    // lands at a different point each round (loading, starting, waiting).
    // The core's calls then fail (the worker may not run JS any more): that
    // must not throw out of a callback (abort) nor leave a child behind.
    const script = `
const dist = process.argv[1];
const { Worker } = await import('node:worker_threads');
const { readdirSync, readFileSync } = await import('node:fs');
const children = () => readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'utf8').trim().split(/\\s+/).filter(Boolean));
const code = \`
import { parentPort } from 'node:worker_threads';
const { runProcess } = await import(\${JSON.stringify(dist + '/process.js')});
parentPort.postMessage('go');
for (;;) await Promise.all(Array.from({ length: 4 }, (_, i) => runProcess(['sh', '-c', 'echo x'], i % 2 ? { input: 'y' } : {}).catch(() => {})));
\`;
for (let i = 0; i < 40; i++) {
  const w = new Worker(code, { eval: true });
  if (i % 4) await new Promise((r) => w.once('message', r));
  await new Promise((r) => setTimeout(r, (i * 7) % 23));
  await w.terminate();
}
for (let i = 0; i < 500 && children().length; i++) await new Promise((r) => setTimeout(r, 10));
process.stdout.write(JSON.stringify({ children: children() }));
`;
    const r = await runNode(script);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(JSON.parse(r.stdout)).toEqual({ children: [] });
  });
});

function children(): number[] {
  return readdirSync('/proc/self/task').flatMap((t) =>
    readFileSync(`/proc/self/task/${t}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
  } catch {
    return '';
  }
}

/** Field 22 of /proc/PID/stat, '' when gone or a zombie. */
function startTime(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? '' : f[19]!;
  } catch {
    return '';
  }
}

function state(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}
