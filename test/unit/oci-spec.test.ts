// The runtime config builder: defaults, namespaces, mounts, validation; every
// config built here is checked against the OCI JSON schema.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, specNeedsIdmap, DEFAULT_CAPABILITIES, DEFAULT_PATH } from '../../src/oci/index.js';
import type { BuildSpecOptions, Spec } from '../../src/oci/index.js';
import { lockedFlags, readMountInfo } from '../../src/oci/mounts.js';
import { schemaErrors } from '../fixtures/oci/schema.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { errorCode } from '../helpers/errors.js';

const prefix = testPrefix('ocispec');
trackLeaks(prefix);

let dir: string;
let rootfs: string;
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\nwheel:x:10:app\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** buildSpec, and the result must satisfy the official schema and its closed variant. */
function build(opts: Partial<BuildSpecOptions>): Spec {
  const spec = buildSpec({ rootfs, command: ['/bin/sh'], ...opts });
  expect(schemaErrors(spec, 'official'), 'official schema').toEqual([]);
  expect(schemaErrors(spec, 'closed'), 'closed schema').toEqual([]);
  return spec;
}

const code = errorCode;

// Real namespace files (the builder reads them): this process's own netns and
// the userns that owns it, which any user may open.
const userns = { usernsPath: '/proc/self/ns/user', netnsPath: '/proc/self/ns/net', uidMappings: MAP, gidMappings: MAP };

describe('buildSpec defaults', () => {
  it('gives the runtime defaults', () => {
    const s = build({});
    expect(s.ociVersion).toBe('1.0.2');
    expect(s.root).toEqual({ path: rootfs, readonly: false });
    expect(s.process.terminal).toBe(false);
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.process.cwd).toBe('/');
    expect(s.process.env).toEqual([DEFAULT_PATH]);
    expect(s.process.user).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
    expect(s.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }]);
    const caps = s.process.capabilities!;
    expect(caps.bounding).toHaveLength(14);
    for (const set of [caps.bounding, caps.effective, caps.permitted]) expect(set).toEqual([...DEFAULT_CAPABILITIES]);
    expect(caps.ambient).toBeUndefined();
    expect(caps.inheritable).toBeUndefined();
    expect(s.linux.maskedPaths).toContain('/proc/kcore');
    expect(s.linux.maskedPaths).toContain('/sys/firmware');
    expect(s.linux.maskedPaths).toHaveLength(10);
    expect(s.linux.readonlyPaths).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    expect(s.hostname).toBeUndefined();
    expect(s.hooks).toBeUndefined();
    expect(s.annotations).toBeUndefined();
  });

  it('creates the six standard devices and allows them (and terminals) in the device cgroup', () => {
    const s = build({});
    const devs = Object.fromEntries(s.linux.devices!.map((d) => [d.path, `${d.type} ${d.major}:${d.minor} ${d.fileMode!.toString(8)}`]));
    expect(devs).toEqual({
      '/dev/null': 'c 1:3 666',
      '/dev/zero': 'c 1:5 666',
      '/dev/full': 'c 1:7 666',
      '/dev/random': 'c 1:8 666',
      '/dev/urandom': 'c 1:9 666',
      '/dev/tty': 'c 5:0 666',
    });
    const rules = s.linux.resources!.devices!;
    expect(rules[0]).toEqual({ allow: false, access: 'rwm' });
    for (const d of s.linux.devices!) expect(rules).toContainEqual({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rwm' });
    expect(rules).toContainEqual({ allow: true, type: 'c', major: 136, access: 'rwm' });
  });

  it('adds caller devices to both lists', () => {
    const s = build({ devices: [{ type: 'c', path: '/dev/fuse', major: 10, minor: 229 }] });
    expect(s.linux.devices).toContainEqual({ type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 });
    expect(s.linux.resources!.devices).toContainEqual({ allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' });
    expect(code(() => buildSpec({ rootfs, command: ['x'], devices: [{ type: 'c', path: '/etc/x', major: 1, minor: 1 }] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec({ rootfs, command: ['x'], devices: [{ type: 'c', path: '/dev/x' }] }))).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('namespaces', () => {
  const types = (s: Spec) => s.linux.namespaces.map((n) => (n.path ? `${n.type}=${n.path}` : n.type));

  it('without a pod: new pid, ipc, uts, mount, cgroup and network; no userns, no maps', () => {
    const s = build({});
    expect(types(s)).toEqual(['pid', 'ipc', 'uts', 'mount', 'cgroup', 'network']);
    expect(s.linux.uidMappings).toBeUndefined();
    expect(s.linux.gidMappings).toBeUndefined();
  });

  it('joins the pod netns by path, and stays on the host network when asked', () => {
    expect(types(build({ netnsPath: '/run/netns/p' }))).toEqual(['pid', 'ipc', 'uts', 'mount', 'cgroup', 'network=/run/netns/p']);
    expect(types(build({ hostNetwork: true }))).toEqual(['pid', 'ipc', 'uts', 'mount', 'cgroup']);
    expect(code(() => buildSpec({ rootfs, command: ['x'], hostNetwork: true, netnsPath: '/run/netns/p' }))).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('joins the userns by path and writes its maps', () => {
    const uid = [{ containerID: 0, hostID: 200000, size: 65536 }];
    const s = build({ ...userns, uidMappings: uid });
    expect(types(s)).toEqual(['pid', 'ipc', 'uts', 'mount', 'cgroup', 'network=/proc/self/ns/net', 'user=/proc/self/ns/user']);
    expect(s.linux.uidMappings).toEqual(uid);
    expect(s.linux.gidMappings).toEqual(MAP);
  });

  it('refuses a userns path without maps, and maps without a userns path', () => {
    expect(code(() => buildSpec({ rootfs, command: ['x'], usernsPath: '/u' }))).toBe('ERR_NSTOOL_MISSING_MAPPINGS');
    expect(code(() => buildSpec({ rootfs, command: ['x'], usernsPath: '/u', uidMappings: MAP }))).toBe('ERR_NSTOOL_MISSING_MAPPINGS');
    expect(code(() => buildSpec({ rootfs, command: ['x'], uidMappings: MAP, gidMappings: MAP }))).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('refuses namespace paths that are not namespaces of their kind, before reading the rootfs', () => {
    const noRootfs = path.join(dir, 'no-rootfs');
    const at = (o: Partial<BuildSpecOptions>) => {
      try {
        buildSpec({ rootfs: noRootfs, command: ['x'], ...userns, ...o });
      } catch (e) {
        return { code: (e as { code?: string }).code, path: (e as { path?: string }).path };
      }
      return undefined;
    };
    expect(at({ netnsPath: '/proc/self/ns/user' })).toEqual({ code: 'ERR_INVALID_ARG_VALUE', path: '/proc/self/ns/user' });
    expect(at({ usernsPath: '/proc/self/ns/net' })).toEqual({ code: 'ERR_INVALID_ARG_VALUE', path: '/proc/self/ns/net' });
    const plain = path.join(rootfs, 'etc/passwd');
    expect(at({ usernsPath: plain })).toEqual({ code: 'ERR_INVALID_ARG_VALUE', path: plain });
    expect(at({ netnsPath: path.join(dir, 'missing') })).toMatchObject({ code: 'ENOENT' });
    // The userns is checked even on the host network; nothing was read from the (missing) rootfs.
    expect(at({ netnsPath: undefined, hostNetwork: true, usernsPath: plain })).toEqual({ code: 'ERR_INVALID_ARG_VALUE', path: plain });
  });

  it('validates the maps with the idmap rules', () => {
    const overlap = [
      { containerID: 0, hostID: 100000, size: 10 },
      { containerID: 5, hostID: 200000, size: 10 },
    ];
    expect(code(() => buildSpec({ rootfs, command: ['x'], ...userns, uidMappings: overlap }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec({ rootfs, command: ['x'], ...userns, gidMappings: [] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec({ rootfs, command: ['x'], ...userns, gidMappings: [{ containerID: 0, hostID: -1, size: 1 }] }))).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('sets the hostname (uts is always new) and refuses a bad one', () => {
    expect(build({ hostname: 'pod-a.example' }).hostname).toBe('pod-a.example');
    expect(build({ hostname: 'sandbox_1.a' }).hostname).toBe('sandbox_1.a');
    expect(build({ hostname: 'x'.repeat(64) }).hostname).toHaveLength(64);
    for (const bad of ['', 'a b', '-x', 'x'.repeat(65), 'a/b']) expect(code(() => buildSpec({ rootfs, command: ['x'], hostname: bad }))).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('standard mounts', () => {
  const byDest = (s: Spec) => Object.fromEntries(s.mounts.map((m) => [m.destination, m]));

  it('mounts proc, dev, pts, shm, mqueue, sys and cgroup with the usual options', () => {
    const s = build({});
    expect(s.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
    const m = byDest(s);
    expect(m['/proc']!.type).toBe('proc');
    expect(m['/dev']).toMatchObject({ type: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] });
    expect(m['/dev/pts']!.options).toEqual(['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    expect(m['/dev/shm']).toMatchObject({ type: 'tmpfs', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
    expect(m['/dev/mqueue']!.type).toBe('mqueue');
    expect(m['/sys']).toMatchObject({ type: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    expect(m['/sys/fs/cgroup']).toMatchObject({ type: 'cgroup' });
    expect(m['/sys/fs/cgroup']!.options).toContain('ro');
  });

  it('in a userns on the host network, binds the host /sys read-only instead of mounting sysfs', () => {
    const { netnsPath: _n, ...hostUserns } = userns;
    const m = byDest(build({ ...hostUserns, hostNetwork: true }));
    expect(m['/sys']).toEqual({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'rro', 'nosuid', 'nodev', 'noexec'] });
    // Its own netns (joined or new) or no userns: sysfs, which works there.
    expect(byDest(build(userns))['/sys']!.type).toBe('sysfs');
    expect(byDest(build(hostUserns))['/sys']!.type).toBe('sysfs');
    expect(byDest(build({ hostNetwork: true }))['/sys']!.type).toBe('sysfs');
  });

  it('drops gid=5 from devpts in a user namespace', () => {
    const pts = byDest(build(userns))['/dev/pts']!;
    expect(pts.options).not.toContain('gid=5');
    expect(pts.options).toContain('newinstance');
  });

  it('mounts /sys/fs/cgroup as cgroupfs, a read-only rbind of the host, or not at all', () => {
    expect(byDest(build(userns))['/sys/fs/cgroup']!.type).toBe('cgroup');
    expect(byDest(build({ ...userns, cgroupMount: 'bind' }))['/sys/fs/cgroup']).toEqual({
      destination: '/sys/fs/cgroup',
      type: 'bind',
      source: '/sys/fs/cgroup',
      options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
    });
    expect(byDest(build({ cgroupMount: 'none' }))['/sys/fs/cgroup']).toBeUndefined();
    expect(code(() => buildSpec({ rootfs, command: ['x'], cgroupMount: 'x' as 'none' }))).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('caller mounts', () => {
  const last = (s: Spec) => s.mounts[s.mounts.length - 1]!;

  it('bind mounts with bind|rbind, ro and propagation', () => {
    expect(last(build({ mounts: [{ source: '/srv/a', destination: '/a' }] }))).toEqual({ destination: '/a', type: 'bind', source: '/srv/a', options: ['bind'] });
    expect(last(build({ mounts: [{ source: '/srv/a', destination: '/a', recursive: true, readonly: true, propagation: 'rslave' }] })).options).toEqual([
      'rbind',
      'ro',
      'rslave',
    ]);
    expect(last(build({ mounts: [{ source: 'tmpfs', destination: '/t', type: 'tmpfs', options: ['size=1m'] }] }))).toEqual({
      destination: '/t',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['size=1m'],
    });
  });

  it('a caller mount on a standard destination replaces it in place', () => {
    const s = build({ mounts: [{ source: '/run/pod/shm', destination: '/dev/shm', options: ['nosuid', 'nodev', 'noexec'] }] });
    expect(s.mounts.filter((m) => m.destination === '/dev/shm')).toHaveLength(1);
    expect(s.mounts[3]).toMatchObject({ destination: '/dev/shm', type: 'bind', source: '/run/pod/shm' });
  });

  it('orders caller mounts parents first and refuses two on one destination', () => {
    const s = build({
      mounts: [
        { source: '/srv/c', destination: '/a/b/c' },
        { source: '/srv/a', destination: '/a' },
        { source: '/srv/b', destination: '/a/b' },
      ],
    });
    expect(s.mounts.slice(-3).map((m) => m.destination)).toEqual(['/a', '/a/b', '/a/b/c']);
    expect(
      code(() =>
        buildSpec({
          rootfs,
          command: ['x'],
          mounts: [
            { source: '/x', destination: '/a' },
            { source: '/y', destination: '/a/' },
          ],
        }),
      ),
    ).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('refuses relative, NUL and ".." paths and unknown propagation', () => {
    for (const m of [
      { source: '/x', destination: 'rel' },
      { source: '/x', destination: '/a\0b' },
      { source: '/x', destination: '/a/../etc' },
      { source: 'rel', destination: '/a' },
      { source: '/x', destination: '/a', propagation: 'bogus' },
      { source: '/x', destination: '/a', options: ['ro,exec'] },
    ]) {
      expect(code(() => buildSpec({ rootfs, command: ['x'], mounts: [m as never] })), JSON.stringify(m)).toBe('ERR_INVALID_ARG_VALUE');
    }
  });

  it('lockedFlags reads nosuid/nodev/noexec of the top mount holding the source', () => {
    const table = readMountInfo(
      ['22 1 0:20 / / rw - ext4 /dev/vda rw', '23 22 0:21 / /run/pod rw,nosuid,nodev,noexec - tmpfs tmpfs rw', '24 23 0:22 / /run/pod/x rw,nodev - tmpfs t rw'].join('\n'),
    );
    expect(lockedFlags('/run/pod', table)).toEqual(['nosuid', 'nodev', 'noexec']);
    expect(lockedFlags('/run/pod/x', table)).toEqual(['nodev']);
    expect(lockedFlags('/run', table)).toEqual([]);
  });
});

describeRoot('caller mounts on a live mount with locked flags', () => {
  let lockfs: string;
  beforeAll(() => {
    lockfs = path.join(dir, 'lockfs');
    mkdirSync(lockfs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nosuid,nodev,noexec,size=64k', `${prefix}-tmpfs`, lockfs]);
    mkdirSync(path.join(lockfs, 'd'));
  });
  afterAll(() => {
    if (lockfs) execFileSync('umount', [lockfs]);
  });

  it('copies nosuid,nodev,noexec of the source mount in a userns, not without one', () => {
    const req = [{ source: path.join(lockfs, 'd'), destination: '/p', readonly: true }];
    expect(build({ ...userns, mounts: req }).mounts.at(-1)!.options).toEqual(['bind', 'ro', 'nosuid', 'nodev', 'noexec']);
    expect(build({ mounts: req }).mounts.at(-1)!.options).toEqual(['bind', 'ro']);
    expect(build({ ...userns, mounts: [{ source: dir, destination: '/q' }] }).mounts.at(-1)!.options).toEqual(['bind']);
  });
});

describe('idmapped mounts', () => {
  it('idmap: true takes the pod maps and the idmap option; recursive gives ridmap', () => {
    const s = build({ ...userns, mounts: [{ source: '/srv/data', destination: '/data', idmap: true }] });
    const m = s.mounts.find((x) => x.destination === '/data')!;
    expect(m).toEqual({ destination: '/data', type: 'bind', source: '/srv/data', options: ['bind', 'idmap'], uidMappings: MAP, gidMappings: MAP });
    const r = build({ ...userns, mounts: [{ source: '/srv/data', destination: '/data', idmap: true, recursive: true }] });
    expect(r.mounts.at(-1)!.options).toEqual(['rbind', 'ridmap']);
    expect(specNeedsIdmap(s)).toBe(true);
    expect(specNeedsIdmap(build(userns))).toBe(false);
  });

  it('takes explicit maps, validated', () => {
    const uid = [{ containerID: 0, hostID: 3000, size: 10 }];
    const s = build({ mounts: [{ source: '/srv/d', destination: '/d', idmap: { uidMappings: uid, gidMappings: uid } }] });
    expect(s.mounts.at(-1)!.uidMappings).toEqual(uid);
    expect(specNeedsIdmap(s)).toBe(true);
    const bad = [{ containerID: 0, hostID: 3000, size: 0 }];
    expect(code(() => buildSpec({ rootfs, command: ['x'], mounts: [{ source: '/s', destination: '/d', idmap: { uidMappings: bad, gidMappings: uid } }] }))).toBe(
      'ERR_INVALID_ARG_VALUE',
    );
  });

  it('refuses idmap: true without a pod userns, and idmap on non-bind mounts', () => {
    expect(code(() => buildSpec({ rootfs, command: ['x'], mounts: [{ source: '/s', destination: '/d', idmap: true }] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec({ rootfs, command: ['x'], ...userns, mounts: [{ source: 'tmpfs', type: 'tmpfs', destination: '/d', idmap: true }] }))).toBe(
      'ERR_INVALID_ARG_VALUE',
    );
  });

  it('specNeedsIdmap ignores empty map lists', () => {
    expect(specNeedsIdmap({ mounts: [{ destination: '/x', uidMappings: [], gidMappings: [] }] })).toBe(false);
    expect(specNeedsIdmap({ mounts: [{ destination: '/x', gidMappings: MAP }] })).toBe(true);
  });
});

describe('process settings', () => {
  it('capabilities: replaced, normalised, unknown refused; ambient only when asked', () => {
    const s = build({ capabilities: ['net_admin', 'CAP_CHOWN', 'NET_ADMIN'], ambientCapabilities: ['NET_ADMIN'] });
    expect(s.process.capabilities).toEqual({
      bounding: ['CAP_NET_ADMIN', 'CAP_CHOWN'],
      effective: ['CAP_NET_ADMIN', 'CAP_CHOWN'],
      permitted: ['CAP_NET_ADMIN', 'CAP_CHOWN'],
      inheritable: ['CAP_NET_ADMIN'],
      ambient: ['CAP_NET_ADMIN'],
    });
    expect(code(() => buildSpec({ rootfs, command: ['x'], capabilities: ['CAP_FLY'] }))).toBe('ERR_NSTOOL_UNKNOWN_CAPABILITY');
    expect(code(() => buildSpec({ rootfs, command: ['x'], capabilities: ['CHOWN'], ambientCapabilities: ['KILL'] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(build({ capabilities: [] }).process.capabilities!.bounding).toEqual([]);
  });

  it('terminal, noNewPrivileges, rlimits, umask, readonly rootfs', () => {
    const s = build({
      terminal: true,
      noNewPrivileges: false,
      rlimits: [{ type: 'RLIMIT_NPROC', soft: 10, hard: 20 }],
      umask: 0o22,
      readonlyRootfs: true,
    });
    expect(s.process.terminal).toBe(true);
    expect(s.process.noNewPrivileges).toBe(false);
    expect(s.process.rlimits).toEqual([{ type: 'RLIMIT_NPROC', soft: 10, hard: 20 }]);
    expect(s.process.user.umask).toBe(0o22);
    expect(s.root.readonly).toBe(true);
    for (const r of [{ type: 'NOFILE', soft: 1, hard: 1 }, { type: 'RLIMIT_NOFILE', soft: 2, hard: 1 }, { type: 'RLIMIT_NOFILE', soft: -1, hard: 1 }]) {
      expect(code(() => buildSpec({ rootfs, command: ['x'], rlimits: [r] })), JSON.stringify(r)).toBe('ERR_INVALID_ARG_VALUE');
    }
  });
});

describe('pass-through parts', () => {
  it('annotations, sysctl, cgroupsPath, masked and readonly paths', () => {
    const s = build({
      annotations: { 'io.kubernetes.cri.container-type': 'sandbox' },
      sysctl: { 'net.ipv4.ip_forward': '1' },
      cgroupsPath: 'pod.slice:nstool:abc',
      maskedPaths: ['/proc/x'],
      readonlyPaths: [],
    });
    expect(s.annotations).toEqual({ 'io.kubernetes.cri.container-type': 'sandbox' });
    expect(s.linux.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
    expect(s.linux.cgroupsPath).toBe('pod.slice:nstool:abc');
    expect(s.linux.maskedPaths).toEqual(['/proc/x']);
    expect(s.linux.readonlyPaths).toEqual([]);
    expect(code(() => buildSpec({ rootfs, command: ['x'], annotations: { a: 1 as unknown as string } }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => buildSpec({ rootfs, command: ['x'], maskedPaths: ['proc'] }))).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('hooks of every kind, copied; bad hooks refused', () => {
    const hooks = {
      createRuntime: [{ path: '/usr/bin/nstool', args: ['nstool', 'hook', 'create-runtime'], env: ['A=1'], timeout: 10 }],
      poststop: [{ path: '/usr/bin/nstool', args: ['nstool', 'hook', 'poststop'] }],
      prestart: [{ path: '/bin/true' }],
    };
    const s = build({ hooks });
    expect(s.hooks).toEqual(hooks);
    expect(s.hooks!.createRuntime).not.toBe(hooks.createRuntime);
    for (const h of [{ bogus: [] }, { poststop: [{ path: 'rel' }] }, { poststop: [{ path: '/x', timeout: 0 }] }, { poststop: {} }]) {
      expect(code(() => buildSpec({ rootfs, command: ['x'], hooks: h as never })), JSON.stringify(h)).toMatch(/^ERR_INVALID_ARG_/);
    }
  });

  it('seccomp is copied as given', () => {
    const seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] };
    const s = build({ seccomp });
    expect(s.linux.seccomp).toEqual(seccomp);
    expect(s.linux.seccomp).not.toBe(seccomp);
    expect(code(() => buildSpec({ rootfs, command: ['x'], seccomp: {} }))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('a spec that breaks the schema is caught by the validator (the check can fail)', () => {
    const s = build({});
    const broken = structuredClone(s) as unknown as { process: { user: { uid: number } }; linux: { namespaces: Array<{ type: string }> } };
    broken.process.user.uid = -1;
    expect(schemaErrors(broken).length).toBeGreaterThan(0);
    // The $refs into config-linux.json and defs.json are followed.
    const ns = structuredClone(s) as unknown as { linux: { namespaces: Array<{ type: string }> } };
    ns.linux.namespaces[0]!.type = 'bogus';
    expect(schemaErrors(ns).length).toBeGreaterThan(0);
    // This schema (runtime-spec 1.0.2 + later commits) knows the mount idmap fields and checks them.
    const idm = build({ mounts: [{ source: '/s', destination: '/d', idmap: { uidMappings: MAP, gidMappings: MAP } }] });
    (idm.mounts.at(-1)!.uidMappings![0] as { size: number }).size = -1;
    expect(schemaErrors(idm).length).toBeGreaterThan(0);
    const typo = structuredClone(s) as unknown as Record<string, unknown>;
    typo['mountz'] = [];
    expect(schemaErrors(typo, 'official')).toEqual([]);
    expect(schemaErrors(typo, 'closed').length).toBeGreaterThan(0);
  });
});

describe('input validation', () => {
  it('needs an absolute rootfs', () => {
    expect(code(() => buildSpec({ rootfs: 'rel', command: ['x'] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec(null as never))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('fails on bad input before reading the rootfs', () => {
    // No /etc/passwd here: a name would fail with UNKNOWN_USER if the files were read first.
    expect(code(() => buildSpec({ rootfs: '/nonexistent-nstool', command: ['x'], user: 'app', hostname: 'a b' }))).toBe('ERR_INVALID_ARG_VALUE');
  });
});
