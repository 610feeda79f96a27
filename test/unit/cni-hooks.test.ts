// The pure parts of hook mode: OCI state parsing, settings from flags and
// annotations, and the hooks object a spec builder puts in config.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cniHooks, NSTOOL_BIN } from '../../src/hook/hooks.js';
import { cniAnnotations, resolveSettings } from '../../src/hook/settings.js';
import { parseOciState } from '../../src/hook/state.js';

describe('OCI state', () => {
  it('parses id, pid, bundle and annotations', () => {
    const s = parseOciState(JSON.stringify({ ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 42, bundle: '/b', annotations: { a: 'b' } }));
    expect(s).toEqual({ ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 42, bundle: '/b', annotations: { a: 'b' } });
    expect(parseOciState('{"id":"c1","pid":0}')).toEqual({ id: 'c1', annotations: {} });
  });
  it.each(['', '[]', 'null', '{}', '{"id":""}', '{"id":"c","pid":-1}', '{"id":"c","pid":"1"}', '{"id":"c","annotations":{"a":1}}'])('rejects %j', (t) =>
    expect(() => parseOciState(t)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' })),
  );
});

describe('hook settings', () => {
  const ann = { 'nstool.netns': '/run/netns/p', 'nstool.cni.conflist': '/etc/x.conflist', 'nstool.cni.ifname': 'net1', other: 'x' };
  it('take flags first, then annotations', () => {
    expect(resolveSettings({ ifName: 'eth9' }, ann)).toEqual({ netns: '/run/netns/p', conflist: '/etc/x.conflist', ifName: 'eth9' });
  });
  it('round-trip through annotations', () => {
    const s = { netns: '/n', confDir: '/d', network: 'n1', result: '/r.json', pluginPath: '/a:/b', cacheDir: '/c', nodeNetns: '/nn' };
    expect(resolveSettings({}, cniAnnotations(s))).toEqual(s);
  });
  it('reject relative paths and a conflist together with a confdir', () => {
    expect(() => resolveSettings({ result: 'r.json' }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => resolveSettings({}, { 'nstool.cni.conflist': '/x', 'nstool.cni.confdir': '/d' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => resolveSettings({}, { 'nstool.netns': '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('cniHooks()', () => {
  it('gives createRuntime and poststop entries that run bin/nstool.js with node', () => {
    expect(NSTOOL_BIN).toBe(path.resolve('bin/nstool.js'));
    expect(existsSync(NSTOOL_BIN)).toBe(true);
    const h = cniHooks({ conflist: '/etc/cni/net.d/10-pod.conflist', result: '/run/pod/net.json', timeout: 30 });
    expect(h.createRuntime).toEqual([
      {
        path: process.execPath,
        args: [process.execPath, NSTOOL_BIN, 'hook', 'create-runtime', '--conflist', '/etc/cni/net.d/10-pod.conflist', '--result', '/run/pod/net.json'],
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        timeout: 30,
      },
    ]);
    expect(h.poststop[0]!.args!.slice(2, 4)).toEqual(['hook', 'post-stop']);
    expect(Object.keys(h).sort()).toEqual(['createRuntime', 'poststop']);
  });
  it('takes another nstool entry and node binary, and rejects bad settings while building', () => {
    const h = cniHooks({ nstoolBin: '/opt/nstool/bin/nstool.js', node: '/usr/bin/node', network: 'pods' });
    expect(h.createRuntime[0]).toEqual({
      path: '/usr/bin/node',
      args: ['/usr/bin/node', '/opt/nstool/bin/nstool.js', 'hook', 'create-runtime', '--network', 'pods'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    });
    for (const bad of [{ nstoolBin: 'bin/nstool.js' }, { timeout: 0 }, { result: 'rel' }, { conflist: '/a', confDir: '/b' }]) {
      expect(() => cniHooks(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });
});
