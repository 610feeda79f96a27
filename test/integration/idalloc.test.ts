// uidMap 'auto' on the real kernel: disjoint blocks read back from the
// namespaces, across processes, released with their pods however they go,
// and explicit maps refused when they overlap a pod that holds its ids alone.
// Everything lives in this file's own pin dirs, allocation dir and id range.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { closeIdAllocator, idAllocStats, subidPool, BUILTIN_POOL } from '../../src/idalloc.js';
import { native } from '../../src/native.js';
import { createPodNetns, createPodNetnsSync, deletePodNetns, deletePodNetnsSync, inspectNetns, PodNetns } from '../../src/netns.js';
import { createSandbox, deleteSandbox, loadSandbox } from '../../src/sandbox/index.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('idalloc');
trackLeaks(P);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');
const SIZE = 65536;
// A range of this file's own, far from the 0:100000:65536 other tests share.
const POOL_START = 3_000_000_000 + Math.floor(Math.random() * 1000) * SIZE;
const POOL_BLOCKS = 200;
const AUTO_RANGE = `${POOL_START}:${POOL_BLOCKS * SIZE}`;

function unmountAll(dir: string): void {
  for (let i = 0; i < 50; i++) {
    const left = mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
    if (left.length === 0) return;
    execFileSync('umount', ['-l', left[left.length - 1]!]);
  }
}

describeRoot('automatic id ranges (uidMap auto)', () => {
  let tmp: string;
  let dirs: { pinDir: string; usernsPinDir: string; allocDir: string };
  let auto: { uidMap: 'auto'; autoRange: string; pinDir: string; usernsPinDir: string; allocDir: string };
  let n = 0;
  const name = (tag: string) => `${P}-${tag}-${n++}`;

  beforeAll(() => {
    tmp = traversableTempDir(P);
    dirs = { pinDir: path.join(tmp, 'netns'), usernsPinDir: path.join(tmp, 'userns'), allocDir: path.join(tmp, 'alloc') };
    mkdirSync(dirs.pinDir, { mode: 0o755 });
    mkdirSync(dirs.usernsPinDir, { mode: 0o755 });
    auto = { uidMap: 'auto', autoRange: AUTO_RANGE, ...dirs };
  });

  // Each test starts from empty pin dirs (the allocation dir stays, as on a node).
  const clearPins = () => {
    for (const d of [dirs.pinDir, dirs.usernsPinDir]) for (const e of readdirSync(d)) native.unpinSync(path.join(d, e));
  };
  beforeEach(clearPins);

  afterAll(async () => {
    clearPins();
    await closeIdAllocator();
    unmountAll(dirs.pinDir);
    unmountAll(dirs.usernsPinDir);
    removeTree(tmp);
  });

  const block = (p: PodNetns) => p.uidMap[0]!.hostID;
  const disjoint = (starts: number[]) => new Set(starts).size === starts.length;

  it('gives each pod its own aligned block of the pool, the same for uid and gid, as the kernel shows', async () => {
    const a = createPodNetnsSync({ name: name('a'), ...auto });
    const b = await createPodNetns({ name: name('b'), ...auto, pinUserns: true });
    const c = await createPodNetns({ name: name('c'), ...auto });
    for (const p of [a, b, c]) {
      expect(p.uidMap).toEqual([{ containerID: 0, hostID: block(p), size: SIZE }]);
      expect(p.gidMap).toEqual(p.uidMap);
      expect((block(p) - POOL_START) % SIZE).toBe(0);
      expect(block(p)).toBeGreaterThanOrEqual(POOL_START);
      expect(block(p) + SIZE).toBeLessThanOrEqual(POOL_START + POOL_BLOCKS * SIZE);
      const info = await inspectNetns(p.path);
      expect(info.uidMap).toEqual(p.uidMap);
      expect(info.gidMap).toEqual(p.uidMap);
    }
    expect(disjoint([a, b, c].map(block))).toBe(true);
    // The first pod in an empty pool gets its first block.
    expect(block(a)).toBe(POOL_START);
    expect(b.usernsPath).toBe(path.join(dirs.usernsPinDir, b.name));
  });

  it('gives 50 concurrent creates of one process 50 disjoint blocks', async () => {
    const pods = await Promise.all(Array.from({ length: 50 }, (_, i) => createPodNetns({ name: name(`c${i}`), ...auto })));
    const fromKernel = await Promise.all(pods.map(async (p) => (await inspectNetns(p.path)).uidMap[0]!.hostID));
    expect(fromKernel).toEqual(pods.map(block));
    expect(disjoint(fromKernel)).toBe(true);
  });

  it('gives concurrent processes disjoint blocks', async () => {
    const run = (pod: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(process.execPath, [BIN, 'create-pod-netns', pod, '--uidmap', 'auto', '--auto-range', AUTO_RANGE,
          '--pin-dir', dirs.pinDir, '--userns-pin-dir', dirs.usernsPinDir, '--alloc-dir', dirs.allocDir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '', err = '';
        c.stdout.on('data', (d: Buffer) => (out += d));
        c.stderr.on('data', (d: Buffer) => (err += d));
        c.on('close', (code) => resolve({ code, out, err }));
      });
    const [procs, mine] = await Promise.all([
      Promise.all(Array.from({ length: 8 }, (_, i) => run(name(`p${i}`)))),
      Promise.all(Array.from({ length: 12 }, (_, i) => createPodNetns({ name: name(`q${i}`), ...auto }))),
    ]);
    for (const r of procs) expect(r.code, r.err).toBe(0);
    const starts = [...procs.map((r) => (JSON.parse(r.out) as PodNetns).uidMap[0]!.hostID), ...mine.map(block)];
    expect(starts).toHaveLength(20);
    expect(disjoint(starts)).toBe(true);
    // And so the kernel says, for every pin in the dir.
    const seen = await Promise.all(readdirSync(dirs.pinDir).map(async (e) => (await inspectNetns(path.join(dirs.pinDir, e))).uidMap[0]!.hostID));
    expect(seen.sort()).toEqual([...starts].sort());
  });

  it('gives a block back when its pod goes, through nstool or behind its back', async () => {
    const a = createPodNetnsSync({ name: name('a'), ...auto });
    const b = createPodNetnsSync({ name: name('b'), ...auto });
    expect(block(b)).toBe(block(a) + SIZE);
    await deletePodNetns(a.name, dirs);
    const c = createPodNetnsSync({ name: name('c'), ...auto });
    expect(block(c)).toBe(block(a));
    // What `ip netns del` does: unmount and unlink, without nstool.
    native.unpinSync(c.path);
    const d = await createPodNetns({ name: name('d'), ...auto });
    expect(block(d)).toBe(block(a));
    // A lost index (a crash while writing it, or removed by hand): the pins still count.
    unlinkSync(path.join(dirs.allocDir, 'index'));
    const e = createPodNetnsSync({ name: name('e'), ...auto });
    expect([block(b), block(d)]).not.toContain(block(e));
    expect(block(e)).toBe(block(b) + SIZE);
  });

  it('does not trust an index another process garbled or another boot wrote', () => {
    const a = createPodNetnsSync({ name: name('a'), ...auto });
    const index = path.join(dirs.allocDir, 'index');
    writeFileSync(index, '["h",1,"another-boot","4:1"]\n["+","/run/netns","x","i1",1,[1,2],[1,2]]\n');
    const b = createPodNetnsSync({ name: name('b'), ...auto });
    expect(block(b)).not.toBe(block(a));
    writeFileSync(index, 'not an index at all\n{"\n');
    const c = createPodNetnsSync({ name: name('c'), ...auto });
    expect([block(a), block(b)]).not.toContain(block(c));
  });

  it('keeps the index and its lock from other users', () => {
    createPodNetnsSync({ name: name('a'), ...auto });
    expect(statSync(dirs.allocDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dirs.allocDir, 'index')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dirs.allocDir, 'lock')).mode & 0o777).toBe(0o600);
  });

  it('sees a pod another tool pinned, even one mounted on a file after the dir last changed', async () => {
    // A pod made without nstool's allocator, on the block auto would take next.
    const foreign = path.join(dirs.pinDir, name('foreign'));
    const map = `0 ${POOL_START} ${SIZE}\n`;
    native.createUsernsNetnsSync({ uidMap: map, gidMap: map, setgroups: 'allow', netnsPin: foreign });
    const a = createPodNetnsSync({ name: name('a'), ...auto });
    expect(block(a)).toBe(POOL_START + SIZE);
    // An empty file (a pin about to be mounted), seen by a create...
    const late = path.join(dirs.pinDir, name('late'));
    writeFileSync(late, '');
    const b = createPodNetnsSync({ name: name('b'), ...auto });
    expect(block(b)).toBe(POOL_START + 2 * SIZE);
    // ...then a pod mounted on it: mounting changes nothing in the dir.
    const src = path.join(tmp, 'src-pin');
    const map3 = `0 ${POOL_START + 3 * SIZE} ${SIZE}\n`;
    native.createUsernsNetnsSync({ uidMap: map3, gidMap: map3, setgroups: 'allow', netnsPin: src });
    try {
      // Onto the existing file, as a tool that made the file first would.
      execFileSync('mount', ['--bind', src, late]);
    } finally {
      native.unpinSync(src);
    }
    const c = createPodNetnsSync({ name: name('c'), ...auto });
    expect(block(c)).toBe(POOL_START + 4 * SIZE);
  });

  it('reads no dir again while only nstool changes it', () => {
    createPodNetnsSync({ name: name('warm'), ...auto });
    const before = idAllocStats(dirs.allocDir);
    for (let i = 0; i < 20; i++) {
      const p = createPodNetnsSync({ name: name('loop'), ...auto });
      deletePodNetnsSync(p.name, dirs);
    }
    const after = idAllocStats(dirs.allocDir);
    expect(after.mapReads).toBe(before.mapReads);
    // Change times are fine-grained on this kernel and filesystem (Linux 6.13+):
    // then nothing is read again; on coarse ones, each dir once per create.
    const fine = readFileSync(path.join(dirs.allocDir, 'index'), 'utf8').includes(`["f","${statSync(dirs.pinDir).dev}",1]`);
    if (fine) expect(after.rescans).toBe(before.rescans);
    // Another tool's change is noticed: the dir is read again.
    const foreign = path.join(dirs.pinDir, name('foreign'));
    native.pinSync('/proc/self/ns/net', foreign);
    createPodNetnsSync({ name: name('after'), ...auto });
    expect(idAllocStats(dirs.allocDir).rescans).toBeGreaterThan(after.rescans);
  });

  it('refuses an explicit map overlapping an auto pod, naming it, before making anything', async () => {
    const a = createPodNetnsSync({ name: name('a'), ...auto });
    const pins = () => readdirSync(dirs.pinDir).sort();
    const before = pins();
    const overlapping = `0:${block(a) + 100}:10`;
    let err: { code?: string; path?: string } = {};
    try {
      await createPodNetns({ name: name('x'), uidMap: overlapping, ...dirs });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('ERR_NSTOOL_MAP_OVERLAP');
    expect(err.path).toBe(a.path);
    expect(pins()).toEqual(before);
    // The gid map alone overlapping is refused too.
    expect(() => createPodNetnsSync({ name: name('y'), uidMap: '0:100000:65536', gidMap: overlapping, ...dirs })).toThrow(
      expect.objectContaining({ code: 'ERR_NSTOOL_MAP_OVERLAP' }),
    );
    expect(pins()).toEqual(before);
    // Sharing, asked for knowingly.
    const s = createPodNetnsSync({ name: name('s'), uidMap: overlapping, allowSharedRanges: true, ...dirs });
    expect((await inspectNetns(s.path)).uidMap).toEqual([{ containerID: 0, hostID: block(a) + 100, size: 10 }]);
    // Auto never hands out a block a live pod touches, shared or not.
    const b = createPodNetnsSync({ name: name('b'), ...auto });
    expect(block(b)).not.toBe(block(a));
  });

  it('checks an explicit create after the fact when another process made the index meanwhile, and undoes it on overlap', () => {
    // A fresh allocation dir this process has never looked at; another process makes its index.
    const fresh = path.join(tmp, 'alloc-late');
    const common = ['--pin-dir', dirs.pinDir, '--userns-pin-dir', dirs.usernsPinDir, '--alloc-dir', fresh];
    const r = spawnSync(process.execPath, [BIN, 'create-pod-netns', name('other'), '--uidmap', 'auto', '--auto-range', AUTO_RANGE, ...common, '--json'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const other = JSON.parse(r.stdout) as PodNetns;
    const before = readdirSync(dirs.pinDir).sort();
    const late = { ...dirs, allocDir: fresh };
    expect(() => createPodNetnsSync({ name: name('x'), uidMap: `0:${block(other)}:${SIZE}`, ...late })).toThrow(
      expect.objectContaining({ code: 'ERR_NSTOOL_MAP_OVERLAP', path: other.path }),
    );
    expect(readdirSync(dirs.pinDir).sort()).toEqual(before);
    // One that overlaps nothing is kept, and recorded: auto steps around it.
    const ok = createPodNetnsSync({ name: name('y'), uidMap: `0:${block(other) + SIZE}:${SIZE}`, ...late });
    expect(readdirSync(dirs.pinDir)).toContain(ok.name);
    expect(block(createPodNetnsSync({ name: name('z'), ...auto, allocDir: fresh }))).toBe(block(other) + 2 * SIZE);
  });

  it('lets explicit maps share with each other, and holds an exclusive one alone', () => {
    const shared = '0:100000:65536';
    createPodNetnsSync({ name: name('e1'), uidMap: shared, ...dirs });
    createPodNetnsSync({ name: name('e2'), uidMap: shared, ...dirs });
    expect(() => createPodNetnsSync({ name: name('x'), uidMap: shared, exclusiveRanges: true, ...dirs })).toThrow(
      expect.objectContaining({ code: 'ERR_NSTOOL_MAP_OVERLAP' }),
    );
    // An exclusive pod inside the pool: auto skips it, and explicit maps may not overlap it.
    const mine = `0:${POOL_START}:${SIZE}`;
    const x = createPodNetnsSync({ name: name('x'), uidMap: mine, exclusiveRanges: true, ...dirs });
    expect(() => createPodNetnsSync({ name: name('y'), uidMap: `0:${POOL_START + 5}:1`, ...dirs })).toThrow(
      expect.objectContaining({ code: 'ERR_NSTOOL_MAP_OVERLAP', path: x.path }),
    );
    expect(block(createPodNetnsSync({ name: name('a'), ...auto }))).toBe(POOL_START + SIZE);
  });

  it('says when the pool is used up, and leaves nothing behind', () => {
    const small = { ...auto, autoRange: `${POOL_START}:${2 * SIZE}` };
    createPodNetnsSync({ name: name('a'), ...small });
    createPodNetnsSync({ name: name('b'), ...small });
    const before = readdirSync(dirs.pinDir).sort();
    expect(() => createPodNetnsSync({ name: name('c'), ...small })).toThrow(expect.objectContaining({ code: 'ERR_NSTOOL_IDS_EXHAUSTED' }));
    expect(readdirSync(dirs.pinDir).sort()).toEqual(before);
    // A pool too small for one block is refused before anything else.
    expect(() => createPodNetnsSync({ name: name('d'), ...auto, autoRange: `${POOL_START}:100` })).toThrow(
      expect.objectContaining({ code: 'ERR_NSTOOL_IDS_EXHAUSTED' }),
    );
  });

  it('takes blocks from the subid user, or from the built-in range when the files name nobody', () => {
    const pool = subidPool('containers');
    const p = createPodNetnsSync({ name: name('a'), uidMap: 'auto', ...dirs });
    expect(block(p)).toBe(pool[0]!.start);
    if (readFileSync('/etc/subuid', 'utf8').trim() === '' && readFileSync('/etc/subgid', 'utf8').trim() === '') {
      expect(block(p)).toBe(BUILTIN_POOL.start);
    }
  });

  it('refuses bad auto options with a typed error before any side effect', async () => {
    const before = readdirSync(dirs.pinDir).sort();
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ gidMap: '0:100000:65536' }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoSize: 0 }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoSize: 1.5 }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoRange: '1:0' }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoRange: 'lots' }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoRange: undefined, autoUser: 'a:b' }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoUser: 'containers' }, 'ERR_INVALID_ARG_VALUE'], // with autoRange: one or the other
      [{ allowSharedRanges: true }, 'ERR_INVALID_ARG_VALUE'],
      [{ allowSharedRanges: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
      [{ allocDir: 'relative' }, 'ERR_INVALID_ARG_VALUE'],
      [{ autoRange: '0:65536' }, 'ERR_NSTOOL_IDS_EXHAUSTED'], // host root taken out: no whole block left
    ];
    for (const [extra, code] of bad) {
      await expect(createPodNetns({ name: name('bad'), ...auto, ...extra } as never), JSON.stringify(extra)).rejects.toMatchObject({ code });
    }
    // Explicit maps refuse the auto-only options.
    expect(() => createPodNetnsSync({ name: name('bad'), uidMap: '0:100000:65536', autoSize: 5, ...dirs })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => createPodNetnsSync({ name: name('bad'), uidMap: '0:100000:65536', gidMap: 'auto', ...dirs })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(readdirSync(dirs.pinDir).sort()).toEqual(before);
  });

  it('refuses an allocation dir other users could write', () => {
    const loose = path.join(tmp, 'loose');
    mkdirSync(loose, { mode: 0o777 });
    expect(() => createPodNetnsSync({ name: name('a'), ...auto, allocDir: loose })).toThrow(
      expect.objectContaining({ code: 'ERR_NSTOOL_ALLOC_DIR_UNSAFE' }),
    );
  });

  it('leaves no fd behind when a worker thread that used it exits', async () => {
    const { Worker } = await import('node:worker_threads');
    const kept = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        const l = readlinkSync(`/proc/self/fd/${fd}`);
        return l === 'anon_inode:inotify' || l.startsWith(dirs.allocDir);
      } catch {
        return false;
      }
    });
    await closeIdAllocator();
    const before = kept();
    const dist = path.resolve(path.dirname(BIN), '../dist/netns.js');
    const code = `(async () => {
      const n = await import(${JSON.stringify(dist)});
      const o = ${JSON.stringify({ ...auto, name: name('w') })};
      n.createPodNetnsSync(o);
      n.deletePodNetnsSync(o.name, o);
    })();`;
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.on('error', reject);
      w.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker exit ${c}`))));
    });
    expect(kept()).toEqual(before);
  });

  it('CLI: --uidmap auto, the overlap refusal as JSON, and delete recording it', () => {
    const nstool = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
    const common = ['--pin-dir', dirs.pinDir, '--userns-pin-dir', dirs.usernsPinDir, '--alloc-dir', dirs.allocDir];
    const a = nstool(['create-pod-netns', name('cli'), '--uidmap', 'auto', '--auto-range', AUTO_RANGE, ...common, '--json']);
    expect(a.status, a.stderr).toBe(0);
    const pod = JSON.parse(a.stdout) as PodNetns;
    expect(pod.uidMap).toEqual([{ containerID: 0, hostID: POOL_START, size: SIZE }]);
    const x = nstool(['create-pod-netns', name('cli'), '--uidmap', `0:${POOL_START}:${SIZE}`, ...common, '--json']);
    expect(x.status).toBe(1);
    expect(JSON.parse(x.stdout)).toMatchObject({ error: { code: 'ERR_NSTOOL_MAP_OVERLAP', path: pod.path } });
    const usage = nstool(['create-pod-netns', name('cli'), '--uidmap', 'auto', '--gidmap', '0:1:1', ...common]);
    expect(usage.status).toBe(2);
    const d = nstool(['delete', pod.name, ...common, '--json']);
    expect(d.status, d.stderr).toBe(0);
    const b = nstool(['create-pod-netns', name('cli'), '--uidmap', 'auto', '--auto-range', AUTO_RANGE, ...common, '--json']);
    expect((JSON.parse(b.stdout) as PodNetns).uidMap[0]!.hostID).toBe(POOL_START);
  });

  it('sandboxes take auto blocks too: disjoint, recorded in their state, refused to an explicit map, free again after delete', async () => {
    const sb = {
      stateDir: path.join(tmp, 'sb-state'),
      bundleDir: path.join(tmp, 'sb-bundles'),
      pinDir: dirs.pinDir,
      usernsPinDir: dirs.usernsPinDir,
      ipcPinDir: path.join(tmp, 'sb-ipc'),
      utsPinDir: path.join(tmp, 'sb-uts'),
      cniCacheDir: path.join(tmp, 'sb-cni'),
      allocDir: dirs.allocDir,
    };
    const ids = [0, 1, 2].map((i) => `${P}-sb${i}`);
    try {
      const made = await Promise.all(ids.map((id) => createSandbox({ id, uidMap: 'auto', autoRange: AUTO_RANGE, ...sb })));
      const starts: number[] = [];
      for (const s of made) {
        const info = await inspectNetns(s.netnsPath!);
        expect(info.uidMap).toEqual([{ containerID: 0, hostID: info.uidMap[0]!.hostID, size: SIZE }]);
        expect(info.gidMap).toEqual(info.uidMap);
        expect(info.uidMap[0]!.hostID).toBeGreaterThanOrEqual(POOL_START);
        starts.push(info.uidMap[0]!.hostID);
        // The state holds the block the pod really got, not a stand-in.
        const st = JSON.parse(readFileSync(path.join(sb.stateDir, `${s.id}.json`), 'utf8')) as { uidMap: unknown };
        expect(st.uidMap).toEqual(info.uidMap);
      }
      expect(disjoint(starts)).toBe(true);
      await expect(createSandbox({ id: `${P}-sbx`, uidMap: `0:${starts[0]}:${SIZE}`, ...sb })).rejects.toMatchObject({ code: 'ERR_NSTOOL_MAP_OVERLAP' });
      expect(await loadSandbox(`${P}-sbx`, sb)).toBeNull();
      await expect(createSandbox({ id: `${P}-sby`, uidMap: 'auto', gidMap: '0:100000:65536', ...sb })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      for (const id of ids) await deleteSandbox(id, sb);
      const again = await createSandbox({ id: ids[0]!, uidMap: 'auto', autoRange: AUTO_RANGE, ...sb });
      expect((await inspectNetns(again.netnsPath!)).uidMap[0]!.hostID).toBe(Math.min(...starts));
    } finally {
      for (const id of ids) await deleteSandbox(id, sb).catch(() => {});
      unmountAll(sb.ipcPinDir);
      unmountAll(sb.utsPinDir);
    }
  });
});
