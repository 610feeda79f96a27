// The process runner's contract: results, typed errors (before any side
// effect for bad input), timeouts and aborts, capped output, and the spawn
// helper's strict usage.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runProcess, spawnHelper } from '../../src/process.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('runner');
trackLeaks(prefix);

const fail = (p: Promise<unknown>) => p.then(() => expect.fail('resolved'), (e: unknown) => e);

describeRoot('process runner', () => {
  let dir: string;

  beforeAll(() => {
    dir = traversableTempDir(prefix);
  });

  afterAll(() => {
    if (dir) removeTree(dir);
  });

  it('captures output and exit status; a failing program is a result', async () => {
    const r = await runProcess(['sh', '-c', 'cat; echo err >&2; exit 3'], { input: 'in' });
    expect(r).toMatchObject({ exitCode: 3, signal: null, stdout: 'in', stderr: 'err\n', truncated: false, argv: ['sh', '-c', 'cat; echo err >&2; exit 3'] });
    expect(r.file).toMatch(/^\/.*\/sh$/);
    const k = await runProcess(['sh', '-c', 'kill -TERM $$']);
    expect(k).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    const f = await runProcess({ file: 'sh', args: ['-c', 'echo "$0"'] });
    expect(f.stdout).toBe('sh\n');
  });

  it('gives the program a clean environment, without NOTIFY_SOCKET, unless told otherwise', async () => {
    process.env['NOTIFY_SOCKET'] = '/run/nowhere.sock';
    try {
      const d = await runProcess(['env']);
      expect(d.stdout).not.toMatch(/NOTIFY_SOCKET/);
      expect(d.stdout).toMatch(/^PATH=/m);
      const e = await runProcess(['/usr/bin/env'], { env: { ONLY: 'this' } });
      expect(e.stdout).toBe('ONLY=this\n');
    } finally {
      delete process.env['NOTIFY_SOCKET'];
    }
  });

  it('a missing program, namespace or directory is a typed error naming the syscall and path', async () => {
    const byName = await fail(runProcess([`${prefix}-no-such-program`]));
    expect(byName).toMatchObject({ code: 'ENOENT', syscall: 'execve', hint: expect.any(String) });
    const missing = path.join(dir, 'missing');
    expect(await fail(runProcess([missing]))).toMatchObject({ code: 'ENOENT', syscall: 'execve', path: missing, errno: -2, hint: expect.any(String) });
    expect(await fail(runProcess(['true'], { netns: '/etc/hostname' }))).toMatchObject({ code: 'EINVAL', syscall: 'setns', path: '/etc/hostname' });
    expect(await fail(runProcess(['true'], { netns: missing }))).toMatchObject({ code: 'ENOENT', syscall: 'open', path: missing });
    expect(await fail(runProcess(['true'], { cwd: missing }))).toMatchObject({ code: 'ENOENT', syscall: 'chdir', path: missing });
    // A program that itself exits 127 is still a result.
    expect(await runProcess(['sh', '-c', 'exit 127'])).toMatchObject({ exitCode: 127 });
  });

  it('refuses bad input before starting anything', async () => {
    const bad: Array<[readonly string[], Parameters<typeof runProcess>[1]]> = [
      [[], {}],
      [['a\0b'], {}],
      [['true'], { cwd: 'relative' }],
      [['true'], { becomeRoot: true }],
      [['true'], { ownerUserns: true }],
      [['true'], { netns: '/proc/self/ns/net', userns: '/proc/self/ns/user', ownerUserns: true }],
      [['true'], { env: { 'A=B': 'x' } }],
      [['true'], { timeoutMs: 0 }],
      [['true'], { maxOutput: -1 }],
      [['true'], { input: 'x', stdio: 'inherit' }],
      [['true'], { stdio: [0, 1] as unknown as [number, number, number] }],
    ];
    for (const [argv, o] of bad) expect(await fail(runProcess(argv, o))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('kills on timeout and on abort, keeping what was printed', async () => {
    const t = (await fail(runProcess(['sh', '-c', 'echo partial; exec sleep 30'], { timeoutMs: 300 }))) as { code: string; result: Record<string, unknown> };
    expect(t.code).toBe('ETIMEDOUT');
    expect(t.result).toMatchObject({ stdout: 'partial\n', signal: 'SIGKILL', exitCode: null });
    const ac = new AbortController();
    const running = runProcess(['sleep', '30'], { signal: ac.signal });
    ac.abort();
    expect(await fail(running)).toMatchObject({ code: 'ABORT_ERR' });
    // Already aborted: nothing starts.
    expect(await fail(runProcess(['true'], { signal: ac.signal }))).toMatchObject({ code: 'ABORT_ERR' });
  });

  it('caps captured output and says so', async () => {
    const r = await runProcess(['head', '-c', '100000', '/dev/zero'], { maxOutput: 1000 });
    expect(r.stdout).toHaveLength(1000);
    expect(r.truncated).toBe(true);
  });

  it('moves megabytes in and out at once, without either side waiting on the other', async () => {
    // More than a pipe holds, each way: the runner must read while the program writes.
    const input = Buffer.alloc(3 << 20, 'abcdefgh');
    const r = await runProcess(['sh', '-c', 'tee /dev/stderr'], { input });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBe(input.length);
    expect(r.stdout === input.toString()).toBe(true);
    expect(r.stderr.length).toBe(input.length);
  });

  it('does not wait for a grandchild that keeps the output pipes open', async () => {
    const r = await runProcess(['sh', '-c', 'sleep 30 & echo $!']);
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(1);
    try {
      expect(r.exitCode).toBe(0);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('starts the program with default signal dispositions and nothing blocked', async () => {
    // Node ignores SIGPIPE: a program that inherited that would not die writing to a closed pipe.
    const r = await runProcess(['grep', '-E', '^Sig(Ign|Blk):', '/proc/self/status']);
    expect(r.stdout).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('runs many programs at once, each result its own', async () => {
    const rs = await Promise.all(Array.from({ length: 24 }, (_, i) => runProcess(['sh', '-c', `echo ${i}; echo e${i} >&2; exit ${i % 7}`])));
    rs.forEach((r, i) => expect(r).toMatchObject({ stdout: `${i}\n`, stderr: `e${i}\n`, exitCode: i % 7 }));
  });

  it('a worker that ends while its programs run ends them, and its exit callbacks never run', async () => {
    const dist = new URL('../../dist/process.js', import.meta.url).href;
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
       import(${JSON.stringify(dist)}).then(async ({ runProcess }) => {
         const first = await runProcess(['true']);
         parentPort.postMessage({ first: first.exitCode });
         for (let i = 0; i < 3; i++) runProcess(['sh', '-c', 'exec sleep 30'], { stdio: ['ignore', 'ignore', 'ignore'] }).then(() => parentPort.postMessage('resolved'), () => {});
         runProcess(['sh', '-c', 'echo $$; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] }).then(() => parentPort.postMessage('resolved'), () => {});
       });`,
      { eval: true },
    );
    const msgs: unknown[] = [];
    w.on('message', (m) => msgs.push(m));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (msgs.length) {
          clearInterval(t);
          resolve();
        }
      }, 10);
    });
    expect(msgs[0]).toEqual({ first: 0 });
    // The sleeps run as children of this process now.
    const sleeps = () =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            const st = readFileSync(`/proc/${d}/stat`, 'latin1');
            return st.slice(st.lastIndexOf(')') + 2).split(' ')[1] === String(process.pid) && st.includes('(sleep)');
          } catch {
            return false;
          }
        });
    for (let i = 0; i < 200 && sleeps().length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sleeps()).toHaveLength(4);
    await w.terminate();
    for (let i = 0; i < 500 && sleeps().length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sleeps()).toEqual([]);
    expect(msgs).toHaveLength(1);
  });

  it('hands explicit fds to the program as its stdio', async () => {
    const file = path.join(dir, 'out');
    const fd = openSync(file, 'w', 0o600);
    try {
      const r = await runProcess(['sh', '-c', 'echo to-file; echo also >&2'], { stdio: ['ignore', fd, fd] });
      expect(r).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('to-file\nalso\n');
  });

  it('the spawn helper parses its options strictly', () => {
    const helper = spawnHelper();
    const ok = spawnSync(helper, ['--', '/bin/echo', 'echo', 'hi'], { encoding: 'utf8' });
    expect(ok).toMatchObject({ status: 0, stdout: 'hi\n' });
    const bad = [
      ['/bin/true', 'true'],
      ['--', '/bin/true'],
      ['--', 'true', 'true'],
      ['--netns', 'relative', '--', '/bin/true', 'true'],
      ['--root', '--', '/bin/true', 'true'],
      ['--cwd', '/', '--cwd', '/', '--', '/bin/true', 'true'],
      ['--parent', 'x', '--', '/bin/true', 'true'],
      ['--parent', '1', '--report-fd', '3', '--', '/bin/true', 'true'],
    ];
    for (const args of bad) expect(spawnSync(helper, args).status, args.join(' ')).toBe(127);
  });

  it('a missing spawn helper is one actionable error', async () => {
    const saved = process.env['NSTOOL_SPAWN'];
    process.env['NSTOOL_SPAWN'] = path.join(dir, 'no-helper');
    try {
      expect(await fail(runProcess(['true']))).toMatchObject({ code: 'ERR_NSTOOL_NATIVE', hint: expect.any(String) });
    } finally {
      if (saved === undefined) delete process.env['NSTOOL_SPAWN'];
      else process.env['NSTOOL_SPAWN'] = saved;
    }
    expect((await runProcess(['true'])).exitCode).toBe(0);
  });
});
