// Rootless pod networking (pasta and slirp4netns, both installed here), as
// an unprivileged user this file creates with a 65536-id subordinate range.
// The network is started through the API in a `node -e` process of the
// user's, which exits: the network process must outlive it. Traffic stays
// on this machine: the pod pings only slirp4netns's own gateway, and
// connects only to listeners this test made on the host's 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killProcess, startDetached } from '../../src/process.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, asAsync, DIST, json, processesOf, randomSubidBase, settle, TestUser, testUsers, userArgv, userCommand, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rln');
trackLeaks(P);

const { makeUserWithRange, cleanup, leftovers, strays, tmpDirs } = testUsers(P);
const BACKENDS = ['slirp4netns', 'pasta'] as const;

interface Rec {
  backend: string;
  pid: number;
  start: string;
  ifname: string;
  ips: string[];
  gateway: string;
  dns?: string;
  ports: unknown[];
  apiSocket?: string;
  log?: string;
}
interface OpOut {
  record?: Rec;
  alive?: boolean;
  error?: { code: string; message: string; hint?: string };
  fds?: { before: string[]; after: string[]; children: string[] };
}

// One API call as the user, in a node process of its own that then exits.
const SCRIPT = `
  import * as api from ${JSON.stringify(DIST)};
  import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
  const fds = () => readdirSync('/proc/self/fd').map((f) => { try { return f + ' ' + readlinkSync('/proc/self/fd/' + f); } catch { return ''; } }).filter((f) => f && !/eventpoll|eventfd|timerfd/.test(f) && !f.includes('/proc/self/fd')).sort();
  const children = () => readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => { try { const s = readFileSync('/proc/' + d + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === process.pid; } catch { return false; } });
  const { op, arg } = JSON.parse(process.env.NET_OP);
  const out = {};
  try {
    if (op === 'start') { out.record = await api.startRootlessNetwork(arg); out.alive = api.rootlessNetworkAlive(out.record); }
    if (op === 'alive') out.alive = api.rootlessNetworkAlive(arg);
    if (op === 'stop') { await api.stopRootlessNetwork(arg); out.alive = api.rootlessNetworkAlive(arg); }
    if (op === 'cycle') {
      // Warm up what Node opens once, then a start and a stop, and failures.
      await api.stopRootlessNetwork(await api.startRootlessNetwork(arg));
      const before = fds();
      await api.stopRootlessNetwork(await api.startRootlessNetwork(arg));
      for (const bad of [{ ...arg, usernsPath: '/dev/null' }, { ...arg, path: '/nonexistent' }]) await api.startRootlessNetwork(bad).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      out.fds = { before, after: fds(), children: children() };
    }
  } catch (e) {
    out.error = { code: e.code, message: e.message, hint: e.hint };
  }
  console.log(JSON.stringify(out));
`;

function apiAs(u: TestUser, op: string, arg: unknown, wrap: string[] = []): OpOut {
  const argv = [...wrap, ...userCommand(u, [process.execPath, '--input-type=module', '-e', SCRIPT])];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000, cwd: '/', env: userEnv(u, { NET_OP: JSON.stringify({ op, arg }) }) });
  if (r.status !== 0) throw new Error(`api ${op} as ${u.name} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as OpOut;
}

/** A TCP listener on the host's 127.0.0.1: counts connections and keeps what each sent. */
async function hostListener(): Promise<{ port: number; conns: number; got: string[]; close: () => Promise<void> }> {
  const l = { port: 0, conns: 0, got: [] as string[], close: async () => {} };
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    l.conns++;
    sockets.add(s);
    let text = '';
    s.on('data', (b) => {
      text += b.toString();
      if (text.endsWith('\n')) {
        l.got.push(text);
        s.destroy(); // the pod's nc waits for the close
      }
    });
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  l.port = (srv.address() as net.AddressInfo).port;
  l.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => srv.close(() => r()));
  };
  return l;
}

/** A port nobody listens on now (the kernel's choice, released at once). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** What the host reads from 127.0.0.1:PORT, or null when the connection fails or says nothing. */
function readFrom(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => c.destroy(), 2000);
    c.on('data', (b) => (text += b.toString()));
    c.on('error', () => {});
    c.on('close', () => {
      clearTimeout(timer);
      resolve(text || null);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (no timing asserted) until the user's processes are exactly WANT. */
async function processesBecome(uid: number, want: number[]): Promise<number[]> {
  for (let i = 0; i < 300; i++) {
    const now = processesOf(uid).sort();
    if (JSON.stringify(now) === JSON.stringify([...want].sort())) return now;
    await sleep(50);
  }
  return processesOf(uid).sort();
}

describeRoot('rootless pod networking, as an unprivileged user', () => {
  let alice: TestUser;
  const BASE = randomSubidBase();
  let emptyPath: string;

  beforeAll(() => {
    try {
      alice = makeUserWithRange(P, BASE);
      emptyPath = mkdtempSync(`/tmp/${P}-path-`);
      tmpDirs.push(emptyPath);
      chmodSync(emptyPath, 0o755);
    } catch (err) {
      return cleanup().then(() => {
        throw err;
      });
    }
  });

  afterAll(async () => {
    await cleanup();
    expect(processesOf(alice?.uid ?? -1)).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  function createPod(name: string): { path: string; usernsPath: string; keeperPid: number } {
    const c = as(alice, ['create-pod-netns', name, '--uidmap', `0:${BASE}:65536`, '--json']);
    expect(c.code, c.err).toBe(0);
    return json(c);
  }

  function deletePod(name: string): void {
    const d = as(alice, ['delete', name]);
    expect(d.code, d.err).toBe(0);
  }

  it.each(BACKENDS)('%s: the pod gets its address and gateway, a host port reaches the pod, the process outlives its starter, stop leaves only the keeper', async (backend) => {
    const name = `${P}-${backend}`;
    const pod = createPod(name);
    const listener = await hostListener();
    const hostPort = await freePort();
    try {
      // pasta's gateway answers for the host only with hostLoopback; slirp4netns's
      // is tested the other way: without it, the host's loopback stays closed.
      const opts = {
        netnsPath: pod.path,
        usernsPath: pod.usernsPath,
        backend,
        ports: [{ hostIp: '127.0.0.1', hostPort, podPort: 8080, protocol: 'tcp' }],
        hostLoopback: backend === 'pasta',
      };
      const s = apiAs(alice, 'start', opts);
      expect(s.error).toBeUndefined();
      const rec = s.record!;
      expect(rec).toMatchObject({ backend, ifname: 'tap0', ips: ['10.0.2.100/24'], gateway: '10.0.2.2', dns: '10.0.2.3' });
      expect(s.alive).toBe(true);
      // The starter has exited; the backend runs on as alice's, in a session of its own.
      // (pasta re-executes itself as passt.avx2 where the CPU has AVX2: same pid.)
      expect(readFileSync(`/proc/${rec.pid}/comm`, 'utf8')).toMatch(backend === 'pasta' ? /^pas(ta|st\.avx2)\n$/ : /^slirp4netns\n$/);
      expect(statSync(`/proc/${rec.pid}`).uid).toBe(alice.uid);
      const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      expect(fields[19]).toBe(rec.start);
      expect(Number(fields[3])).toBe(Number(fields[1])); // its session is its supervisor's, a session of its own
      expect(readFileSync(`/proc/${fields[1]}/comm`, 'utf8')).toBe('nstool-spawn\n');
      // Only fds 0-2 and what the backend opened itself: no fd of the starter's.
      expect(readdirSync(`/proc/${rec.pid}/fd`).map(Number)).toEqual(expect.arrayContaining([0, 1, 2]));
      // Files at rest: the net dir 0700, the log 0600.
      expect(statSync(`${alice.run}/nstool/net`).mode & 0o777).toBe(0o700);
      expect(statSync(rec.log!).mode & 0o777).toBe(0o600);
      if (backend === 'slirp4netns') {
        expect(statSync(rec.apiSocket!).isSocket()).toBe(true);
        expect(statSync(rec.apiSocket!).mode & 0o077).toBe(0); // made under the supervisor's umask
      }

      const addr = as(alice, ['exec', name, '--', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'tap0']);
      expect(addr.code, addr.err).toBe(0);
      expect(addr.out).toContain('inet 10.0.2.100/24');
      const route = as(alice, ['exec', name, '--', 'ip', '-4', 'route', 'show', 'default']);
      expect(route.out).toContain('default via 10.0.2.2 dev tap0');

      if (backend === 'slirp4netns') {
        const ping = as(alice, ['exec', name, '--', 'ping', '-c', '3', '-W', '2', '10.0.2.2']);
        expect(ping.code, ping.out + ping.err).toBe(0);
        expect(ping.out).toContain('3 received');
        // Async: the listener lives in this process's event loop.
        const loop = await asAsync(alice, ['exec', name, '--', 'sh', '-c', `echo from-pod | busybox nc -w 2 10.0.2.2 ${listener.port}`]);
        expect(loop.code, loop.err).toBe(1);
        expect(loop.err).toMatch(/can't connect/);
      } else {
        const tcp = await asAsync(alice, ['exec', name, '--', 'sh', '-c', `echo from-pod | busybox nc -w 2 10.0.2.2 ${listener.port}`]);
        expect(tcp.code, tcp.err).toBe(0);
        for (let i = 0; i < 100 && listener.got.length === 0; i++) await sleep(20);
        expect(listener.got).toEqual(['from-pod\n']);
      }
      expect(listener.conns).toBe(backend === 'pasta' ? 1 : 0);

      // A listener in the pod, reached from the host's 127.0.0.1:hostPort.
      const inPod = userArgv(alice, ['exec', name, '--', 'sh', '-c', 'echo hello-from-pod | busybox nc -l -p 8080']);
      const server = spawn(inPod[0]!, inPod.slice(1), { stdio: 'ignore', cwd: '/', env: userEnv(alice, {}) });
      strays.push(server.pid!);
      const exited = new Promise((r) => server.once('exit', r));
      let heard: string | null = null;
      for (let i = 0; i < 100 && heard === null; i++) {
        heard = await readFrom(hostPort);
        if (heard === null) await sleep(50);
      }
      expect(heard).toBe('hello-from-pod\n');
      await exited;
      strays.splice(strays.indexOf(server.pid!), 1);

      const stop = apiAs(alice, 'stop', rec);
      expect(stop).toEqual({ alive: false });
      expect(await processesBecome(alice.uid, [pod.keeperPid])).toEqual([pod.keeperPid]);
      expect(existsSync(rec.log!)).toBe(false);
      if (rec.apiSocket) expect(existsSync(rec.apiSocket)).toBe(false);
      expect(await readFrom(hostPort)).toBeNull(); // nothing forwards the port any more
      expect(apiAs(alice, 'stop', rec)).toEqual({ alive: false }); // again: nothing to do
    } finally {
      await listener.close();
      deletePod(name);
    }
    expect(await settle(alice.uid)).toEqual([]);
  });

  it.each(BACKENDS)('%s: its death is detected; deleting the pod netns ends it; killing the keeper ends it', async (backend) => {
    const name = `${P}-life-${backend}`;
    let pod = createPod(name);
    const opts = () => ({ netnsPath: pod.path, usernsPath: pod.usernsPath, backend });

    const first = apiAs(alice, 'start', opts()).record!;
    expect(apiAs(alice, 'alive', first).alive).toBe(true);
    process.kill(first.pid, 'SIGKILL');
    expect(await processesBecome(alice.uid, [pod.keeperPid])).toEqual([pod.keeperPid]);
    expect(apiAs(alice, 'alive', first).alive).toBe(false);
    expect(apiAs(alice, 'stop', first)).toEqual({ alive: false }); // gone: stop is a no-op

    // Deleting the pod (its last pin: the keeper exits too) ends the network process.
    const second = apiAs(alice, 'start', opts()).record!;
    expect(processesOf(alice.uid)).toContain(second.pid);
    deletePod(name);
    expect(await settle(alice.uid)).toEqual([]);
    // Its record's stop still removes its files.
    expect(existsSync(second.log!)).toBe(true);
    expect(apiAs(alice, 'stop', second)).toEqual({ alive: false });
    expect(existsSync(second.log!)).toBe(false);

    // So does killing the keeper, with the pod still pinned.
    pod = createPod(name);
    const third = apiAs(alice, 'start', opts()).record!;
    expect(processesOf(alice.uid)).toContain(third.pid);
    process.kill(pod.keeperPid, 'SIGKILL');
    expect(await settle(alice.uid)).toEqual([]);
    expect(apiAs(alice, 'alive', third).alive).toBe(false);
    expect(apiAs(alice, 'stop', third)).toEqual({ alive: false });
    expect(readdirSync(`${alice.run}/nstool/net`)).toEqual([]);
  });

  it('gives typed errors before anything runs: no backend, /dev/net/tun unusable, bad input, a pin that is not there; a failing backend is reported with its stderr', async () => {
    const name = `${P}-err`;
    const pod = createPod(name);
    const base = { netnsPath: pod.path, usernsPath: pod.usernsPath };
    try {
      for (const backend of ['auto', 'pasta', 'slirp4netns']) {
        expect(apiAs(alice, 'start', { ...base, backend, path: emptyPath }).error?.code).toBe('ERR_NSTOOL_NET_BACKEND_MISSING');
      }
      // /dev/net/tun over-mounted by a 0600 node, in a mount namespace of the test's own.
      const tun = `${emptyPath}/tun`;
      const mk = spawnSync('mknod', ['-m', '0600', tun, 'c', '10', '200']);
      expect(mk.status).toBe(0);
      const wrap = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', `mount --bind "$0" /dev/net/tun && exec "$@"`, tun];
      for (const backend of BACKENDS) {
        const t = apiAs(alice, 'start', { ...base, backend }, wrap);
        expect(t.error).toMatchObject({ code: 'ERR_NSTOOL_TUN', hint: expect.stringContaining('0666') });
      }
      for (const bad of [
        { ...base, ports: [{ hostPort: 0, podPort: 80, protocol: 'tcp' }] },
        { ...base, ports: [{ hostPort: 8080, podPort: 80, protocol: 'sctp' }] },
        { ...base, ports: [{ hostPort: 8080, podPort: 80, protocol: 'tcp' }, { hostIp: '127.0.0.1', hostPort: 8080, podPort: 81, protocol: 'tcp' }] },
        { ...base, ifname: 'a/b' },
        { ...base, mtu: 100 },
        { ...base, backend: 'vpnkit' },
        { ...base, netnsPath: '/proc/self/ns/net' },
      ]) {
        expect(apiAs(alice, 'start', bad).error?.code, JSON.stringify(bad)).toBe('ERR_INVALID_ARG_VALUE');
      }
      // A name the keeper does not pin (the path has the keeper's shape): nothing started.
      expect(apiAs(alice, 'start', { ...base, netnsPath: pod.path.replace(/[^/]+$/, `${P}-none`) }).error?.code).toBe('ENOENT');
      // The backend starts and fails: what it printed is in the error.
      for (const backend of BACKENDS) {
        const f = apiAs(alice, 'start', { ...base, backend, usernsPath: '/dev/null' });
        expect(f.error?.code).toBe('ERR_NSTOOL_NET_BACKEND_FAILED');
        expect(f.error?.message.length).toBeLessThan(3000);
      }
      // Nothing of any attempt is left: no process but the keeper, no file in net/.
      expect(await processesBecome(alice.uid, [pod.keeperPid])).toEqual([pod.keeperPid]);
      expect(readdirSync(`${alice.run}/nstool/net`)).toEqual([]);
    } finally {
      deletePod(name);
    }
    expect(await settle(alice.uid)).toEqual([]);
  });

  it('leaves no fd or child in the calling process, after start and stop and after failures', async () => {
    const name = `${P}-fds`;
    const pod = createPod(name);
    try {
      for (const backend of BACKENDS) {
        const c = apiAs(alice, 'cycle', { netnsPath: pod.path, usernsPath: pod.usernsPath, backend, ports: [{ hostIp: '127.0.0.1', hostPort: await freePort(), podPort: 80, protocol: 'udp' }] });
        expect(c.error).toBeUndefined();
        expect(c.fds!.after).toEqual(c.fds!.before);
        expect(c.fds!.children).toEqual([]);
      }
      expect(await processesBecome(alice.uid, [pod.keeperPid])).toEqual([pod.keeperPid]);
    } finally {
      deletePod(name);
    }
    expect(await settle(alice.uid)).toEqual([]);
  });
});

describeRoot('the detached runner under the network process', () => {
  // The first block's cleanup has run by now: the temp dirs made here are this block's to remove.
  afterAll(async () => {
    await cleanup();
    expect(readdirSync('/tmp').filter((n) => n.startsWith(`${P}-`))).toEqual([]);
  });
  const startOf = (pid: number) => {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  };
  const gone = async (pid: number) => {
    for (let i = 0; i < 200; i++) {
      try {
        if (startOf(pid)[0] === 'Z') return true;
      } catch {
        return true;
      }
      await sleep(20);
    }
    return false;
  };

  it('gives the program fds 0-2 and its ready fd only, in a session of its supervisor, and resolves once it is ready', async () => {
    const dir = mkdtempSync(`/tmp/${P}-det-`);
    tmpDirs.push(dir);
    const log = openSync(`${dir}/log`, 'w', 0o600);
    let d: { pid: number };
    try {
      d = await startDetached(['/bin/sh', '-c', 'echo ready >&4; echo said; exec sleep 60'], { output: log, readyFd: 4, timeoutMs: 10_000 });
    } finally {
      closeSync(log);
    }
    try {
      // Once sh has become sleep (its redirections dup fds for a moment), and
      // leaving out the locale files sleep opens itself.
      for (let i = 0; i < 200 && readFileSync(`/proc/${d.pid}/comm`, 'utf8') !== 'sleep\n'; i++) await sleep(10);
      const inherited = readdirSync(`/proc/${d.pid}/fd`).filter((f) => {
        try {
          return !readlinkSync(`/proc/${d.pid}/fd/${f}`).startsWith('/usr/lib/locale/');
        } catch {
          return false;
        }
      });
      expect(inherited.map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 4]);
      for (let i = 0; i < 100 && readFileSync(`${dir}/log`, 'utf8') === ''; i++) await sleep(10);
      expect(readFileSync(`${dir}/log`, 'utf8')).toBe('said\n');
      const [, ppid, , session] = startOf(d.pid);
      expect(readFileSync(`/proc/${ppid}/comm`, 'utf8')).toBe('nstool-spawn\n');
      expect(Number(session)).toBe(Number(ppid));
      expect(readFileSync(`/proc/${ppid}/status`, 'utf8')).toMatch(/^PPid:\s+\d+$/m);
      // A start time that is not the process's: left alone.
      const start = startOf(d.pid)[19]!;
      expect(await killProcess(d.pid, String(Number(start) + 1))).toBe('gone');
      expect(startOf(d.pid)[0]).not.toBe('Z');
      expect(await killProcess(d.pid, start)).toBe('killed');
      expect(await gone(d.pid)).toBe(true);
      expect(await gone(Number(ppid))).toBe(true); // the supervisor went with it
      expect(await killProcess(d.pid, start)).toBe('gone');
    } finally {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('kills a program that ignores SIGTERM after the grace time', async () => {
    const d = await startDetached(['/bin/sh', '-c', 'trap "" TERM; echo r >&4; while :; do sleep 0.1; done'], { readyFd: 4, timeoutMs: 10_000 });
    expect(await killProcess(d.pid, startOf(d.pid)[19]!, 200)).toBe('killed');
    expect(await gone(d.pid)).toBe(true);
  });

  it('rejects, leaving nothing running, when the program exits unready, is not ready in time, or the start is aborted', async () => {
    await expect(startDetached(['/bin/sh', '-c', 'exit 3'], { readyFd: 4 })).rejects.toMatchObject({ code: 'ERR_NSTOOL_NOT_READY' });
    await expect(startDetached(['/nonexistent/prog'], { readyFd: 4 })).rejects.toMatchObject({ code: 'ENOENT' });
    // A sleep this test alone runs (its argument says so).
    const marker = `60.${process.pid}${Date.now() % 100000}`;
    await expect(startDetached(['/bin/sh', '-c', `exec sleep ${marker}`], { readyFd: 4, timeoutMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const p = startDetached(['/bin/sh', '-c', `exec sleep ${marker}`], { readyFd: 4, signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    await expect(p).rejects.toMatchObject({ code: 'ABORT_ERR' });
    const left = spawnSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' });
    expect(left.stdout).toBe('');
  });
});
