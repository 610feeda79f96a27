// The configs buildSpec makes, run by the real runc (root only): a userns pod
// (joined netns + userns, cgroup v1 mounted inside, a bind from a mount with
// locked flags) and a plain container. This is what the defaults rest on.
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, type PodNetns } from '../../src/netns.js';
import { buildSpec, writeBundle, type BuildSpecOptions, type Spec } from '../../src/oci/index.js';
import { classifyRuntimeMessage } from '../../src/runc/error.js';
import { errorCode } from '../helpers/errors.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const run = promisify(execFile);
const prefix = testPrefix('ocirunc');
trackLeaks(prefix);

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

describeRoot('buildSpec configs under runc', () => {
  let dir: string;
  let rootfs: string;
  let lockfs: string | undefined;
  let pod: PodNetns | undefined;
  let denyPod: PodNetns | undefined;
  let n = 0;

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    // A source mount with nosuid,nodev,noexec: a userns bind from it must keep them.
    lockfs = path.join(dir, 'lockfs');
    mkdirSync(lockfs, { mode: 0o755 });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nosuid,nodev,noexec,size=64k,mode=755', `${prefix}-tmpfs`, lockfs]);
    mkdirSync(path.join(lockfs, 'vol'), { mode: 0o755 });
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP, pinUserns: true });
    denyPod = await createPodNetns({ name: `${prefix}-deny`, uidMap: MAP, setgroups: 'deny', pinUserns: true });
    // A user with a supplementary group.
    appendFileSync(path.join(rootfs, 'etc/passwd'), 'app:x:1000:1000::/:/bin/sh\n');
    appendFileSync(path.join(rootfs, 'etc/group'), 'app:x:1000:\nwheel:x:10:app\n');
  });

  afterAll(async () => {
    if (pod) await deletePodNetns(pod.name);
    if (denyPod) await deletePodNetns(denyPod.name);
    if (lockfs && statSync(lockfs, { throwIfNoEntry: false })) execFileSync('umount', [lockfs]);
    removeTree(dir);
  });

  /** Runs SCRIPT in a container built from OPTS; returns its output. */
  async function runIn(opts: Partial<BuildSpecOptions>, script: string, patch?: (s: Spec) => void): Promise<{ code: number; out: string; err: string }> {
    const id = `${prefix}-c${n++}`;
    const bundle = path.join(dir, id);
    mkdirSync(bundle, { mode: 0o755 });
    const spec = buildSpec({ rootfs, command: ['sh', '-c', script], cgroupsPath: `/${id}`, ...opts });
    patch?.(spec);
    await writeBundle(bundle, spec);
    const root = path.join(dir, 'runc-root');
    try {
      const r = await run('runc', ['--root', root, 'run', '--bundle', bundle, id], { timeout: 30_000 });
      return { code: 0, out: r.stdout, err: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
    } finally {
      await run('runc', ['--root', root, 'delete', '--force', id]).catch(() => undefined);
    }
  }

  const mountLine = (out: string, point: string) => out.split('\n').find((l) => l.split(' ')[4] === point);

  it('a userns pod: joined namespaces, its maps, sysfs, cgroup v1 read-only, devpts without gid=5', async () => {
    const r = await runIn(
      { netnsPath: pod!.path, usernsPath: pod!.usernsPath, uidMappings: MAP, gidMappings: MAP, hostname: 'podhost' },
      'cat /proc/self/uid_map; readlink /proc/self/ns/net; hostname; id -u; cat /proc/self/mountinfo',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]!.trim().split(/\s+/)).toEqual(['0', '100000', '65536']);
    expect(lines[1]).toBe(`net:[${pod!.netnsInode}]`);
    expect(lines[2]).toBe('podhost');
    expect(lines[3]).toBe('0');
    expect(mountLine(r.out, '/sys')).toMatch(/ - sysfs /);
    const cpu = mountLine(r.out, '/sys/fs/cgroup/cpu');
    expect(cpu).toMatch(/ - cgroup /);
    expect(cpu!.split(' ')[5]!.split(',')).toContain('ro');
    const pts = mountLine(r.out, '/dev/pts');
    expect(pts).toMatch(/ - devpts /);
    expect(pts).not.toMatch(/gid=5/);
  });

  it('a userns pod: a read-only bind from a nosuid,nodev,noexec mount works and is read-only', async () => {
    const r = await runIn(
      {
        netnsPath: pod!.path,
        usernsPath: pod!.usernsPath,
        uidMappings: MAP,
        gidMappings: MAP,
        mounts: [{ source: path.join(lockfs!, 'vol'), destination: '/data', readonly: true }],
      },
      'touch /data/x 2>/dev/null && echo writable || echo readonly; grep " /data " /proc/self/mountinfo',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('readonly');
    expect(mountLine(r.out, '/data')!.split(' ')[5]!.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
  });

  it('a userns pod: the user is resolved from the rootfs', async () => {
    const r = await runIn(
      { netnsPath: pod!.path, usernsPath: pod!.usernsPath, uidMappings: MAP, gidMappings: MAP, user: 'nobody', capabilities: [] },
      'id -u; id -g',
    );
    expect(r.err).toBe('');
    expect(r.out).toBe('65534\n65534\n');
  });

  it('a userns on the host network: the host /sys bound read-only (a sysfs mount would be EPERM)', async () => {
    const r = await runIn(
      { hostNetwork: true, usernsPath: pod!.usernsPath, uidMappings: MAP, gidMappings: MAP },
      'readlink /proc/self/ns/net; touch /sys/kernel/nstool-probe 2>/dev/null && echo writable || echo readonly; cat /proc/self/mountinfo',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(readlinkSync('/proc/self/ns/net'));
    expect(lines[1]).toBe('readonly');
    expect(mountLine(r.out, '/sys')!.split(' ')[5]!.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    // Recursively read-only: a submount of the host's /sys is too.
    const cgroup = mountLine(r.out, '/sys/fs/cgroup');
    expect(cgroup!.split(' ')[5]!.split(',')).toContain('ro');

    // Why: the same config with a sysfs mount fails in runc.
    const sysfs = await runIn({ hostNetwork: true, usernsPath: pod!.usernsPath, uidMappings: MAP, gidMappings: MAP }, 'true', (spec) => {
      spec.mounts = spec.mounts.map((m) => (m.destination === '/sys' ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] } : m));
    });
    expect(sysfs.code).not.toBe(0);
    expect(classifyRuntimeMessage(sysfs.err)).toBe('netns-not-owned');
  });

  it('refuses a userns that does not own the joined netns, before any runtime is asked', () => {
    const hostUserns = statSync('/proc/self/ns/user').ino;
    const attempt = (netnsPath: string, usernsPath: string) => {
      try {
        buildSpec({ rootfs, command: ['true'], netnsPath, usernsPath, uidMappings: MAP, gidMappings: MAP });
      } catch (e) {
        return e as Record<string, unknown>;
      }
      return undefined;
    };
    // The host's netns joined from the pod's userns: the classic sysfs EPERM.
    expect(attempt('/proc/self/ns/net', pod!.usernsPath!)).toMatchObject({
      code: 'ERR_NSTOOL_USERNS_MISMATCH',
      netnsPath: '/proc/self/ns/net',
      usernsPath: pod!.usernsPath,
      netnsOwnerInode: hostUserns,
      usernsInode: pod!.usernsInode,
    });
    // Another pod's netns.
    expect(attempt(denyPod!.path, pod!.usernsPath!)).toMatchObject({
      code: 'ERR_NSTOOL_USERNS_MISMATCH',
      netnsInode: denyPod!.netnsInode,
      netnsOwnerInode: denyPod!.usernsInode,
      usernsInode: pod!.usernsInode,
    });
    expect(attempt(pod!.path, pod!.usernsPath!)).toBeUndefined();
  });

  it('supplementary groups: set in a userns that allows setgroups, refused where it denies them', async () => {
    const r = await runIn({ netnsPath: pod!.path, usernsPath: pod!.usernsPath, uidMappings: MAP, gidMappings: MAP, user: 'app', capabilities: [] }, 'id -u; id -G');
    expect(r.err).toBe('');
    expect(r.out).toBe('1000\n1000 10\n');
    const deny = { netnsPath: denyPod!.path, usernsPath: denyPod!.usernsPath, uidMappings: MAP, gidMappings: MAP };
    expect(errorCode(() => buildSpec({ rootfs, command: ['true'], ...deny, user: 'app' }))).toBe('ERR_NSTOOL_SETGROUPS_DENIED');
    // Why: the same config pointed at the deny pod by hand runs, without group 10, and runc says nothing.
    const quiet = await runIn({ netnsPath: pod!.path, usernsPath: pod!.usernsPath, uidMappings: MAP, gidMappings: MAP, user: 'app', capabilities: [] }, 'id -G', (spec) => {
      spec.linux.namespaces = spec.linux.namespaces.map((ns) =>
        ns.type === 'network' ? { ...ns, path: denyPod!.path } : ns.type === 'user' ? { ...ns, path: denyPod!.usernsPath! } : ns,
      );
    });
    expect(quiet).toMatchObject({ code: 0, err: '' });
    expect(quiet.out).toBe('1000\n');
    // Only the primary group: nothing is dropped, so it is fine.
    expect(buildSpec({ rootfs, command: ['true'], ...deny, user: 'nobody' }).process.user).toEqual({ uid: 65534, gid: 65534, additionalGids: [65534] });
  });

  it('no userns: host ids, devpts with gid=5, cgroup v1 mounted', async () => {
    const r = await runIn({}, 'cat /proc/self/uid_map; cat /proc/self/mountinfo');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]!.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
    expect(mountLine(r.out, '/dev/pts')).toMatch(/gid=5/);
    expect(mountLine(r.out, '/sys/fs/cgroup/cpu')).toMatch(/ - cgroup /);
  });
});
