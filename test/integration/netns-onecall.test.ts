// createPodNetns / deletePodNetns as one call into the core each: what the
// core checks in that same call (whether the id allocator's index exists,
// whether there is a userns pin), what a delete of two pins does when one of
// them fails, and maps parsed once per text yet handed out as objects of
// each caller's own. Everything lives in this file's own dirs and id range.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeIdAllocator } from '../../src/idalloc.js';
import { createUsernsNetnsSync } from '../../src/kernel/ns.js';
import { unpinAll, unpinAllSync, unpinSync } from '../../src/kernel/pin.js';
import { createPodNetns, createPodNetnsSync, deletePodNetns, deletePodNetnsSync, PodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('onecall');
trackLeaks(P);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');
const SIZE = 65536;
// A range of this file's own, away from the idalloc suite's (3e9 + up to 1200 blocks).
const AUTO_RANGE = `${3_200_000_000 + Math.floor(Math.random() * 1000) * 4 * SIZE}:${4 * SIZE}`;
const MAP = '0:100000:65536';
const KERNEL_MAP = '0 100000 65536\n';

function unmountAll(dir: string): void {
  for (let i = 0; i < 50; i++) {
    const left = mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
    if (left.length === 0) return;
    execFileSync('umount', ['-l', left[left.length - 1]!]);
  }
}

type Rec = [string, ...unknown[]];
const journal = (allocDir: string): Rec[] =>
  readFileSync(path.join(allocDir, 'index'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Rec);

describeRoot('pod netns create and delete as one call into the core', () => {
  let tmp: string;
  let dirs: { pinDir: string; usernsPinDir: string };
  let n = 0;
  const name = (tag: string) => `${P}-${tag}-${n++}`;
  // An allocation dir this process has never looked at.
  const freshAllocDir = () => path.join(tmp, `alloc-${n++}`);

  beforeAll(() => {
    tmp = traversableTempDir(P);
    dirs = { pinDir: path.join(tmp, 'netns'), usernsPinDir: path.join(tmp, 'userns') };
    mkdirSync(dirs.pinDir, { mode: 0o755 });
    mkdirSync(dirs.usernsPinDir, { mode: 0o755 });
  });

  afterAll(async () => {
    for (const d of [dirs.pinDir, dirs.usernsPinDir]) for (const e of readdirSync(d)) unpinSync(path.join(d, e));
    await closeIdAllocator();
    unmountAll(dirs.pinDir);
    unmountAll(dirs.usernsPinDir);
    removeTree(tmp);
  });

  /** Another process starts using the allocator in ALLOCDIR: an auto pod, which writes the index. */
  function otherProcessAuto(allocDir: string): PodNetns {
    const r = spawnSync(
      process.execPath,
      [BIN, 'create-pod-netns', name('other'), '--uidmap', 'auto', '--auto-range', AUTO_RANGE,
        '--pin-dir', dirs.pinDir, '--userns-pin-dir', dirs.usernsPinDir, '--alloc-dir', allocDir, '--json'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as PodNetns;
  }

  it('a delete records itself in an index another process made since this one last looked (sync and async)', async () => {
    for (const del of [
      (x: string, o: object) => Promise.resolve(deletePodNetnsSync(x, o)),
      (x: string, o: object) => deletePodNetns(x, o),
    ]) {
      const allocDir = freshAllocDir();
      const opts = { ...dirs, allocDir };
      // No index yet: made without the lock (the other process's scan finds it).
      const x = createPodNetnsSync({ name: name('x'), uidMap: MAP, pinUserns: true, ...opts });
      const other = otherProcessAuto(allocDir);
      expect(journal(allocDir).some((r) => r[0] === '-')).toBe(false);
      // The core sees the index in the same call and does nothing; the delete then runs under the lock.
      expect(await del(x.name, opts)).toEqual({ name: x.name, path: x.path, existed: true, stale: false, usernsPath: x.usernsPath });
      const removed = journal(allocDir).filter((r) => r[0] === '-').map((r) => path.join(r[1] as string, r[2] as string));
      expect(removed).toEqual(expect.arrayContaining([x.path, x.usernsPath]));
      expect(mountPoints().filter((m) => m === x.path || m === x.usernsPath)).toEqual([]);
      expect(readdirSync(dirs.pinDir)).not.toContain(x.name);
      expect(readdirSync(dirs.usernsPinDir)).not.toContain(x.name);
      deletePodNetnsSync(other.name, opts);
    }
  });

  it('an async create checks itself after the fact against an index another process made meanwhile', async () => {
    const allocDir = freshAllocDir();
    const opts = { ...dirs, allocDir };
    const other = otherProcessAuto(allocDir);
    const start = other.uidMap[0]!.hostID;
    const before = readdirSync(dirs.pinDir).sort();
    // The auto pod holds its block alone: an explicit map over it is undone.
    await expect(createPodNetns({ name: name('x'), uidMap: `0:${start}:${SIZE}`, ...opts })).rejects.toMatchObject({
      code: 'ERR_NSTOOL_MAP_OVERLAP',
      path: other.path,
    });
    expect(readdirSync(dirs.pinDir).sort()).toEqual(before);
    // One clear of it is kept and recorded.
    const ok = await createPodNetns({ name: name('y'), uidMap: `0:${start + SIZE}:${SIZE}`, ...opts });
    expect(journal(allocDir).some((r) => r[0] === '+' && r[1] === dirs.pinDir && r[2] === ok.name)).toBe(true);
    await deletePodNetns(ok.name, opts);
    deletePodNetnsSync(other.name, opts);
  });

  it('deleting two pins where the netns one is no pin: the error names it; async still removes the userns pin, sync stops there', async () => {
    const allocDir = freshAllocDir();
    for (const mode of ['async', 'sync'] as const) {
      const x = createPodNetnsSync({ name: name('x'), uidMap: MAP, pinUserns: true, ...dirs, allocDir });
      // The netns pin becomes a file with content: not ours to remove.
      unpinSync(x.path);
      writeFileSync(x.path, 'precious');
      try {
        if (mode === 'async') {
          await expect(deletePodNetns(x.name, { ...dirs, allocDir })).rejects.toMatchObject({ code: 'ENOTEMPTY', path: x.path });
          expect(() => statSync(x.usernsPath!)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
        } else {
          expect(() => deletePodNetnsSync(x.name, { ...dirs, allocDir })).toThrow(expect.objectContaining({ code: 'ENOTEMPTY', path: x.path }));
          expect(mountPoints()).toContain(x.usernsPath);
        }
        expect(readFileSync(x.path, 'utf8')).toBe('precious');
      } finally {
        unlinkSync(x.path);
        unpinSync(x.usernsPath!);
      }
    }
  });

  it('the core reports the guard path: unpinAll touches nothing while it exists, create says whether it exists', async () => {
    const guard = path.join(tmp, 'guard');
    const pin = path.join(dirs.pinDir, name('g'));
    const absent = path.join(tmp, 'no-such-guard');
    expect(createUsernsNetnsSync({ uidMap: KERNEL_MAP, gidMap: KERNEL_MAP, setgroups: 'allow', netnsPin: pin, guard: absent }).guarded).toBe(false);
    writeFileSync(guard, '');
    try {
      expect(unpinAllSync([pin], guard, (p) => `deleting ${p}`)).toBeNull();
      expect(await unpinAll([pin], guard, (p) => `deleting ${p}`)).toBeNull();
      expect(mountPoints()).toContain(pin);
      expect(unpinAllSync([pin], absent, (p) => `deleting ${p}`)).toEqual([{ unmounted: true, removed: true }]);
      expect(mountPoints()).not.toContain(pin);
      expect(createUsernsNetnsSync({ uidMap: KERNEL_MAP, gidMap: KERNEL_MAP, setgroups: 'allow', netnsPin: pin, guard }).guarded).toBe(true);
      // A missing second pin is "already gone", in the same call.
      expect(await unpinAll([pin, `${pin}-none`], undefined, (p) => `deleting ${p}`)).toEqual([
        { unmounted: true, removed: true },
        { unmounted: false, removed: false },
      ]);
    } finally {
      unlinkSync(guard);
    }
  });

  it('hands every caller map objects of its own, and refuses bad map text every time', () => {
    const a = createPodNetnsSync({ name: name('a'), uidMap: MAP, ...dirs, allocDir: freshAllocDir() });
    a.uidMap[0]!.hostID = 1;
    expect(a.gidMap[0]!.hostID).toBe(100000);
    const b = createPodNetnsSync({ name: name('b'), uidMap: MAP, ...dirs, allocDir: freshAllocDir() });
    expect(b.uidMap).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
    expect(b.gidMap).toEqual(b.uidMap);
    expect(b.gidMap[0]).not.toBe(b.uidMap[0]);
    deletePodNetnsSync(a.name, dirs);
    deletePodNetnsSync(b.name, dirs);
    for (let i = 0; i < 2; i++) {
      expect(() => createPodNetnsSync({ name: name('r'), uidMap: '0:0:1', ...dirs })).toThrow(expect.objectContaining({ code: 'ERR_NSTOOL_HOST_ROOT_MAP' }));
      expect(() => createPodNetnsSync({ name: name('r'), uidMap: '0:1:x', ...dirs })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(readdirSync(dirs.pinDir).filter((e) => e.includes('-r-'))).toEqual([]);
  });
});
