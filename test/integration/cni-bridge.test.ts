// Real plugins (bridge + host-local + loopback from /usr/lib/cni) run inside a
// test-made node netns, wiring a userns-owned pod netns.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadNetworkList, parseNetworkList } from '../../src/cni/config.js';
import { CniNetwork, CniResult, addNetwork } from '../../src/cni/network.js';
import { clearVersionCache } from '../../src/cni/plugin.js';
import { execInNetns } from '../../src/exec.js';
import type { PodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import {
  bridgeName,
  linksIn,
  makeNodeNetns,
  makePodNetns,
  makeTempDir,
  NodeNetns,
  removePodNetns,
  removeTempDir,
  testSubnet,
} from '../helpers/node-netns.js';
import { tmpdir } from 'node:os';

const P = testPrefix('cnibr');
trackLeaks(P, { extraDirs: [tmpdir()] });

describeRoot('CNI bridge + host-local in a node netns', () => {
  let node: NodeNetns | undefined;
  let pod: PodNetns | undefined;
  let tmp: string | undefined;
  let net: CniNetwork;
  let confDir: string;
  let ipamDir: string;
  const br = bridgeName();
  const sn = testSubnet();
  const netName = `${P}-net`;
  const rt = () => ({ containerId: `${P}-c1`, netns: pod!.path, ifName: 'eth0' });

  const conf = (ipamExtra: object = {}) => ({
    cniVersion: '1.0.0',
    name: netName,
    plugins: [
      {
        type: 'bridge',
        bridge: br,
        isGateway: true,
        ipMasq: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: sn.subnet, ...ipamExtra }]], dataDir: ipamDir },
      },
      { type: 'loopback' },
    ],
  });
  const ipFiles = () => (existsSync(path.join(ipamDir, netName)) ? readdirSync(path.join(ipamDir, netName)).filter((f) => f.startsWith(sn.base)) : []);
  const podAddrs = async () => (await execInNetns(pod!.path, ['ip', '-o', 'addr'], { timeoutMs: 5000 })).stdout;
  const opts = () => ({ nodeNetns: node!.path, cacheDir: path.join(tmp!, 'cache'), timeoutMs: 20_000 });

  beforeAll(async () => {
    tmp = makeTempDir(P);
    ipamDir = path.join(tmp, 'ipam');
    confDir = path.join(tmp, 'net.d');
    node = makeNodeNetns(P);
    pod = await makePodNetns(P);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(confDir);
    writeFileSync(path.join(confDir, '10-test.conflist'), JSON.stringify(conf()));
    net = new CniNetwork(await loadNetworkList({ dir: confDir }), opts());
  });
  afterAll(async () => {
    // Best effort: release anything a failed test left, then tear down.
    if (net && pod) await net.del(rt()).catch(() => {});
    await removePodNetns(pod);
    node?.remove();
    removeTempDir(tmp);
  });

  let first: CniResult;

  it('ADD gives the pod eth0 the IP the plugins reported, and lo up', async () => {
    first = await net.add(rt());
    expect(first.cniVersion).toBe('1.0.0');
    const ip = first.ips?.[0];
    expect(ip?.address).toMatch(new RegExp(`^${sn.base.replace(/\./g, '\\.')}\\d+/24$`));
    expect(ip?.gateway).toBe(sn.gateway);
    const addrs = await podAddrs();
    expect(addrs).toMatch(new RegExp(`eth0\\s+inet ${ip!.address.replace(/\./g, '\\.')} `));
    expect(addrs).toMatch(/\blo\s+inet 127\.0\.0\.1\/8/);
    // The bridge lives in the node netns, not on the machine.
    expect(linksIn(node!.path)).toContain(br);
    expect(ipFiles()).toEqual([ip!.address.split('/')[0]]);
  });

  it('the pod reaches its gateway (the bridge inside the node netns)', async () => {
    const r = await execInNetns(pod!.path, ['ping', '-c', '1', '-W', '2', sn.gateway], { timeoutMs: 5000 });
    expect(r.stdout + r.stderr).toContain('1 received');
    expect(r.exitCode).toBe(0);
  });

  it('CHECK passes for the live attachment and fails once eth0 is gone', async () => {
    await net.check(rt());
    const probe = new CniNetwork(net.list, opts());
    await execInNetns(pod!.path, ['ip', 'link', 'set', 'eth0', 'name', 'moved0'], { timeoutMs: 5000 });
    try {
      await expect(probe.check(rt())).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'bridge' });
    } finally {
      await execInNetns(pod!.path, ['ip', 'link', 'set', 'moved0', 'name', 'eth0'], { timeoutMs: 5000 });
    }
    await net.check(rt());
  });

  it('DEL after a simulated restart (fresh config and cache reader) removes eth0 and releases the IP', async () => {
    clearVersionCache();
    const fresh = new CniNetwork(await loadNetworkList({ dir: confDir, name: netName }), opts());
    expect((await fresh.cachedResult(rt()))?.ips?.[0]?.address).toBe(first.ips![0]!.address);
    const out = await fresh.del(rt());
    expect(out).toEqual({ netns: pod!.path, cached: true });
    expect(await podAddrs()).not.toContain('eth0');
    expect(ipFiles()).toEqual([]);
    expect(await fresh.cachedResult(rt())).toBeNull();
    // DEL again: everything is already gone, which is success.
    await fresh.del(rt());
  });

  it('ADD again gets an IP from the same range; DEL before ADD avoids a duplicate allocation', async () => {
    const again = await net.add(rt());
    expect(again.ips?.[0]?.address.startsWith(sn.base)).toBe(true);
    expect(ipFiles()).toHaveLength(1);
    await net.del(rt());
    expect(ipFiles()).toEqual([]);
  });

  it('DEL through a stale pin (a file, nothing mounted) still releases the IP', async () => {
    await net.add(rt());
    expect(ipFiles()).toHaveLength(1);
    const stale = path.join(tmp!, 'stale-pin');
    writeFileSync(stale, '');
    // bridge would fail "unknown FS magic" on the file itself: nstool passes an empty CNI_NETNS.
    const out = await net.del({ ...rt(), netns: stale });
    expect(out.netns).toBe('');
    expect(ipFiles()).toEqual([]);
    // The real netns still holds eth0 (nobody named it); a DEL that names it removes it.
    expect(linksIn(pod!.path)).toContain('eth0');
    await net.del(rt());
    expect(linksIn(pod!.path)).toEqual(['lo']);
  });

  it('a missing plugin fails with ERR_NSTOOL_CNI and leaves nothing', async () => {
    const l = parseNetworkList({ ...conf(), plugins: [...conf().plugins, { type: `${P}-absent` }] });
    await expect(addNetwork(l, rt(), opts())).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: `${P}-absent` });
    expect(await podAddrs()).not.toContain('eth0');
    expect(ipFiles()).toEqual([]);
    expect(existsSync(path.join(tmp!, 'cache', 'results', `${netName}-${P}-c1-eth0`))).toBe(false);
  });

  it('a bad IPAM range fails with ERR_NSTOOL_CNI and leaves no IP file, cache or interface', async () => {
    const l = parseNetworkList(conf({ rangeStart: '10.99.0.10' }));
    const before = linksIn(node!.path).sort();
    // The bridge plugin makes the veth before asking IPAM: without the DEL
    // that follows a failed ADD, eth0 would stay behind.
    await expect(addNetwork(l, rt(), { ...opts(), delOnFailure: false })).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI' });
    expect(linksIn(pod!.path)).toContain('eth0');
    await net.del(rt());
    expect(linksIn(pod!.path)).toEqual(['lo']);
    await expect(addNetwork(l, rt(), opts())).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'bridge' });
    expect(linksIn(pod!.path)).toEqual(['lo']);
    expect(linksIn(node!.path).sort()).toEqual(before.filter((n) => !n.startsWith('veth')));
    expect(ipFiles()).toEqual([]);
    expect(existsSync(path.join(tmp!, 'cache', 'results', `${netName}-${P}-c1-eth0`))).toBe(false);
  });
});
