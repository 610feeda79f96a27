#!/usr/bin/env node
// nstool benchmarks. Every figure is measured in several rounds and set
// against a C program doing the same syscalls, built and run in the same
// process of measurement, so the ratio means something on a noisy machine.
//
//   node bench/run.js [--quick]      (needs root, `npx tsc -p .` built dist/)
//
// Prints one table and writes bench/results/latest.json. Everything is made
// under /run/nstool-bench (pin dir /run/nstool-bench/netns), and removed at
// the end, even on failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchPod } from './pod.js';
import { median, nowNs, pct, Series } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { native } = await import(path.join(root, 'dist/native.js'));
const { createPodNetns, createPodNetnsSync, deletePodNetns, deletePodNetnsSync } = await import(path.join(root, 'dist/netns.js'));
const { closeIdAllocator, idAllocStats } = await import(path.join(root, 'dist/idalloc.js'));

const quick = process.argv.includes('--quick');
// Only the CLI startup row: no root, and nothing under /run/nstool-bench is touched.
const startupOnly = process.argv.includes('--startup');
// Only the create rows and the public API lines (for work on the create path).
const createOnly = process.argv.includes('--create');
// BENCH_DIR is a tmpfs of its own, as /run is on most machines. On a disk
// /run (ext4 without a journal, as on the development machines) making a
// file costs more the more files were deleted in its block group in the
// last minutes (ext4 skips recently freed inodes, reading each one's
// table entry): 0 to 250 us per pin there, depending on what other
// processes did before, for C and nstool alike. --no-tmpfs measures there.
const tmpfs = !process.argv.includes('--no-tmpfs');
const N = quick
  ? { rounds: 3, pin: 300, ip: 5, create: 100, scale: [10, 100], loopCreates: 200, memory: 1000, startup: 10 }
  : { rounds: 7, pin: 2000, ip: 20, create: 500, scale: [10, 100, 1000], loopCreates: 1000, memory: 10000, startup: 20 };

const BENCH_DIR = '/run/nstool-bench';
const PIN_DIR = `${BENCH_DIR}/netns`;
const USERNS_DIR = `${BENCH_DIR}/userns`;
// The C reference's own pin dir for the auto rows: its pins are no pods of the allocator's.
const REF_DIR = `${BENCH_DIR}/ref`;
const ALLOC_DIR = `${BENCH_DIR}/idalloc`;
const AUTO = { uidMap: 'auto', autoRange: '2147483648:2147418112', pinDir: PIN_DIR, usernsPinDir: USERNS_DIR, allocDir: ALLOC_DIR };
const DIRS = { pinDir: PIN_DIR, usernsPinDir: USERNS_DIR, allocDir: ALLOC_DIR };
const IP_PREFIX = `nstool-bench-${process.pid}`;
const MAP_TEXT = '0 100000 65536\n';
// Untimed cycles of each create variant before its rounds.
const WARMUP = 20;
const REF_SRC = path.join(here, 'ref/nsref.c');
const REF_BIN = path.join(here, 'ref/bin/nsref');

// ---- measuring ----------------------------------------------------------

function timeSync(n, fn) {
  const lat = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = nowNs();
    fn(i);
    lat[i] = nowNs() - t0;
  }
  return lat;
}

async function timeAsync(n, fn) {
  const lat = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = nowNs();
    await fn(i);
    lat[i] = nowNs() - t0;
  }
  return lat;
}

function runRef(args) {
  const out = execFileSync(REF_BIN, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out.trim().split(' ').map(Number);
}

const fdCount = () => readdirSync('/proc/self/fd').length - 1;
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

// ---- setup and cleanup ------------------------------------------------------

function buildRef() {
  mkdirSync(path.dirname(REF_BIN), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-o', REF_BIN, REF_SRC], { stdio: 'inherit' });
}

function cleanup() {
  for (const dir of [PIN_DIR, USERNS_DIR, REF_DIR]) {
    let entries = [];
    try {
      entries = readdirSync(dir);
    } catch {
      // never made
    }
    for (const e of entries) {
      try {
        native.unpinSync(path.join(dir, e));
      } catch (err) {
        console.error(`bench: could not remove ${e}: ${err.message}`);
      }
    }
  }
  try {
    for (const e of readdirSync('/run/netns').filter((n) => n.startsWith(IP_PREFIX))) native.unpinSync(`/run/netns/${e}`);
  } catch {
    // no /run/netns
  }
  try {
    for (const dir of [PIN_DIR, USERNS_DIR, REF_DIR, BENCH_DIR]) {
      while (native.unmountSync(dir)) {
        // the pin dir's own bind mount(s); the tmpfs
      }
    }
    rmSync(BENCH_DIR, { recursive: true, force: true });
  } catch (err) {
    console.error(`bench: could not remove ${BENCH_DIR}: ${err.message}`);
  }
}

// ---- the benchmarks ---------------------------------------------------------

async function benchPin(src) {
  const c = new Series('C: open O_EXCL+mount+umount2+unlink');
  const sync = new Series('nstool pinSync+unpinSync');
  const async_ = new Series('nstool pin+unpin (async)');
  const ip = new Series('ip netns attach+del');
  const t = `${PIN_DIR}/p`;
  for (let r = 0; r < N.rounds; r++) {
    c.addRound(runRef(['pin', PIN_DIR, src, String(N.pin)]));
    sync.addRound(timeSync(N.pin, () => {
      native.pinSync(src, t);
      native.unpinSync(t);
    }));
    async_.addRound(await timeAsync(N.pin, async () => {
      await native.pin(src, t);
      await native.unpin(t);
    }));
    ip.addRound(timeSync(N.ip, (i) => {
      const name = `${IP_PREFIX}-${i}`;
      execFileSync('ip', ['netns', 'attach', name, String(process.pid)]);
      execFileSync('ip', ['netns', 'del', name]);
    }));
  }
  return [c.summary(), sync.summary(c), async_.summary(c), ip.summary(c)];
}

// The public API rows run before the auto rows: no allocator in use yet,
// as on a node that uses explicit maps only. Each public row has a native
// twin (the same sync/async shape), so what the TS layer adds reads off
// as the ratio of the two. The order of the variants turns by one each
// round: creating a file on a disk /run (ext4 without a journal, as on the
// development machines) costs more the more files were deleted there in
// the last minutes, so a fixed order would charge the later rows more.
async function benchCreate() {
  const t = `${PIN_DIR}/c`;
  const params = { uidMap: MAP_TEXT, gidMap: MAP_TEXT, setgroups: 'allow', netnsPin: t };
  const opts = { name: 'api', uidMap: '0:100000:65536', ...DIRS };
  const c = new Series('C: clone+maps+pin+kill+reap+unpin');
  const cpu = new Series('C, the helper on the caller\'s CPU (as nstool)');
  // The third element: a few untimed cycles first (the first calls compile
  // the functions on the path and, for the public API, set up its dirs).
  const sync = (name, fn) => {
    const s = new Series(name);
    return [s, async () => s.addRound(timeSync(N.create, fn)), async () => timeSync(WARMUP, fn)];
  };
  const async_ = (name, fn) => {
    const s = new Series(name);
    return [s, async () => s.addRound(await timeAsync(N.create, fn)), () => timeAsync(WARMUP, fn)];
  };
  const variants = [
    [c, async () => c.addRound(runRef(['create', PIN_DIR, String(N.create)])), async () => runRef(['create', PIN_DIR, String(WARMUP)])],
    sync('nstool createUsernsNetnsSync+unpinSync', () => {
      native.createUsernsNetnsSync(params);
      native.unpinSync(t);
    }),
    async_('nstool createUsernsNetnsSync+unpin (async)', async () => {
      native.createUsernsNetnsSync(params);
      await native.unpin(t);
    }),
    async_('nstool createUsernsNetns+unpin (async)', async () => {
      await native.createUsernsNetns(params);
      await native.unpin(t);
    }),
    sync('public API: createPodNetnsSync+deletePodNetnsSync', () => {
      createPodNetnsSync(opts);
      deletePodNetnsSync('api', DIRS);
    }),
    async_('public API: createPodNetnsSync+deletePodNetns', async () => {
      createPodNetnsSync(opts);
      await deletePodNetns('api', DIRS);
    }),
    async_('public API: createPodNetns+deletePodNetns', async () => {
      await createPodNetns(opts);
      await deletePodNetns('api', DIRS);
    }),
    // The reference with the one trick nstool's core plays on it: the
    // helper started on the caller's CPU. Not the target's reference; the
    // public rows are also given against it, so what the core gains there
    // does not hide what the layers above it cost.
    [cpu, async () => cpu.addRound(runRef(['create-cpu', PIN_DIR, String(N.create)])), async () => runRef(['create-cpu', PIN_DIR, String(WARMUP)])],
  ];
  for (const [, , warm] of variants) await warm();
  for (let r = 0; r < N.rounds; r++) {
    for (let i = 0; i < variants.length; i++) await variants[(i + r) % variants.length][1]();
  }
  const rows = variants.map(([s], i) => (i === 0 ? s.summary() : { ...s.summary(c), pairedRatioToC: pairedRatio(s, c) }));
  // Each public row against its native twin (sync, mixed, async).
  for (let i = 4; i < 7; i++) {
    rows[i].ratioToNative = rows[i].ratioToC / rows[i - 3].ratioToC;
    rows[i].pairedRatioToNative = pairedRatio(variants[i][0], variants[i - 3][0]);
    rows[i].pairedRatioToCpuRef = pairedRatio(variants[i][0], cpu);
  }
  return rows;
}

// The median over rounds of (S's cost per cycle / REF's in the same round).
// Rounds are interleaved, so each round's pair saw the same load; a burst
// of load in one round moves that round's ratio only, where the ratio of
// the two medians can set S's median from one round against REF's from
// another.
function pairedRatio(s, ref) {
  return median(s.roundOps.map((ops, r) => ref.roundOps[r] / ops));
}

// uidMap 'auto' with K pods present (each an auto pod of its own block):
// the allocator must not cost more per create as pods add up. The C
// reference makes the same cycle in a pin dir of its own, so both see the
// same number of mounts.
async function benchAuto() {
  const rows = [];
  let present = 0;
  const perK = [];
  for (const k of N.scale) {
    for (; present < k; present++) createPodNetnsSync({ name: `pod-${present}`, ...AUTO });
    const c = new Series(`C create cycle, ${k} pods present`);
    const auto = new Series(`auto create+delete (sync), ${k} pods present`);
    const expl = new Series(`explicit create+delete, allocator in use, ${k} pods`);
    const before = idAllocStats(ALLOC_DIR);
    for (let r = 0; r < N.rounds; r++) {
      c.addRound(runRef(['create', REF_DIR, String(N.create)]));
      auto.addRound(timeSync(N.create, () => {
        createPodNetnsSync({ name: 'auto', ...AUTO });
        deletePodNetnsSync('auto', DIRS);
      }));
      expl.addRound(timeSync(N.create, () => {
        createPodNetnsSync({ name: 'expl', uidMap: '0:100000:65536', ...DIRS });
        deletePodNetnsSync('expl', DIRS);
      }));
    }
    const after = idAllocStats(ALLOC_DIR);
    const a = auto.summary(c);
    perK.push({ pods: k, autoUs: 1e6 / a.opsPerSec, autoRatioToC: a.ratioToC, rescans: after.rescans - before.rescans, mapReads: after.mapReads - before.mapReads });
    rows.push(c.summary(), a, expl.summary(c));
  }
  for (let i = 0; i < present; i++) deletePodNetnsSync(`pod-${i}`, DIRS);
  await closeIdAllocator();
  return { rows, perK };
}

async function benchScaling(src) {
  const rows = [];
  const t = `${PIN_DIR}/s`;
  let present = 0;
  for (const k of N.scale) {
    for (; present < k; present++) native.pinSync(src, `${PIN_DIR}/fill-${present}`);
    const c = new Series(`C pin cycle, ${k} pins present`);
    const sync = new Series(`nstool pin cycle, ${k} pins present`);
    for (let r = 0; r < N.rounds; r++) {
      c.addRound(runRef(['pin', PIN_DIR, src, String(N.pin)]));
      sync.addRound(timeSync(N.pin, () => {
        native.pinSync(src, t);
        native.unpinSync(t);
      }));
    }
    rows.push(c.summary(), sync.summary(c));
  }
  for (let i = 0; i < present; i++) native.unpinSync(`${PIN_DIR}/fill-${i}`);
  return rows;
}

// CLI startup: `nstool --version` and `--help` against `node -e 0`, the
// reference here (its column is "x node"), spawned alternately so drift hits all three.
function benchStartup() {
  const bin = path.join(root, 'bin/nstool.js');
  const variants = [
    new Series('startup: node -e 0'),
    new Series('startup: nstool --version'),
    new Series('startup: nstool --help'),
  ];
  const argvs = [['-e', '0'], [bin, '--version'], [bin, '--help']];
  for (let r = 0; r < N.rounds; r++) {
    const lat = variants.map(() => []);
    for (let i = 0; i < N.startup; i++) {
      for (const [k, argv] of argvs.entries()) {
        const t0 = nowNs();
        const p = spawnSync(process.execPath, argv, { stdio: 'ignore' });
        lat[k].push(nowNs() - t0);
        if (p.status !== 0) throw new Error(`bench: node ${argv.join(' ')} exited ${p.status}`);
      }
    }
    variants.forEach((v, k) => v.addRound(lat[k]));
  }
  return variants.map((v, k) => v.summary(k === 0 ? undefined : variants[0]));
}

// The loop's own noise on this machine, measured over the same span with
// nothing running, is the reference the delays under load compare to.
async function idleLoopDelay(ms) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await new Promise((r) => setTimeout(r, ms));
  h.disable();
  return { max: h.max / 1e6, p99: h.percentile(99) / 1e6 };
}

async function benchEventLoop() {
  const maxes = [];
  const p99s = [];
  const idleMax = [];
  const idleP99 = [];
  for (let r = 0; r < Math.min(N.rounds, 3); r++) {
    const h = monitorEventLoopDelay({ resolution: 1 });
    const names = Array.from({ length: N.loopCreates }, (_, i) => `loop-${i}`);
    const t0 = nowNs();
    h.enable();
    await Promise.all(names.map((name) => createPodNetns({ name, uidMap: '0:100000:65536', pinDir: PIN_DIR })));
    h.disable();
    const spanMs = (nowNs() - t0) / 1e6;
    await Promise.all(names.map((name) => deletePodNetns(name, { pinDir: PIN_DIR })));
    maxes.push(h.max / 1e6);
    p99s.push(h.percentile(99) / 1e6);
    const idle = await idleLoopDelay(spanMs);
    idleMax.push(idle.max);
    idleP99.push(idle.p99);
  }
  return {
    creates: N.loopCreates,
    rounds: maxes.length,
    maxDelayMs: maxes,
    medianMaxDelayMs: median(maxes),
    medianP99DelayMs: median(p99s),
    idleMaxDelayMs: idleMax,
    medianIdleMaxDelayMs: median(idleMax),
    medianIdleP99DelayMs: median(idleP99),
  };
}

function benchMemory(src) {
  const t = `${PIN_DIR}/m`;
  const points = [{ cycles: 0, rssMiB: rssMiB(), fds: fdCount() }];
  for (let block = 1; block <= 3; block++) {
    for (let i = 0; i < N.memory; i++) {
      native.pinSync(src, t);
      native.unpinSync(t);
    }
    points.push({ cycles: block * N.memory, rssMiB: rssMiB(), fds: fdCount() });
  }
  return points;
}

// ---- report -----------------------------------------------------------------

function table(rows) {
  const head = ['benchmark', 'ops/s', 'spread', 'p50 us', 'p99 us', 'x C'];
  const body = rows.map((r) => [
    r.name,
    r.opsPerSec.toFixed(0),
    `${r.spreadPct.toFixed(0)}%`,
    r.p50us.toFixed(1),
    r.p99us.toFixed(1),
    r.ratioToC === undefined ? '1.00' : r.ratioToC.toFixed(2),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n');
}

const startupTargets = (rows) =>
  rows.slice(1).map((s) => `${s.name.slice('startup: '.length)} ${s.ratioToC.toFixed(2)}x node -e 0 (<= 1.3) ${s.ratioToC <= 1.3 ? 'met' : 'MISSED'}`).join('; ');

// The p50 ratio next to it: on a busy machine a few slow cycles move the
// ops/s of a round, not its p50; and the paired ratio (median of the
// rounds' own ratios), which a burst of load in one round does not move.
function publicLines(create) {
  const out = ['public API create+delete, target <= 1.10x C each (x native: against its native twin, what the TS layer adds; C-cpu: the last row):'];
  for (const [row, what] of [[4, 'sync pair  '], [5, 'mixed pair '], [6, 'async pair ']]) {
    const r = create[row], twin = create[row - 3], cRow = create[0];
    out.push(`  ${what} ${r.ratioToC.toFixed(2)}x C ${r.ratioToC <= 1.1 ? 'met   ' : 'MISSED'}  ` +
      `${r.ratioToNative.toFixed(2)}x native;  paired ${r.pairedRatioToC.toFixed(2)}x C ${r.pairedRatioToC <= 1.1 ? 'met   ' : 'MISSED'} ` +
      `${r.pairedRatioToNative.toFixed(2)}x native ${r.pairedRatioToCpuRef.toFixed(2)}x C-cpu;  ` +
      `p50 ${r.p50us.toFixed(0)} us = ${(r.p50us / cRow.p50us).toFixed(2)}x C's, ${(r.p50us / twin.p50us).toFixed(2)}x the twin's, ${(r.p50us / create[7].p50us).toFixed(2)}x C-cpu's`);
  }
  return out.join('\n');
}

// The bench's own dir (a tmpfs unless --no-tmpfs) and pin dir, and the C reference built.
function setUp() {
  if (process.getuid?.() !== 0) throw new Error('bench: needs root (pins are bind mounts)');
  buildRef();
  cleanup();
  mkdirSync(BENCH_DIR, { recursive: true });
  if (tmpfs) execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=64m,nosuid,nodev', 'nstool-bench', BENCH_DIR]);
  native.ensurePinDirSync(PIN_DIR);
}

// Only the create rows (--create): the same set-up, one table, no results file.
async function mainCreate() {
  setUp();
  const create = await benchCreate();
  console.log(table(create));
  console.log(publicLines(create));
}

function mainStartup() {
  const rows = benchStartup();
  console.log(table(rows));
  console.log(`targets: ${startupTargets(rows)}`);
}

async function main() {
  setUp();
  native.ensurePinDirSync(REF_DIR);
  // The namespace pinned over and over: a pod netns of the bench's own.
  const src = createPodNetnsSync({ name: 'src', uidMap: '0:100000:65536', pinDir: PIN_DIR }).path;

  const result = {
    when: new Date().toISOString(),
    quick,
    run: tmpfs ? 'tmpfs' : 'disk',
    host: { kernel: os.release(), node: process.version, cpus: os.cpus().length, model: os.cpus()[0]?.model },
    counts: N,
  };
  const say = (s) => process.stderr.write(`bench: ${s}\n`);
  say('pin/unpin');
  result.pin = await benchPin(src);
  say('create pod netns');
  result.create = await benchCreate();
  say('scaling');
  result.scaling = await benchScaling(src);
  say('auto ids');
  result.auto = await benchAuto();
  say('event loop');
  result.eventLoop = await benchEventLoop();
  say('memory');
  result.memory = benchMemory(src);
  say('cli startup');
  result.startup = benchStartup();

  console.log(table([...result.pin, ...result.create, ...result.scaling, ...result.auto.rows, ...result.startup]));
  const el = result.eventLoop;
  console.log(`\nevent loop during ${el.creates} concurrent async creates: max delay ${el.maxDelayMs.map((x) => x.toFixed(2)).join(', ')} ms ` +
    `(median ${el.medianMaxDelayMs.toFixed(2)}, target < 5; p99 ${el.medianP99DelayMs.toFixed(2)}); ` +
    `idle loop over the same span: max ${el.idleMaxDelayMs.map((x) => x.toFixed(2)).join(', ')} ms, p99 ${el.medianIdleP99DelayMs.toFixed(2)}`);
  console.log(`memory over ${result.memory.at(-1).cycles} pin/unpin cycles: ` +
    result.memory.map((p) => `${p.cycles}: ${p.rssMiB.toFixed(1)} MiB / ${p.fds} fds`).join('  ->  '));
  const syncPin = result.pin[1].ratioToC, syncCreate = result.create[1].ratioToC;
  const ak = result.auto.perK, first = ak[0], last = ak[ak.length - 1];
  const autoGrowth = last.autoRatioToC / first.autoRatioToC;
  console.log(`auto ids: ${ak.map((p) => `${p.pods} pods: ${p.autoUs.toFixed(0)} us/cycle (${p.autoRatioToC.toFixed(2)}x C), ${p.rescans} dir reads, ${p.mapReads} map reads`).join('; ')}`);
  console.log(publicLines(result.create));
  const api = result.create.slice(4, 7);
  console.log(`targets: pin sync ${syncPin.toFixed(2)}x C (<= 1.15) ${syncPin <= 1.15 ? 'met' : 'MISSED'}; ` +
    `create sync ${syncCreate.toFixed(2)}x C (<= 1.3) ${syncCreate <= 1.3 ? 'met' : 'MISSED'}; ` +
    `public API create+delete ${api.map((r) => r.ratioToC.toFixed(2)).join(' / ')}x C sync / mixed / async (<= 1.10) ${api.every((r) => r.ratioToC <= 1.1) ? 'met' : 'MISSED'}; ` +
    `auto with ${last.pods} pods ${autoGrowth.toFixed(2)}x its cost with ${first.pods}, against C (<= 1.5) ${autoGrowth <= 1.5 ? 'met' : 'MISSED'}; ` +
    startupTargets(result.startup));

  result.pod = await benchPod({ quick, say });

  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results/latest.json'), JSON.stringify(result, null, 2) + '\n');
}

process.on('SIGINT', () => {
  if (!startupOnly) cleanup();
  process.exit(130);
});
try {
  if (startupOnly) mainStartup();
  else if (createOnly) await mainCreate();
  else await main();
} catch (err) {
  process.exitCode = 1;
  console.error(err);
} finally {
  if (!startupOnly) cleanup();
}
