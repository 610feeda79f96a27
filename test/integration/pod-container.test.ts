// A container in a pod's pinned userns+netns under the real runc 1.1.5,
// and the failure nstool exists to prevent (host-owned netns + new userns).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatIdMap, parseKernelMap } from '../../src/idmap.js';
import { createPodNetns, deletePodNetns, listNetns, PodNetns } from '../../src/netns.js';
import { PodContainerRecord, removeBundleLitter, removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { podUserns } from '../../src/pod/userns.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, miniSpec, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('podctr');
trackLeaks(prefix);
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

describeRoot('pod container', () => {
  let dir: string;
  let rootfs: string;
  let vol: string;
  let runc: RuncClient;
  let pod: PodNetns | undefined;
  const ids: string[] = [];
  let hostNetns: string | undefined;

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    // A writable idmapped volume: pod root's writes land as host root, so
    // only a source no other user can reach is accepted.
    mkdirSync(path.join(dir, 'private'), { mode: 0o700 });
    vol = path.join(dir, 'private', 'vol');
    mkdirSync(vol, { mode: 0o755 });
    writeFileSync(path.join(vol, 'owned-by-host-root'), 'data\n');
    runc = new RuncClient({ root: path.join(dir, 'runc-root'), logDir: dir, timeoutMs: 30_000 });
    // The userns is deliberately not pinned: running the container pins it.
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP });
  });

  afterAll(async () => {
    for (const id of ids) await removePodContainer(id, { stateDir: path.join(dir, 'state'), runtime: runc }).catch(() => {});
    for (const id of ids) await runc.delete(id, { force: true }).catch(() => {});
    if (pod) await deletePodNetns(pod.name);
    if (hostNetns) execFileSync('ip', ['netns', 'delete', hostNetns], { stdio: 'ignore' });
    const left = await runc.list().catch(() => []);
    removeTree(dir);
    expect(left).toEqual([]);
  });

  it('rm-pod of an id with no record that runc does not know touches nothing', async () => {
    const id = `${prefix}-norecord`;
    const victim = path.join(dir, id);
    mkdirSync(victim, { mode: 0o755 });
    writeFileSync(path.join(victim, 'keep'), 'keep\n');
    expect(await removePodContainer(id, { stateDir: dir, runtime: runc })).toEqual({ id, existed: false });
    expect(readFileSync(path.join(victim, 'keep'), 'utf8')).toBe('keep\n');
  });

  it('checks the rootfs dir itself for traversal and undoes the userns pin it made', async () => {
    const closed = path.join(dir, 'closed-rootfs');
    mkdirSync(closed, { mode: 0o700 });
    const id = `${prefix}-closed`;
    await expect(
      runPodContainer({ id, netns: pod!.name, rootfs: closed, idmapRootfs: false, command: ['true'], runtime: runc, stateDir: path.join(dir, 'state') }),
    ).rejects.toMatchObject({ code: 'ERR_NSTOOL_BUNDLE_PATH', path: closed });
    expect(existsSync(path.join(dir, 'state', id))).toBe(false);
    expect(existsSync(`/run/nstool/userns/${pod!.name}`)).toBe(false);
  });

  it('refuses bundle places another user could swap, and paths overlayfs cannot take, before any side effect', async () => {
    const userDir = path.join(dir, 'user-owned');
    mkdirSync(userDir, { mode: 0o755 });
    chownSync(userDir, 1000, 1000);
    const openDir = path.join(dir, 'world-writable');
    mkdirSync(openDir);
    chmodSync(openDir, 0o777);
    const id = `${prefix}-unsafe`;
    for (const stateDir of [path.join(userDir, 'state'), path.join(openDir, 'state')]) {
      await expect(runPodContainer({ id, netns: pod!.name, rootfs, command: ['true'], runtime: runc, stateDir })).rejects.toMatchObject({
        code: 'ERR_NSTOOL_BUNDLE_PATH',
        path: path.dirname(stateDir),
      });
      expect(readdirSync(path.dirname(stateDir))).toEqual([]);
    }
    await expect(runPodContainer({ id, netns: pod!.name, rootfs, command: ['true'], runtime: runc, stateDir: path.join(dir, 'a,b:c') })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    expect(existsSync(path.join(dir, 'a,b:c'))).toBe(false);
    expect(existsSync(`/run/nstool/userns/${pod!.name}`)).toBe(false);
  });

  it('leaves no temporary bundle; removes what a killed create left, and nothing else', async () => {
    const stateDir = path.join(dir, 'litter');
    const id = `${prefix}-litter`;
    mkdirSync(stateDir, { mode: 0o711 });
    const old = Date.now() / 1000 - 3600;
    // A create killed before its rename leaves ".<id>.tmp-<hex>" holding at most a record.
    const litter = (name: string, files: string[], stale = true): string => {
      const p = path.join(stateDir, name);
      mkdirSync(p, { mode: 0o700 });
      for (const f of files) writeFileSync(path.join(p, f), '{}', { mode: 0o600 });
      if (stale) utimesSync(p, old, old);
      return p;
    };
    const killed = litter(`.${id}.tmp-0123456789ab`, ['nstool-container.json']);
    const killedEarly = litter(`.${id}.tmp-0123456789ac`, []);
    const young = litter(`.${id}.tmp-0123456789ad`, ['nstool-container.json'], false);
    const notOurs = litter(`.${id}.tmp-0123456789ae`, ['nstool-container.json', 'keep']);
    const otherId = litter(`.${id}x.tmp-0123456789af`, ['nstool-container.json']);
    const notPattern = litter(`.${id}.tmp-xyz`, []);

    // A create beside the litter works and leaves no temporary dir of its own.
    const rec = await runPodContainer({ id, netns: pod!.name, rootfs, command: ['sleep', '1000'], runtime: runc, stateDir });
    expect(readdirSync(stateDir).sort()).toEqual([id, ...[killed, killedEarly, young, notOurs, otherId, notPattern].map((p) => path.basename(p))].sort());
    expect(statSync(path.join(rec.bundle, 'nstool-container.json')).isFile()).toBe(true);
    // Removal takes this id's stale litter with it.
    expect(await removePodContainer(id, { stateDir, runtime: runc })).toEqual({ id, existed: true });
    expect(readdirSync(stateDir).sort()).toEqual([young, notOurs, otherId, notPattern].map((p) => path.basename(p)).sort());
    // The gc's call: any id's litter, here regardless of age.
    expect(await removeBundleLitter(stateDir, { minAgeMs: 0 })).toEqual([young, otherId]);
    expect(readdirSync(stateDir).sort()).toEqual([notOurs, notPattern].map((p) => path.basename(p)).sort());
    expect(readFileSync(path.join(notOurs, 'keep'), 'utf8')).toBe('{}');
    expect(await removeBundleLitter(path.join(dir, 'no-such-dir'))).toEqual([]);
  });

  it('a removal cut short keeps the record, so the next removal finishes the bundle', async () => {
    const stateDir = path.join(dir, 'cut');
    const id = `${prefix}-cut`;
    mkdirSync(stateDir, { mode: 0o711 });
    ids.push(id);
    const rec = await runPodContainer({ id, netns: pod!.name, rootfs, command: ['true'], runtime: runc, stateDir });
    // An entry that cannot go stands for the removal being cut short (a second Ctrl-C, a kill).
    const stuck = path.join(rec.bundle, 'stuck');
    writeFileSync(stuck, '');
    execFileSync('chattr', ['+i', stuck]);
    try {
      await expect(removePodContainer(id, { stateDir, runtime: runc })).rejects.toThrow();
      expect(readdirSync(rec.bundle).sort()).toEqual(['nstool-container.json', 'stuck']);
    } finally {
      execFileSync('chattr', ['-i', stuck]);
    }
    expect(await removePodContainer(id, { stateDir, runtime: runc })).toEqual({ id, existed: true });
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('joins the pinned userns+netns: running, pod maps, only lo, /sys mounted; removal leaves nothing', async () => {
    const id = `${prefix}-pause`;
    ids.push(id);
    const rec: PodContainerRecord = await runPodContainer({
      id,
      netns: pod!.name,
      rootfs,
      command: ['sh', '-c', 'echo started; exec sleep 1000'],
      mounts: [{ source: vol, destination: '/vol', idmap: true }],
      runtime: runc,
      stateDir: path.join(dir, 'state'),
    });
    // The userns got pinned under the netns's name.
    expect(rec.usernsPath).toBe(`/run/nstool/userns/${pod!.name}`);
    expect(statSync(rec.usernsPath).ino).toBe(pod!.usernsInode);
    expect(await runc.state(id)).toMatchObject({ id, status: 'running', pid: rec.pid });
    // The container's init lives in exactly the pod's namespaces.
    expect(statSync(`/proc/${rec.pid}/ns/net`).ino).toBe(pod!.netnsInode);
    expect(statSync(`/proc/${rec.pid}/ns/user`).ino).toBe(pod!.usernsInode);

    const uidMap = await runc.exec(id, ['cat', '/proc/self/uid_map']);
    expect(uidMap.exitCode).toBe(0);
    expect(formatIdMap(parseKernelMap(uidMap.stdout))).toBe(formatIdMap(MAP));
    const gidMap = await runc.exec(id, ['cat', '/proc/self/gid_map']);
    expect(formatIdMap(parseKernelMap(gidMap.stdout))).toBe(formatIdMap(MAP));
    expect((await runc.exec(id, ['ls', '/sys/class/net'])).stdout.split(/\s+/).filter(Boolean)).toEqual(['lo']);
    const mounts = (await runc.exec(id, ['cat', '/proc/self/mounts'])).stdout;
    expect(mounts).toMatch(/^sysfs \/sys sysfs /m);
    // Root-owned rootfs and volume show as the pod's root inside, through nstool's idmapped mounts.
    expect((await runc.exec(id, ['stat', '-c', '%u:%g', '/', '/bin/busybox', '/vol/owned-by-host-root'])).stdout).toBe('0:0\n0:0\n0:0\n');
    expect((await runc.exec(id, ['sh', '-c', 'echo from-pod > /vol/written'])).exitCode).toBe(0);
    expect(statSync(path.join(vol, 'written')).uid).toBe(0);
    // Its stdio is a file the pod's root could open.
    expect(readFileSync(rec.stdout, 'utf8')).toBe('started\n');
    expect(statSync(rec.stdout).uid).toBe(100000);
    // The rootfs's idmapped lower, the overlay on it, the volume's staging mount.
    expect(rec.staged.length).toBe(3);
    for (const s of rec.staged) expect(mountPoints()).toContain(s);

    expect(await removePodContainer(id, { stateDir: path.join(dir, 'state'), runtime: runc })).toEqual({ id, existed: true });
    ids.pop();
    expect(await runc.list()).toEqual([]);
    expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
    expect(existsSync(rec.bundle)).toBe(false);
    // The userns pin this container made went with it.
    expect(rec.usernsPinned).toBe(true);
    expect(existsSync(rec.usernsPath)).toBe(false);
    expect(readFileSync(path.join(rootfs, 'etc', 'passwd'), 'utf8')).toMatch(/^root:/); // the source survived
    expect(await removePodContainer(id, { stateDir: path.join(dir, 'state'), runtime: runc })).toEqual({ id, existed: false });

    await deletePodNetns(pod!.name);
    const name = pod!.name;
    pod = undefined;
    expect((await listNetns()).map((e) => e.name)).not.toContain(name);
    expect(existsSync(`/run/nstool/userns/${name}`)).toBe(false);
  });

  it('a host-owned netns with a new userns fails in runc with the sysfs EPERM and a hint', async () => {
    hostNetns = `${prefix}-x`;
    execFileSync('ip', ['netns', 'add', hostNetns]);
    const netnsPath = `/run/netns/${hostNetns}`;
    // nstool refuses this netns before doing anything.
    await expect(podUserns(hostNetns)).rejects.toMatchObject({ code: 'ERR_NSTOOL_NETNS_NOT_POD' });
    await expect(runPodContainer({ id: `${prefix}-refused`, netns: hostNetns, rootfs, command: ['true'], runtime: runc, stateDir: path.join(dir, 'state') })).rejects.toMatchObject({
      code: 'ERR_NSTOOL_NETNS_NOT_POD',
    });
    expect(existsSync(path.join(dir, 'state', `${prefix}-refused`))).toBe(false);

    // Handed to runc directly, it fails the way users meet it.
    const id = `${prefix}-neg`;
    const b = path.join(dir, 'neg');
    mkdirSync(b, { mode: 0o755 });
    writeFileSync(path.join(b, 'config.json'), JSON.stringify(miniSpec({ rootfs, args: ['true'], netnsPath, uidMappings: MAP, gidMappings: MAP })));
    ids.push(id);
    const err = await runc.create(id, b).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', exitCode: 1 });
    expect((err as { runtimeMessage: string }).runtimeMessage).toMatch(/sysfs.*operation not permitted/);
    expect((err as { hint: string }).hint).toMatch(/createPodNetns/);
    await runc.delete(id, { force: true }).catch(() => {});
    ids.pop();
    expect(await runc.list()).toEqual([]);
    execFileSync('ip', ['netns', 'delete', hostNetns]);
    hostNetns = undefined;
  });
});
