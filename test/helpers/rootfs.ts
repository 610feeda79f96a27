// A busybox root filesystem for container tests, built from busybox-static
// into a temp dir every uid can traverse (a pod's root, e.g. host uid
// 100000, must reach it: mkdtemp's 0700 is widened to 0755).
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'ls', 'cat', 'id', 'echo', 'stat', 'touch', 'mount', 'readlink', 'true', 'false', 'grep', 'ip', 'rm'];

/** A temp dir named with PREFIX, mode 0755 (owned by host root). */
export function traversableTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  chmodSync(dir, 0o755);
  return dir;
}

/** Fills DIR (created if needed) with a busybox rootfs; every file is owned by host root. */
export function buildBusyboxRootfs(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'root', 'tmp', 'data']) mkdirSync(path.join(dir, d), { mode: 0o755 });
  chmodSync(path.join(dir, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', path.join(dir, 'bin', a));
  writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n', { mode: 0o644 });
  writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n', { mode: 0o644 });
  return dir;
}

export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface MiniSpecOptions {
  rootfs: string;
  args: string[];
  netnsPath?: string;
  /** Join this userns; with maps and no path, a new userns is made. */
  usernsPath?: string;
  uidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  gidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  mounts?: Array<Record<string, unknown>>;
}

/** A hand-written minimal config.json, for runtime tests that must not depend on the spec builder. */
export function miniSpec(o: MiniSpecOptions): Record<string, unknown> {
  const userns = o.usernsPath !== undefined || o.uidMappings !== undefined;
  const namespaces: Array<Record<string, string>> = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  namespaces.push(o.netnsPath ? { type: 'network', path: o.netnsPath } : { type: 'network' });
  if (userns) namespaces.push(o.usernsPath ? { type: 'user', path: o.usernsPath } : { type: 'user' });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: o.args,
      env: ['PATH=/bin'],
      cwd: '/',
      capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] },
      noNewPrivileges: true,
    },
    root: { path: o.rootfs, readonly: false },
    hostname: 'nstest',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      ...(o.mounts ?? []),
    ],
    linux: {
      namespaces,
      ...(userns ? { uidMappings: o.uidMappings ?? [], gidMappings: o.gidMappings ?? [] } : {}),
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
    },
  };
}
