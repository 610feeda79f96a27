// probeNs: the one answer to "what is at this path", in each of its states,
// against the real kernel; a FIFO or device is reported without being opened.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inspectNs, inspectNsSync, probeNs, probeNsSync } from '../../src/kernel/ns.js';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('kns');
trackLeaks(P);

describeRoot('probeNs', () => {
  let dir: string;
  let pod: PodNetns;

  beforeAll(async () => {
    dir = traversableTempDir(P);
    pod = await createPodNetns({ name: `${P}-pod`, uidMap: '0:100000:65536' });
  });
  afterAll(async () => {
    await deletePodNetns(pod.name);
    removeTree(dir);
  });

  it('a pinned netns: its type, inode and owner (a pod userns, not the host one)', async () => {
    const pr = await probeNs(pod.path);
    expect(pr).toEqual({
      state: 'ns',
      path: pod.path,
      type: 'net',
      inode: pod.netnsInode,
      dev: statSync(pod.path).dev,
      owner: { inode: pod.usernsInode, dev: expect.any(Number), uid: 0, host: false },
    });
    expect(probeNsSync(pod.path)).toEqual(pr);
  });

  it('a link is reported as one unless followed; /proc/self/ns/net followed is owned by the host userns', async () => {
    const link = path.join(dir, 'link');
    symlinkSync(pod.path, link);
    expect(await probeNs(link)).toEqual({ state: 'symlink', path: link });
    expect(await probeNs(link, { follow: true })).toMatchObject({ state: 'ns', type: 'net', inode: pod.netnsInode });
    const self = await probeNs('/proc/self/ns/net', { follow: true });
    expect(self).toMatchObject({ state: 'ns', type: 'net', inode: statSync('/proc/self/ns/net').ino, owner: { host: true } });
    expect(await probeNs('/proc/self/ns/user', { follow: true })).toMatchObject({ state: 'ns', type: 'user' });
    // Strictly: a link not followed is ELOOP, as an O_NOFOLLOW open says.
    await expect(inspectNs(link)).rejects.toMatchObject({ code: 'ELOOP', syscall: 'open', path: link });
  });

  it('a file with nothing mounted is stale; nothing there is missing (ENOENT, ENOTDIR, a gone pid), strictly an error', async () => {
    const stale = path.join(dir, 'stale');
    writeFileSync(stale, '');
    expect(await probeNs(stale)).toEqual({ state: 'stale', path: stale });
    const none = path.join(dir, 'none');
    expect(await probeNs(none)).toEqual({ state: 'missing', path: none });
    expect(probeNsSync(path.join(stale, 'below'))).toEqual({ state: 'missing', path: path.join(stale, 'below') });
    await expect(inspectNs(none)).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open', path: none });
    expect(() => inspectNsSync(none)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    // Strictly, the error opening it gives, with its own hint.
    await expect(inspectNs(path.join(stale, 'below'))).rejects.toMatchObject({ code: 'ENOTDIR', hint: expect.any(String) });
    expect(await probeNs('/proc/999999999/ns/net', { follow: true })).toMatchObject({ state: 'missing' });
  });

  it('a directory, a FIFO and a device are "other" and never opened (a FIFO open would block)', async () => {
    const d = path.join(dir, 'd');
    mkdirSync(d);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await probeNs(d)).toEqual({ state: 'other', path: d, what: 'directory' });
    expect(await probeNs(fifo)).toEqual({ state: 'other', path: fifo, what: 'fifo' });
    expect(probeNsSync(fifo, { follow: true })).toEqual({ state: 'other', path: fifo, what: 'fifo' });
    expect(await probeNs('/dev/null')).toEqual({ state: 'other', path: '/dev/null', what: 'character device' });
    expect(await inspectNs(fifo)).toMatchObject({ state: 'other', what: 'fifo' });
  });
});
