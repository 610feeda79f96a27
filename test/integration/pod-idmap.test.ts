// nstool's own idmapped mounts (the fallback for runtimes without idmap
// support), checked against the kernel's view from the host side.
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runInNamespaces } from '../../src/exec.js';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { applyIdmapFallback, stageIdmapped, unstage } from '../../src/pod/idmap-fallback.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('podidmap');
trackLeaks(prefix);
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

function mountinfoLine(target: string): string | undefined {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === target);
}

describeRoot('native idmapped mount fallback', () => {
  let dir: string;
  let src: string;
  let pod: PodNetns;

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    src = path.join(dir, 'src');
    mkdirSync(src, { mode: 0o755 });
    writeFileSync(path.join(src, 'root-file'), 'root\n', { mode: 0o644 });
    writeFileSync(path.join(src, 'user-file'), 'user\n', { mode: 0o644 });
    chownSync(path.join(src, 'user-file'), 1000, 1000);
    chownSync(src, 0, 0);
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP, pinUserns: true });
  });

  afterAll(async () => {
    for (const t of ['stage', 'stage-ro', 'mount-1', 'bad']) await unstage(path.join(dir, t)).catch(() => {});
    if (pod) await deletePodNetns(pod.name);
    removeTree(dir);
  });

  it('shows host uid 0 as the pod root (100000), and pod root writes land as uid 0 on the source', async () => {
    const target = path.join(dir, 'stage');
    await stageIdmapped(src, target, { usernsPath: pod.usernsPath! });
    const line = mountinfoLine(target);
    expect(line).toBeDefined();
    expect(line!.split(' - ')[0]).toMatch(/\bidmapped\b/);
    // Staging mounts sit in the host's mount table: never a way to setuid files or devices.
    expect(line!.split(' ')[5]!.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    // Host side: on-disk id k shows as the host id the userns maps k to.
    expect(statSync(path.join(target, 'root-file')).uid).toBe(100000);
    expect(statSync(path.join(target, 'root-file')).gid).toBe(100000);
    expect(statSync(path.join(target, 'user-file')).uid).toBe(101000);
    expect(statSync(target).uid).toBe(100000);
    // The pod's root (host 100000) owns the mount's root, so it may create files there.
    const w = await runInNamespaces(['sh', '-c', `echo hello > ${target}/from-pod && stat -c %u:%g ${target}/from-pod ${target}/root-file`], {
      userns: pod.usernsPath!,
      becomeRoot: true,
    });
    expect(w).toMatchObject({ exitCode: 0, stdout: '0:0\n0:0\n' });
    const onSource = statSync(path.join(src, 'from-pod'));
    expect([onSource.uid, onSource.gid]).toEqual([0, 0]);
    expect(statSync(path.join(target, 'from-pod')).uid).toBe(100000);
    // Host root has no on-disk id through this mount: the kernel refuses its writes.
    expect(() => writeFileSync(path.join(target, 'from-host'), 'x')).toThrow(expect.objectContaining({ code: 'EOVERFLOW' }));
    expect(existsSync(path.join(src, 'from-host'))).toBe(false);

    await unstage(target);
    expect(mountPoints()).not.toContain(target);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(path.join(src, 'from-pod'))).toBe(true);
    await unstage(target); // twice is fine
  });

  it('read-only staging refuses writes; errors leave nothing', async () => {
    const target = path.join(dir, 'stage-ro');
    await stageIdmapped(src, target, { usernsPath: pod.usernsPath!, readonly: true });
    expect(mountinfoLine(target)!.split(' ')[5]).toMatch(/^ro\b/);
    const w = await runInNamespaces(['sh', '-c', `echo x > ${target}/nope`], { userns: pod.usernsPath!, becomeRoot: true });
    expect(w.exitCode).not.toBe(0);
    await unstage(target);

    const bad = path.join(dir, 'bad');
    await expect(stageIdmapped(path.join(dir, 'no-such-src'), bad, { usernsPath: pod.usernsPath! })).rejects.toMatchObject({ code: 'ENOENT' });
    // a netns is not a userns: mount_setattr refuses, and the staging dir is removed again
    await expect(stageIdmapped(src, bad, { usernsPath: pod.path })).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    expect(existsSync(bad)).toBe(false);
    await expect(stageIdmapped('rel', bad, { usernsPath: pod.usernsPath! })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('turns idmapped spec mounts into plain binds of staging paths', async () => {
    const mounts = [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/data', type: 'bind', source: src, options: ['rbind', 'ro', 'ridmap'], uidMappings: MAP, gidMappings: MAP },
    ];
    const r = await applyIdmapFallback(mounts, { stagingDir: dir, usernsPath: pod.usernsPath!, uidMap: MAP, gidMap: MAP });
    const staged = path.join(dir, 'mount-1');
    expect(r.staged).toEqual([staged]);
    expect(r.mounts[0]).toBe(mounts[0]);
    expect(r.mounts[1]).toEqual({ destination: '/data', type: 'bind', source: staged, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    expect(statSync(path.join(staged, 'root-file')).uid).toBe(100000);
    await unstage(staged);

    const other = [{ destination: '/d', type: 'bind', source: src, options: ['bind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 200000, size: 10 }], gidMappings: MAP }];
    await expect(applyIdmapFallback(other, { stagingDir: dir, usernsPath: pod.usernsPath!, uidMap: MAP, gidMap: MAP })).rejects.toMatchObject({
      code: 'ERR_NSTOOL_IDMAP_UNSUPPORTED',
    });
    expect(existsSync(path.join(dir, 'mount-0'))).toBe(false);
  });
});
