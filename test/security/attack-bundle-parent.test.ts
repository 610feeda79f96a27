// The attack: a bundle place under a world-writable sticky dir (like /tmp),
// whose own dir does not exist yet. checkBundlePath finds only root's dirs;
// then, before nstool makes the missing dir, a local user makes it. If the
// bundle still went there, that user could rename the root-owned bundle away
// (it owns the dir) and put its own dir in its place, with its own
// config.json and hooks: runc would run them as root. The bundle must be
// refused instead, and nothing made in the other user's dir.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('atkbundle');
trackLeaks(prefix);
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

function asNobody(argv: string[]): number | null {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv]).status;
}

describeRoot('attack: a dir above the bundle made by another user meanwhile', () => {
  let dir: string;
  let tmp: string;
  let usernsPinDir: string;
  let rootfs: string;
  let runc: RuncClient;
  let pod: PodNetns;

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    tmp = path.join(dir, 'tmp');
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777);
    usernsPinDir = path.join(dir, 'userns');
    mkdirSync(usernsPinDir);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    runc = new RuncClient({ root: path.join(dir, 'runc-root'), logDir: dir, timeoutMs: 30_000 });
    // No userns pin yet: runPodContainer makes it after its checks, which is when the attacker strikes.
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP, pinUserns: false });
  });

  afterAll(async () => {
    await removePodContainer(`${prefix}-c`, { bundleDir: path.join(tmp, 'bundles', `${prefix}-c`), runtime: runc, usernsPinDir }).catch(() => {});
    if (pod) await deletePodNetns(pod.name);
    // nstool made the pin dir a mount point of its own.
    while (mountPoints().includes(usernsPinDir)) execFileSync('umount', [usernsPinDir]);
    removeTree(dir);
  });

  it('the bundle is refused once its parent is not root-only, and nothing is made there', async () => {
    const parent = path.join(tmp, 'bundles');
    const bundle = path.join(parent, `${prefix}-c`);
    let struck = false;
    // The attacker's move, timed (for a test that never misses the window)
    // at the "planned" step: after checkBundlePath, before runPodContainer
    // makes the bundle's missing dirs.
    const onStep = (point: string): void => {
      if (point !== 'planned' || struck) return;
      expect(asNobody(['mkdir', '-m', '0777', parent])).toBe(0);
      struck = true;
    };
    const made = runPodContainer({ id: `${prefix}-c`, netns: pod.name, rootfs, command: ['true'], runtime: runc, bundleDir: bundle, usernsPinDir, onStep });
    await made.catch(() => {});
    await expect(made).rejects.toMatchObject({ code: 'ERR_NSTOOL_BUNDLE_PATH', path: parent });
    expect(struck).toBe(true);
    expect(readdirSync(parent)).toEqual([]);
    // The pin made for this container was undone.
    expect(existsSync(path.join(usernsPinDir, pod.name))).toBe(false);
  });
});
