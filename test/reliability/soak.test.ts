// Soak: a thousand create/delete cycles of a pod netns must leave the
// process and the system as they were: no mounts, pins, fds or children
// left over, and RSS growth within a small bound.
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { childPids, mountPoints, openFds, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { createPodNetnsSync, deletePodNetns, inspectNetns } from '../../src/netns.js';

const prefix = testPrefix('soak');
trackLeaks(prefix);

const CYCLES = 1000;
// Long enough for malloc's arenas to settle (the helper child's stacks, N-API
// handles): RSS then grows well under 2 MiB per 1000 cycles, a leak linearly.
const WARMUP = 1000;
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

function mine(): { pins: number; mounts: number } {
  const pins = ['/run/netns', '/run/nstool/userns']
    .flatMap((d) => { try { return readdirSync(d); } catch { return []; } })
    .filter((n) => n.startsWith(prefix)).length;
  return { pins, mounts: mountPoints().filter((m) => m.includes(prefix)).length };
}

describeRoot('soak: create/delete cycles', () => {
  it(`${CYCLES} cycles leave no mounts, pins, fds, children; RSS stays flat`, async () => {
    const cycle = async (i: number) => {
      const name = `${prefix}-${i % 7}`;
      const ns = createPodNetnsSync({ name, uidMap: MAP, pinUserns: i % 2 === 0 });
      // Every hundredth cycle checks the pin really is the netns it claims.
      if (i % 100 === 0) {
        const info = await inspectNetns(name);
        expect(info.inode).toBe(ns.netnsInode);
        expect(info.owner?.inode).toBe(ns.usernsInode);
      }
      const d = await deletePodNetns(name);
      expect(d.existed).toBe(true);
      expect(d.stale).toBe(false);
    };
    for (let i = 0; i < WARMUP; i++) await cycle(i);
    globalThis.gc?.();
    const fds = openFds().filter((f) => !f.includes('/proc/self/fd'));
    const children = childPids();
    const rss = process.memoryUsage().rss;

    for (let i = 0; i < CYCLES; i++) await cycle(i);

    globalThis.gc?.();
    expect(mine()).toEqual({ pins: 0, mounts: 0 });
    expect(openFds().filter((f) => !f.includes('/proc/self/fd'))).toEqual(fds);
    expect(childPids()).toEqual(children);
    const growthMiB = (process.memoryUsage().rss - rss) / 2 ** 20;
    // A leak of even 10 KiB a cycle would show as ~10 MiB here. Under ASan
    // (sanitize.sh) freed memory sits in its quarantine, so RSS says nothing.
    if (!/libasan/.test(process.env['LD_PRELOAD'] ?? '')) expect(growthMiB).toBeLessThan(8);
  });
});
