// A rootless pod's network: a user-mode network process (pasta, else
// slirp4netns) attached to the pod's pinned netns, which makes a tap
// interface there and carries its traffic through sockets of the user on
// the host. CNI stays root's.
//
// Lifetime: the process is started detached (its own session) under the
// spawn helper as supervisor (src/process.ts startDetached), so it outlives
// the nstool call that started it; the user's keeper holds the write end of
// the supervisor's exit pipe for as long as the pod's pin exists, so
// deleting the pod (unpin) or killing the keeper ends the network process
// (the supervisor ends it, and the process dies with the supervisor). The
// record (pid + start time) names it; stop kills it only while both match.
//
// What the pod sees, with either backend: IPv4 only, ifname (default tap0)
// 10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3 (to the host's
// resolver). The gateway reaches the host's own 127.0.0.1 only when
// hostLoopback is set. That alone is no wall against the pod's root, which
// can send frames for 127.0.0.1 itself out of its tap (a route with
// route_localnet, or a packet socket), and both backends would connect to
// the host's loopback as the user; so without hostLoopback the supervisor
// refuses the backend's calls to loopback addresses on host sockets
// (nstool-spawn --deny-loopback; test/security/rootless-host-loopback).
import { createHash, randomBytes } from 'node:crypto';
// (Node opens every file O_CLOEXEC.)
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isAbort, throwIfAborted, validateSignal } from '../abort.js';
import { invalidArg, NstoolError } from '../errors.js';
import { validateIfName } from '../names.js';
import { killProcess, ProcessError, startDetached, which } from '../process.js';
import { showText, showValue } from '../show.js';
import { KEEPER, NET_BACKEND_FAILED, NET_BACKEND_MISSING, rootlessError, RUNTIME_DIR, TUN } from './errors.js';
import { findKeeper, hostPath, keeperCall } from './keeper.js';
import { KEEPER_PROTOCOL, type KeeperRef } from './protocol.js';
import { checkRuntimeBase, ensureRuntimeDirs, RuntimeDirs, runtimeDirs } from './runtime-dir.js';

export type RootlessNetBackend = 'pasta' | 'slirp4netns';

export interface PortForward {
  /** Host address to listen on (IPv4); default all (0.0.0.0). */
  hostIp?: string;
  hostPort: number;
  podPort: number;
  protocol: 'tcp' | 'udp';
}

export interface RootlessNetOptions {
  /** Host-reachable path of the pod netns: a pin of this user's keeper (/proc/KEEPER/root.../pins/netns/NAME). */
  netnsPath: string;
  /** Host-reachable path of the userns owning it. */
  usernsPath: string;
  /** auto (default): pasta if found on PATH, else slirp4netns. */
  backend?: 'auto' | RootlessNetBackend;
  ports?: readonly PortForward[];
  /** The interface in the pod; default 'tap0'. */
  ifname?: string;
  /** Default: the backend's (slirp4netns 1500, pasta 65520). */
  mtu?: number;
  /** Let the pod reach the host's 127.0.0.1 through the gateway address (default false: then the backend is also refused every connect or send to the host's loopback, port 53 excepted). */
  hostLoopback?: boolean;
  /** Until the interface is configured (default 30000). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Where to look for the backends (default: PATH of this process). */
  path?: string;
}

export interface RootlessNetRecord {
  backend: RootlessNetBackend;
  pid: number;
  /** Field 22 of /proc/PID/stat. */
  start: string;
  ifname: string;
  /** The pod's addresses, CIDR. */
  ips: string[];
  gateway: string;
  dns?: string;
  ports: PortForward[];
  /** slirp4netns's API socket (only with ports). */
  apiSocket?: string;
  /** The backend's stdout and stderr. */
  log?: string;
}

/** The pod's side of the network, the same for both backends. */
export const POD_NET = { ip: '10.0.2.100', prefix: 24, gateway: '10.0.2.2', dns: '10.0.2.3' } as const;
export const DEFAULT_IFNAME = 'tap0';
const DEFAULT_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 2000;
const SUN_PATH_MAX = 107;
const LOG_MAX = 2000;

// ---- input ---------------------------------------------------------------------

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function port(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw invalidArg(`${what} must be a port from 1 to 65535, got ${showValue(v)}`);
  return n;
}

/** "8080:80", "127.0.0.1:8080:80", either with "/tcp" or "/udp". */
export function parsePortSpec(spec: string): PortForward {
  if (typeof spec !== 'string') throw invalidArg(`a port spec must be a string, got ${showValue(spec)}`, 'ERR_INVALID_ARG_TYPE');
  const m = /^(?:([0-9.]+):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw invalidArg(`port spec ${showValue(spec)} is not [HOSTIP:]HOSTPORT:PODPORT[/tcp|/udp]`);
  if (m[1] !== undefined && !IPV4.test(m[1])) throw invalidArg(`port spec ${showValue(spec)}: ${showValue(m[1])} is not an IPv4 address`);
  return {
    ...(m[1] !== undefined ? { hostIp: m[1] } : {}),
    hostPort: port(m[2], 'hostPort'),
    podPort: port(m[3], 'podPort'),
    protocol: (m[4] ?? 'tcp') as 'tcp' | 'udp',
  };
}

function checkPort(x: unknown, i: number): PortForward {
  if (x === null || typeof x !== 'object') throw invalidArg(`ports[${i}] must be an object`, 'ERR_INVALID_ARG_TYPE');
  const f = x as Record<string, unknown>;
  if (f['protocol'] !== 'tcp' && f['protocol'] !== 'udp') throw invalidArg(`ports[${i}].protocol must be "tcp" or "udp", got ${showValue(f['protocol'])}`);
  if (f['hostIp'] !== undefined && (typeof f['hostIp'] !== 'string' || !IPV4.test(f['hostIp']))) {
    throw invalidArg(`ports[${i}].hostIp must be an IPv4 address, got ${showValue(f['hostIp'])}`);
  }
  return {
    ...(f['hostIp'] !== undefined ? { hostIp: f['hostIp'] as string } : {}),
    hostPort: port(f['hostPort'], `ports[${i}].hostPort`),
    podPort: port(f['podPort'], `ports[${i}].podPort`),
    protocol: f['protocol'],
  };
}

function checkPorts(v: unknown): PortForward[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidArg('ports must be an array', 'ERR_INVALID_ARG_TYPE');
  const out = v.map(checkPort);
  const seen = new Set<string>();
  for (const f of out) {
    const key = `${f.protocol} ${f.hostPort}`;
    // Two forwards of one host port collide whatever their addresses (0.0.0.0 covers all).
    if (seen.has(key)) throw invalidArg(`host port ${f.hostPort}/${f.protocol} is forwarded twice`);
    seen.add(key);
  }
  return out;
}

interface Pod {
  name: string;
  keeper: KeeperRef;
  dirs: RuntimeDirs;
}

/** The pin NAME of this user's live keeper that netnsPath names, else a typed error. */
async function resolvePod(netnsPath: unknown, dirs: RuntimeDirs): Promise<Pod> {
  if (typeof netnsPath !== 'string' || !netnsPath.startsWith('/') || netnsPath.includes('\0')) throw invalidArg('netnsPath must be an absolute path');
  const p = path.normalize(netnsPath);
  const m = /^\/proc\/([1-9]\d{0,9})\/root(\/.*)$/.exec(p);
  if (!m || path.dirname(m[2]!) !== dirs.netns) {
    throw invalidArg(`netnsPath ${showValue(netnsPath)} is not a pod netns of this user's keeper (/proc/KEEPER/root${dirs.netns}/NAME)`);
  }
  const keeper = findKeeper(dirs);
  if (!keeper || keeper.pid !== Number(m[1])) {
    throw new NstoolError(`netnsPath ${showValue(netnsPath)}: no keeper of this user runs as pid ${m[1]}`, {
      code: 'ENOENT',
      errno: -2,
      path: p,
      hint: "the pod's namespaces are gone (the keeper exited): create the pod netns again",
    });
  }
  // The keeper must know "hold" (one of an older build would refuse it).
  const words = (await keeperCall(dirs, 'ping')).split(' ');
  if (words[0] !== 'nstool-keeper' || words[1] !== String(KEEPER_PROTOCOL)) {
    throw rootlessError(KEEPER, `the keeper (pid ${keeper.pid}) speaks another protocol (${showText(words.slice(0, 2).join(' '), 60)})`, `it comes from another nstool build: delete this user's pods (or kill ${keeper.pid}) and create them again`);
  }
  try {
    lstatSync(p);
  } catch (err) {
    throw new NstoolError(`netnsPath ${showValue(netnsPath)}: no such pod netns`, { code: 'ENOENT', errno: -2, path: p, hint: '`nstool list` shows the pod netns of this user', cause: err });
  }
  return { name: path.basename(m[2]!), keeper, dirs };
}

function findBackend(want: 'auto' | RootlessNetBackend, envPath: string | undefined): { backend: RootlessNetBackend; file: string } {
  const order: RootlessNetBackend[] = want === 'auto' ? ['pasta', 'slirp4netns'] : [want];
  for (const b of order) {
    try {
      return { backend: b, file: which(b, envPath) };
    } catch {
      // the next one
    }
  }
  throw rootlessError(
    NET_BACKEND_MISSING,
    want === 'auto' ? 'neither pasta nor slirp4netns is installed (looked in PATH)' : `${want} is not installed (looked in PATH)`,
    want === 'slirp4netns' ? 'apt-get install slirp4netns' : 'apt-get install passt (it provides pasta), or apt-get install slirp4netns',
  );
}

/** The backends open /dev/net/tun as this user: say so before starting one. */
function checkTun(): void {
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw rootlessError(
      TUN,
      `/dev/net/tun is not usable by this user (${e.code ?? 'error'})`,
      e.code === 'ENOENT' || e.code === 'ENODEV' || e.code === 'ENXIO'
        ? 'load the tun module (`modprobe tun`) and make the device: `mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200`'
        : 'the device must be readable and writable by the user: `chmod 0666 /dev/net/tun` (the mode Debian gives it)',
      { path: '/dev/net/tun', syscall: 'open', ...(typeof e.errno === 'number' ? { errno: e.errno } : {}), cause: err },
    );
  }
  closeSync(fd);
}

// ---- files ------------------------------------------------------------------------

function netDir(d: RuntimeDirs): string {
  return path.join(d.dir, 'net');
}

/** DIR/net (0700) and fresh names for this start's log and API socket. */
function files(pod: Pod): { log: string; sock: string } {
  const dir = netDir(pod.dirs);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) {
    throw rootlessError(RUNTIME_DIR, `${dir} is not a private directory of this user`, `remove it; nstool makes it anew (mode 0700)`, { path: dir });
  }
  const id = `${createHash('sha256').update(pod.name).digest('hex').slice(0, 12)}-${randomBytes(4).toString('hex')}`;
  const sock = path.join(dir, `${id}.sock`);
  if (Buffer.byteLength(sock) > SUN_PATH_MAX) {
    throw rootlessError(RUNTIME_DIR, `the API socket path ${showValue(sock)} is longer than a unix socket takes`, 'use a shorter XDG_RUNTIME_DIR');
  }
  return { log: path.join(dir, `${id}.log`), sock };
}

const FILE_NAME = /^[0-9a-f]{12}-[0-9a-f]{8}\.(log|sock)$/;

/** A file this module made: DIR/net/ID.log or .sock, nothing else. */
function ourFile(p: unknown, d: RuntimeDirs, ext: 'log' | 'sock'): p is string {
  return typeof p === 'string' && path.dirname(p) === netDir(d) && FILE_NAME.test(path.basename(p)) && p.endsWith(`.${ext}`);
}

function removeFile(p: string | undefined): void {
  if (!p) return;
  try {
    const st = lstatSync(p);
    if ((st.isFile() || st.isSocket()) && st.uid === process.getuid?.()) unlinkSync(p);
  } catch {
    // gone already
  }
}

function readLog(p: string): string {
  try {
    const fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return showText(readFileSync(fd, 'utf8').trim().slice(-LOG_MAX * 2), LOG_MAX);
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

// ---- processes ------------------------------------------------------------------------

function procStat(pid: number): { start: string; state: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return fields[19] ? { start: fields[19], state: fields[0]! } : null;
}

function slirpArgs(file: string, o: RootlessNetOptions, ifname: string, netnsPath: string, sock: string | undefined): string[] {
  return [
    file,
    '--configure',
    '--netns-type=path',
    `--userns-path=${o.usernsPath}`,
    ...(o.hostLoopback ? [] : ['--disable-host-loopback']),
    ...(o.mtu !== undefined ? [`--mtu=${o.mtu}`] : []),
    // --enable-sandbox needs setegid(0) in the host's userns: root only.
    '--enable-seccomp',
    '--ready-fd=4',
    ...(sock ? [`--api-socket=${sock}`] : []),
    netnsPath,
    ifname,
  ];
}

function pastaPorts(ports: PortForward[], proto: 'tcp' | 'udp'): string[] {
  const mine = ports.filter((f) => f.protocol === proto);
  const flag = proto === 'tcp' ? '-t' : '-u';
  if (mine.length === 0) return [flag, 'none'];
  return mine.flatMap((f) => [flag, `${f.hostIp && f.hostIp !== '0.0.0.0' ? `${f.hostIp}/` : ''}${f.hostPort}:${f.podPort}`]);
}

// pasta opens the netns path after joining the userns, where the keeper's
// /proc/PID/root is out of its reach: it gets both as fds 4 and 5.
function pastaArgs(file: string, o: RootlessNetOptions, ifname: string, ports: PortForward[]): string[] {
  return [
    file,
    '--foreground', '--quiet',
    '--netns', '/proc/self/fd/4', '--userns', '/proc/self/fd/5',
    '--config-net', '--ns-ifname', ifname,
    '--ipv4-only', '--address', POD_NET.ip, '--netmask', String(POD_NET.prefix), '--gateway', POD_NET.gateway,
    '--dns-forward', POD_NET.dns,
    ...(o.hostLoopback ? [] : ['--no-map-gw']),
    ...(o.mtu !== undefined ? ['--mtu', String(o.mtu)] : []),
    ...pastaPorts(ports, 'tcp'), ...pastaPorts(ports, 'udp'),
    // Nothing of the host's own ports into the pod.
    '-T', 'none', '-U', 'none',
    // Its pid file is the ready pipe: pasta writes it once the tap is configured.
    '--pid', '/proc/self/fd/6',
  ];
}

/** One request to slirp4netns's API socket; the parsed reply. */
function slirpApi(sock: string, request: object, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let text = '';
    const timer = setTimeout(() => c.destroy(Object.assign(new Error('no reply'), { code: 'ETIMEDOUT' })), timeoutMs);
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.on('data', (b) => {
      text += b.toString('utf8');
      if (text.length > 65536) c.destroy(new Error('reply too long'));
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(timer);
      try {
        const v = JSON.parse(text) as unknown;
        if (v && typeof v === 'object') return resolve(v as Record<string, unknown>);
      } catch {
        // below
      }
      reject(new Error(`not a JSON object: ${showText(text, 200)}`));
    });
  });
}

async function addHostFwds(sock: string, ports: PortForward[]): Promise<void> {
  for (const f of ports) {
    const req = { execute: 'add_hostfwd', arguments: { proto: f.protocol, host_addr: f.hostIp ?? '0.0.0.0', host_port: f.hostPort, guest_port: f.podPort } };
    let reply: Record<string, unknown>;
    try {
      reply = await slirpApi(sock, req, 10_000);
    } catch (err) {
      throw rootlessError(NET_BACKEND_FAILED, `slirp4netns's API socket did not take port ${f.hostPort}: ${(err as Error).message}`, 'look at the log in $XDG_RUNTIME_DIR/nstool/net', { path: sock, cause: err });
    }
    if (!reply['return']) {
      const desc = (reply['error'] as { desc?: unknown } | undefined)?.desc;
      throw rootlessError(
        NET_BACKEND_FAILED,
        `slirp4netns refused to forward ${f.hostIp ?? '0.0.0.0'}:${f.hostPort}/${f.protocol}: ${showText(String(desc ?? JSON.stringify(reply)), 300)}`,
        'the host port may be taken or below 1024 (net.ipv4.ip_unprivileged_port_start): choose another',
        { path: sock },
      );
    }
  }
}

// ---- the API ------------------------------------------------------------------------

/**
 * Starts the pod's network process; resolves once the interface is
 * configured (and ports forwarded), or rejects leaving nothing running.
 */
export async function startRootlessNetwork(o: RootlessNetOptions): Promise<RootlessNetRecord> {
  if (o === null || typeof o !== 'object') throw invalidArg('options must be an object', 'ERR_INVALID_ARG_TYPE');
  const dirs = runtimeDirs();
  checkRuntimeBase(dirs);
  if (typeof o.usernsPath !== 'string' || !o.usernsPath.startsWith('/') || o.usernsPath.includes('\0')) throw invalidArg('usernsPath must be an absolute path');
  const want = o.backend ?? 'auto';
  if (want !== 'auto' && want !== 'pasta' && want !== 'slirp4netns') throw invalidArg(`backend must be "auto", "pasta" or "slirp4netns", got ${showValue(want)}`);
  const ifname = o.ifname === undefined ? DEFAULT_IFNAME : validateIfName(o.ifname, 'ifname');
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 1280 || o.mtu > 65520)) throw invalidArg(`mtu must be a whole number from 1280 to 65520, got ${showValue(o.mtu)}`);
  if (o.hostLoopback !== undefined && typeof o.hostLoopback !== 'boolean') throw invalidArg('hostLoopback must be a boolean', 'ERR_INVALID_ARG_TYPE');
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw invalidArg('timeoutMs must be a whole number of milliseconds');
  if (o.path !== undefined && typeof o.path !== 'string') throw invalidArg('path must be a string', 'ERR_INVALID_ARG_TYPE');
  const ports = checkPorts(o.ports);
  validateSignal(o.signal);
  throwIfAborted(o.signal, 'starting the pod network');
  const pod = await resolvePod(o.netnsPath, dirs);
  const { backend, file } = findBackend(want, o.path ?? process.env['PATH']);
  checkTun();
  throwIfAborted(o.signal, 'starting the pod network');

  ensureRuntimeDirs(dirs);
  const f = files(pod);
  const netnsPath = hostPath(pod.keeper, path.join(dirs.netns, pod.name));
  const sock = backend === 'slirp4netns' && ports.length ? f.sock : undefined;
  const opened: number[] = [];
  let started: { pid: number } | undefined;
  try {
    const log = openSync(f.log, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    opened.push(log);
    let argv: string[];
    let fds: number[] = [];
    if (backend === 'pasta') {
      for (const p of [netnsPath, o.usernsPath]) opened.push(openSync(p, constants.O_RDONLY));
      fds = opened.slice(1);
      argv = pastaArgs(file, o, ifname, ports);
    } else {
      argv = slirpArgs(file, o, ifname, netnsPath, sock);
    }
    try {
      started = await startDetached(argv, {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C' },
        output: log,
        fds,
        readyFd: 4 + fds.length,
        hold: { socket: dirs.sock, name: pod.name },
        // The pod's root can route 127.0.0.1 out of its tap; the backend must not follow.
        denyLoopback: !o.hostLoopback,
        timeoutMs,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (err) {
      const e = err as ProcessError;
      if (isAbort(e) || e.code === 'ENOENT' || e.code === 'ECONNREFUSED') throw err;
      const said = readLog(f.log);
      throw rootlessError(
        NET_BACKEND_FAILED,
        `${backend} did not start: ${e.message}${said ? `; it said: ${said}` : ''}`,
        backend === 'pasta' ? 'try backend "slirp4netns"; the full log is in $XDG_RUNTIME_DIR/nstool/net' : 'try backend "pasta"; the full log is in $XDG_RUNTIME_DIR/nstool/net',
        { cause: err },
      );
    }
    const st = procStat(started.pid);
    if (!st || st.state === 'Z') throw rootlessError(NET_BACKEND_FAILED, `${backend} (pid ${started.pid}) ended right after it was ready: ${readLog(f.log)}`, 'look at its log in $XDG_RUNTIME_DIR/nstool/net');
    const record: RootlessNetRecord = {
      backend,
      pid: started.pid,
      start: st.start,
      ifname,
      ips: [`${POD_NET.ip}/${POD_NET.prefix}`],
      gateway: POD_NET.gateway,
      dns: POD_NET.dns,
      ports,
      ...(sock ? { apiSocket: sock } : {}),
      log: f.log,
    };
    if (sock) {
      try {
        await addHostFwds(sock, ports);
      } catch (err) {
        await stopRootlessNetwork(record).catch(() => {});
        started = undefined;
        throw err;
      }
    }
    started = undefined;
    return record;
  } catch (err) {
    removeFile(f.log);
    removeFile(sock);
    throw err;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

/** Ends the network process if it is still the one recorded (pid and start time) and waits until it is gone; idempotent. */
export async function stopRootlessNetwork(r: RootlessNetRecord): Promise<void> {
  const rec = parseNetRecord(r);
  if (!rec) throw invalidArg('not a rootless network record');
  await killProcess(rec.pid, rec.start, STOP_GRACE_MS);
  removeFile(rec.apiSocket);
  removeFile(rec.log);
}

/** Whether the recorded network process still runs (same pid and start time, not a zombie). */
export function rootlessNetworkAlive(r: RootlessNetRecord): boolean {
  const rec = parseNetRecord(r);
  if (!rec) return false;
  const st = procStat(rec.pid);
  return !!st && st.start === rec.start && st.state !== 'Z';
}

/** A record read back from disk, validated (its file paths must be this module's, under this user's runtime dir); else null. */
export function parseNetRecord(x: unknown): RootlessNetRecord | null {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return null;
  const r = x as Record<string, unknown>;
  if (r['backend'] !== 'pasta' && r['backend'] !== 'slirp4netns') return null;
  if (typeof r['pid'] !== 'number' || !Number.isSafeInteger(r['pid']) || r['pid'] < 1 || r['pid'] > 2 ** 31 - 1) return null;
  if (typeof r['start'] !== 'string' || !/^\d{1,20}$/.test(r['start'])) return null;
  let ifname: string;
  try {
    ifname = validateIfName(r['ifname'], 'ifname');
  } catch {
    return null;
  }
  const cidr = (s: unknown) => typeof s === 'string' && /^[0-9.]+\/\d{1,2}$/.test(s) && IPV4.test(s.split('/')[0]!) && Number(s.split('/')[1]) <= 32;
  if (!Array.isArray(r['ips']) || r['ips'].length > 16 || !r['ips'].every(cidr)) return null;
  if (typeof r['gateway'] !== 'string' || !IPV4.test(r['gateway'])) return null;
  if (r['dns'] !== undefined && (typeof r['dns'] !== 'string' || !IPV4.test(r['dns']))) return null;
  let ports: PortForward[];
  if (!Array.isArray(r['ports'])) return null;
  try {
    ports = checkPorts(r['ports']);
  } catch {
    return null;
  }
  let d: RuntimeDirs;
  try {
    d = runtimeDirs();
  } catch {
    return null;
  }
  if (r['apiSocket'] !== undefined && !ourFile(r['apiSocket'], d, 'sock')) return null;
  if (r['log'] !== undefined && !ourFile(r['log'], d, 'log')) return null;
  return {
    backend: r['backend'],
    pid: r['pid'],
    start: r['start'],
    ifname,
    ips: [...(r['ips'] as string[])],
    gateway: r['gateway'],
    ...(r['dns'] !== undefined ? { dns: r['dns'] as string } : {}),
    ports,
    ...(r['apiSocket'] !== undefined ? { apiSocket: r['apiSocket'] as string } : {}),
    ...(r['log'] !== undefined ? { log: r['log'] as string } : {}),
  };
}
