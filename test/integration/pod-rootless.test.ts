// Containers in a rootless pod: run-pod (and runPodContainer) as an
// unprivileged user this file creates, in a pod netns that user made. The
// container must join the keeper's pins, get a sysfs /sys, run as the pod's
// root, leave the shared rootfs as it was, and leave nothing behind.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';
import { as, DIST, json, processesOf, randomSubidBase, settle, TestUser, testUsers, userCommand, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rlpod');
trackLeaks(P);

const { makeUserWithRange, cleanup, leftovers } = testUsers(P);

interface Made {
  path: string;
  usernsPath: string;
  netnsInode: number;
  usernsInode: number;
  keeperPid: number;
}

/** Every entry under DIR with what a change would show: type, owner, mode, size, mtime, link target. */
function treeSnapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = lstatSync(p);
    const rel = path.relative(dir, p) || '.';
    const link = st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : '';
    out.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.ctimeMs}${link}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(path.join(p, n));
  };
  walk(dir);
  return out;
}

async function waitForFile(p: string, text: string): Promise<string> {
  let s = '';
  for (let i = 0; i < 600; i++) {
    s = existsSync(p) ? readFileSync(p, 'utf8') : '';
    if (s.includes(text)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  return s;
}

/** UID's processes once those that are ending have ended (a container's init may still be reaped; no timing asserted). */
async function processesLeft(uid: number, keep: number[]): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    const left = processesOf(uid).filter((p) => !keep.includes(p));
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return processesOf(uid);
}

describeRoot('run-pod without root', () => {
  let alice: TestUser;
  const BASE = randomSubidBase();
  let rootfs: string;
  let before: string[];
  let made: Made;
  const NET = `${P}-n`;

  beforeAll(() => {
    try {
      alice = makeUserWithRange(P, BASE);
      // Host root's files, readable (not writable) by the pod; /run and /tmp get the container's own tmpfs.
      rootfs = buildBusyboxRootfs(path.join(traversableTempDir(P), 'rootfs'));
      mkdirSync(path.join(rootfs, 'run'), { mode: 0o755 });
      before = treeSnapshot(rootfs);
      const c = as(alice, ['create-pod-netns', NET, '--uidmap', `0:${BASE}:65536`, '--json']);
      if (c.code !== 0) throw new Error(c.err);
      made = json<Made>(c);
    } catch (err) {
      return cleanup().then(() => {
        throw err;
      });
    }
  });

  afterAll(async () => {
    const ps = alice ? processesOf(alice.uid) : [];
    await cleanup();
    if (rootfs) removeTree(path.dirname(rootfs));
    // Nothing of the user survived: the keeper went with the netns (checked in the tests), nothing else ran.
    expect(ps).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  const runcRoot = () => `${alice.run}/nstool/runc`;
  const bundles = () => `${alice.run}/nstool/containers`;
  const entries = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  /** No bundle, runtime state or log left; only the keeper runs as the user, nothing as the pod's root; the rootfs unchanged. */
  const nothingLeft = async () => {
    expect(entries(runcRoot())).toEqual([]);
    expect(entries(bundles())).toEqual([]);
    expect(entries(`${alice.run}/nstool/runtime-logs`)).toEqual([]);
    expect(await processesLeft(alice.uid, [made.keeperPid])).toEqual([made.keeperPid]);
    expect(await settle(BASE)).toEqual([]);
    expect(treeSnapshot(rootfs)).toEqual(before);
  };

  it("joins the pod's pinned netns and userns, mounts sysfs, runs as the pod's root; removal leaves nothing", async () => {
    const id = `${P}-c`;
    const r = as(alice, [
      'run-pod', NET, '--id', id, '--rootfs', rootfs, '--json', '--',
      'sh', '-c',
      // The mount on /sys itself (field 5), not /proc/sys.
        'readlink /proc/self/ns/net; readlink /proc/self/ns/user; grep "^[^ ]* [^ ]* [^ ]* [^ ]* /sys " /proc/self/mountinfo; id -u; cat /proc/self/uid_map; ' +
        'touch /x 2>/dev/null || echo ro; touch /tmp/x /run/x && echo scratch; echo done',
    ]);
    expect(r.code, r.err).toBe(0);
    const rec = json<{ id: string; bundle: string; stdout: string; runtime: { root: string; rootless: boolean } }>(r);
    expect(rec).toMatchObject({ id, bundle: `${bundles()}/${id}`, runtime: { root: runcRoot(), rootless: true } });
    const out = await waitForFile(rec.stdout, 'done\n');
    const lines = out.split('\n');
    // The pins' namespaces, seen from inside.
    expect(lines[0]).toBe(`net:[${statSync(made.path).ino}]`);
    expect(lines[1]).toBe(`user:[${statSync(made.usernsPath).ino}]`);
    expect(lines[0]).toBe(`net:[${made.netnsInode}]`);
    // /sys is a sysfs of its own (the netns is the pod userns's), not a bind of the host's.
    expect(lines[2]).toMatch(/ \/sys [^ ]+ (.* )?- sysfs /);
    // uid 0 inside is BASE outside.
    expect(lines[3]).toBe('0');
    expect(lines[4]!.trim().split(/\s+/)).toEqual(['0', String(BASE), '65536']);
    // The shared rootfs is read-only; /tmp and /run are the container's.
    expect(lines.slice(5, 8)).toEqual(['ro', 'scratch', 'done']);

    // The user's files only, private: bundle 0700, its files 0600, the runtime's state 0700.
    const b = statSync(rec.bundle);
    expect([b.uid, b.mode & 0o777]).toEqual([alice.uid, 0o700]);
    for (const f of readdirSync(rec.bundle)) expect(`${f} ${(statSync(path.join(rec.bundle, f)).mode & 0o777).toString(8)}`).toBe(`${f} 600`);
    for (const d of [bundles(), runcRoot(), `${alice.run}/nstool/runtime-logs`]) expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(entries(runcRoot())).toEqual([id]);

    // logs finds it in the user's state dir (the root default stands for it).
    const logs = as(alice, ['logs', id, '--json']);
    expect(logs.code, logs.err).toBe(0);
    expect(json<{ stdout: string }>(logs).stdout).toBe(out);

    const rm = as(alice, ['rm-pod', id, '--json']);
    expect(rm.code, rm.err).toBe(0);
    expect(json(rm)).toEqual([{ id, existed: true }]);
    // The keeper holds the pod; nothing else of the user runs, nor anything as the pod's root.
    await nothingLeft();
  });

  it('runPodContainer as the user: removePodContainer kills a running container and removes its state', async () => {
    const id = `${P}-api`;
    const script = `
      import { runPodContainer, removePodContainer } from ${JSON.stringify(DIST)};
      import { readFileSync } from 'node:fs';
      const rec = await runPodContainer({ id: '${id}', netns: '${NET}', rootfs: '${rootfs}', command: ['sleep', '1000'] });
      const alive = readFileSync('/proc/' + rec.pid + '/status', 'utf8').match(/^Uid:\\s+(\\d+)/m)[1];
      const rm = await removePodContainer('${id}');
      // Dead once removal returned: gone, or a zombie its new parent has yet to reap.
      let state = 'gone';
      try { state = readFileSync('/proc/' + rec.pid + '/status', 'utf8').match(/^State:\s+(\S)/m)[1]; } catch {}
      const gone = state === 'gone' || state === 'Z';
      console.log(JSON.stringify({ alive, rm, gone, state, pid: rec.pid }));
    `;
    const argv = userCommand(alice, [process.execPath, '--input-type=module', '-e', script]);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: '/', env: userEnv(alice, {}), timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { alive: string; rm: unknown; gone: boolean };
    // The container ran as the pod's root (host BASE), and was gone once removal returned.
    expect(got).toMatchObject({ alive: String(BASE), rm: { id, existed: true }, gone: true });
    expect(entries(runcRoot())).toEqual([]);
    expect(entries(bundles())).toEqual([]);
    expect(await processesLeft(alice.uid, [made.keeperPid])).toEqual([made.keeperPid]);
    expect(await settle(BASE)).toEqual([]);
    expect(treeSnapshot(rootfs)).toEqual(before);
  });

  it("runs in a pod that maps only the user's own ids (no newuidmap)", async () => {
    const own = `${P}-own`;
    const c = as(alice, ['create-pod-netns', own, '--uidmap', `0:${alice.uid}:1`, '--gidmap', `0:${alice.gid}:1`, '--json']);
    expect(c.code, c.err).toBe(0);
    const r = as(alice, ['run-pod', own, '--rootfs', rootfs, '--json', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map; echo done']);
    expect(r.code, r.err).toBe(0);
    const out = await waitForFile(json<{ stdout: string }>(r).stdout, 'done\n');
    expect(out.split('\n').slice(0, 2).map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0', `0 ${alice.uid} 1`]);
    expect(as(alice, ['rm-pod', own]).code).toBe(0);
    expect(as(alice, ['delete', own]).code).toBe(0);
    expect(entries(bundles())).toEqual([]);
    expect(entries(runcRoot())).toEqual([]);
    expect(await processesLeft(alice.uid, [made.keeperPid])).toEqual([made.keeperPid]);
  });

  it('spec prints what run-pod would hand the rootless runtime', () => {
    const r = as(alice, ['spec', '--netns', NET, '--rootfs', rootfs, '--', 'sh']);
    expect(r.code, r.err).toBe(0);
    const spec = JSON.parse(r.out) as { root: { readonly: boolean }; mounts: Array<{ destination: string }>; linux: Record<string, unknown> };
    expect(spec.root.readonly).toBe(true);
    expect(spec.mounts.map((m) => m.destination)).toEqual(expect.arrayContaining(['/sys', '/tmp', '/run']));
    expect(spec.linux['resources']).toBeUndefined();
    expect(spec.linux['uidMappings']).toEqual([{ containerID: 0, hostID: alice.uid, size: 1 }]);
    expect(spec.linux['namespaces']).toEqual(expect.arrayContaining([{ type: 'network', path: made.path }, { type: 'user', path: made.usernsPath }]));
  });

  it('refuses root-only options with ERR_NSTOOL_ROOTLESS_UNSUPPORTED before any side effect', async () => {
    const id = `${P}-no`;
    const src = path.dirname(rootfs);
    const cases: string[][] = [
      ['--mount', `${src}:/data:idmap`],
      ['--allow-unsafe-idmap-volumes'],
      ['--runtime-root', `/tmp/${P}-runc`],
      ['--state-dir', `/tmp/${P}-state`],
    ];
    for (const extra of cases) {
      const r = as(alice, ['run-pod', NET, '--id', id, '--rootfs', rootfs, ...extra, '--json', '--', 'true']);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(json<{ error: { code: string } }>(r).error.code, `${extra.join(' ')}: ${r.out}`).toBe('ERR_NSTOOL_ROOTLESS_UNSUPPORTED');
    }
    // Nothing was made: no bundle, no runtime state, no dirs outside, no process but the keeper.
    expect(entries(bundles())).toEqual([]);
    expect(entries(runcRoot())).toEqual([]);
    expect(existsSync(`/tmp/${P}-runc`)).toBe(false);
    expect(existsSync(`/tmp/${P}-state`)).toBe(false);
    expect(await processesLeft(alice.uid, [made.keeperPid])).toEqual([made.keeperPid]);
    expect(treeSnapshot(rootfs)).toEqual(before);
  });

  it('a create the runtime refuses is undone: no bundle, no runtime state, no process', async () => {
    const r = as(alice, ['run-pod', NET, '--id', `${P}-bad`, '--rootfs', rootfs, '--json', '--', '/bin/no-such-program']);
    expect(r.code).toBe(1);
    expect(json<{ error: { code: string } }>(r).error.code).toBe('ERR_NSTOOL_RUNTIME');
    await nothingLeft();
  });

  it('deleting the netns then leaves no process of the user', async () => {
    const d = as(alice, ['delete', NET, '--json']);
    expect(d.code, d.err).toBe(0);
    expect(await settle(alice.uid)).toEqual([]);
  });
});
