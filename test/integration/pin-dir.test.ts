// Making a pin dir a mount point of its own must keep the pins already
// mounted in it: a non-recursive self-bind would hide them (they would then
// show as stale files, and `ip netns exec` on them would fail).
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { native } from '../../src/native.js';
import { ensurePinDir, listNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('pindir');
trackLeaks(prefix);

/**
 * Detaches every mount at or under DIR, newest first: a mount hidden under a
 * later one at a parent path is only reachable once that one is gone.
 */
function unmountAll(dir: string): void {
  for (let i = 0; i < 20; i++) {
    const left = mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
    if (left.length === 0) return;
    execFileSync('umount', ['-l', left[left.length - 1]!]);
  }
}

describeRoot('pin dir setup', () => {
  let tmp: string;
  let dir: string;

  beforeAll(() => {
    tmp = traversableTempDir(prefix);
    dir = path.join(tmp, 'pins');
    mkdirSync(dir, { mode: 0o755 });
  });

  afterAll(() => {
    unmountAll(dir);
    removeTree(tmp);
    expect(mountPoints().filter((m) => m.includes(prefix))).toEqual([]);
  });

  it('a pin mounted in the dir before it became a mount point still shows as a netns', async () => {
    // A pin in a dir that is not a mount point yet (made by hand, or by a tool that binds no dir).
    const pin = path.join(dir, 'early');
    native.pinSync('/proc/self/ns/net', pin);
    const hostNet = statSync('/proc/self/ns/net').ino;
    expect((await listNetns(dir)).map((e) => [e.name, e.kind, e.inode])).toEqual([['early', 'netns', hostNet]]);

    ensurePinDir(dir);
    // The dir is now a mount point of its own, and the pin is still there.
    expect(mountPoints()).toContain(dir);
    expect((await listNetns(dir)).map((e) => [e.name, e.kind, e.inode])).toEqual([['early', 'netns', hostNet]]);

    // One mount per pin: the original, now covered by the dir's own mount, is gone.
    expect(mountPoints().filter((m) => m === pin)).toHaveLength(1);

    // Unpinning leaves no mount and no file behind.
    expect(native.unpinSync(pin)).toEqual({ unmounted: true, removed: true });
    expect(mountPoints().filter((m) => m.startsWith(`${dir}/`))).toEqual([]);
    expect(await listNetns(dir)).toEqual([]);
  });
});
