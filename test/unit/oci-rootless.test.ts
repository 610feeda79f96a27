// The rootless rewrite of a pod spec: what a runtime without root cannot
// have is dropped, the shared rootfs goes read-only with scratch tmpfs only
// where the rootfs has real dirs, and the result is still a valid OCI config.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildSpec, rootlessSpec } from '../../src/oci/index.js';
import type { Spec } from '../../src/oci/index.js';
import { globalArgs } from '../../src/runc/args.js';
import { schemaErrors } from '../fixtures/oci/schema.js';
import { errorCode } from '../helpers/errors.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const prefix = testPrefix('ocirl');
trackLeaks(prefix);

let dir: string;
let rootfs: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  mkdirSync(path.join(rootfs, 'tmp'));
  mkdirSync(path.join(dir, 'elsewhere'));
  // A link out of the rootfs must not get a mount: the runtime would follow it.
  symlinkSync('../elsewhere', path.join(rootfs, 'run'));
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n');
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\nwheel:x:10:app\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function podSpec(user?: string): Spec {
  // namespacesChecked: the paths are not read (no namespaces exist here).
  return buildSpec({
    rootfs,
    command: ['sh'],
    netnsPath: '/proc/1/root/run/user/1000/nstool/pins/netns/a',
    usernsPath: '/proc/1/root/run/user/1000/nstool/pins/userns/a',
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    namespacesChecked: { setgroups: 'allow' },
    ...(user ? { user } : {}),
  });
}

it('drops cgroup limits, tells runc the caller as root, keeps the rootfs read-only with tmpfs on its real dirs only', () => {
  const spec = rootlessSpec(podSpec(), { rootfs, readonlyRootfs: true, uid: 1000, gid: 1001 });
  expect(spec.linux.resources).toBeUndefined();
  expect(spec.linux.cgroupsPath).toBeUndefined();
  expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 1000, size: 1 }]);
  expect(spec.linux.gidMappings).toEqual([{ containerID: 0, hostID: 1001, size: 1 }]);
  expect(spec.process.user).toEqual({ uid: 0, gid: 0 });
  expect(spec.root).toEqual({ path: rootfs, readonly: true });
  const dests = spec.mounts.map((m) => m.destination);
  expect(dests).toContain('/tmp');
  expect(dests).not.toContain('/run'); // a link
  expect(dests).not.toContain('/var/tmp'); // missing: making it would write the shared rootfs
  expect(spec.mounts.find((m) => m.destination === '/sys')).toMatchObject({ type: 'sysfs' });
  // Devices stay: the runtime binds them in a user namespace.
  expect(spec.linux.devices?.length).toBeGreaterThan(0);
  expect(schemaErrors(spec)).toEqual([]);
});

it('hands the rootfs over as it is when asked (no read-only root, no scratch mounts)', () => {
  const spec = rootlessSpec(podSpec(), { rootfs, readonlyRootfs: false, uid: 1000, gid: 1000 });
  expect(spec.root.readonly).toBe(false);
  expect(spec.mounts.map((m) => m.destination)).not.toContain('/tmp');
});

it('refuses a user with supplementary groups (the rootless runtime cannot set them) instead of dropping them', () => {
  expect(errorCode(() => rootlessSpec(podSpec('app'), { rootfs, readonlyRootfs: true, uid: 1000, gid: 1000 }))).toBe('ERR_NSTOOL_ROOTLESS_UNSUPPORTED');
});

it('runc gets --rootless true before the command', () => {
  expect(globalArgs({ root: '/run/user/1000/nstool/runc', rootless: true })).toEqual(['--root', '/run/user/1000/nstool/runc', '--rootless', 'true']);
  expect(globalArgs({})).toEqual([]);
});
