// Hook mode against a hostile pod: annotations that name another pod's netns
// (or the node's), a FIFO where a netns should be, a huge annotation, and a
// post-stop that must never fail. Each case is the attack, run through the
// command line as the runtime runs it, with real plugins in a test node netns.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { PodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeName, makeNodeNetns, makePodNetns, makeTempDir, NodeNetns, removePodNetns, removeTempDir, testSubnet } from '../helpers/node-netns.js';

const P = testPrefix('sechook');
trackLeaks(P, { extraDirs: [tmpdir()] });

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `nstool ARGV` in this process, exactly as bin/nstool.js runs it, with STDIN as the hook's stdin. */
async function nstool(argv: string[], stdin: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s), readStdin: async () => stdin };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** The error code a --json run printed on stdout. */
function errorCode(r: Run): string | undefined {
  try {
    return (JSON.parse(r.stdout) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** `ip -o addr` inside a netns: every interface and address, one line each. */
function addrsIn(netns: string): string {
  return execFileSync('nsenter', [`--net=${netns}`, 'ip', '-o', 'addr', 'show'], { encoding: 'utf8' });
}

async function waitForSleep(child: ChildProcess): Promise<number> {
  const pid = child.pid!;
  // Bounded wait until nsenter/unshare has exec'd sleep in its netns.
  for (let i = 0; i < 300 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
  expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('sleep');
  return pid;
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

describeRoot('hook mode: no annotation reaches another pod', () => {
  let node: NodeNetns | undefined;
  let podA: PodNetns | undefined;
  let tmp: string | undefined;
  let inA: ChildProcess | undefined; // a process in pod A's netns: A's container
  let inB: ChildProcess | undefined; // container B, in a netns of its own
  let pidA = 0;
  let pidB = 0;
  let conflist: string;
  let ipamDir: string;
  const sn = testSubnet();
  const netName = `${P}-net`;
  const ipFiles = () => (existsSync(path.join(ipamDir, netName)) ? readdirSync(path.join(ipamDir, netName)).filter((f) => f.startsWith(sn.base)).sort() : []);
  const idsHeld = () => ipFiles().map((f) => readFileSync(path.join(ipamDir, netName, f), 'utf8').split(/\r?\n/)[0]);
  const hook = (stage: string, ...flags: string[]) => ['hook', stage, '--json', '--node-netns', node!.path, '--cache-dir', path.join(tmp!, 'cache'), '--conflist', conflist, ...flags];
  const state = (id: string, pid: number | undefined, annotations: Record<string, string>) => JSON.stringify({ ociVersion: '1.0.2', id, ...(pid ? { pid } : {}), annotations });

  beforeAll(async () => {
    tmp = makeTempDir(P);
    ipamDir = path.join(tmp, 'ipam');
    const list = {
      cniVersion: '1.0.0',
      name: netName,
      plugins: [
        { type: 'bridge', bridge: bridgeName(), isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: sn.subnet }]], dataDir: ipamDir } },
        { type: 'loopback' },
      ],
    };
    conflist = path.join(tmp, 'net.conflist');
    writeFileSync(conflist, JSON.stringify(list));
    node = makeNodeNetns(P);
    podA = await makePodNetns(P, 'a');
    inA = spawn('nsenter', [`--net=${podA.path}`, 'sleep', '120'], { stdio: 'ignore' });
    pidA = await waitForSleep(inA);
    inB = spawn('unshare', ['--net', 'sleep', '120'], { stdio: 'ignore' });
    pidB = await waitForSleep(inB);
    // Pod A gets its network through the hook, naming its own pin.
    const r = await nstool(hook('create-runtime', '--result', path.join(tmp, 'a.json')), state(`${P}-a`, pidA, { 'nstool.netns': podA.path }));
    expect(r.code, r.stderr).toBe(0);
    expect(addrsIn(podA.path)).toContain(`inet ${sn.base}`);
    expect(idsHeld()).toEqual([`${P}-a`]);
  });

  afterAll(async () => {
    await kill(inA);
    await kill(inB);
    if (node && podA && tmp) await nstool(hook('post-stop'), state(`${P}-a`, undefined, {}));
    await removePodNetns(podA);
    node?.remove();
    removeTempDir(tmp);
  });

  it('(a) create-runtime refuses an annotated netns that is another pod\'s pin, the node\'s, or a link to one; nothing runs', async () => {
    const aBefore = addrsIn(podA!.path);
    const nodeBefore = addrsIn(node!.path);
    const links = path.join(tmp!, 'links');
    mkdirSync(links);
    symlinkSync(podA!.path, path.join(links, 'a'));
    const cases: [Record<string, string>, string[]][] = [
      [{ 'nstool.netns': podA!.path }, []],
      [{ 'nstool.netns': podA!.path, 'nstool.cni.ifname': 'eth1' }, []],
      [{ 'nstool.netns': node!.path }, []],
      [{ 'nstool.netns': path.join(links, 'a'), 'nstool.cni.ifname': 'eth1' }, ['--netns-pin-dir', links]],
    ];
    for (const [annotations, extra] of cases) {
      for (const pid of [pidB, undefined]) {
        const r = await nstool(hook('create-runtime', ...extra), state(`${P}-b`, pid, annotations));
        const what = `${JSON.stringify(annotations)} pid ${pid}`;
        expect(r.code, what).toBe(1);
        expect(errorCode(r), what).toBe('ERR_NSTOOL_HOOK_SETTING');
        expect(addrsIn(podA!.path), what).toBe(aBefore);
        expect(addrsIn(node!.path), what).toBe(nodeBefore);
        expect(idsHeld(), what).toEqual([`${P}-a`]);
      }
    }
  });

  it('(b) post-stop with another pod\'s pin annotated changes nothing there, with or without an ADD before', async () => {
    const aBefore = addrsIn(podA!.path);
    for (const pid of [pidB, undefined]) {
      for (const ifname of ['eth0', 'eth1']) {
        const r = await nstool(hook('post-stop'), state(`${P}-b`, pid, { 'nstool.netns': podA!.path, 'nstool.cni.ifname': ifname }));
        expect(r.code, r.stderr).toBe(0);
        expect(addrsIn(podA!.path)).toBe(aBefore);
        expect(idsHeld()).toEqual([`${P}-a`]);
      }
    }
    // B networked in its own netns; its post-stop state then names A: the record made at ADD decides.
    const add = await nstool(hook('create-runtime'), state(`${P}-b`, pidB, {}));
    expect(add.code, add.stderr).toBe(0);
    expect(idsHeld().sort()).toEqual([`${P}-a`, `${P}-b`].sort());
    const del = await nstool(hook('post-stop'), state(`${P}-b`, undefined, { 'nstool.netns': podA!.path }));
    expect(del.code, del.stderr).toBe(0);
    expect(addrsIn(podA!.path)).toBe(aBefore);
    expect(addrsIn(`/proc/${pidB}/ns/net`)).not.toContain(sn.base);
    expect(idsHeld()).toEqual([`${P}-a`]);
  });

  it('(c) a FIFO where the netns should be fails fast with a typed error, named by annotation or flag', () => {
    const dir = path.join(tmp!, 'fifos');
    mkdirSync(dir);
    const fifo = path.join(dir, 'ns');
    execFileSync('mkfifo', [fifo]);
    // Annotated, it is refused before anything runs; given by (trusted) flag, it is found to be no netns.
    const runs: [string[], Record<string, string>, number | undefined, string][] = [
      [['--netns-pin-dir', dir], { 'nstool.netns': fifo }, pidB, 'ERR_NSTOOL_HOOK_SETTING'],
      [['--netns', fifo], {}, pidB, 'EINVAL'],
    ];
    for (const [flags, annotations, pid, code] of runs) {
      // The CLI as the runtime runs it, killed if it does not end on its own.
      const r = spawnSync(process.execPath, [BIN, ...hook('create-runtime', ...flags)], { input: state(`${P}-c`, pid, annotations), encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
      const what = `${flags.join(' ')} ${JSON.stringify(annotations)}`;
      expect(r.signal, what).toBe(null);
      expect(r.status, `${what}: ${r.stderr}`).toBe(1);
      expect(errorCode({ code: 1, stdout: r.stdout, stderr: r.stderr }), what).toBe(code);
    }
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(idsHeld()).toEqual([`${P}-a`]);
  });

  it('(d) a 20 MB annotation is not echoed: the hook\'s output stays under a few KB', async () => {
    const big = 'x'.repeat(20 * 1024 * 1024);
    const cases: Record<string, string>[] = [
      { 'nstool.netns': big },
      { 'nstool.netns': `/run/netns/${big}` },
      { 'nstool.cni.ifname': big },
      { 'nstool.cni.network': big },
      { 'nstool.cni.result': big },
      { 'nstool.netns': `/run/netns/\u001b[2J${'\n'.repeat(1000)}${big}` },
    ];
    for (const annotations of cases) {
      for (const stage of ['create-runtime', 'post-stop']) {
        const r = await nstool(hook(stage), state(`${P}-d`, pidB, annotations));
        const what = `${stage} ${Object.keys(annotations)[0]}`;
        if (stage === 'post-stop') expect(r.code, what).toBe(0);
        else expect(r.code, what).toBeGreaterThan(0);
        expect(r.stderr.length, what).toBeLessThan(4096);
        expect(r.stdout.length, what).toBeLessThan(4096);
        expect(r.stderr, what).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
      }
    }
    expect(idsHeld()).toEqual([`${P}-a`]);
  });

  it('(f) without a pid only a pin directly inside --pidless-netns-dir is taken (a VM runtime\'s), and never a link there', async () => {
    const vmDir = path.join(tmp!, 'vm');
    mkdirSync(vmDir, { mode: 0o700 });
    const pin = path.join(vmDir, 'c');
    writeFileSync(pin, '');
    const inC = spawn('unshare', ['--net', 'sleep', '120'], { stdio: 'ignore' });
    try {
      const pidC = await waitForSleep(inC);
      execFileSync('mount', ['--bind', `/proc/${pidC}/ns/net`, pin]);
      symlinkSync(podA!.path, path.join(vmDir, 'a'));
      const aBefore = addrsIn(podA!.path);
      // Off by default: the same state without the flag is refused.
      const off = await nstool(hook('create-runtime'), state(`${P}-f`, undefined, { 'nstool.netns': pin }));
      expect(off.code).toBe(1);
      expect(errorCode(off)).toBe('ERR_NSTOOL_HOOK_SETTING');
      for (const netns of [path.join(vmDir, 'a'), podA!.path]) {
        const r = await nstool(hook('create-runtime', '--pidless-netns-dir', vmDir), state(`${P}-f`, undefined, { 'nstool.netns': netns }));
        expect(r.code, netns).toBe(1);
        expect(errorCode(r), netns).toBe('ERR_NSTOOL_HOOK_SETTING');
      }
      expect(addrsIn(podA!.path)).toBe(aBefore);
      const add = await nstool(hook('create-runtime', '--pidless-netns-dir', vmDir), state(`${P}-f`, undefined, { 'nstool.netns': pin }));
      expect(add.code, add.stderr).toBe(0);
      expect(addrsIn(pin)).toContain(`inet ${sn.base}`);
      const del = await nstool(hook('post-stop', '--pidless-netns-dir', vmDir), state(`${P}-f`, undefined, {}));
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ netns: pin });
      expect(addrsIn(pin)).not.toContain(sn.base);
      expect(idsHeld()).toEqual([`${P}-a`]);
    } finally {
      spawnSync('umount', [pin]);
      await kill(inC);
    }
  });

  it('(e) post-stop exits 0 and says why on stderr when the state or the conflist cannot be read, or a plugin fails', async () => {
    const badList = path.join(tmp!, 'bad.conflist');
    writeFileSync(badList, '{"cniVersion": "1.0.0", "name": ');
    const noPlugin = path.join(tmp!, 'noplugin.conflist');
    writeFileSync(noPlugin, JSON.stringify({ cniVersion: '1.0.0', name: netName, plugins: [{ type: `${P}-missing` }] }));
    const good = state(`${P}-e`, undefined, {});
    const cases: [string[], string][] = [
      [hook('post-stop'), 'not json'],
      [hook('post-stop'), '{"pid": 1}'],
      [hook('post-stop'), JSON.stringify({ id: 'bad id', annotations: {} })],
      [[...hook('post-stop'), '--conflist', badList], good],
      [[...hook('post-stop'), '--conflist', path.join(tmp!, 'none.conflist')], good],
      [[...hook('post-stop'), '--conflist', noPlugin], good],
      [[...hook('post-stop'), '--state', path.join(tmp!, 'no-state.json')], good],
    ];
    for (const [argv, stdin] of cases) {
      const r = await nstool(argv, stdin);
      const what = `${argv.slice(-2).join(' ')} <<< ${stdin}`;
      expect(r.code, what).toBe(0);
      expect(r.stderr, what).toContain('post-stop');
      expect(errorCode(r), what).toMatch(/^(ERR_|E)[A-Z_]+$/);
    }
    expect(idsHeld()).toEqual([`${P}-a`]);
  });
});
