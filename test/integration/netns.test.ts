import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, createPodNetnsSync, deletePodNetns, deletePodNetnsSync, execInNetns, inspectNetns, listNetns } from '../../src/index.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';

const P = testPrefix('netns');
trackLeaks(P);

const MAP = '0:100000:65536';
const ipNetnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const pinDirState = () => readdirSync('/run/netns').sort().join(',') + '|' + mountPoints().filter((m) => m.startsWith('/run/netns/')).sort().join(',');

describeRoot('pod netns on the real kernel', () => {
  const hostOwned = `${P}-host`;
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', hostOwned]);
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', hostOwned]);
  });

  it('creates a netns owned by a new userns, with exact maps, seen by ip netns', async () => {
    const name = `${P}-a`;
    const r = await createPodNetns({ name, uidMap: MAP, gidMap: '0:200000:65536' });
    try {
      expect(r.path).toBe(`/run/netns/${name}`);
      expect(statSync(r.path).ino).toBe(r.netnsInode);
      const info = await inspectNetns(name);
      expect(info.type).toBe('net');
      expect(info.inode).toBe(r.netnsInode);
      expect(info.owner?.inode).toBe(r.usernsInode);
      expect(info.owner?.inode).not.toBe(statSync('/proc/self/ns/user').ino);
      expect(info.owner?.host).toBe(false);
      expect(info.owner?.uid).toBe(0);
      expect(info.uidMap).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
      expect(info.gidMap).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
      expect(info.setgroups).toBe('allow');
      expect(ipNetnsList()).toContain(name);
      const links = execFileSync('ip', ['netns', 'exec', name, 'ip', '-o', 'link'], { encoding: 'utf8' }).trim().split('\n');
      expect(links).toHaveLength(1);
      expect(links[0]).toMatch(/^1: lo:/);
      // Exactly one mount per pin.
      expect(mountPoints().filter((m) => m === r.path)).toHaveLength(1);
    } finally {
      await deletePodNetns(name);
    }
  });

  it('writes the exact uid_map text and setgroups=deny when asked, read from inside', async () => {
    const name = `${P}-maps`;
    await createPodNetns({ name, uidMap: '0:100000:1,1:100001:999', setgroups: 'deny' });
    try {
      const r = await execInNetns(name, ['cat', '/proc/self/uid_map', '/proc/self/setgroups']);
      expect(r.exitCode).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 100000 1', '1 100001 999', 'deny']);
    } finally {
      await deletePodNetns(name);
    }
  });

  it('reports a netns made by `ip netns add` as owned by the host userns', async () => {
    const info = await inspectNetns(hostOwned);
    expect(info.owner?.host).toBe(true);
    expect(info.owner?.inode).toBe(statSync('/proc/self/ns/user').ino);
    expect(info.uidMap).toEqual([{ containerID: 0, hostID: 0, size: 4294967295 }]);
    const list = await listNetns();
    const mine = list.find((e) => e.name === hostOwned);
    expect(mine?.kind).toBe('netns');
    expect(mine?.owner?.host).toBe(true);
  });

  it('lists pod netns with their pod owner and pins the userns when asked', async () => {
    const name = `${P}-u`;
    const r = await createPodNetns({ name, uidMap: MAP, pinUserns: true });
    try {
      expect(r.usernsPath).toBe(`/run/nstool/userns/${name}`);
      expect(statSync(r.usernsPath!).ino).toBe(r.usernsInode);
      const e = (await listNetns()).find((x) => x.name === name);
      expect(e?.owner).toEqual({ inode: r.usernsInode, uid: 0, host: false });
      expect((await inspectNetns(name)).usernsPath).toBe(r.usernsPath);
    } finally {
      // By path, as a caller that stored only the netns path would.
      const d = await deletePodNetns(r.path);
      expect(d.usernsPath).toBe(`/run/nstool/userns/${name}`);
    }
    expect(() => statSync(`/run/nstool/userns/${name}`)).toThrow();
  });

  it('runs programs inside the pod: only lo, pod root, only fds 0-2', async () => {
    const name = `${P}-x`;
    await createPodNetns({ name, uidMap: MAP });
    try {
      const links = await execInNetns(name, ['ip', '-o', 'link']);
      expect(links.stdout.trim().split('\n')).toHaveLength(1);
      const who = await execInNetns(name, ['sh', '-c', 'id -u; ls /proc/self/fd | tr "\\n" " "']);
      const [uid, fds] = who.stdout.split('\n');
      expect(uid).toBe('0');
      // ls's own directory fd is the 4th.
      expect(fds!.trim().split(' ')).toEqual(['0', '1', '2', '3']);
      const host = await execInNetns(name, ['id', '-u'], { userns: false });
      expect(host.stdout.trim()).toBe('0');
      const fail = await execInNetns(name, ['sh', '-c', 'echo oops >&2; exit 7']);
      expect(fail.exitCode).toBe(7);
      expect(fail.stderr).toBe('oops\n');
      const input = await execInNetns(name, ['cat'], { input: 'hello' });
      expect(input.stdout).toBe('hello');
      // A background grandchild holding the pipes does not keep us waiting.
      const bg = await execInNetns(name, ['sh', '-c', 'sleep 2 & echo started'], { timeoutMs: 10_000 });
      expect(bg).toMatchObject({ exitCode: 0, timedOut: false, stdout: 'started\n' });
      const slow = await execInNetns(name, ['sleep', '5'], { timeoutMs: 100 });
      expect(slow.timedOut).toBe(true);
      expect(slow.signal).toBe('SIGKILL');
    } finally {
      await deletePodNetns(name);
    }
  });

  it('deletes mount and file, twice is fine, and touches nothing else', async () => {
    const name = `${P}-d`, other = `${P}-d2`;
    const r = createPodNetnsSync({ name, uidMap: MAP });
    const o = createPodNetnsSync({ name: other, uidMap: MAP });
    try {
      const first = await deletePodNetns(name);
      expect(first).toMatchObject({ existed: true, stale: false });
      expect(mountPoints()).not.toContain(r.path);
      expect(() => statSync(r.path)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(await deletePodNetns(name)).toMatchObject({ existed: false });
      expect(statSync(o.path).ino).toBe(o.netnsInode);
      expect((await inspectNetns(other)).inode).toBe(o.netnsInode);
    } finally {
      await deletePodNetns(other);
    }
  });

  it('deletes synchronously too (for exit handlers), the userns pin with it', () => {
    const name = `${P}-sync`;
    const r = createPodNetnsSync({ name, uidMap: MAP, pinUserns: true });
    const d = deletePodNetnsSync(name);
    expect(d).toEqual({ name, path: r.path, existed: true, stale: false, usernsPath: r.usernsPath });
    expect(mountPoints().filter((m) => m === r.path || m === r.usernsPath)).toEqual([]);
    expect(() => statSync(r.path)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => statSync(r.usernsPath!)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(deletePodNetnsSync(name)).toEqual({ name, path: r.path, existed: false, stale: false });
  });

  it('removes a stale pin (file with nothing mounted) and lists it as stale', async () => {
    const name = `${P}-stale`;
    writeFileSync(`/run/netns/${name}`, '');
    expect((await listNetns()).find((e) => e.name === name)?.kind).toBe('stale');
    await expect(inspectNetns(name)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(await deletePodNetns(name)).toMatchObject({ existed: true, stale: true });
  });

  it('never unlinks a file that is not a pin', async () => {
    const name = `${P}-notpin`;
    writeFileSync(`/run/netns/${name}`, 'precious');
    try {
      await expect(deletePodNetns(name)).rejects.toMatchObject({ code: 'ENOTEMPTY', path: `/run/netns/${name}` });
      await expect(deletePodNetns(`/run/netns/${name}`)).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      expect(readFileSync(`/run/netns/${name}`, 'utf8')).toBe('precious');
    } finally {
      unlinkSync(`/run/netns/${name}`);
    }
  });

  it('never unmounts what is not a pin: the pin dir itself, a bind-mounted file', async () => {
    const name = `${P}-keep`;
    const r = await createPodNetns({ name, uidMap: MAP });
    const bound = `/run/netns/${P}-bound`;
    writeFileSync(bound, '');
    execFileSync('mount', ['--bind', '/etc/hostname', bound]);
    try {
      await expect(deletePodNetns('/run/netns')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      await expect(deletePodNetns('/run/netns/')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      expect(mountPoints()).toContain('/run/netns');
      expect((await inspectNetns(name)).inode).toBe(r.netnsInode);
      await expect(deletePodNetns(bound)).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      expect(mountPoints()).toContain(bound);
    } finally {
      spawnSync('umount', [bound]);
      unlinkSync(bound);
      await deletePodNetns(name);
    }
  });

  it('refuses a pin dir others can write, before mounting anything', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), `${P}-open-`));
    chmodSync(dir, 0o777);
    try {
      const before = mountPoints().length;
      await expect(createPodNetns({ name: `${P}-o`, uidMap: MAP, pinDir: dir })).rejects.toMatchObject({ code: 'ERR_NSTOOL_PIN_DIR_UNSAFE' });
      expect(mountPoints().length).toBe(before);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('never follows a symlink in the pin dir', async () => {
    const name = `${P}-link`;
    symlinkSync('/etc/hostname', `/run/netns/${name}`);
    try {
      await expect(inspectNetns(name)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(deletePodNetns(name)).rejects.toMatchObject({ code: 'ELOOP' });
      expect(readFileSync('/etc/hostname').length).toBeGreaterThan(0);
    } finally {
      unlinkSync(`/run/netns/${name}`);
    }
  });

  it('refuses bad input with a typed error and no side effect', async () => {
    const before = pinDirState();
    for (const name of ['a/b', '..', '.', 'a\0b', '', 'n'.repeat(256)]) {
      await expect(createPodNetns({ name, uidMap: MAP }), JSON.stringify(name)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    }
    for (const uidMap of ['0:100000:10,5:200000:10', '0:100000:10,20:100005:10', '0:4294967295:2', '0:1:0', 'x']) {
      await expect(createPodNetns({ name: `${P}-bad`, uidMap }), uidMap).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    }
    await expect(createPodNetns({ name: `${P}-bad`, uidMap: MAP, pinDir: 'relative' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(pinDirState()).toBe(before);
  });

  it('refuses an existing name and leaves the existing pin intact', async () => {
    const name = `${P}-dup`;
    const r = await createPodNetns({ name, uidMap: MAP });
    try {
      const err = await createPodNetns({ name, uidMap: MAP }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EEXIST', syscall: 'open', path: r.path });
      expect((err as Error).message).toContain('left untouched');
      expect((await inspectNetns(name)).inode).toBe(r.netnsInode);
      // An `ip netns add` pin is never clobbered either.
      await expect(createPodNetns({ name: hostOwned, uidMap: MAP })).rejects.toMatchObject({ code: 'EEXIST' });
      expect((await inspectNetns(hostOwned)).owner?.host).toBe(true);
    } finally {
      await deletePodNetns(name);
    }
  });

  it('says what a path that is not a namespace is', async () => {
    await expect(inspectNetns('/etc/hostname')).rejects.toMatchObject({ code: 'EINVAL', path: '/etc/hostname' });
    await expect(inspectNetns('/nonexistent/x')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    const user = await inspectNetns('/proc/self/ns/user');
    expect(user.type).toBe('user');
  });

  it('creates and deletes 50 pod netns concurrently with nothing left', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `${P}-c${i}`);
    const made = await Promise.all(names.map((name) => createPodNetns({ name, uidMap: MAP })));
    expect(new Set(made.map((m) => m.netnsInode)).size).toBe(50);
    expect(new Set(made.map((m) => m.usernsInode)).size).toBe(50);
    const gone = await Promise.all(names.map((n) => deletePodNetns(n)));
    expect(gone.every((g) => g.existed)).toBe(true);
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(`${P}-c`))).toEqual([]);
  });
});
