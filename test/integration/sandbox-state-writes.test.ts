// What a sandbox's state file holds at each step of create and delete: the
// record of a step is on disk before the step runs (what delete and gc
// rely on after a crash), the pin inodes are on disk before the network
// step (its DEL tells our netns from another by them), and no write is made
// that adds nothing a crash needs: the pins' records go in one write, and
// delete does not rewrite the state after each removal. The same with the
// state dir on a tmpfs (the usual /run), where its files are read and
// written without trips to the pool.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inMemorySync } from '../../src/atomic-file.js';
import { containerIdOf, createSandbox, deleteSandbox, gc } from '../../src/sandbox/index.js';
import type { CreateSandboxOptions } from '../../src/sandbox/index.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns, sandboxDirs } from '../helpers/node-netns.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('sbsw');
trackLeaks(P);

type Dirs = Required<Pick<CreateSandboxOptions, 'stateDir' | 'bundleDir' | 'cniCacheDir' | 'pinDir' | 'usernsPinDir' | 'ipcPinDir' | 'utsPinDir'>>;
type Disk = Record<string, unknown> & { phase?: string; netns?: { inode?: number }; userns?: { inode?: number }; ipc?: { inode?: number }; uts?: { inode?: number }; network?: unknown };

describeRoot('sandbox state on disk at each step', () => {
  let node: NodeNetns;
  let tmp: string;
  let dirs: Dirs;
  const outer = () => dirs;
  let list: Record<string, unknown>;
  let shm: string;

  beforeAll(() => {
    node = makeNodeNetns(P);
    tmp = traversableTempDir(P);
    dirs = sandboxDirs(tmp);
    ({ list } = bridgeNetwork(`${P}-net`, path.join(tmp, 'ipam')));
    shm = mkdtempSync(path.join('/dev/shm', `${P}-`));
  });
  afterAll(async () => {
    await gc({ ...dirs, nodeNetns: node.path });
    await gc({ ...dirs, stateDir: path.join(shm, 'state'), nodeNetns: node.path });
    node.remove();
    for (const d of [dirs.pinDir, dirs.usernsPinDir, dirs.ipcPinDir, dirs.utsPinDir]) while (mountPoints().includes(d)) execFileSync('umount', ['-R', d]);
    removeTree(tmp);
    rmSync(shm, { recursive: true, force: true });
  });

  it.each(['disk', 'tmpfs'])('create: each record before its step, the pins in one write, their inodes before the network; delete: one write (state on %s)', async (fs) => {
    const id = `${P}-${fs}`;
    const dirs = fs === 'tmpfs' ? { ...outer(), stateDir: path.join(shm, 'state') } : outer();
    expect(inMemorySync(path.dirname(dirs.stateDir)), fs).toBe(fs === 'tmpfs');
    const file = path.join(dirs.stateDir, `${id}.json`);
    const disk = (): Disk => JSON.parse(readFileSync(file, 'utf8')) as Disk;
    const seen = new Map<string, Disk>();
    const info = await createSandbox({ id, uidMap: '0:100000:65536', network: { list, nodeNetns: node.path }, ...dirs, onStep: (p) => void seen.set(p, disk()) });
    expect([...seen.keys()].filter((p) => p.startsWith('before-'))).toEqual(['before-netns', 'before-userns', 'before-ipc', 'before-uts', 'before-network']);
    for (const s of ['netns', 'userns', 'ipc', 'uts', 'network']) {
      expect(seen.get(`before-${s}`)?.[s], `the ${s} record is on disk before its step`).toBeDefined();
      expect(seen.get(`before-${s}`)?.phase).toBe('creating');
    }
    // Between the pin steps, nothing is written.
    for (const s of ['userns', 'ipc', 'uts']) expect(seen.get(`before-${s}`), s).toEqual(seen.get('before-netns'));
    expect(seen.get('state')).toEqual(seen.get('before-netns'));
    // Before CNI ADD: every pin's inode.
    const before = seen.get('before-network')!;
    for (const s of ['netns', 'userns', 'ipc', 'uts'] as const) expect(before[s]?.inode, s).toEqual(expect.any(Number));
    expect(before.netns?.inode).toBe(statSync(info.netnsPath!).ino);
    expect(disk()).toMatchObject({ phase: 'ready', network: { ips: info.ips } });
    // The cached CNI result is this instance's from its first write.
    const results = path.join(dirs.cniCacheDir, 'results');
    const entry = JSON.parse(readFileSync(path.join(results, `${P}-net-${containerIdOf(id, dirs)}-eth0`), 'utf8')) as { owner?: string };
    expect(entry.owner).toBe(path.normalize(dirs.stateDir));
    expect(readdirSync(results).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const del = new Map<string, Disk>();
    await deleteSandbox(id, { ...dirs, onStep: (p) => void del.set(p, disk()) });
    expect([...del.keys()]).toEqual(['network', 'uts', 'ipc', 'userns', 'netns'].flatMap((s) => [`before-remove-${s}`, `after-remove-${s}`]));
    const deleting = del.get('before-remove-network')!;
    expect(deleting).toMatchObject({ phase: 'deleting', netns: {}, userns: {}, ipc: {}, uts: {}, network: {} });
    for (const [p, d] of del) expect(d, p).toEqual(deleting);
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(dirs.stateDir)).toEqual([]);
  });
});
