// The CNI protocol against recording fake plugins (the point here is what
// nstool sends: env, stdin, order, prevResult), in a temp dir of their own.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ResultCache } from '../../src/cni/cache.js';
import { parseNetworkList } from '../../src/cni/config.js';
import { addNetwork, checkNetwork, CniNetwork, delNetwork, pluginVersions } from '../../src/cni/network.js';
import { clearVersionCache } from '../../src/cni/plugin.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const prefix = testPrefix('cniproto');
trackLeaks(prefix, { extraDirs: [tmpdir()] });

const root = path.join(tmpdir(), `${prefix}-root`);
const bin = path.join(root, 'bin');
const log = path.join(root, 'calls.jsonl');
const cacheDir = path.join(root, 'cache');
const NETNS = '/proc/self/ns/net';

// A plugin that logs each call and answers like a real one. Its config can
// ask it to fail ({"fail": "ADD"}); its name says which versions it speaks.
const FAKE = `#!${process.execPath}
const fs = require('fs');
const name = require('path').basename(process.argv[1]);
const stdin = fs.readFileSync(0, 'utf8');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CNI_')));
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ name, env, stdin }) + '\\n');
const cmd = process.env.CNI_COMMAND;
if (cmd === 'VERSION') {
  const v = name.startsWith('old') ? ['0.1.0', '0.2.0', '0.3.0', '0.3.1'] : ['0.3.1', '0.4.0', '1.0.0'];
  process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: v }));
  process.exit(0);
}
const conf = JSON.parse(stdin);
if (conf.fail === cmd) {
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 7, msg: 'boom from ' + name, details: 'some details' }));
  process.exit(1);
}
if (conf.garbage === cmd) { process.stdout.write('not json'); process.exit(0); }
if (cmd === 'ADD') {
  const r = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [], ips: [] };
  r.interfaces = [...r.interfaces, { name: name + '-' + process.env.CNI_IFNAME }];
  process.stdout.write(JSON.stringify(r));
}
`;

function install(name: string): void {
  writeFileSync(path.join(bin, name), FAKE);
  chmodSync(path.join(bin, name), 0o755);
}

interface Call {
  name: string;
  env: Record<string, string>;
  stdin: string;
}
function calls(): Call[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call);
}
const nonVersion = () => calls().filter((c) => c.env['CNI_COMMAND'] !== 'VERSION');

const list = (plugins: object[], cniVersion = '1.0.0') => parseNetworkList({ cniVersion, name: `${prefix}-net`, plugins });
const opts = { pluginPath: [bin], cacheDir };
const rt = { containerId: 'ctr1', netns: NETNS, ifName: 'eth0', args: { K8S_POD_NAME: 'p1' } };

async function caught(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

describe('CNI protocol (fake plugins)', () => {
  beforeAll(() => {
    mkdirSync(bin, { recursive: true });
    for (const n of ['one', 'two', 'three', 'oldie']) install(n);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => {
    rmSync(log, { force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('ADD runs plugins in order threading prevResult, then caches the result (0700 dir, 0600 file)', async () => {
    const l = list([{ type: 'one' }, { type: 'two', capabilities: { portMappings: true } }, { type: 'three' }]);
    const r = await addNetwork(l, { ...rt, capabilityArgs: { portMappings: [{ hostPort: 1 }], other: 1 } }, opts);
    expect(r.interfaces!.map((i) => i.name)).toEqual(['one-eth0', 'two-eth0', 'three-eth0']);
    const c = nonVersion();
    expect(c.map((x) => x.name)).toEqual(['one', 'two', 'three']);
    expect(c[0]!.env).toEqual({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'ctr1',
      CNI_NETNS: NETNS,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'K8S_POD_NAME=p1',
      CNI_PATH: bin,
    });
    const s = c.map((x) => JSON.parse(x.stdin) as Record<string, unknown>);
    expect(s[0]).toEqual({ type: 'one', cniVersion: '1.0.0', name: `${prefix}-net` });
    expect(s[1]!['runtimeConfig']).toEqual({ portMappings: [{ hostPort: 1 }] });
    expect((s[1]!['prevResult'] as { interfaces: unknown[] }).interfaces).toEqual([{ name: 'one-eth0' }]);
    expect((s[2]!['prevResult'] as { interfaces: unknown[] }).interfaces).toHaveLength(2);
    const file = new ResultCache(cacheDir).pathOf({ network: `${prefix}-net`, containerId: 'ctr1', ifName: 'eth0' });
    expect(file).toBe(path.join(cacheDir, 'results', `${prefix}-net-ctr1-eth0`));
    expect(statSync(path.join(cacheDir, 'results')).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ kind: 'cniCacheV1', containerId: 'ctr1', ifName: 'eth0', result: r });
  });

  it('ADD with cacheOwner writes the owner into the cached result itself (one write, nothing else left)', async () => {
    const l = list([{ type: 'one' }]);
    const r = await addNetwork(l, rt, { ...opts, cacheOwner: '/run/nstool/sandboxes' });
    const file = new ResultCache(cacheDir).pathOf({ network: `${prefix}-net`, containerId: 'ctr1', ifName: 'eth0' });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ kind: 'cniCacheV1', owner: '/run/nstool/sandboxes', result: r });
    expect(readdirSync(path.dirname(file))).toEqual([path.basename(file)]);
    await delNetwork(l, rt, opts);
  });

  it('asks VERSION once per plugin binary', async () => {
    clearVersionCache();
    const l = list([{ type: 'one' }, { type: 'two' }]);
    await addNetwork(l, rt, opts);
    await delNetwork(l, rt, opts);
    const v = calls().filter((c) => c.env['CNI_COMMAND'] === 'VERSION');
    expect(v.map((c) => c.name).sort()).toEqual(['one', 'two']);
    expect(await pluginVersions('one', { pluginPath: [bin] })).toEqual(['0.3.1', '0.4.0', '1.0.0']);
    expect(calls().filter((c) => c.env['CNI_COMMAND'] === 'VERSION')).toHaveLength(2);
  });

  it('DEL runs in reverse order with the cached result, even from a fresh cache reader, and drops the cache', async () => {
    const l = list([{ type: 'one' }, { type: 'two' }, { type: 'three' }]);
    const r = await addNetwork(l, rt, opts);
    rmSync(log);
    // A new CniNetwork: nothing in memory from the ADD above.
    const out = await new CniNetwork(parseNetworkList(JSON.parse(JSON.stringify(l))), opts).del(rt);
    expect(out).toEqual({ netns: NETNS, cached: true });
    const c = nonVersion();
    expect(c.map((x) => x.name)).toEqual(['three', 'two', 'one']);
    for (const x of c) {
      expect(x.env['CNI_COMMAND']).toBe('DEL');
      expect(JSON.parse(x.stdin).prevResult).toEqual(r);
    }
    expect(await new CniNetwork(l, opts).cachedResult(rt)).toBeNull();
  });

  it('DEL with an empty or corrupt cache file sends no prevResult and succeeds', async () => {
    const l = list([{ type: 'one' }]);
    const cache = new ResultCache(cacheDir);
    const key = { network: l.name, containerId: 'ctr1', ifName: 'eth0' };
    for (const content of ['', '{"kind":', '{"kind":"other"}']) {
      rmSync(log, { force: true });
      mkdirSync(path.dirname(cache.pathOf(key)), { recursive: true });
      writeFileSync(cache.pathOf(key), content);
      const out = await delNetwork(l, rt, opts);
      expect(out.cached).toBe(false);
      expect(out.cacheCorrupt).toBeTruthy();
      expect(JSON.parse(nonVersion()[0]!.stdin)).not.toHaveProperty('prevResult');
      expect(existsSync(cache.pathOf(key))).toBe(false);
    }
  });

  it('DEL of a netns that is gone passes an empty CNI_NETNS; a stale pin too', async () => {
    const l = list([{ type: 'one' }]);
    const stale = path.join(root, 'stale-pin');
    writeFileSync(stale, '');
    for (const netns of ['/proc/999999999/ns/net', stale]) {
      rmSync(log, { force: true });
      expect((await delNetwork(l, { ...rt, netns }, opts)).netns).toBe('');
      expect(nonVersion()[0]!.env['CNI_NETNS']).toBe('');
    }
  });

  it('a failing ADD becomes ERR_NSTOOL_CNI with the plugin error fields, and DEL runs for the whole list', async () => {
    const l = list([{ type: 'one' }, { type: 'two', fail: 'ADD' }, { type: 'three' }]);
    const e = await caught(addNetwork(l, rt, opts));
    expect(e).toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'two', cniCode: 7, cniMsg: 'boom from two', cniDetails: 'some details' });
    expect(nonVersion().map((c) => `${c.env['CNI_COMMAND']} ${c.name}`)).toEqual(['ADD one', 'ADD two', 'DEL three', 'DEL two', 'DEL one']);
    expect(await new CniNetwork(l, opts).cachedResult(rt)).toBeNull();
  });

  it('delOnFailure: false leaves the cleanup to the caller', async () => {
    const l = list([{ type: 'one', fail: 'ADD' }]);
    expect(await caught(addNetwork(l, rt, { ...opts, delOnFailure: false }))).toMatchObject({ code: 'ERR_NSTOOL_CNI' });
    expect(nonVersion().map((c) => c.env['CNI_COMMAND'])).toEqual(['ADD']);
  });

  it('DEL keeps going past a failing plugin, throws the first error and keeps the cache for a retry', async () => {
    const good = list([{ type: 'one' }, { type: 'two' }]);
    await addNetwork(good, rt, opts);
    rmSync(log);
    const bad = list([{ type: 'one' }, { type: 'two', fail: 'DEL' }]);
    expect(await caught(delNetwork(bad, rt, opts))).toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'two' });
    expect(nonVersion().map((c) => c.name)).toEqual(['two', 'one']);
    expect(await new CniNetwork(good, opts).cachedResult(rt)).not.toBeNull();
    await delNetwork(good, rt, opts);
    expect(await new CniNetwork(good, opts).cachedResult(rt)).toBeNull();
  });

  it('a plugin printing invalid JSON is ERR_NSTOOL_CNI', async () => {
    const l = list([{ type: 'one', garbage: 'ADD' }]);
    expect(await caught(addNetwork(l, rt, opts))).toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'one' });
  });

  it('CHECK runs in order with the cached result; without one it fails ERR_NSTOOL_CNI_CACHE', async () => {
    const l = list([{ type: 'one' }, { type: 'two' }]);
    expect(await caught(checkNetwork(l, rt, opts))).toMatchObject({ code: 'ERR_NSTOOL_CNI_CACHE' });
    const r = await addNetwork(l, rt, opts);
    rmSync(log);
    await checkNetwork(l, rt, opts);
    const c = nonVersion();
    expect(c.map((x) => `${x.env['CNI_COMMAND']} ${x.name}`)).toEqual(['CHECK one', 'CHECK two']);
    for (const x of c) expect(JSON.parse(x.stdin).prevResult).toEqual(r);
    rmSync(log);
    await checkNetwork({ ...l, disableCheck: true }, rt, opts);
    expect(nonVersion()).toEqual([]);
  });

  it('never sends a version or a verb a plugin lacks', async () => {
    // oldie speaks up to 0.3.1: a 1.0.0 list is refused before any ADD.
    const l = list([{ type: 'one' }, { type: 'oldie' }]);
    const e = await caught(addNetwork(l, rt, opts));
    expect(e).toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'oldie', cniCode: 1 });
    expect(nonVersion().filter((c) => c.env['CNI_COMMAND'] === 'ADD')).toEqual([]);
    // 0.3.1 has no CHECK.
    const old = list([{ type: 'oldie' }], '0.3.1');
    await addNetwork(old, rt, opts);
    rmSync(log);
    expect(await caught(checkNetwork(old, rt, opts))).toMatchObject({ code: 'ERR_NSTOOL_CNI', cniCode: 1 });
    expect(nonVersion()).toEqual([]);
    // ...and no prevResult on DEL before 0.4.0.
    await delNetwork(old, rt, opts);
    expect(JSON.parse(nonVersion()[0]!.stdin)).not.toHaveProperty('prevResult');
  });

  it('bad input fails before any plugin runs or anything is written', async () => {
    const l = list([{ type: 'one' }]);
    const cases: [() => Promise<unknown>, string][] = [
      [() => addNetwork(l, { ...rt, containerId: '-bad' }, opts), 'ERR_INVALID_ARG_VALUE'],
      [() => addNetwork(l, { ...rt, ifName: 'way-too-long-ifname' }, opts), 'ERR_INVALID_ARG_VALUE'],
      [() => addNetwork(l, { ...rt, ifName: 'a:b' }, opts), 'ERR_INVALID_ARG_VALUE'],
      [() => addNetwork(l, { ...rt, args: { 'a;b': 'c' } }, opts), 'ERR_INVALID_ARG_VALUE'],
      [() => addNetwork(l, { ...rt, netns: 'relative' }, opts), 'ERR_INVALID_ARG_VALUE'],
      [() => addNetwork(l, rt, { ...opts, cacheDir: 'relative' }), 'ERR_INVALID_ARG_VALUE'],
      [() => addNetwork(l, rt, { ...opts, cacheOwner: 1 as unknown as string }), 'ERR_INVALID_ARG_TYPE'],
      [() => addNetwork(l, { ...rt, netns: path.join(root, 'no-netns') }, opts), 'ENOENT'],
      [() => addNetwork(l, { ...rt, netns: log.replace('calls.jsonl', 'bin') }, opts), 'EINVAL'],
      [() => addNetwork(list([{ type: 'one' }, { type: 'missing' }]), rt, opts), 'ERR_NSTOOL_CNI'],
      [() => delNetwork(l, { ...rt, containerId: 'a b' }, opts), 'ERR_INVALID_ARG_VALUE'],
      [() => checkNetwork(l, { ...rt, ifName: '' }, opts), 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [p, code] of cases) expect((await caught(p()))['code']).toBe(code);
    expect(nonVersion()).toEqual([]);
    expect(existsSync(cacheDir)).toBe(false);
  });
});
