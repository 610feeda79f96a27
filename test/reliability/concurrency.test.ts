// Concurrency: many async creates at once each get their own namespaces;
// racing creates of one name have exactly one winner, whose pin survives.
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { NstoolError } from '../../src/errors.js';
import { createPodNetns, createPodNetnsSync, deletePodNetns, inspectNetns, PodNetns } from '../../src/netns.js';

const prefix = testPrefix('conc');
trackLeaks(prefix);

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

describeRoot('concurrency', () => {
  it('100 concurrent creates with distinct names: 100 distinct netns, each owned by its own userns', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `${prefix}-many-${i}`);
    const settled = await Promise.allSettled(names.map((name) => createPodNetns({ name, uidMap: MAP })));
    try {
      expect(settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []))).toEqual([]);
      const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      expect(ok).toHaveLength(100);
      expect(new Set(ok.map((m) => m.netnsInode)).size).toBe(100);
      expect(new Set(ok.map((m) => m.usernsInode)).size).toBe(100);
      for (const m of ok) {
        const info = await inspectNetns(m.name);
        expect(info.type).toBe('net');
        expect(info.inode).toBe(m.netnsInode);
        expect(info.owner?.inode).toBe(m.usernsInode);
        expect(info.owner?.host).toBe(false);
      }
    } finally {
      for (const name of names) await deletePodNetns(name);
    }
  });

  it('20 racing creates of one name: one winner, 19 EEXIST, the winner\'s pin intact', async () => {
    const name = `${prefix}-race`;
    const racers = Array.from({ length: 20 }, (_, i) =>
      // Mix sync and async callers: the sync ones run between pool jobs.
      i % 5 === 0
        ? new Promise<PodNetns>((resolve, reject) => setImmediate(() => {
            try { resolve(createPodNetnsSync({ name, uidMap: MAP, pinUserns: true })); } catch (e) { reject(e); }
          }))
        : createPodNetns({ name, uidMap: MAP, pinUserns: true }),
    );
    const settled = await Promise.allSettled(racers);
    try {
      const winners = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      const losers = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(19);
      for (const e of losers) {
        expect(e).toBeInstanceOf(NstoolError);
        expect((e as NstoolError).code).toBe('EEXIST');
      }
      const w = winners[0]!;
      const info = await inspectNetns(name);
      expect(info.inode).toBe(w.netnsInode);
      expect(info.owner?.inode).toBe(w.usernsInode);
      // The losers' rollback must not have taken the winner's userns pin either.
      expect(info.usernsPath).toBe(w.usernsPath);
    } finally {
      await deletePodNetns(name);
    }
  });
});
