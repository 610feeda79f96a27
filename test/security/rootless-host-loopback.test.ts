// The pod's root against the host's loopback, through the pod's network
// process. With hostLoopback false neither backend maps the gateway to the
// host's 127.0.0.1; but the pod's root owns its netns and can route
// 127.0.0.1 out of its tap (route_localnet), and with CAP_NET_RAW alone
// (a default container capability) it can write such frames to the tap
// itself. The backend then opened a socket to 127.0.0.1 on the host, as
// the user: neither slirp4netns 1.2.0 nor pasta has a switch that refuses
// it. nstool's supervisor now traps the backend's connects and sends
// (seccomp user notification) and refuses loopback destinations on the
// host's sockets. The control (hostLoopback true: no guard) shows the same
// attack does connect, so the refusal is the guard's.
// Traffic stays on this machine: the only listener is this test's own.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, asAsync, DIST, json, randomSubidBase, settle, TestUser, testUsers, userCommand, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rllo');
trackLeaks(P);

const { makeUserWithRange, lifecycle } = testUsers(P);

describeRoot("rootless network: the pod's root and the host's loopback", () => {
  let alice: TestUser;
  const BASE = randomSubidBase();

  lifecycle(() => {
    alice = makeUserWithRange(P, BASE);
  });

  it.each([
    ['slirp4netns', false, 0],
    ['pasta', false, 0],
    ['slirp4netns', true, 1],
    ['pasta', true, 1],
  ] as const)("%s, hostLoopback %s: the pod's root routes 127.0.0.1 through its tap towards a listener on the host's loopback; connections: %i", async (backend, hostLoopback, expected) => {
    const name = `${P}-${backend}-${hostLoopback ? 'open' : 'shut'}`;
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
      const script = `import(${JSON.stringify(DIST)}).then((m) => m.startRootlessNetwork(${JSON.stringify({ netnsPath: pod.path, usernsPath: pod.usernsPath, backend, hostLoopback })}))` +
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
      expect(conns, r.err).toBe(expected);
    } finally {
      srv.close();
      as(alice, ['delete', name]);
      await settle(alice.uid);
    }
  });
});
