#!/usr/bin/env node
// Pod up+down: an nstool sandbox (no pause container, CNI bridge network)
// against a podman pod (infra container, --uidmap, the same CNI plugins),
// rounds interleaved, both inside a node netns the bench makes, so the
// machine's own network is untouched. nstool's time is a ratio to podman's
// in the same run.
//
//   node bench/pod.js [--quick] [--install-podman | --no-podman] [--no-tmpfs] [--steps]
//
// Also run by bench/run.js. Everything lives under /var/lib/nstool-bench-pod
// (pins, state, CNI cache and IPAM, podman's config, storage and runroot),
// plus the node netns and, for podman, a cgroup parent of its own; all of it
// is removed at the end, on failure and on Ctrl-C, and what a killed run left
// is removed by the next one.
import { execFileSync, spawnSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, nowNs, Series } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { native } = await import(path.join(root, 'dist/native.js'));
const { createSandbox, deleteSandbox } = await import(path.join(root, 'dist/sandbox/index.js'));
const { addNetwork, delNetwork, toNetworkList } = await import(path.join(root, 'dist/cni/index.js'));
const { createPodNetnsSync, deletePodNetns } = await import(path.join(root, 'dist/netns.js'));
const { CNI_PLUGIN, SANDBOX_STEP } = await import(path.join(root, 'dist/trace.js'));

// Each tool's files where a node keeps them by default: state, pins and
// runroot on a tmpfs standing in for /run (RUN), the CNI cache, IPAM
// reservations and podman's storage (its database too) on the disk under
// /var/lib. (On some machines /run is a disk, where every fsync of a state
// file costs milliseconds; --no-tmpfs measures that layout.)
const BENCH_DIR = '/var/lib/nstool-bench-pod';
const RUN = `${BENCH_DIR}/run`;
const TAG = `nstool-bench-pod-${process.pid}`;
const NODE = `${TAG}-node`;
const NODE_PATH = `/run/netns/${NODE}`;
// A cgroup parent of the bench's own: podman leaves its pods' cgroups behind.
const CGROUP_PARENT = `/${TAG}`; // under every hierarchy
const MAP = '0:100000:65536';
const POD = 'bench';
const IPAM_DIR = `${BENCH_DIR}/cni/networks`;
// podman makes these outside its --root; removed at the end only if the bench made them.
const PODMAN_GLOBALS = ['/dev/shm/libpod_lock', '/var/lib/containers'];

const dirs = {
  stateDir: `${RUN}/nstool/sandboxes`,
  bundleDir: `${RUN}/nstool/bundles`,
  pinDir: `${RUN}/netns`,
  usernsPinDir: `${RUN}/nstool/userns`,
  ipcPinDir: `${RUN}/nstool/ipc`,
  utsPinDir: `${RUN}/nstool/uts`,
  cniCacheDir: `${BENCH_DIR}/cni`,
};
const PM = {
  root: `${BENCH_DIR}/containers/storage`,
  runroot: `${RUN}/containers/storage`,
  tmp: `${RUN}/libpod`,
  netConf: `${BENCH_DIR}/etc/cni/net.d`,
  conf: `${BENCH_DIR}/etc/containers/containers.conf`,
  storageConf: `${BENCH_DIR}/etc/containers/storage.conf`,
};


/** run.js's table, with podman as the reference column. */
function table(rows) {
  const head = ['benchmark', 'ops/s', 'spread', 'p50 us', 'p99 us', 'x podman'];
  const body = rows.map((r) => [
    r.name,
    r.opsPerSec.toFixed(r.opsPerSec < 100 ? 1 : 0),
    `${r.spreadPct.toFixed(0)}%`,
    r.p50us.toFixed(1),
    r.p99us.toFixed(1),
    r.reference ? '1.00' : r.ratioToPodman === undefined ? '-' : r.ratioToPodman.toFixed(2),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n');
}

// ---- podman -----------------------------------------------------------------

const onPath = (bin) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { stdio: 'ignore' }).status === 0;
// podman builds its pause image from catatonit in its helper dirs (Debian's package links it there).
const havePodman = () => onPath('podman') && existsSync('/usr/libexec/podman/catatonit');

function installPodman(say) {
  say('installing podman and catatonit (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'podman', 'catatonit'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (install().status !== 0) {
    execFileSync('apt-get', ['update', '-q'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (install().status !== 0) throw new Error('bench: apt-get install podman catatonit failed');
  }
}

/** Hard limit of RESOURCE ("Max open files") of this process. */
function hardLimit(resource) {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(resource));
  const v = line?.slice(26).trim().split(/\s+/)[1];
  return v && /^\d+$/.test(v) ? Number(v) : Infinity;
}

const tomlStr = (s) => JSON.stringify(s);

function writePodmanConfig(net) {
  for (const d of [PM.root, PM.runroot, PM.tmp, PM.netConf, path.dirname(PM.conf)]) mkdirSync(d, { recursive: true });
  // podman raises its own nproc limit (or falls back to 32768) and asks runc
  // to set the container's; without CAP_SYS_RESOURCE, runc may only lower a
  // limit, so ask for no more than this process (and podman) has.
  const nofile = Math.min(hardLimit('Max open files'), 1048576);
  const nproc = Math.min(hardLimit('Max processes'), 32768);
  writeFileSync(PM.conf, [
    '[containers]',
    `default_ulimits = [${tomlStr(`nofile=${nofile}:${nofile}`)}, ${tomlStr(`nproc=${nproc}:${nproc}`)}]`,
    '[network]',
    'network_backend = "cni"',
    `network_config_dir = ${tomlStr(PM.netConf)}`,
    'cni_plugin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]',
    '[engine]',
    // crun cannot run on a hybrid cgroup v1 layout; runc is what nstool drives too.
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "none"',
    `tmp_dir = ${tomlStr(PM.tmp)}`,
    `static_dir = ${tomlStr(`${PM.root}/libpod`)}`,
    `volume_path = ${tomlStr(`${PM.root}/volumes`)}`,
    '',
  ].join('\n'));
  writeFileSync(PM.storageConf, ['[storage]', 'driver = "overlay"', `runroot = ${tomlStr(PM.runroot)}`, `graphroot = ${tomlStr(PM.root)}`, ''].join('\n'));
  // The same plugin chain as nstool's network (bridge + host-local + loopback):
  // the figure compares the runtimes, not the plugins.
  writeFileSync(path.join(PM.netConf, `${net.name}.conflist`), JSON.stringify(net.list, null, 2) + '\n');
}

const podmanEnv = () => ({ ...process.env, CONTAINERS_CONF: PM.conf, CONTAINERS_STORAGE_CONF: PM.storageConf });

function podman(args, { check = true, node = NODE_PATH } = {}) {
  const argv = [...(node ? [`--net=${node}`] : []), '--', 'podman', '--root', PM.root, '--runroot', PM.runroot, '--storage-driver', 'overlay', ...args];
  const r = spawnSync('nsenter', argv, { env: podmanEnv(), encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20 });
  if (check && r.status !== 0) throw new Error(`bench: podman ${args.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  return r;
}

// ---- setup and cleanup ------------------------------------------------------

function network(name, bridge, octet, dataDir) {
  return {
    name,
    list: {
      cniVersion: '1.0.0',
      name,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet: `10.124.${octet}.0/24`, dataDir, routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'loopback' },
      ],
    },
  };
}

const unescapeMount = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
const mountsUnder = (dir) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => unescapeMount(l.split(' ')[4]))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
const netnsPins = () => {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
};

/** What exists before the bench runs, so cleanup removes only what it made. */
const before = { globals: PODMAN_GLOBALS.filter((p) => existsSync(p)), pins: new Set(netnsPins()) };
let usedPodman = false;

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};
/** Tags of other pod benches, by the node netns each makes: [tag, its pid is alive]. */
const otherRuns = () =>
  netnsPins()
    .map((n) => /^(nstool-bench-pod-(\d+))-node$/.exec(n))
    .filter((m) => m && Number(m[2]) !== process.pid)
    .map((m) => [m[1], alive(Number(m[2]))]);

/**
 * Removes everything the bench made; with stale, what a killed earlier run
 * left (its node netns names it). Synchronous: it also runs from an 'exit'
 * listener.
 */
function cleanup({ stale = false } = {}) {
  const errors = [];
  const attempt = (what, fn) => {
    try {
      fn();
    } catch (err) {
      errors.push(`${what}: ${err.message}`);
    }
  };
  const tags = stale ? otherRuns().map(([t]) => t) : [TAG];
  const nodes = tags.map((t) => `/run/netns/${t}-node`).filter((p) => existsSync(p));
  // podman's pods first, from the node netns their bridge lives in (CNI DEL runs there).
  if ((stale || usedPodman) && existsSync(PM.conf) && onPath('podman')) {
    attempt('podman pod rm', () => podman(['pod', 'rm', '--all', '--force'], { node: nodes[0] }));
  }
  // podman's pod netns pins (netns-<uuid>) that appeared during this run and outlived pod rm.
  if (usedPodman && !stale) {
    for (const n of netnsPins().filter((n) => !before.pins.has(n) && n.startsWith('netns-'))) attempt(`unpin ${n}`, () => native.unpinSync(`/run/netns/${n}`));
  }
  // nstool's pins, the pin dirs' own bind mounts and podman's storage mounts: deepest first.
  for (const m of mountsUnder(BENCH_DIR).sort((a, b) => b.length - a.length)) {
    attempt(`umount ${m}`, () => {
      while (native.unmountSync(m)) {
        // stacked mounts
      }
    });
  }
  for (const n of nodes) attempt(`ip netns del ${n}`, () => execFileSync('ip', ['netns', 'del', path.basename(n)], { stdio: 'ignore' }));
  let hierarchies = [];
  try {
    hierarchies = readdirSync('/sys/fs/cgroup').map((h) => `/sys/fs/cgroup/${h}`);
  } catch {
    // no cgroupfs
  }
  for (const t of tags) {
    for (const h of ['/sys/fs/cgroup', ...hierarchies]) {
      const top = `${h}/${t}`;
      if (existsSync(top)) attempt(`rmdir ${top}`, () => rmCgroup(top));
    }
  }
  if (usedPodman && !stale) for (const g of PODMAN_GLOBALS.filter((p) => !before.globals.includes(p))) attempt(`rm ${g}`, () => rmSync(g, { recursive: true, force: true }));
  attempt(`rm ${BENCH_DIR}`, () => rmSync(BENCH_DIR, { recursive: true, force: true }));
  for (const e of errors) console.error(`bench pod: cleanup: ${e}`);
  return errors.length === 0;
}

/** A cgroup dir and its children, deepest first (rmdir is how cgroupfs removes). */
function rmCgroup(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroup(path.join(dir, e.name));
  rmdirSync(dir);
}

// ---- the benchmark ----------------------------------------------------------

/**
 * Where an nstool cycle's time goes (--steps): CYCLES more cycles, untimed
 * for the table, with nstool's step and plugin channels subscribed. Each row
 * is the median time from the event before it to this one ("create netns
 * after": making the netns pin; "create userns before": the state write
 * before it, if any), and each plugin's run from spawn to exit.
 */
async function stepBreakdown(cycle, cycles) {
  let per;
  let last = 0;
  const mark = (label) => {
    const t = nowNs();
    per.set(label, (per.get(label) ?? 0) + t - last);
    last = t;
  };
  const onStep = (e) => mark(`${e.op} ${e.step} ${e.at}`);
  const plugins = dc.tracingChannel(CNI_PLUGIN);
  const onPlugin = {
    start: (c) => mark(`${c.command === 'ADD' ? 'create' : 'delete'} before plugin ${c.command} ${c.plugin}`),
    asyncEnd: (c) => mark(`plugin ${c.command} ${c.plugin}`),
  };
  dc.subscribe(SANDBOX_STEP, onStep);
  plugins.subscribe(onPlugin);
  const runs = [];
  try {
    for (let i = 0; i < cycles; i++) {
      per = new Map();
      last = nowNs();
      const t0 = last;
      await cycle.create();
      mark('create return');
      await cycle.remove();
      mark('delete return');
      per.set('CYCLE', nowNs() - t0);
      runs.push(per);
    }
  } finally {
    dc.unsubscribe(SANDBOX_STEP, onStep);
    plugins.unsubscribe(onPlugin);
  }
  const ms = (ns) => (ns / 1e6).toFixed(2).padStart(7);
  const rows = [...runs[0].keys()].map((k) => [k, median(runs.map((r) => r.get(k) ?? 0))]);
  const sum = (f) => rows.filter(([k]) => k !== 'CYCLE' && f(k)).reduce((a, [, v]) => a + v, 0);
  const plug = sum((k) => k.startsWith('plugin '));
  const lines = rows.filter(([k]) => k !== 'CYCLE').map(([k, v]) => `${ms(v)}  ${k}`);
  return [
    `where an nstool cycle goes (median ms of ${cycles} cycles, each row since the row above it):`,
    ...lines,
    `${ms(rows.find(([k]) => k === 'CYCLE')[1])}  the cycle: plugins ${ms(plug).trim()}, nstool's own ${ms(sum((k) => !k.startsWith('plugin '))).trim()}`,
  ].join('\n');
}


/**
 * Runs the pod benchmark; prints its table and returns its figures.
 * quick: CI's counts. Podman runs when installed (or with installPodman),
 * unless noPodman.
 */
export async function benchPod({
  quick = process.argv.includes('--quick'),
  install = process.argv.includes('--install-podman'),
  noPodman = process.argv.includes('--no-podman'),
  tmpfs = !process.argv.includes('--no-tmpfs'),
  steps = process.argv.includes('--steps'),
  say = (s) => process.stderr.write(`bench: ${s}\n`),
} = {}) {
  if (process.getuid?.() !== 0) throw new Error('bench pod: needs root');
  const N = quick ? { rounds: 3, nstool: 5, podman: 2 } : { rounds: 7, nstool: 10, podman: 5 };
  if (!noPodman && !havePodman() && install) installPodman(say);
  const withPodman = !noPodman && havePodman();
  const live = otherRuns().filter(([, a]) => a);
  if (live.length) throw new Error(`bench pod: another pod bench is running (${live.map(([t]) => t).join(', ')}); it shares ${BENCH_DIR}`);
  const onExit = () => cleanup();
  process.on('exit', onExit);
  try {
    cleanup({ stale: true });
    mkdirSync(RUN, { recursive: true, mode: 0o711 });
    if (tmpfs) execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0711,size=256m,nosuid,nodev', 'nstool-bench-run', RUN]);
    execFileSync('ip', ['netns', 'add', NODE]);
    execFileSync('ip', ['-n', NODE, 'link', 'set', 'lo', 'up']);
    const nsNet = network('nstoolbench', `nstb${process.pid % 1e6}`, 41, IPAM_DIR);
    const pmNet = network('podmanbench', `pmb${process.pid % 1e6}`, 42, IPAM_DIR);

    const nstool = {
      create: () => createSandbox({ id: POD, uidMap: MAP, network: { list: nsNet.list, nodeNetns: NODE_PATH }, ...dirs }),
      remove: () => deleteSandbox(POD, dirs),
    };
    const nstoolCycle = async () => {
      await nstool.create();
      await nstool.remove();
    };
    // The floor both share: the same plugins' ADD and DEL on a pod netns made once.
    const cniNet = network('cnibench', `cnib${process.pid % 1e6}`, 43, IPAM_DIR);
    const cniList = toNetworkList(cniNet.list);
    const cniPod = createPodNetnsSync({ name: 'cni', uidMap: MAP, pinDir: `${RUN}/cni/netns`, usernsPinDir: `${RUN}/cni/userns` });
    const cniRt = { containerId: 'nstool-bench-cni', netns: cniPod.path, ifName: 'eth0' };
    const cniOpts = { nodeNetns: NODE_PATH, cacheDir: `${BENCH_DIR}/cni` };
    const cniCycle = async () => {
      await addNetwork(cniList, cniRt, cniOpts);
      await delNetwork(cniList, cniRt, cniOpts);
    };

    const steps = { create: [], start: [], rm: [] };
    let retriedCycles = 0;
    const podmanCycle = () => {
      const t0 = nowNs();
      podman(['pod', 'create', '--name', POD, '--uidmap', MAP, '--gidmap', MAP, '--network', pmNet.name, '--cgroup-parent', CGROUP_PARENT]);
      const t1 = nowNs();
      podman(['pod', 'start', POD]);
      const t2 = nowNs();
      // podman 4.3's rm races its own cleanup process now and then (unlinkat
      // userdata/shm: EBUSY, a known podman flake). It is retried, and the
      // cycle not counted: the reference is podman's time when it works.
      let tries = 1;
      while (podman(['pod', 'rm', '--force', POD], { check: tries === 3 }).status !== 0) tries++;
      const t3 = nowNs();
      if (tries > 1) {
        retriedCycles++;
        return undefined;
      }
      steps.create.push(t1 - t0);
      steps.start.push(t2 - t1);
      steps.rm.push(t3 - t2);
      return t3 - t0;
    };

    if (withPodman) {
      usedPodman = true;
      writePodmanConfig(pmNet);
      say(`pod up+down: podman ${podman(['--version']).stdout.trim().split(' ').at(-1)} (its first pod builds the pause image)`);
    } else {
      say(`pod up+down: ${noPodman ? 'podman skipped (--no-podman)' : 'podman not installed, nstool only (--install-podman to compare)'}`);
    }
    // One untimed cycle each: podman builds its pause image, both warm the page cache.
    await nstoolCycle();
    await cniCycle();
    if (withPodman) {
      podmanCycle();
      for (const k of Object.keys(steps)) steps[k] = [];
      retriedCycles = 0;
    }

    const pm = new Series('podman pod create+start+rm -f (infra, --uidmap, CNI bridge)');
    const ns = new Series('nstool createSandbox+deleteSandbox (no pause, CNI bridge)');
    const cni = new Series('  of which the floor: CNI ADD+DEL alone (both run these)');
    // N.nstool timed cycles of CYCLE, as one round of SERIES.
    const timed = (series, cycle) => async () => {
      const lat = [];
      for (let i = 0; i < N.nstool; i++) {
        const t0 = nowNs();
        await cycle();
        lat.push(nowNs() - t0);
      }
      series.addRound(lat);
    };
    // The three blocks take turns at going first: whatever one leaves the
    // kernel to finish (a netns torn down in a worker, cgroups, mounts)
    // lands on the next, so no row always follows the same other.
    const blocks = [
      withPodman && (() => {
        const lat = [];
        while (lat.length < N.podman) {
          const t = podmanCycle();
          if (t !== undefined) lat.push(t);
          else if (retriedCycles > 10 * N.rounds) throw new Error('bench: podman pod rm keeps failing (EBUSY)');
        }
        pm.addRound(lat);
      }),
      timed(ns, nstoolCycle),
      timed(cni, cniCycle),
    ].filter(Boolean);
    for (let r = 0; r < N.rounds; r++) {
      for (let b = 0; b < blocks.length; b++) await blocks[(r + b) % blocks.length]();
    }
    await deletePodNetns(cniPod.path);
    const breakdown = steps ? await stepBreakdown(nstool, quick ? 5 : 20) : undefined;

    const rows = withPodman ? [{ ...pm.summary(), reference: true }, ns.summary(pm, 'ratioToPodman'), cni.summary(pm, 'ratioToPodman')] : [ns.summary(), cni.summary()];
    const result = { counts: N, run: tmpfs ? 'tmpfs' : 'disk', podman: withPodman ? 'measured' : noPodman ? 'skipped' : 'not installed', rows };
    console.log(`\n${table(rows)}`);
    if (withPodman) {
      const ms = (xs) => (median(xs) / 1e6).toFixed(1);
      result.podmanStepsMs = { create: median(steps.create) / 1e6, start: median(steps.start) / 1e6, rm: median(steps.rm) / 1e6 };
      result.podmanCyclesRetried = retriedCycles;
      const ratio = rows[1].ratioToPodman;
      result.target = { maxRatio: 0.2, ratio, met: ratio <= 0.2 };
      console.log(`podman per step (median ms): pod create ${ms(steps.create)}, pod start ${ms(steps.start)}, pod rm -f ${ms(steps.rm)}` +
        (retriedCycles ? `; ${retriedCycles} cycle(s) not counted: pod rm hit podman's EBUSY flake and was retried` : ''));
      console.log(`target: nstool pod up+down ${ratio.toFixed(2)}x podman (<= 0.2) ${ratio <= 0.2 ? 'met' : 'MISSED'}`);
    } else {
      console.log(`target: nstool pod up+down vs podman: not measured (podman ${result.podman})`);
    }
    if (breakdown) console.log(`\n${breakdown}`);
    return result;
  } finally {
    process.off('exit', onExit);
    const clean = cleanup();
    const left = mountsUnder(BENCH_DIR);
    if (!clean || left.length || existsSync(NODE_PATH)) console.error(`bench pod: left behind: ${[...left, ...(existsSync(NODE_PATH) ? [NODE_PATH] : [])].join(', ') || 'see above'}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.on('SIGINT', () => process.exit(130));
  try {
    const result = await benchPod();
    // The pod rows go into latest.json next to run.js's, with a date of their own.
    const file = path.join(here, 'results/latest.json');
    let latest = {};
    try {
      latest = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // no earlier run
    }
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ ...latest, pod: { when: new Date().toISOString(), ...result } }, null, 2) + '\n');
  } catch (err) {
    process.exitCode = 1;
    console.error(err);
  }
}
