// `nstool hook create-runtime|post-stop` through the command line layer, with
// hand-made OCI state, real plugins, inside a test-made node netns.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

describeRoot('OCI hook mode with real CNI plugins', () => {
  let node: NodeNetns | undefined;
  let pod: PodNetns | undefined;
  let tmp: string | undefined;
  let sleeper: ChildProcess | undefined;
  let conflist: string;
  let confDir: string;
  let ipamDir: string;
  const sn = testSubnet();
  const netName = `${P}-net`;

  const ipFiles = () => (existsSync(path.join(ipamDir, netName)) ? readdirSync(path.join(ipamDir, netName)).filter((f) => f.startsWith(sn.base)) : []);
  const annotations = (extra: Record<string, string>) => ({
    'nstool.cni.nodenetns': node!.path,
    'nstool.cni.cachedir': path.join(tmp!, 'cache'),
    ...extra,
  });

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
  });

  afterAll(async () => {
    if (sleeper && sleeper.exitCode === null && sleeper.signalCode === null) {
      const gone = new Promise((r) => sleeper!.once('exit', r));
      sleeper.kill('SIGKILL');
      await gone;
    }
    await removePodNetns(pod);
    node?.remove();
    removeTempDir(tmp);
  });

  it('create-runtime adds the process netns (from pid), writes the result; running it twice is fine; post-stop undoes it', async () => {
    // A process living in its own fresh netns stands in for a container.
    sleeper = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
    const pid = sleeper.pid!;
    // Wait (bounded) until unshare has made the netns and exec'd sleep.
    for (let i = 0; i < 200 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
    const netnsPath = `/proc/${pid}/ns/net`;
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('sleep');
    const resultFile = path.join(tmp!, 'result-a.json');
    const state = JSON.stringify({
      ociVersion: '1.0.2',
      id: `${P}-a`,
      status: 'creating',
      pid,
      bundle: tmp,
      annotations: annotations({ 'nstool.cni.conflist': conflist, 'nstool.cni.result': resultFile }),
    });

    const add = await nstool(['hook', 'create-runtime', '--json'], state);
    expect(add.code, add.stderr).toBe(0);
    const out = JSON.parse(add.stdout);
    expect(out).toMatchObject({ stage: 'create-runtime', id: `${P}-a`, network: netName, netns: netnsPath });
    const result = JSON.parse(readFileSync(resultFile, 'utf8'));
    const addr: string = result.ips[0].address;
    expect(addr.startsWith(sn.base)).toBe(true);
    expect(linksIn(netnsPath)).toContain('eth0');
    expect(ipFiles()).toEqual([addr.split('/')[0]]);

    // A second createRuntime for the same id: DEL first, so no "duplicate allocation".
    const again = await nstool(['hook', 'create-runtime'], state);
    expect(again.code, again.stderr).toBe(0);
    expect(ipFiles()).toHaveLength(1);
    expect(JSON.parse(readFileSync(resultFile, 'utf8')).ips[0].address.startsWith(sn.base)).toBe(true);

    const del = await nstool(['hook', 'post-stop'], state.replace('"creating"', '"stopped"'));
    expect(del.code, del.stderr).toBe(0);
    expect(linksIn(netnsPath)).not.toContain('eth0');
    expect(ipFiles()).toEqual([]);
    expect(existsSync(resultFile)).toBe(false);
  });

  it('takes the netns from nstool.netns and the network from confdir + name; post-stop without a pid still releases', async () => {
    const resultFile = path.join(tmp!, 'result-b.json');
    const ann = annotations({ 'nstool.netns': pod!.path, 'nstool.cni.confdir': confDir, 'nstool.cni.network': netName });
    const add = await nstool(['hook', 'create-runtime', '--result', resultFile], JSON.stringify({ id: `${P}-b`, pid: 1, annotations: ann }));
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain(`added ${P}-b to ${netName}`);
    const addr: string = JSON.parse(readFileSync(resultFile, 'utf8')).ips[0].address;
    const seen = await execInNetns(pod!.path, ['ip', '-o', '-4', 'addr', 'show', 'eth0'], { timeoutMs: 5000 });
    expect(seen.stdout).toContain(`inet ${addr} `);

    const del = await nstool(['hook', 'post-stop', '--json', '--result', resultFile], JSON.stringify({ id: `${P}-b`, annotations: ann }));
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ stage: 'post-stop', netns: pod!.path });
    expect(linksIn(pod!.path)).toEqual(['lo']);
    expect(ipFiles()).toEqual([]);
    expect(existsSync(resultFile)).toBe(false);
  });

  it('reads the state from --state FILE', async () => {
    const f = path.join(tmp!, 'state.json');
    writeFileSync(f, JSON.stringify({ id: `${P}-c`, annotations: annotations({ 'nstool.netns': pod!.path, 'nstool.cni.conflist': conflist }) }));
    expect((await nstool(['hook', 'create-runtime', '--state', f], 'ignored')).code).toBe(0);
    expect(linksIn(pod!.path)).toContain('eth0');
    expect((await nstool(['hook', 'post-stop', '--state', f], 'ignored')).code).toBe(0);
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('bad state and bad settings fail with an ERR_ code before any plugin runs', async () => {
    const ann = annotations({ 'nstool.cni.conflist': conflist });
    const cases: [string, string][] = [
      ['not json', 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ pid: 1, annotations: ann }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: 'bad id', pid: 1, annotations: ann }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: `${P}-d`, annotations: ann }), 'ERR_INVALID_ARG_VALUE'], // no pid, no netns
      [JSON.stringify({ id: `${P}-d`, pid: 1, annotations: { ...ann, 'nstool.cni.result': 'relative.json' } }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: `${P}-d`, pid: 1, annotations: { ...ann, 'nstool.cni.network': 'x' } }), 'ERR_INVALID_ARG_VALUE'],
      [JSON.stringify({ id: `${P}-d`, annotations: { ...ann, 'nstool.netns': pod!.path, 'nstool.cni.conflist': path.join(tmp!, 'none') } }), 'ENOENT'],
    ];
    for (const [state, code] of cases) {
      const r = await nstool(['hook', 'create-runtime'], state);
      expect(r.code, state).toBe(1);
      expect(r.error?.code, state).toBe(code);
    }
    expect(ipFiles()).toEqual([]);
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('a plugin failure in the hook is ERR_NSTOOL_CNI and the plugin error is on stderr', async () => {
    const bad = path.join(confDir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ cniVersion: '1.0.0', name: netName, type: 'bridge', bridge: 'nstbad0', ipam: { type: 'host-local', ranges: [[{ subnet: 'not-a-subnet' }]], dataDir: ipamDir } }));
    const r = await nstool(['hook', 'create-runtime', '--conflist', bad], JSON.stringify({ id: `${P}-e`, annotations: annotations({ 'nstool.netns': pod!.path }) }));
    expect(r.code).toBe(1);
    expect(r.error?.code).toBe('ERR_NSTOOL_CNI');
    expect(r.stderr).toContain('"plugin":"bridge"');
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });
});
