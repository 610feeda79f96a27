// `nstool hook create-runtime|post-stop` through the command line layer, with
// hand-made OCI state, real plugins, inside a test-made node netns.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { registerHookCommands } from '../../src/cli/hook-commands.js';
import { execInNetns } from '../../src/exec.js';
import type { PodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeName, linksIn, makeNodeNetns, makePodNetns, makeTempDir, NodeNetns, removePodNetns, removeTempDir, testSubnet } from '../helpers/node-netns.js';

const P = testPrefix('hookcni');
trackLeaks(P, { extraDirs: [tmpdir()] });

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  error?: { code?: string };
}

/** Runs `nstool ARGV` the way main() does, with STDIN as the hook's stdin. */
async function nstool(argv: string[], stdin: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s), readStdin: async () => stdin };
  const program = new Command('nstool').exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerHookCommands(program, io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode === 0 ? 0 : 2, stdout, stderr };
    return { code: 1, stdout, stderr, error: err as { code?: string } };
  }
}

/** PID once it runs sleep (unshare/nsenter exec it after joining or making the netns); bounded wait. */
async function waitForSleep(pid: number): Promise<number> {
  for (let i = 0; i < 300 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
  expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('sleep');
  return pid;
}

describeRoot('OCI hook mode with real CNI plugins', () => {
  let node: NodeNetns | undefined;
  let pod: PodNetns | undefined;
  let tmp: string | undefined;
  let sleeper: ChildProcess | undefined;
  let inPod: ChildProcess | undefined; // the container living in the pod netns
  let podPid = 0;
  let conflist: string;
  let confDir: string;
  let ipamDir: string;
  const sn = testSubnet();
  const netName = `${P}-net`;

  const ipFiles = () => (existsSync(path.join(ipamDir, netName)) ? readdirSync(path.join(ipamDir, netName)).filter((f) => f.startsWith(sn.base)) : []);
  // Paths are hook flags only (config.json's hooks array); annotations carry names and the netns.
  const hook = (stage: string, ...flags: string[]) => ['hook', stage, '--node-netns', node!.path, '--cache-dir', path.join(tmp!, 'cache'), ...flags];

  beforeAll(async () => {
    tmp = makeTempDir(P);
    ipamDir = path.join(tmp, 'ipam');
    confDir = path.join(tmp, 'net.d');
    mkdirSync(confDir);
    const list = {
      cniVersion: '1.0.0',
      name: netName,
      plugins: [
        { type: 'bridge', bridge: bridgeName(), isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: sn.subnet }]], dataDir: ipamDir } },
        { type: 'loopback' },
      ],
    };
    conflist = path.join(confDir, '50-hook.conflist');
    writeFileSync(conflist, JSON.stringify(list));
    writeFileSync(path.join(confDir, '10-other.conflist'), JSON.stringify({ ...list, name: `${P}-other` }));
    node = makeNodeNetns(P);
    pod = await makePodNetns(P);
    inPod = spawn('nsenter', [`--net=${pod.path}`, 'sleep', '120'], { stdio: 'ignore' });
    podPid = await waitForSleep(inPod.pid!);
  });

  afterAll(async () => {
    for (const child of [sleeper, inPod]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await removePodNetns(pod);
    node?.remove();
    removeTempDir(tmp);
  });

  it('create-runtime adds the process netns (from pid), writes the result; running it twice is fine; post-stop undoes it', async () => {
    // A process living in its own fresh netns stands in for a container.
    sleeper = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
    const pid = await waitForSleep(sleeper.pid!);
    const netnsPath = `/proc/${pid}/ns/net`;
    const resultFile = path.join(tmp!, 'result-a.json');
    const state = JSON.stringify({
      ociVersion: '1.0.2',
      id: `${P}-a`,
      status: 'creating',
      pid,
      bundle: tmp,
      annotations: { 'nstool.cni.ifname': 'eth0' },
    });
    const flags = ['--conflist', conflist, '--result', resultFile];

    const add = await nstool(hook('create-runtime', '--json', ...flags), state);
    expect(add.code, add.stderr).toBe(0);
    const out = JSON.parse(add.stdout);
    expect(out).toMatchObject({ stage: 'create-runtime', id: `${P}-a`, network: netName, netns: netnsPath });
    const result = JSON.parse(readFileSync(resultFile, 'utf8'));
    const addr: string = result.ips[0].address;
    expect(addr.startsWith(sn.base)).toBe(true);
    expect(linksIn(netnsPath)).toContain('eth0');
    expect(ipFiles()).toEqual([addr.split('/')[0]]);

    // A second createRuntime for the same id: DEL first, so no "duplicate allocation".
    const again = await nstool(hook('create-runtime', ...flags), state);
    expect(again.code, again.stderr).toBe(0);
    expect(ipFiles()).toHaveLength(1);
    expect(JSON.parse(readFileSync(resultFile, 'utf8')).ips[0].address.startsWith(sn.base)).toBe(true);

    const del = await nstool(hook('post-stop', ...flags), state.replace('"creating"', '"stopped"'));
    expect(del.code, del.stderr).toBe(0);
    expect(linksIn(netnsPath)).not.toContain('eth0');
    expect(ipFiles()).toEqual([]);
    expect(existsSync(resultFile)).toBe(false);
  });

  it('takes the netns (a pin of the container\'s own netns) from nstool.netns and the network from --conf-dir + nstool.cni.network; post-stop undoes what the record says', async () => {
    const resultFile = path.join(tmp!, 'result-b.json');
    expect(path.dirname(pod!.path)).toBe('/run/netns');
    const ann = { 'nstool.netns': pod!.path, 'nstool.cni.network': netName, 'nstool.cni.ifname': 'net1' };
    const add = await nstool(hook('create-runtime', '--json', '--conf-dir', confDir, '--result', resultFile), JSON.stringify({ id: `${P}-b`, pid: podPid, annotations: ann }));
    expect(add.code, add.stderr).toBe(0);
    const out = JSON.parse(add.stdout);
    expect(out).toMatchObject({ id: `${P}-b`, network: netName, netns: pod!.path });
    const addr: string = JSON.parse(readFileSync(resultFile, 'utf8')).ips[0].address;
    const seen = await execInNetns(pod!.path, ['ip', '-o', '-4', 'addr', 'show', 'net1'], { timeoutMs: 5000 });
    expect(seen.stdout).toContain(`inet ${addr} `);
    // Root's alone: the result and the record of what ADD did, for post-stop.
    expect(statSync(resultFile).mode & 0o777).toBe(0o600);
    expect(out.record).toBe(path.join(tmp!, 'cache', 'nstool-hook', `${P}-b`));
    expect(statSync(out.record).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(out.record)).mode & 0o777).toBe(0o700);
    const st = statSync(pod!.path, { bigint: true });
    expect(JSON.parse(readFileSync(out.record, 'utf8'))).toEqual({
      kind: 'nstoolHookV1',
      containerId: `${P}-b`,
      network: netName,
      ifName: 'net1',
      netns: { path: pod!.path, dev: String(st.dev), ino: String(st.ino), source: 'annotation' },
    });

    // The state at post-stop has no pid and no annotations: the record is enough.
    const del = await nstool(hook('post-stop', '--json', '--conf-dir', confDir, '--result', resultFile), JSON.stringify({ id: `${P}-b`, annotations: {} }));
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ stage: 'post-stop', network: netName, netns: pod!.path, warnings: [] });
    expect(linksIn(pod!.path)).toEqual(['lo']);
    expect(ipFiles()).toEqual([]);
    expect(existsSync(resultFile)).toBe(false);
    expect(existsSync(out.record)).toBe(false);
  });

  it('post-stop gives DEL no netns when the recorded pin no longer holds the same netns, or the record is not this container\'s', async () => {
    const id = `${P}-r`;
    const add = await nstool(hook('create-runtime', '--json', '--conflist', conflist), JSON.stringify({ id, pid: podPid, annotations: { 'nstool.netns': pod!.path } }));
    expect(add.code, add.stderr).toBe(0);
    const record: string = JSON.parse(add.stdout).record;
    const saved = readFileSync(record, 'utf8');
    // Another container's record under this id: ignored (the IP is still released).
    writeFileSync(record, saved.replace(`"containerId":"${id}"`, `"containerId":"${P}-other"`));
    const r1 = await nstool(hook('post-stop', '--json', '--conflist', conflist), JSON.stringify({ id, annotations: {} }));
    expect(r1.code, r1.stderr).toBe(0);
    expect(JSON.parse(r1.stdout)).toMatchObject({ netns: '', warnings: [expect.stringContaining('ignored')] });
    expect(r1.stderr).toContain('warning');
    expect(linksIn(pod!.path)).toContain('eth0');
    expect(ipFiles()).toEqual([]);
    // A record whose inode no longer matches what the pin holds: no netns either.
    const again = await nstool(hook('create-runtime', '--conflist', conflist), JSON.stringify({ id, pid: podPid, annotations: { 'nstool.netns': pod!.path } }));
    expect(again.code, again.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(record, 'utf8'));
    writeFileSync(record, JSON.stringify({ ...rec, netns: { ...rec.netns, ino: String(BigInt(rec.netns.ino) + 1n) } }));
    const r2 = await nstool(hook('post-stop', '--json', '--conflist', conflist), JSON.stringify({ id, annotations: {} }));
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ netns: '', warnings: [] });
    expect(ipFiles()).toEqual([]);
    expect(existsSync(record)).toBe(false);
    // The interface stayed (DEL had no netns to enter): take it down with the right record.
    expect(linksIn(pod!.path)).toContain('eth0');
    await execInNetns(pod!.path, ['ip', 'link', 'del', 'eth0'], { timeoutMs: 5000 });
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('reads the state from --state FILE', async () => {
    const f = path.join(tmp!, 'state.json');
    writeFileSync(f, JSON.stringify({ id: `${P}-c`, pid: podPid, annotations: { 'nstool.netns': pod!.path } }));
    expect((await nstool(hook('create-runtime', '--state', f, '--conflist', conflist), 'ignored')).code).toBe(0);
    expect(linksIn(pod!.path)).toContain('eth0');
    expect((await nstool(hook('post-stop', '--state', f, '--conflist', conflist), 'ignored')).code).toBe(0);
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('bad state and bad settings fail with an ERR_ code before any plugin runs', async () => {
    const ann = {};
    const cases: [string, string][] = [
      ['not json', 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ pid: 1, annotations: ann }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: 'bad id', pid: 1, annotations: ann }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: `${P}-d`, annotations: ann }), 'ERR_INVALID_ARG_VALUE'], // no pid, no netns
      [JSON.stringify({ id: `${P}-d`, pid: 1, annotations: { ...ann, 'nstool.cni.result': 'relative.json' } }), 'ERR_NSTOOL_HOOK_SETTING'],
      [JSON.stringify({ id: `${P}-d`, pid: 1, annotations: { ...ann, 'nstool.cni.network': 'x' } }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: `${P}-d`, pid: 1, annotations: { ...ann, 'nstool.netns': 'relative' } }), 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [state, code] of cases) {
      const r = await nstool(hook('create-runtime', '--conflist', conflist), state);
      expect(r.code, state).toBe(1);
      expect(r.error?.code, state).toBe(code);
    }
    const none = await nstool(hook('create-runtime', '--conflist', path.join(tmp!, 'none')), JSON.stringify({ id: `${P}-d`, pid: podPid, annotations: { 'nstool.netns': pod!.path } }));
    expect(none.error?.code).toBe('ENOENT');
    expect(ipFiles()).toEqual([]);
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('path annotations are refused before any plugin runs: a result annotation neither replaces nor deletes its file', async () => {
    const victim = path.join(tmp!, `${P}-victim`);
    writeFileSync(victim, 'root:x:0:0:victim\n', { mode: 0o644 });
    const before = statSync(victim);
    // A plugin dir of the "user's" choosing: its bridge would leave a mark if root ran it.
    const evilDir = path.join(tmp!, 'evil-plugins');
    const mark = path.join(tmp!, `${P}-evil-ran`);
    mkdirSync(evilDir);
    for (const t of ['bridge', 'loopback', 'host-local']) writeFileSync(path.join(evilDir, t), `#!/bin/sh\ntouch ${mark}\nexit 1\n`, { mode: 0o755 });
    const flagResult = path.join(tmp!, 'result-f.json');
    const attacks: Record<string, string>[] = [
      { 'nstool.cni.result': victim },
      { 'nstool.cni.path': evilDir },
      { 'nstool.cni.conflist': conflist },
      { 'nstool.cni.confdir': confDir },
      { 'nstool.cni.cachedir': path.join(tmp!, 'cache2') },
      { 'nstool.cni.nodenetns': path.join(tmp!, 'no-such-netns') },
    ];
    for (const extra of attacks) {
      const state = (status: string) => JSON.stringify({ id: `${P}-f`, status, annotations: { 'nstool.netns': pod!.path, ...extra } });
      for (const [stage, status] of [['create-runtime', 'creating'], ['post-stop', 'stopped']] as const) {
        // With and without the flag that the annotation would have overridden or stood in for.
        for (const flags of [['--conflist', conflist], ['--conflist', conflist, '--result', flagResult, '--plugin-path', '/usr/lib/cni:/opt/cni/bin']]) {
          const r = await nstool(hook(stage, ...flags), state(status));
          const what = `${stage} ${JSON.stringify(extra)} ${flags.join(' ')}`;
          if (stage === 'post-stop') {
            // Post-stop reads no annotations at all (and never fails).
            expect(r.code, what).toBe(0);
            continue;
          }
          expect(r.code, what).toBe(1);
          expect(r.error?.code, what).toBe('ERR_NSTOOL_HOOK_SETTING');
          expect(String((r.error as Error).message), what).toContain(Object.keys(extra)[0]);
        }
      }
    }
    const after = statSync(victim);
    expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0:victim\n');
    expect([after.ino, after.mtimeMs, after.mode]).toEqual([before.ino, before.mtimeMs, before.mode]);
    expect(existsSync(mark)).toBe(false);
    expect(existsSync(flagResult)).toBe(false);
    expect(existsSync(path.join(tmp!, 'cache2'))).toBe(false);
    expect(ipFiles()).toEqual([]);
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('an annotated netns outside /proc/<own pid>/ns/net and /run/netns (or --netns-pin-dir) is refused before any plugin runs', async () => {
    // Some other process's netns. A throwaway one, never the host's: if the
    // check ever broke, CNI (even a DEL) must not touch the machine's own network.
    const other = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
    try {
      const opid = other.pid!;
      for (let i = 0; i < 200 && readFileSync(`/proc/${opid}/comm`, 'utf8').trim() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
      const notOurs = `/proc/${opid}/ns/net`;
      const linksBefore = linksIn(notOurs);
      const fakePin = path.join(tmp!, `${P}-pin`);
      writeFileSync(fakePin, '');
      const cases: [string, number | undefined, string[]][] = [
        [notOurs, opid + 1, []], // not the state's pid
        [notOurs, undefined, []], // post-stop style state: no pid at all
        [`/proc/${opid + 1}/../${opid}/ns/net`, opid + 1, []],
        [fakePin, opid, []],
        [`/run/netns/../..${fakePin}`, opid, []],
        [fakePin, opid, ['--netns-pin-dir', '/run/netns']],
        [path.join(tmp!, 'sub', 'x'), opid, ['--netns-pin-dir', tmp!]],
      ];
      for (const [netns, pid, extra] of cases) {
        const state = JSON.stringify({ id: `${P}-g`, ...(pid ? { pid } : {}), annotations: { 'nstool.netns': netns } });
        const r = await nstool(hook('create-runtime', '--conflist', conflist, ...extra), state);
        expect(r.code, netns).toBe(1);
        expect(r.error?.code, netns).toBe('ERR_NSTOOL_HOOK_SETTING');
        expect(String((r.error as Error).message)).toContain('--netns');
        // Post-stop ignores the annotation: DEL with no netns, for this id only.
        const d = await nstool(hook('post-stop', '--json', '--conflist', conflist, ...extra), state);
        expect(d.code, netns).toBe(0);
        expect(JSON.parse(d.stdout)).toMatchObject({ netns: '' });
      }
      expect(linksIn(notOurs)).toEqual(linksBefore);
    } finally {
      const gone = new Promise((r) => other.once('exit', r));
      other.kill('SIGKILL');
      await gone;
    }
    expect(ipFiles()).toEqual([]);
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('the same netns given by flag is trusted (config.json is written by the spec builder)', async () => {
    const r = await nstool(hook('create-runtime', '--conflist', conflist, '--netns', pod!.path), JSON.stringify({ id: `${P}-h`, pid: 1, annotations: { 'nstool.netns': path.join(tmp!, 'not-a-pin') } }));
    expect(r.code, r.stderr).toBe(0);
    expect(linksIn(pod!.path)).toContain('eth0');
    const d = await nstool(hook('post-stop', '--conflist', conflist, '--netns', pod!.path), JSON.stringify({ id: `${P}-h`, annotations: {} }));
    expect(d.code, d.stderr).toBe(0);
    expect(linksIn(pod!.path)).toEqual(['lo']);
    expect(ipFiles()).toEqual([]);
  });

  it('a plugin failure in the hook is ERR_NSTOOL_CNI and the plugin error is on stderr', async () => {
    const bad = path.join(confDir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ cniVersion: '1.0.0', name: netName, type: 'bridge', bridge: 'nstbad0', ipam: { type: 'host-local', ranges: [[{ subnet: 'not-a-subnet' }]], dataDir: ipamDir } }));
    const state = JSON.stringify({ id: `${P}-e`, pid: podPid, annotations: { 'nstool.netns': pod!.path } });
    const r = await nstool(hook('create-runtime', '--conflist', bad), state);
    expect(r.code).toBe(1);
    expect(r.error?.code).toBe('ERR_NSTOOL_CNI');
    expect(r.stderr).toContain('"plugin":"bridge"');
    expect(linksIn(pod!.path)).toEqual(['lo']);
    // The runtime then runs post-stop: it fails the same way, says so, and exits 0.
    const d = await nstool(hook('post-stop', '--conflist', bad), state);
    expect(d.code).toBe(0);
    expect(d.stderr).toContain('"plugin":"bridge"');
    expect(d.stderr).toContain('nstool hook post-stop: ERR_NSTOOL_CNI');
  });
});
