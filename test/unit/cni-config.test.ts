import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNetworkList, loadNetworkListFile, parseNetworkList } from '../../src/cni/config.js';
import { formatCniArgs, validateContainerId, validateIfName } from '../../src/cni/names.js';
import { pluginStdin } from '../../src/cni/network.js';
import { findPlugin, pluginEnv, pluginPath } from '../../src/cni/plugin.js';
import { compareVersions, pluginTakes, versionHasVerb } from '../../src/cni/version.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const prefix = testPrefix('cnicfg');
trackLeaks(prefix, { extraDirs: [tmpdir()] });

const codeOf = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'no error';
};

const bridgeList = {
  cniVersion: '1.0.0',
  name: 'netb',
  plugins: [{ type: 'bridge', bridge: 'br0', ipam: { type: 'host-local' } }, { type: 'portmap', capabilities: { portMappings: true } }],
};

describe('network config lists', () => {
  const dir = path.join(tmpdir(), `${prefix}-conf`);
  beforeAll(() => {
    mkdirSync(dir);
    writeFileSync(path.join(dir, '05-broken.conflist'), '{ not json');
    writeFileSync(path.join(dir, '10-b.conflist'), JSON.stringify(bridgeList));
    writeFileSync(path.join(dir, '20-single.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'single', type: 'loopback' }));
    writeFileSync(path.join(dir, '30-nolist.json'), JSON.stringify({ cniVersion: '1.0.0', name: 'x' }));
    writeFileSync(path.join(dir, '00-ignored.txt'), JSON.stringify({ cniVersion: '1.0.0', name: 'txt', type: 'loopback' }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the first valid file in lexical order, skipping broken ones and other extensions', async () => {
    const l = await loadNetworkList({ dir });
    expect(l.name).toBe('netb');
    expect(l.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
    expect(l.source).toBe(path.join(dir, '10-b.conflist'));
  });

  it('finds a list by name and turns a single .conf into a list of one', async () => {
    const l = await loadNetworkList({ dir, name: 'single' });
    expect(l).toMatchObject({ cniVersion: '0.4.0', name: 'single', plugins: [{ type: 'loopback', name: 'single', cniVersion: '0.4.0' }] });
  });

  it('fails with ERR_NSTOOL_CNI_CONFIG for a missing name, bad JSON and bad shapes', async () => {
    expect(await codeOf(loadNetworkList({ dir, name: 'nope' }))).toBe('ERR_NSTOOL_CNI_CONFIG');
    expect(await codeOf(loadNetworkListFile(path.join(dir, '05-broken.conflist')))).toBe('ERR_NSTOOL_CNI_CONFIG');
    expect(await codeOf(loadNetworkListFile(path.join(dir, '30-nolist.json')))).toBe('ERR_NSTOOL_CNI_CONFIG');
    expect(await codeOf(loadNetworkListFile(path.join(dir, 'absent.conflist')))).toBe('ENOENT');
    expect(await codeOf(loadNetworkList({ dir: path.join(dir, 'absent') }))).toBe('ENOENT');
    for (const bad of [
      { ...bridgeList, cniVersion: 'one' },
      { ...bridgeList, name: 'a/b' },
      { ...bridgeList, name: '' },
      { ...bridgeList, plugins: [] },
      { ...bridgeList, plugins: [{ type: '../bin/sh' }] },
      { ...bridgeList, plugins: [{ type: 'bridge', capabilities: true }] },
      { ...bridgeList, disableCheck: 'yes' },
      [bridgeList],
    ]) {
      expect(await codeOf(() => parseNetworkList(bad)), JSON.stringify(bad)).toBe('ERR_NSTOOL_CNI_CONFIG');
    }
    expect(await codeOf(() => parseNetworkList('{"name": '))).toBe('ERR_NSTOOL_CNI_CONFIG');
  });

  it('reports a missing plugin as ERR_NSTOOL_CNI naming it', () => {
    let err: { code?: string; plugin?: string } = {};
    try {
      findPlugin('no-such-plugin', pluginPath(['/usr/lib/cni', '/opt/cni/bin']));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toMatchObject({ code: 'ERR_NSTOOL_CNI', plugin: 'no-such-plugin' });
    expect(findPlugin('bridge', pluginPath('/nonexistent:/usr/lib/cni'))).toBe('/usr/lib/cni/bridge');
    expect(() => pluginPath('relative/dir')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('plugin invocation inputs', () => {
  it('builds the CNI_* environment and drops NOTIFY_SOCKET and stray CNI_ vars', () => {
    const env = pluginEnv(
      { command: 'ADD', containerId: 'c1', netns: '/run/netns/p', ifName: 'eth0', args: 'A=1;B=2', pluginDirs: ['/a', '/b'], stdin: '' },
      { PATH: '/usr/bin', NOTIFY_SOCKET: '/x', CNI_COMMAND: 'DEL', CNI_EXTRA: 'y' },
    );
    expect(env).toEqual({
      PATH: '/usr/bin',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c1',
      CNI_NETNS: '/run/netns/p',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'A=1;B=2',
      CNI_PATH: '/a:/b',
    });
    const v = pluginEnv({ command: 'VERSION', pluginDirs: ['/a'], stdin: '' }, {});
    expect(v).toEqual({ CNI_COMMAND: 'VERSION', CNI_PATH: '/a' });
  });

  it('injects name, cniVersion, capability args the plugin declares, and prevResult', () => {
    const list = parseNetworkList(bridgeList);
    const caps = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1 } };
    const first = pluginStdin(list, list.plugins[0]!, caps);
    expect(first).toEqual({ type: 'bridge', bridge: 'br0', ipam: { type: 'host-local' }, cniVersion: '1.0.0', name: 'netb' });
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] };
    const second = pluginStdin(list, list.plugins[1]!, caps, prev);
    expect(second).toEqual({
      type: 'portmap',
      capabilities: { portMappings: true },
      cniVersion: '1.0.0',
      name: 'netb',
      runtimeConfig: { portMappings: caps.portMappings },
      prevResult: prev,
    });
  });

  it('formats CNI_ARGS and rejects separators inside keys and values', () => {
    expect(formatCniArgs([['K8S_POD_NAME', 'p'], ['IgnoreUnknown', '1']])).toBe('K8S_POD_NAME=p;IgnoreUnknown=1');
    expect(formatCniArgs([])).toBe('');
    for (const bad of [[['a;b', 'v']], [['a=b', 'v']], [['', 'v']], [['k', 'v;w']]] as [string, string][][]) {
      expect(() => formatCniArgs(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });

  it.each(['abc', 'A1', '0a_b.c-d', 'x'.repeat(200)])('accepts container id %j', (id) => expect(validateContainerId(id)).toBe(id));
  it.each(['', '-a', '_a', '.a', 'a/b', 'a b', 'a:b', 'é'])('rejects container id %j', (id) =>
    expect(() => validateContainerId(id)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' })),
  );
  it.each(['eth0', 'a', 'x'.repeat(15), 'net-1.2'])('accepts ifname %j', (n) => expect(validateIfName(n)).toBe(n));
  it.each(['', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb', '.', '..'])('rejects ifname %j', (n) =>
    expect(() => validateIfName(n)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' })),
  );
});

describe('spec versions', () => {
  it('compares versions numerically and gates verbs by version', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(versionHasVerb('0.3.1', 'CHECK')).toBe(false);
    expect(versionHasVerb('0.4.0', 'CHECK')).toBe(true);
    expect(versionHasVerb('1.0.0', 'GC')).toBe(false);
    expect(versionHasVerb('1.1.0', 'STATUS')).toBe(true);
    const debian = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'];
    expect(pluginTakes(debian, '1.0.0', 'ADD')).toBe(true);
    expect(pluginTakes(debian, '1.1.0', 'ADD')).toBe(false);
    expect(pluginTakes(debian, '1.1.0', 'GC')).toBe(false);
    expect(pluginTakes(debian, '0.3.1', 'CHECK')).toBe(false);
  });
});
