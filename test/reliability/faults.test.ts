// Faults: a create that dies or fails at any step leaves nothing, or only a
// stale (empty) pin file that deletePodNetns removes. Faults are injected
// with the native test hook NSTOOL_TEST_FAULT=<step>:<kill|fail|hold>, read
// once per process, so each case runs in its own node child (on dist/).
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { childPids, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { createPodNetnsSync, deletePodNetns, listNetns } from '../../src/netns.js';

const prefix = testPrefix('fault');
trackLeaks(prefix);

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(root, 'dist/netns.js');
const NETNS_DIR = '/run/netns';
const USERNS_DIR = '/run/nstool/userns';
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

// One create, reported as JSON on stdout. argv: dist, name.
const ONCE = `
const { createPodNetnsSync } = await import(process.argv[1]);
try {
  const r = createPodNetnsSync({ name: process.argv[2], uidMap: '0:100000:65536', pinUserns: true });
  process.stdout.write(JSON.stringify({ ok: true, netnsInode: r.netnsInode, usernsInode: r.usernsInode }));
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, code: e.code, type: e.constructor.name }));
}`;

// Creates and deletes forever, until killed. argv: dist, prefix.
const LOOP = `
const { createPodNetnsSync, deletePodNetns } = await import(process.argv[1]);
for (let i = 0; ; i++) {
  const name = process.argv[2] + '-' + (i % 3);
  createPodNetnsSync({ name, uidMap: '0:100000:65536', pinUserns: true });
  if (i === 10) process.stdout.write('going\\n');
  await deletePodNetns(name);
}`;

interface Outcome { ok: boolean; code?: string; type?: string; netnsInode?: number; usernsInode?: number }

async function once(name: string, fault: string): Promise<Outcome> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', ONCE, DIST, name], {
    env: { ...process.env, NSTOOL_TEST_FAULT: fault },
    timeout: 20_000,
  });
  return JSON.parse(stdout) as Outcome;
}

function pinFiles(p: string): string[] {
  return [NETNS_DIR, USERNS_DIR].flatMap((d) => {
    try {
      return readdirSync(d).filter((n) => n.startsWith(p)).map((n) => path.join(d, n));
    } catch {
      return [];
    }
  });
}

/** Live (not zombie) processes whose argv mentions TAG: helpers are clones of their node. */
function liveWith(tag: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(tag)) return false;
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

async function until<T>(fn: () => T | undefined, ms = 5000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
    const v = fn();
    if (v !== undefined) return v;
  }
  throw new Error('timed out waiting');
}

/** Every leftover is a netns/userns pin or a stale file; delete removes it all. */
async function expectCleanable(p: string, allowComplete: boolean): Promise<void> {
  const netns = (await listNetns(NETNS_DIR)).filter((e) => e.name.startsWith(p));
  for (const e of netns) expect(allowComplete ? ['netns', 'stale'] : ['stale']).toContain(e.kind);
  const names = new Set(pinFiles(p).map((f) => path.basename(f)));
  for (const n of names) {
    // A kill inside delete can leave the userns pin alone: it is removed too.
    const d = await deletePodNetns(n);
    expect(d.existed || d.usernsPath !== undefined).toBe(true);
  }
  expect(pinFiles(p)).toEqual([]);
}

describeRoot('faults during create', () => {
  beforeAll(() => {
    expect(existsSync(DIST), `${DIST} missing: run \`npx tsc -p .\` first`).toBe(true);
  });

  it.each(['clone', 'open-ns', 'uid-map', 'gid-map', 'pin'])('the parent failing at %s leaves nothing', async (step) => {
    const name = `${prefix}-fail-${step}`;
    const r = await once(name, `${step}:fail`);
    expect(r).toEqual({ ok: false, code: 'EIO', type: 'NstoolError' });
    expect(pinFiles(name)).toEqual([]);
  });

  it.each(['clone', 'open-ns', 'uid-map', 'gid-map', 'pin', 'done'])('the helper killed at %s: an error and nothing left, or a whole pin', async (step) => {
    const name = `${prefix}-kill-${step}`;
    const r = await once(name, `${step}:kill`);
    if (r.ok) {
      // Pinned from the fds the parent holds, the namespaces outlive the helper.
      const [e] = (await listNetns(NETNS_DIR)).filter((x) => x.name === name);
      expect(e?.kind).toBe('netns');
      expect(e?.inode).toBe(r.netnsInode);
      expect(e?.owner?.inode).toBe(r.usernsInode);
    } else {
      expect(r.type).toBe('NstoolError');
      expect(r.code).toMatch(/^E[A-Z]+$/);
      expect(pinFiles(name)).toEqual([]);
    }
    await expectCleanable(name, r.ok);
  });

  it('the helper holds only copies of its parent\'s fds and is the namespaces that get pinned', async () => {
    const name = `${prefix}-hold`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', ONCE, DIST, name], {
      env: { ...process.env, NSTOOL_TEST_FAULT: 'done:hold' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise((r) => child.on('close', r));
    try {
      // The parent sits in the hold with both pins made; the helper is alive.
      const helper = await until(() => childPids(child.pid!)[0]);
      await until(() => (pinFiles(name).length === 2 ? true : undefined));
      const fds = (pid: number) =>
        new Map(readdirSync(`/proc/${pid}/fd`).map((fd) => [fd, readlinkSync(`/proc/${pid}/fd/${fd}`)]));
      const helperFds = fds(helper);
      const parentFds = fds(child.pid!);
      const helperNet = statSync(`/proc/${helper}/ns/net`).ino;
      const helperUser = statSync(`/proc/${helper}/ns/user`).ino;
      // clone() without CLONE_FILES copies the table: nothing of its own,
      // every fd the same object as the parent's fd of that number.
      for (const [fd, target] of helperFds) expect(parentFds.get(fd), `helper fd ${fd}`).toBe(target);
      expect(helperFds.size).toBeLessThan(parentFds.size);
      await exited;
      const r = JSON.parse(out) as Outcome;
      expect(r.ok).toBe(true);
      expect(r.netnsInode).toBe(helperNet);
      expect(r.usernsInode).toBe(helperUser);
      expect(liveWith(name)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited;
      await expectCleanable(name, true);
    }
  });

  it('a node process SIGKILLed while its helper lives takes the helper with it (PDEATHSIG)', async () => {
    const name = `${prefix}-die`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', ONCE, DIST, name], {
      env: { ...process.env, NSTOOL_TEST_FAULT: 'gid-map:hold' },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.on('close', r));
    try {
      const helper = await until(() => childPids(child.pid!)[0]);
      expect(liveWith(name)).toContain(helper);
      child.kill('SIGKILL');
      await exited;
      await until(() => (liveWith(name).length === 0 ? true : undefined));
      expect(pinFiles(name)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited;
      await expectCleanable(name, false);
    }
  });

  it('node processes SIGKILLed mid-loop leave only whole or stale pins, and delete removes them', async () => {
    for (let round = 0; round < 5; round++) {
      const tag = `${prefix}-loop${round}`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', LOOP, DIST, tag], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((r) => child.on('close', r));
      await new Promise((r) => child.stdout.once('data', r));
      await new Promise((r) => setTimeout(r, Math.random() * 30));
      child.kill('SIGKILL');
      await exited;
      await until(() => (liveWith(tag).length === 0 ? true : undefined));
      await expectCleanable(tag, true);
    }
  });
});

describeRoot('stale pins', () => {
  it('a pin whose mount was removed by hand is listed stale and deleted', async () => {
    const name = `${prefix}-stale`;
    createPodNetnsSync({ name, uidMap: MAP });
    const pin = path.join(NETNS_DIR, name);
    await run('umount', [pin]);
    expect((await listNetns()).find((e) => e.name === name)?.kind).toBe('stale');
    expect(await deletePodNetns(name)).toMatchObject({ existed: true, stale: true });
    expect(existsSync(pin)).toBe(false);
    expect(await deletePodNetns(name)).toMatchObject({ existed: false, stale: false });
  });

  it('a pin whose mount remains is listed netns and deleted', async () => {
    const name = `${prefix}-whole`;
    const ns = createPodNetnsSync({ name, uidMap: MAP });
    expect((await listNetns()).find((e) => e.name === name)).toMatchObject({ kind: 'netns', inode: ns.netnsInode });
    expect(await deletePodNetns(name)).toMatchObject({ existed: true, stale: false });
    expect(existsSync(ns.path)).toBe(false);
  });
});
