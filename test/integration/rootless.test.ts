// Rootless pods, run by root but acting as unprivileged users this file
// creates (and removes, with their /etc/subuid and /etc/subgid lines, even
// when a test fails). Every nstool command runs as that user through
// setpriv, with its own XDG_RUNTIME_DIR, as a user would run it.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { native } from '../../src/native.js';
import { describeRoot } from '../helpers/env.js';
import { childPids, mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, asAsync, BIN, DIST, json, processesOf, randomSubidBase, settle, sh, SYS_PATH, TestUser, testUsers, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rl');
trackLeaks(P);

const { makeUser, addSubid, cleanup, strays, tmpDirs } = testUsers(P);

describeRoot('rootless pods, as an unprivileged user', () => {
  let alice: TestUser;
  let bob: TestUser; // no subordinate ids at all
  // A range no other test maps: 65536 ids somewhere in 3e9..4e9.
  const BASE = randomSubidBase();
  let noTools: string;
  let copies: string;

  beforeAll(() => {
    try {
      alice = makeUser(P);
      bob = makeUser(`${P}-b`);
      addSubid('/etc/subuid', `${alice.name}:${BASE}:65536`);
      addSubid('/etc/subgid', `${alice.name}:${BASE}:65536`);
      // An empty PATH dir (no newuidmap), and one with copies that lost setuid.
      noTools = mkdtempSync(`/tmp/${P}-path-`);
      copies = mkdtempSync(`/tmp/${P}-copies-`);
      tmpDirs.push(noTools, copies);
      for (const t of ['newuidmap', 'newgidmap']) copyFileSync(`/usr/bin/${t}`, path.join(copies, t));
      for (const d of [noTools, copies]) chmodSync(d, 0o755);
      for (const t of ['newuidmap', 'newgidmap']) chmodSync(path.join(copies, t), 0o755);
    } catch (err) {
      return cleanup().then(() => {
        throw err;
      });
    }
  });

  afterAll(async () => {
    await cleanup();
    expect(readFileSync('/etc/subuid', 'utf8')).not.toContain(P);
    expect(readFileSync('/etc/subgid', 'utf8')).not.toContain(P);
    expect(sh(['getent', 'passwd']).includes(P)).toBe(false);
  });

  const kernelMapLine = (inside: number, outside: number, count: number) =>
    `${String(inside).padStart(10)} ${String(outside).padStart(10)} ${String(count).padStart(10)}\n`;

  it('maps 65536 subordinate ids through newuidmap; list, inspect and exec see the pod from other processes; delete leaves nothing', async () => {
    const name = `${P}-a`;
    const c = as(alice, ['create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json']);
    expect(c.code, c.err).toBe(0);
    const made = json<{ path: string; netnsInode: number; usernsInode: number; usernsPath: string; keeperPid: number; pinPath: string; mode: string; setgroups: string }>(c);
    expect(made).toMatchObject({
      name,
      mode: 'rootless',
      uidMap: [{ containerID: 0, hostID: BASE, size: 65536 }],
      gidMap: [{ containerID: 0, hostID: BASE, size: 65536 }],
      setgroups: 'allow',
      pinPath: `${alice.run}/nstool/pins/netns/${name}`,
      path: `/proc/${made.keeperPid}/root${alice.run}/nstool/pins/netns/${name}`,
    });
    // The keeper is alice's, and is the nstool-keeper executable.
    expect(statSync(`/proc/${made.keeperPid}`).uid).toBe(alice.uid);
    expect(readFileSync(`/proc/${made.keeperPid}/comm`, 'utf8')).toBe('nstool-keeper\n');
    expect(readFileSync(`${alice.run}/nstool/keeper.pid`, 'utf8')).toMatch(new RegExp(`^${made.keeperPid} \\d+\\n$`));
    // The pin reached from the host is that netns, owned by the new userns.
    expect(statSync(made.path).ino).toBe(made.netnsInode);
    expect(statSync(made.usernsPath).ino).toBe(made.usernsInode);
    // Nothing of it is in the host's mount table, in /run/netns, or in the runtime dir on disk.
    expect(mountPoints().filter((m) => m.includes(P))).toEqual([]);
    expect(readdirSync('/run/netns').filter((n) => n.includes(P))).toEqual([]);
    expect(readdirSync(`${alice.run}/nstool/pins`)).toEqual([]);

    const l = as(alice, ['list', '--json']);
    expect(l.code, l.err).toBe(0);
    expect(json<unknown[]>(l)).toEqual([
      expect.objectContaining({ name, kind: 'netns', inode: made.netnsInode, owner: { inode: made.usernsInode, uid: alice.uid, host: false }, mode: 'rootless', keeperPid: made.keeperPid }),
    ]);

    const i = as(alice, ['inspect', name, '--json']);
    expect(i.code, i.err).toBe(0);
    expect(json(i)).toMatchObject({
      type: 'net',
      inode: made.netnsInode,
      owner: { inode: made.usernsInode, host: false },
      uidMap: [{ containerID: 0, hostID: BASE, size: 65536 }],
      gidMap: [{ containerID: 0, hostID: BASE, size: 65536 }],
      setgroups: 'allow',
      usernsPath: made.usernsPath,
      mode: 'rootless',
    });

    const uidMap = as(alice, ['exec', name, '--', 'cat', '/proc/self/uid_map']);
    expect(uidMap.code, uidMap.err).toBe(0);
    expect(uidMap.out).toBe(kernelMapLine(0, BASE, 65536));
    const gidMap = as(alice, ['exec', name, '--', 'cat', '/proc/self/gid_map']);
    expect(gidMap.out).toBe(kernelMapLine(0, BASE, 65536));
    const ns = as(alice, ['exec', name, '--', 'sh', '-c', 'readlink /proc/self/ns/net; id -u']);
    expect(ns.code, ns.err).toBe(0);
    expect(ns.out).toBe(`net:[${made.netnsInode}]\n0\n`);

    // The documented way in for other tools: the keeper's user and mount namespaces.
    const seen = spawnSync(
      'setpriv',
      ['--reuid', alice.name, '--regid', alice.name, '--init-groups', '--', 'nsenter', '--preserve-credentials', '--user', '--mount', '--target', String(made.keeperPid), '--', 'stat', '-f', '-c', '%T', made.pinPath],
      { encoding: 'utf8', env: { PATH: SYS_PATH } },
    );
    expect(seen.stdout, seen.stderr).toBe('nsfs\n');

    const d = as(alice, ['delete', name, '--json']);
    expect(d.code, d.err).toBe(0);
    expect(json(d)).toEqual([expect.objectContaining({ name, existed: true })]);
    // The last pin went: so did the keeper, its socket and pid file; no process of alice's is left.
    expect(await settle(alice.uid)).toEqual([]);
    expect(readdirSync(`${alice.run}/nstool`).sort()).toEqual(['keeper.lock', 'pins']);
    expect(existsSync(made.path)).toBe(false);
    expect(json(as(alice, ['list', '--json']))).toEqual([]);
    expect(json(as(alice, ['delete', name, '--json']))).toEqual([expect.objectContaining({ existed: false })]);
  });

  it('maps only the caller\'s own uid and gid without newuidmap (none on PATH), with setgroups deny', async () => {
    const name = `${P}-own`;
    const c = as(alice, ['create-pod-netns', name, '--uidmap', `0:${alice.uid}:1`, '--gidmap', `0:${alice.gid}:1`, '--json'], { PATH: noTools });
    expect(c.code, c.err).toBe(0);
    expect(json(c)).toMatchObject({ mode: 'rootless', setgroups: 'deny', uidMap: [{ containerID: 0, hostID: alice.uid, size: 1 }] });
    const m = as(alice, ['exec', name, '--', '/bin/sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups']);
    expect(m.code, m.err).toBe(0);
    expect(m.out).toBe(kernelMapLine(0, alice.uid, 1) + kernelMapLine(0, alice.gid, 1) + 'deny\n');
    expect(as(alice, ['delete', name]).code).toBe(0);
    expect(await settle(alice.uid)).toEqual([]);
  });

  it('gives ERR_NSTOOL_SUBID, naming the fix, to a user without subordinate ids, before any side effect', async () => {
    const r = as(bob, ['create-pod-netns', `${P}-bob`, '--uidmap', `0:${BASE}:65536`, '--json']);
    expect(r.code, r.err).toBe(1);
    const { error } = json<{ error: { code: string; hint: string; path: string } }>(r);
    expect(error.code).toBe('ERR_NSTOOL_SUBID');
    expect(error.path).toBe('/etc/subuid');
    expect(error.hint).toContain(`usermod --add-subuids`);
    expect(error.hint).toContain(bob.name);
    // The --subid-user way to the same range fails the same way.
    const s = as(bob, ['create-pod-netns', `${P}-bob`, '--subid-user', bob.name, '--json']);
    expect(json<{ error: { code: string } }>(s).error.code).toBe('ERR_NSTOOL_SUBID');
    // A range alice has is not bob's either (nor is a range beyond alice's).
    const w = as(alice, ['create-pod-netns', `${P}-wide`, '--uidmap', `0:${BASE}:65537`, '--json']);
    expect(json<{ error: { code: string; hint: string } }>(w).error).toMatchObject({ code: 'ERR_NSTOOL_SUBID' });
    expect(await settle(bob.uid)).toEqual([]);
    expect(readdirSync(bob.run)).toEqual([]);
    expect(await settle(alice.uid)).toEqual([]);
  });

  it('says which piece is missing: newuidmap not installed, newuidmap not setuid, no runtime dir', async () => {
    const name = `${P}-miss`;
    const missing = as(alice, ['create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json'], { PATH: noTools });
    expect(missing.code, missing.err).toBe(1);
    expect(json<{ error: { code: string; hint: string } }>(missing).error).toMatchObject({
      code: 'ERR_NSTOOL_NEWIDMAP_MISSING',
      hint: expect.stringContaining('uidmap'),
    });
    const plain = as(alice, ['create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json'], { PATH: `${copies}:${SYS_PATH}` });
    expect(plain.code, plain.err).toBe(1);
    expect(json<{ error: { code: string; hint: string; path: string } }>(plain).error).toMatchObject({
      code: 'ERR_NSTOOL_NEWIDMAP_NOT_SETUID',
      path: path.join(copies, 'newuidmap'),
      hint: expect.stringContaining('chmod u+s'),
    });
    // No XDG_RUNTIME_DIR and no /run/user/UID; then one that is not absolute.
    for (const xdg of [undefined, 'relative/dir']) {
      const r = as(alice, ['create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json'], { XDG_RUNTIME_DIR: xdg });
      expect(r.code, r.err).toBe(1);
      expect(json<{ error: { code: string; hint: string } }>(r).error).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME_DIR', hint: expect.stringContaining('XDG_RUNTIME_DIR') });
    }
    expect(existsSync(`/run/user/${alice.uid}`)).toBe(false);
    // No helper, keeper or newuidmap outlived the failures, and nothing is pinned.
    expect(await settle(alice.uid)).toEqual([]);
    expect(json(as(alice, ['list', '--json']))).toEqual([]);
  });

  it('refuses what only root can do with a typed error', () => {
    const x = as(alice, ['exec', `${P}-none`, '--no-userns', '--', 'true']);
    expect(x.code).toBe(1);
    expect(x.err).toContain('--no-userns');
    const dir = as(alice, ['create-pod-netns', `${P}-dir`, '--uidmap', `0:${BASE}:65536`, '--pin-dir', alice.run, '--json']);
    expect(json<{ error: { code: string } }>(dir).error.code).toBe('ERR_NSTOOL_ROOTLESS_UNSUPPORTED');
    const allow = as(alice, ['create-pod-netns', `${P}-allow`, '--uidmap', `0:${alice.uid}:1`, '--gidmap', `0:${alice.gid}:1`, '--setgroups', 'allow', '--json']);
    expect(json<{ error: { code: string } }>(allow).error.code).toBe('ERR_NSTOOL_ROOTLESS_UNSUPPORTED');
  });

  it('replaces a stale keeper: a dead pid, or a pid file naming another process of the user', async () => {
    const first = json<{ keeperPid: number }>(as(alice, ['create-pod-netns', `${P}-s1`, '--uidmap', `0:${BASE}:65536`, '--json']));
    expect(first.keeperPid).toBeGreaterThan(0);
    process.kill(first.keeperPid, 'SIGKILL');
    expect(await settle(alice.uid)).toEqual([]);
    // Its pins died with it; the pid file and socket it left are stale.
    expect(existsSync(`${alice.run}/nstool/keeper.pid`)).toBe(true);
    expect(json(as(alice, ['list', '--json']))).toEqual([]);
    expect(json<{ error: { code: string } }>(as(alice, ['inspect', `${P}-s1`, '--json'])).error.code).toBe('ENOENT');

    const second = json<{ keeperPid: number }>(as(alice, ['create-pod-netns', `${P}-s2`, '--uidmap', `0:${BASE}:65536`, '--json']));
    expect(second.keeperPid).not.toBe(first.keeperPid);
    expect(json<Array<{ name: string }>>(as(alice, ['list', '--json'])).map((e) => e.name)).toEqual([`${P}-s2`]);
    process.kill(second.keeperPid, 'SIGKILL');
    expect(await settle(alice.uid)).toEqual([]);

    // A pid reused by another program of alice's: the start time (and name) give it away.
    const sleeper = spawn('setpriv', ['--reuid', alice.name, '--regid', alice.name, '--init-groups', '--', '/bin/sleep', '120'], { stdio: 'ignore', detached: true });
    strays.push(sleeper.pid!);
    for (let i = 0; i < 100 && processesOf(alice.uid).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesOf(alice.uid)).toEqual([sleeper.pid]);
    const pidFile = `${alice.run}/nstool/keeper.pid`;
    writeFileSync(pidFile, `${sleeper.pid} 1\n`);
    chownSync(pidFile, alice.uid, alice.gid);
    expect(json(as(alice, ['list', '--json']))).toEqual([]);
    const third = json<{ keeperPid: number }>(as(alice, ['create-pod-netns', `${P}-s3`, '--uidmap', `0:${BASE}:65536`, '--json']));
    expect(third.keeperPid).not.toBe(sleeper.pid);
    expect(readFileSync(`/proc/${sleeper.pid}/comm`, 'utf8')).toBe('sleep\n'); // left alone
    expect(json<Array<{ name: string }>>(as(alice, ['list', '--json'])).map((e) => e.name)).toEqual([`${P}-s3`]);
    expect(as(alice, ['delete', `${P}-s3`]).code).toBe(0);
    process.kill(sleeper.pid!, 'SIGKILL');
    await new Promise((r) => sleeper.once('exit', r));
    strays.splice(strays.indexOf(sleeper.pid!), 1);
    expect(await settle(alice.uid)).toEqual([]);
  });

  it('serves concurrent creates through one keeper; a second create of a name gets EEXIST and leaves the first', async () => {
    const names = [`${P}-c1`, `${P}-c2`, `${P}-c3`];
    const made = await Promise.all(names.map((n) => asAsync(alice, ['create-pod-netns', n, '--uidmap', `0:${BASE}:65536`, '--json'])));
    for (const r of made) expect(r.code, r.err).toBe(0);
    const keepers = new Set(made.map((r) => json<{ keeperPid: number }>(r).keeperPid));
    expect(keepers.size).toBe(1);
    const again = as(alice, ['create-pod-netns', names[0]!, '--uidmap', `0:${BASE}:65536`, '--json']);
    expect(again.code).toBe(1);
    expect(json<{ error: { code: string } }>(again).error.code).toBe('EEXIST');
    expect(json<{ inode: number }>(as(alice, ['inspect', names[0]!, '--json'])).inode).toBe(json<{ netnsInode: number }>(made[0]!).netnsInode);
    expect(json<Array<{ name: string }>>(as(alice, ['list', '--json'])).map((e) => e.name)).toEqual(names);
    const d = as(alice, ['delete', ...names, '--json']);
    expect(json<Array<{ existed: boolean }>>(d).map((e) => e.existed)).toEqual([true, true, true]);
    expect(await settle(alice.uid)).toEqual([]);
  });

  it('leaves no fd, helper or child in the calling process, after success and after each kind of failure', () => {
    // The API in a process of alice's own: its fds and children before and after.
    const script = `
      import { createPodNetns, deletePodNetns, inspectNetns } from ${JSON.stringify(DIST)};
      import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
      const fds = () => readdirSync('/proc/self/fd').map((f) => { try { return f + ' ' + readlinkSync('/proc/self/fd/' + f); } catch { return ''; } }).filter((f) => f && !/eventpoll|eventfd|timerfd/.test(f) && !f.includes('/proc/self/fd')).sort();
      const children = () => readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => { try { const s = readFileSync('/proc/' + d + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === process.pid; } catch { return false; } });
      const map = '0:${BASE}:65536';
      const codes = [];
      const fail = async (fn) => { try { await fn(); codes.push('none'); } catch (e) { codes.push(e.code); } };
      // Warm up what Node opens once (the pool, the child signal pipe).
      await createPodNetns({ name: '${P}-w', uidMap: map });
      await deletePodNetns('${P}-w');
      await createPodNetns({ name: '${P}-keep', uidMap: map });
      const before = fds();
      for (let i = 0; i < 5; i++) await createPodNetns({ name: '${P}-f' + i, uidMap: map });
      await fail(() => createPodNetns({ name: '${P}-f0', uidMap: map }));                 // EEXIST in the keeper
      const path = process.env.PATH;
      process.env.PATH = ${JSON.stringify(copies)};
      await fail(() => createPodNetns({ name: '${P}-g', uidMap: map }));                  // newuidmap not setuid
      process.env.PATH = path;
      await fail(() => createPodNetns({ name: '${P}-g', uidMap: '0:${BASE}:65537' }));    // beyond the range
      await fail(() => createPodNetns({ name: '${P}-g', uidMap: map, setgroups: 'maybe' }));
      await fail(() => inspectNetns('${P}-nothing'));
      for (let i = 0; i < 5; i++) await deletePodNetns('${P}-f' + i);
      await deletePodNetns('${P}-keep');
      console.log(JSON.stringify({ codes, before, after: fds(), children: children() }));
    `;
    const argv = ['/usr/bin/setpriv', '--reuid', alice.name, '--regid', alice.name, '--init-groups', '--', process.execPath, '--input-type=module', '-e', script];
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000, cwd: '/', env: userEnv(alice, {}) });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { codes: string[]; before: string[]; after: string[]; children: string[] };
    expect(out.codes).toEqual(['EEXIST', 'ERR_NSTOOL_NEWIDMAP_NOT_SETUID', 'ERR_NSTOOL_SUBID', 'ERR_INVALID_ARG_VALUE', 'ENOENT']);
    expect(out.after).toEqual(out.before);
    expect(out.children).toEqual([]);
  });

  it('kills and reaps a held helper when it is closed, twice, or only garbage-collected', async () => {
    const alive = (pid: number) => existsSync(`/proc/${pid}`);
    const h = await native.heldUsernsNetns();
    expect(childPids()).toContain(h.pid);
    expect(readFileSync(`/proc/${h.pid}/uid_map`, 'utf8')).toBe(''); // held with no map written
    native.heldCloseSync(h.handle);
    expect(alive(h.pid)).toBe(false); // reaped, not a zombie
    native.heldCloseSync(h.handle);
    expect(() => native.heldReadMapsSync(h.handle)).toThrow(TypeError);

    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let pid = 0;
    await (async () => {
      pid = (await native.heldUsernsNetns()).pid; // the handle is dropped here
    })();
    expect(alive(pid)).toBe(true);
    for (let i = 0; i < 50 && alive(pid); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(alive(pid)).toBe(false);
  });

  it('says mode root for root', () => {
    const name = `${P}-root`;
    const r = spawnSync(process.execPath, [BIN, 'create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    try {
      expect(JSON.parse(r.stdout)).toMatchObject({ mode: 'root', path: `/run/netns/${name}` });
      const i = spawnSync(process.execPath, [BIN, 'inspect', name, '--json'], { encoding: 'utf8' });
      expect(JSON.parse(i.stdout)).toMatchObject({ mode: 'root' });
      const l = spawnSync(process.execPath, [BIN, 'list', '--json'], { encoding: 'utf8' });
      expect((JSON.parse(l.stdout) as Array<{ name: string; mode: string }>).find((e) => e.name === name)).toMatchObject({ mode: 'root' });
    } finally {
      spawnSync(process.execPath, [BIN, 'delete', name], { encoding: 'utf8' });
    }
  });
});
