// The helper child a create clones: where it runs, and what its life and
// death cost the calling process. Each case runs in a node child of its own
// (on dist/), so its signals, threads and CPU masks are nobody else's; the
// pins go to a pin dir of this file's own.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deletePodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { childPids, mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('helper');
trackLeaks(P);

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(root, 'dist/netns.js');

// Sync and async creates and deletes with a SIGCHLD handler installed;
// prints the signals counted and the CPU mask of every thread before and
// after. argv: dist, name, pin dir.
const CYCLES = `
import { readdirSync, readFileSync } from 'node:fs';
const { createPodNetns, createPodNetnsSync, deletePodNetns, deletePodNetnsSync } = await import(process.argv[1]);
const masks = () => Object.fromEntries(readdirSync('/proc/self/task').map((t) => {
  try { return [t, readFileSync('/proc/self/task/' + t + '/status', 'utf8').match(/^Cpus_allowed_list:\\s*(.*)$/m)[1]]; } catch { return [t, null]; }
}));
let sigchld = 0;
process.on('SIGCHLD', () => sigchld++);
const opts = { name: process.argv[2], uidMap: '0:100000:65536', pinDir: process.argv[3] };
const dirs = { pinDir: process.argv[3] };
const before = masks();
for (let i = 0; i < 3; i++) {
  createPodNetnsSync(opts);
  deletePodNetnsSync(opts.name, dirs);
  await createPodNetns(opts);
  await deletePodNetns(opts.name, dirs);
}
await new Promise((r) => setTimeout(r, 200));
const after = masks();
process.stdout.write(JSON.stringify({ sigchld, before, after }));`;

// One create that holds (NSTOOL_TEST_FAULT=gid-map:hold) with the helper alive. argv: dist, name, pin dir.
const ONCE = `
const { createPodNetnsSync } = await import(process.argv[1]);
createPodNetnsSync({ name: process.argv[2], uidMap: '0:100000:65536', pinDir: process.argv[3] });`;

const cpusAllowed = (pid: number): string => /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;

async function until<T>(fn: () => T | undefined, ms = 5000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
    const v = fn();
    if (v !== undefined) return v;
  }
  throw new Error('timed out waiting');
}

describeRoot('the create helper', () => {
  let tmp: string;
  let pinDir: string;

  beforeAll(() => {
    expect(existsSync(DIST), `${DIST} missing: run \`npx tsc -p .\` first`).toBe(true);
    tmp = traversableTempDir(P);
    pinDir = path.join(tmp, 'netns');
    mkdirSync(pinDir, { mode: 0o755 });
  });

  afterAll(() => {
    // The pin dir's own bind mount(s), made by the children's first create.
    for (let i = 0; i < 10; i++) {
      const left = mountPoints().filter((m) => m === pinDir || m.startsWith(`${pinDir}/`));
      if (left.length === 0) break;
      execFileSync('umount', ['-l', left[left.length - 1]!]);
    }
    removeTree(tmp);
  });

  it('sends its process no SIGCHLD when it dies, and leaves every thread\'s CPU mask as it was', async () => {
    const name = `${P}-cycles`;
    try {
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CYCLES, DIST, name, pinDir], { timeout: 20_000 });
      const r = JSON.parse(stdout) as { sigchld: number; before: Record<string, string | null>; after: Record<string, string | null> };
      // Six helpers died; none of them signalled (before: one SIGCHLD each).
      expect(r.sigchld).toBe(0);
      // The main thread, and the pool threads the async creates ran on, have their masks back.
      for (const [tid, mask] of Object.entries(r.after)) {
        if (tid in r.before) expect(mask, `thread ${tid}`).toBe(r.before[tid]);
        else expect(mask, `thread ${tid}`).toBe(r.before[Object.keys(r.before)[0]!]);
      }
    } finally {
      await deletePodNetns(name, { pinDir });
    }
  });

  it('runs on the CPU of the thread that cloned it', async () => {
    const name = `${P}-cpu`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', ONCE, DIST, name, pinDir], {
      env: { ...process.env, NSTOOL_TEST_FAULT: 'gid-map:hold' },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.on('close', r));
    try {
      const helper = await until(() => childPids(child.pid!)[0]);
      const mask = cpusAllowed(helper);
      // One CPU (started free, it got every CPU its parent had).
      expect(mask).toMatch(/^\d+$/);
      if (availableParallelism() > 1) expect(cpusAllowed(child.pid!)).not.toBe(mask);
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await exited;
      await deletePodNetns(name, { pinDir });
    }
  });
});
