// The configs buildSpec makes, run by the real runc (root only): a userns pod
// (joined netns + userns, cgroup v1 mounted inside, a bind from a mount with
// locked flags) and a plain container. This is what the defaults rest on.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, type PodNetns } from '../../src/netns.js';
import { buildSpec, writeBundle, type BuildSpecOptions } from '../../src/oci/index.js';
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
  });

  afterAll(async () => {
    if (pod) await deletePodNetns(pod.name);
    if (lockfs && statSync(lockfs, { throwIfNoEntry: false })) execFileSync('umount', [lockfs]);
    removeTree(dir);
  });

  /** Runs SCRIPT in a container built from OPTS; returns its output. */
  async function runIn(opts: Partial<BuildSpecOptions>, script: string): Promise<{ code: number; out: string; err: string }> {
    const id = `${prefix}-c${n++}`;
    const bundle = path.join(dir, id);
    mkdirSync(bundle, { mode: 0o755 });
    const spec = buildSpec({ rootfs, command: ['sh', '-c', script], cgroupsPath: `/${id}`, ...opts });
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

  it('no userns: host ids, devpts with gid=5, cgroup v1 mounted', async () => {
    const r = await runIn({}, 'cat /proc/self/uid_map; cat /proc/self/mountinfo');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]!.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
    expect(mountLine(r.out, '/dev/pts')).toMatch(/gid=5/);
    expect(mountLine(r.out, '/sys/fs/cgroup/cpu')).toMatch(/ - cgroup /);
  });
});
