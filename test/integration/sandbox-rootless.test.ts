// Rootless sandboxes: `nstool sandbox ...` and gc run by unprivileged users
// this file creates (with 65536 subordinate ids each), through setpriv with
// their own XDG_RUNTIME_DIR, as a user runs them. The pins live in each
// user's keeper; nothing of them is on the host.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, DIST, json, randomSubidBase, settle, sh, TestUser, testUsers, userCommand, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rlsb');
trackLeaks(P);

const { makeUserWithRange, lifecycle, tmpDirs } = testUsers(P);

interface Info {
  id: string;
  phase: string;
  mode: string;
  netnsPath: string;
  usernsPath: string;
  ipcPath: string;
  utsPath: string;
}

type ErrorDoc = { error: { code: string; hint?: string } };

describeRoot('rootless sandboxes, as an unprivileged user', () => {
  let alice: TestUser;
  let carol: TestUser;
  let dave: TestUser; // only ever refused: must be left with nothing at all
  let aliceBase: number;

  lifecycle(() => {
    aliceBase = randomSubidBase();
    alice = makeUserWithRange(P, aliceBase);
    let carolBase = randomSubidBase();
    while (carolBase === aliceBase) carolBase = randomSubidBase();
    carol = makeUserWithRange(`${P}-c`, carolBase);
    dave = makeUserWithRange(`${P}-d`, aliceBase === carolBase + 65536 ? carolBase + 131072 : carolBase + 65536);
  });

  /** A program run as U (setpriv), with U's runtime dir. */
  const run = (u: TestUser, argv: string[]) => {
    const a = userCommand(u, argv);
    const r = spawnSync(a[0]!, a.slice(1), { encoding: 'utf8', timeout: 30_000, cwd: '/', env: userEnv(u, {}) });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const keeperPid = (u: TestUser) => Number(readFileSync(`${u.run}/nstool/keeper.pid`, 'utf8').split(' ')[0]);
  const stateDir = (u: TestUser) => `${u.run}/nstool/sandboxes`;
  /** The pins U's keeper holds, by kind (empty when no keeper runs). */
  const pins = (u: TestUser): Record<string, string[]> => {
    const out: Record<string, string[]> = {};
    if (!existsSync(`${u.run}/nstool/keeper.pid`)) return out;
    const root = `/proc/${keeperPid(u)}/root${u.run}/nstool/pins`;
    for (const k of ['netns', 'userns', 'ipc', 'uts']) {
      try {
        const l = readdirSync(path.join(root, k));
        if (l.length) out[k] = l.sort();
      } catch {
        // the keeper is exiting
      }
    }
    return out;
  };
  /** Nothing of U's sandboxes is left: no state, no lock, no pin, no keeper, no process. */
  const expectNothingLeft = async (u: TestUser) => {
    expect(await settle(u.uid)).toEqual([]);
    expect(readdirSync(stateDir(u))).toEqual([]);
    expect(existsSync(`${u.run}/nstool/keeper.pid`)).toBe(false);
    expect(existsSync(`${u.run}/nstool/keeper.sock`)).toBe(false);
    expect(readdirSync(`${u.run}/nstool/pins`)).toEqual([]);
    // The network processes' logs and API sockets went with them.
    if (existsSync(`${u.run}/nstool/net`)) expect(readdirSync(`${u.run}/nstool/net`)).toEqual([]);
  };

  it('creates a pause-less sandbox whose pins are the namespaces a joining process shows; list, inspect, check from other processes; delete leaves nothing', async () => {
    const id = `${P}-a`;
    const c = as(alice, ['sandbox', 'create', id, '--no-network', '--hostname', 'pod-a', '--json']);
    expect(c.code, c.err).toBe(0);
    const made = json<Info>(c);
    const k = keeperPid(alice);
    const base = `/proc/${k}/root${alice.run}/nstool/pins`;
    expect(made).toMatchObject({ id, phase: 'ready', mode: 'rootless', ips: [] });
    for (const [key, kind] of [['netnsPath', 'netns'], ['usernsPath', 'userns'], ['ipcPath', 'ipc'], ['utsPath', 'uts']] as const) {
      expect(made[key]).toMatch(new RegExp(`^${base}/${kind}/nstool-sb-[0-9a-f]{8}-${id}$`));
    }
    // The keeper is alice's; nothing is mounted on the host or pinned in the host's dirs.
    expect(statSync(`/proc/${k}`).uid).toBe(alice.uid);
    expect(mountPoints().filter((m) => m.includes(P))).toEqual([]);
    expect(readdirSync('/run/netns').filter((n) => n.includes(P))).toEqual([]);
    expect(readdirSync(`${alice.run}/nstool/pins`)).toEqual([]);
    // The state is alice's alone.
    expect(statSync(stateDir(alice)).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(stateDir(alice), `${id}.json`)).mode & 0o077).toBe(0);

    // A process joining all four (userns first) is in exactly the pinned namespaces, with the sandbox's host name.
    const ino = (p: string) => statSync(p).ino;
    const inside = run(alice, ['nsenter', `--user=${made.usernsPath}`, `--net=${made.netnsPath}`, `--ipc=${made.ipcPath}`, `--uts=${made.utsPath}`, '--', 'sh', '-c', 'hostname; readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts /proc/self/ns/user; cat /proc/self/uid_map']);
    expect(inside.code, inside.err).toBe(0);
    const lines = inside.out.split('\n');
    expect(lines.slice(0, 5)).toEqual(['pod-a', `net:[${ino(made.netnsPath)}]`, `ipc:[${ino(made.ipcPath)}]`, `uts:[${ino(made.utsPath)}]`, `user:[${ino(made.usernsPath)}]`]);
    expect(lines[5]!.trim().split(/\s+/)).toEqual(['0', String(aliceBase), '65536']);
    // None of the four is the host's.
    const pinned = [made.netnsPath, made.ipcPath, made.utsPath, made.usernsPath].map(ino);
    for (const ns of ['net', 'ipc', 'uts', 'user']) expect(pinned).not.toContain(statSync(`/proc/self/ns/${ns}`).ino);
    // nstool exec with the netns path reaches the pod: only lo.
    const links = as(alice, ['exec', made.netnsPath, '--', 'ip', '-o', 'link']);
    expect(links.code, links.err).toBe(0);
    expect(links.out.trim().split('\n').map((l) => l.split(':')[1]!.trim())).toEqual(['lo']);

    // Other processes: list, inspect, check.
    const l = as(alice, ['sandbox', 'list', '--json']);
    expect(l.code, l.err).toBe(0);
    expect(json<Info[]>(l)).toEqual([expect.objectContaining({ id, phase: 'ready', mode: 'rootless', netnsPath: made.netnsPath })]);
    const i = as(alice, ['sandbox', 'inspect', id, '--json']);
    expect(i.code, i.err).toBe(0);
    expect(json(i)).toMatchObject({ id, mode: 'rootless', netnsPresent: true, usernsPath: made.usernsPath });
    const h = as(alice, ['sandbox', 'check', id, '--json']);
    expect(h.code, h.err).toBe(0);
    expect(json(h)).toMatchObject({ id, healthy: true, mode: 'rootless' });
    expect(json<{ checks: Array<{ name: string; ok: boolean }> }>(h).checks.map((x) => [x.name, x.ok])).toEqual([
      ['state', true],
      ['netns', true],
      ['userns', true],
      ['network', true],
    ]);

    // The API's namespaces for a container of the sandbox: reachable from the host, the pinned ones.
    const script = `
      import { sandboxNamespaces } from ${JSON.stringify(DIST)};
      import { statSync } from 'node:fs';
      const n = await sandboxNamespaces(${JSON.stringify(id)});
      console.log(JSON.stringify(Object.fromEntries(Object.entries(n).map(([k, p]) => [k, [p, statSync(p).ino]]))));
    `;
    const ns = run(alice, [process.execPath, '--input-type=module', '-e', script]);
    expect(ns.code, ns.err).toBe(0);
    expect(JSON.parse(ns.out)).toEqual({
      netns: [made.netnsPath, ino(made.netnsPath)],
      userns: [made.usernsPath, ino(made.usernsPath)],
      ipc: [made.ipcPath, ino(made.ipcPath)],
      uts: [made.utsPath, ino(made.utsPath)],
    });

    // A second create of the id is refused and changes nothing.
    const again = as(alice, ['sandbox', 'create', id, '--no-network', '--json']);
    expect(again.code).toBe(1);
    expect(json<ErrorDoc>(again).error.code).toBe('EEXIST');
    expect([made.netnsPath, made.ipcPath, made.utsPath, made.usernsPath].map(ino)).toEqual(pinned);

    const d = as(alice, ['sandbox', 'delete', id, '--json']);
    expect(d.code, d.err).toBe(0);
    expect(json(d)).toEqual([{ id, existed: true }]);
    await expectNothingLeft(alice);
    expect(json(as(alice, ['sandbox', 'list', '--json']))).toEqual([]);
    expect(json(as(alice, ['sandbox', 'delete', id, '--json']))).toEqual([{ id, existed: false }]);
  });

  // Each point of create (the CLI SIGKILLed there), finished by delete or by gc.
  const CREATE_POINTS = ['state', 'before-netns', 'after-netns', 'before-userns', 'after-userns', 'before-ipc', 'after-ipc', 'before-uts', 'after-uts'];

  it('finishes a create killed at each step, with delete or with gc', async () => {
    for (const [n, point] of CREATE_POINTS.entries()) {
      for (const finish of ['delete', 'gc'] as const) {
        const id = `${P}-k${n}${finish[0]}`;
        const killed = as(alice, ['sandbox', 'create', id, '--no-network', '--json'], { NSTOOL_TEST_STEP: `${point}:kill` });
        expect(killed.code, `${point}: ${killed.err}`).toBe(null);
        // What the create left is recorded: its state is there, not ready.
        expect(json<Info[]>(as(alice, ['sandbox', 'list', '--json'])).map((s) => [s.id, s.phase])).toEqual([[id, 'creating']]);
        const f = finish === 'delete' ? as(alice, ['sandbox', 'delete', id, '--json']) : as(alice, ['gc', '--json']);
        expect(f.code, `${point} ${finish}: ${f.err}`).toBe(0);
        if (finish === 'gc') expect(json<Array<{ kind: string; id: string; done: boolean }>>(f)).toEqual([expect.objectContaining({ kind: 'sandbox', id, done: true })]);
        expect(pins(alice), `${point} ${finish}`).toEqual({});
        await expectNothingLeft(alice);
      }
    }
  });

  it('finishes a delete killed part way, and removes pins whose state is gone', async () => {
    for (const point of ['before-remove-ipc', 'after-remove-userns']) {
      const id = `${P}-d-${point}`;
      expect(as(alice, ['sandbox', 'create', id, '--no-network']).code).toBe(0);
      const killed = as(alice, ['sandbox', 'delete', id], { NSTOOL_TEST_STEP: `${point}:kill` });
      expect(killed.code).toBe(null);
      expect(json<Info[]>(as(alice, ['sandbox', 'list', '--json'])).map((s) => s.phase)).toEqual(['deleting']);
      const g = as(alice, ['gc', '--json']);
      expect(g.code, g.err).toBe(0);
      expect(json(g)).toEqual([expect.objectContaining({ kind: 'sandbox', id, reason: 'interrupted while deleting', done: true })]);
      await expectNothingLeft(alice);
    }
    // A create killed after its last pin, whose state file is then lost: gc finds the pins by their names.
    const id = `${P}-orphan`;
    expect(as(alice, ['sandbox', 'create', id, '--no-network'], { NSTOOL_TEST_STEP: 'after-uts:kill' }).code).toBe(null);
    rmSync(path.join(stateDir(alice), `${id}.json`));
    const name = pins(alice)['netns']![0]!;
    expect(pins(alice)).toEqual({ netns: [name], userns: [name], ipc: [name], uts: [name] });
    const dry = as(alice, ['gc', '--dry-run', '--json']);
    expect(json<Array<{ kind: string; done: boolean }>>(dry).map((a) => [a.kind, a.done])).toEqual([
      ['uts-pin', false],
      ['ipc-pin', false],
      ['userns-pin', false],
      ['pin', false],
    ]);
    expect(pins(alice)).toEqual({ netns: [name], userns: [name], ipc: [name], uts: [name] });
    const g = as(alice, ['gc', '--json']);
    expect(g.code, g.err).toBe(0);
    expect(json<Array<{ kind: string; id: string; done: boolean }>>(g).map((a) => [a.kind, a.id, a.done])).toEqual([
      ['uts-pin', id, true],
      ['ipc-pin', id, true],
      ['userns-pin', id, true],
      ['pin', id, true],
    ]);
    await expectNothingLeft(alice);
  });

  it("gc as a user touches only that user's own instance", async () => {
    // carol: a create interrupted after its ipc pin, which her gc would remove.
    const cid = `${P}-carol`;
    expect(as(carol, ['sandbox', 'create', cid, '--no-network'], { NSTOOL_TEST_STEP: 'after-ipc:kill' }).code).toBe(null);
    const carolPins = pins(carol);
    const carolState = readFileSync(path.join(stateDir(carol), `${cid}.json`), 'utf8');
    // alice: a ready sandbox (gc leaves it), and one in another instance (state dir) of hers, interrupted.
    const other = path.join(alice.run, 'other');
    expect(as(alice, ['sandbox', 'create', `${P}-ready`, '--no-network']).code).toBe(0);
    expect(as(alice, ['sandbox', 'create', `${P}-other`, '--no-network', '--state-dir', other], { NSTOOL_TEST_STEP: 'after-userns:kill' }).code).toBe(null);
    const alicePins = pins(alice);
    expect(alicePins['netns']).toHaveLength(2);

    const g = as(alice, ['gc', '--json']);
    expect(g.code, g.err).toBe(0);
    expect(json(g)).toEqual([]);
    // Nothing of carol's changed, nor of alice's other instance.
    expect(pins(carol)).toEqual(carolPins);
    expect(readFileSync(path.join(stateDir(carol), `${cid}.json`), 'utf8')).toBe(carolState);
    expect(pins(alice)).toEqual(alicePins);
    expect(json<Info[]>(as(alice, ['sandbox', 'list', '--json', '--state-dir', other])).map((s) => s.phase)).toEqual(['creating']);

    // Each instance's own gc finishes its own.
    const go = as(alice, ['gc', '--json', '--state-dir', other]);
    expect(json(go)).toEqual([expect.objectContaining({ kind: 'sandbox', id: `${P}-other`, done: true })]);
    expect(as(alice, ['sandbox', 'delete', `${P}-ready`]).code).toBe(0);
    expect(json(as(carol, ['gc', '--json']))).toEqual([expect.objectContaining({ kind: 'sandbox', id: cid, done: true })]);
    rmSync(other, { recursive: true });
    await expectNothingLeft(alice);
    await expectNothingLeft(carol);
  });

  it('gives a sandbox a network with slirp4netns: the pod reaches the gateway; a dead network process makes it broken for check and gc', async () => {
    const id = `${P}-net`;
    const c = as(alice, ['sandbox', 'create', id, '--net-backend', 'slirp4netns', '--json']);
    expect(c.code, c.err).toBe(0);
    const made = json<Info & { ips: string[] }>(c);
    expect(made).toMatchObject({ mode: 'rootless', ips: ['10.0.2.100/24'] });
    const h = json<{ checks: Array<{ name: string; ok: boolean; detail?: string }> }>(as(alice, ['sandbox', 'check', id, '--json']));
    const net = h.checks.find((x) => x.name === 'network')!;
    expect(net.ok).toBe(true);
    const pid = Number(/pid (\d+)/.exec(net.detail ?? '')?.[1]);
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8')).toBe('slirp4netns\n');
    expect(statSync(`/proc/${pid}`).uid).toBe(alice.uid);
    // Only the gateway slirp4netns answers for, from inside the pod: nothing off the machine.
    const ping = as(alice, ['exec', made.netnsPath, '--', 'ping', '-c', '3', '-W', '2', '10.0.2.2']);
    expect(ping.code, ping.out + ping.err).toBe(0);
    expect(ping.out).toContain('3 received');
    const addr = as(alice, ['exec', made.netnsPath, '--', 'ip', '-o', '-4', 'addr', 'show', 'tap0']);
    expect(addr.out).toContain('10.0.2.100/24');

    // The network process dies: check says so, and gc removes the broken sandbox whole.
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}/comm`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'); i++) await new Promise((r) => setTimeout(r, 20));
    const bad = as(alice, ['sandbox', 'check', id, '--json']);
    expect(bad.code).toBe(1);
    expect(json<ErrorDoc>(bad).error.code).toBe('ERR_NSTOOL_SANDBOX_UNHEALTHY');
    const g = as(alice, ['gc', '--json']);
    expect(g.code, g.err).toBe(0);
    expect(json(g)).toEqual([expect.objectContaining({ kind: 'sandbox', id, reason: 'network process gone', done: true })]);
    await expectNothingLeft(alice);

    // And a plain delete stops it.
    const d = as(alice, ['sandbox', 'create', id, '--net-backend', 'slirp4netns']);
    expect(d.code, d.err).toBe(0);
    expect(as(alice, ['sandbox', 'delete', id]).code).toBe(0);
    await expectNothingLeft(alice);
  });

  it('finishes a create with a network killed before or after its network step', async () => {
    for (const point of ['before-network', 'after-network']) {
      for (const finish of ['delete', 'gc'] as const) {
        const id = `${P}-kn-${point}-${finish}`;
        const killed = as(alice, ['sandbox', 'create', id, '--net-backend', 'slirp4netns'], { NSTOOL_TEST_STEP: `${point}:kill` });
        expect(killed.code, `${point}: ${killed.err}`).toBe(null);
        const f = finish === 'delete' ? as(alice, ['sandbox', 'delete', id]) : as(alice, ['gc']);
        expect(f.code, `${point} ${finish}: ${f.err}`).toBe(0);
        await expectNothingLeft(alice);
      }
    }
  });

  it('the keeper pins a namespace only under its own kind, and never unpins a netns alone', async () => {
    const id = `${P}-kinds`;
    const c = as(alice, ['sandbox', 'create', id, '--no-network', '--json']);
    expect(c.code, c.err).toBe(0);
    const made = json<Info>(c);
    const name = path.basename(made.netnsPath);
    const before = pins(alice);
    // Requests as another program of alice's would send them: an ipc namespace offered as a uts pin, an unknown kind, a netns unpinned alone.
    const script = `
      import { native } from ${JSON.stringify(path.join(path.dirname(DIST), 'native.js'))};
      const sock = ${JSON.stringify(`${alice.run}/nstool/keeper.sock`)};
      const userns = ${JSON.stringify(made.usernsPath)};
      const out = [];
      const r1 = await native.createPodNs({ userns, keeperSock: sock, ipcRequest: 'pinns uts ${P}-x\\n' });
      out.push(r1.ipcReply);
      const r2 = await native.createPodNs({ userns, keeperSock: sock, utsRequest: 'pinns net ${P}-x\\n', hostname: 'h' });
      out.push(r2.utsReply);
      out.push(await native.keeperCall(sock, 'unpinns net ${name}\\n', 5000));
      out.push(await native.keeperCall(sock, 'unpinns user ../netns/${name}\\n', 5000));
      console.log(JSON.stringify(out));
    `;
    const r = run(alice, [process.execPath, '--input-type=module', '-e', script]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual(['err check-ns 22\n', 'err request 22\n', 'err request 22\n', 'err request 22\n']);
    expect(pins(alice)).toEqual(before);
    expect(as(alice, ['sandbox', 'check', id]).code).toBe(0);
    expect(as(alice, ['sandbox', 'delete', id]).code).toBe(0);
    await expectNothingLeft(alice);
  });

  it('refuses root-only options with ERR_NSTOOL_ROOTLESS_UNSUPPORTED and leaves nothing', async () => {
    const confDir = mkdtempSync(`/tmp/${P}-conf-`);
    tmpDirs.push(confDir);
    chmodSync(confDir, 0o755);
    const conf = path.join(confDir, 'pod.conflist');
    writeFileSync(conf, JSON.stringify({ cniVersion: '1.0.0', name: `${P}-net`, plugins: [{ type: 'loopback' }] }), { mode: 0o644 });
    const id = `${P}-refused`;
    const cli: string[][] = [
      ['--no-network', '--rootfs', '/'],
      ['--conflist', conf],
      ['--no-network', '--pin-dir', dave.run],
      ['--no-network', '--userns-pin-dir', dave.run],
      ['--no-network', '--bundle-dir', dave.run],
    ];
    for (const flags of cli) {
      const r = as(dave, ['sandbox', 'create', id, ...flags, '--json']);
      expect(r.code, flags.join(' ')).toBe(1);
      expect(json<ErrorDoc>(r).error.code, flags.join(' ')).toBe('ERR_NSTOOL_ROOTLESS_UNSUPPORTED');
    }
    // The API: a CNI network, a pause container, auto blocks of another user's ids, an allocator dir.
    const script = `
      import { createSandbox } from ${JSON.stringify(DIST)};
      const map = '0:${randomSubidBase()}:65536';
      const tries = [
        { network: { list: { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'loopback' }] } } },
        { network: { confDir: '/etc/cni/net.d' } },
        { pause: { rootfs: '/' } },
        { uidMap: 'auto', autoUser: 'root' },
        { allocDir: '/tmp' },
        { ipcPinDir: '/tmp/x' },
      ];
      const codes = [];
      for (const t of tries) {
        try { await createSandbox({ id: ${JSON.stringify(id)}, uidMap: map, ...t }); codes.push('none'); } catch (e) { codes.push(e.code); }
      }
      console.log(JSON.stringify(codes));
    `;
    const r = run(dave, [process.execPath, '--input-type=module', '-e', script]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual(Array(6).fill('ERR_NSTOOL_ROOTLESS_UNSUPPORTED'));
    // A map outside the user's range: the netns step's own check, also before anything is made.
    const wide = as(dave, ['sandbox', 'create', id, '--no-network', '--uidmap', `0:${aliceBase}:65536`, '--json']);
    expect(json<ErrorDoc>(wide).error.code).toBe('ERR_NSTOOL_SUBID');
    expect(await settle(dave.uid)).toEqual([]);
    expect(readdirSync(dave.run)).toEqual([]);
    expect(sh(['ls', '-A', dave.run])).toBe('');
  });
});
