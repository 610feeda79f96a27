// The pure parts of hook mode: OCI state parsing, settings from flags and
// annotations, and the hooks object a spec builder puts in config.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cniHooks, NSTOOL_BIN } from '../../src/hook/hooks.js';
import { cniAnnotations, FLAG_ONLY_ANNOTATIONS, resolveSettings } from '../../src/hook/settings.js';
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
  const ann = { 'nstool.netns': '/run/netns/p', 'nstool.cni.network': 'n1', 'nstool.cni.ifname': 'net1', other: 'x' };
  it('take flags first, then annotations', () => {
    expect(resolveSettings({ ifName: 'eth9', confDir: '/etc/d' }, ann)).toEqual({ netns: '/run/netns/p', confDir: '/etc/d', network: 'n1', ifName: 'eth9' });
  });
  it('round-trip network, ifName and netns through annotations', () => {
    const s = { netns: '/run/netns/x', network: 'n1', ifName: 'net1' };
    expect(cniAnnotations(s)).toEqual({ 'nstool.netns': '/run/netns/x', 'nstool.cni.network': 'n1', 'nstool.cni.ifname': 'net1' });
    expect(resolveSettings({}, cniAnnotations(s))).toEqual(s);
  });
  it('cniAnnotations() refuses path settings, which are hook flags only', () => {
    for (const k of ['conflist', 'confDir', 'result', 'pluginPath', 'cacheDir', 'nodeNetns', 'netnsPinDir']) {
      expect(() => cniAnnotations({ [k]: '/x' } as never), k).toThrow(expect.objectContaining({ code: 'ERR_NSTOOL_HOOK_SETTING' }));
    }
  });
  it('refuse every path annotation, even next to the flag, whatever its value', () => {
    for (const a of Object.keys(FLAG_ONLY_ANNOTATIONS)) {
      for (const flags of [{}, { result: '/r.json', conflist: '/c', pluginPath: '/p' }]) {
        expect(() => resolveSettings(flags, { [a]: '/etc/passwd' }, 42), a).toThrow(expect.objectContaining({ code: 'ERR_NSTOOL_HOOK_SETTING' }));
      }
    }
    // The old annotation names are all covered.
    expect(Object.keys(FLAG_ONLY_ANNOTATIONS).sort()).toEqual(
      ['nstool.cni.cachedir', 'nstool.cni.conflist', 'nstool.cni.confdir', 'nstool.cni.netnspindir', 'nstool.cni.nodenetns', 'nstool.cni.path', 'nstool.cni.result'].sort(),
    );
  });
  it('take all path settings from flags', () => {
    const s = { netns: '/n', confDir: '/d', network: 'n1', result: '/r.json', pluginPath: '/a:/b', cacheDir: '/c', nodeNetns: '/nn', netnsPinDir: '/pins' };
    expect(resolveSettings(s, {})).toEqual(s);
  });
  it('an annotated netns must be the state pid\'s, or a pin in /run/netns or the flag\'s pin dir', () => {
    const ok: [string, number | undefined, string | undefined, string][] = [
      ['/proc/42/ns/net', 42, undefined, '/proc/42/ns/net'],
      ['/run/netns/pod-a', undefined, undefined, '/run/netns/pod-a'],
      ['/run/netns/./pod-a', 42, undefined, '/run/netns/pod-a'],
      ['/var/run/pins/pod-a', undefined, '/var/run/pins', '/var/run/pins/pod-a'],
      ['/var/run/pins/pod-a', undefined, '/var/run/pins/', '/var/run/pins/pod-a'],
    ];
    for (const [netns, pid, pinDir, want] of ok) {
      expect(resolveSettings(pinDir ? { netnsPinDir: pinDir } : {}, { 'nstool.netns': netns }, pid).netns, netns).toBe(want);
    }
    const bad: [string, number | undefined, string | undefined][] = [
      ['/proc/1/ns/net', 42, undefined],
      ['/proc/42/ns/net', undefined, undefined],
      ['/proc/self/ns/net', 42, undefined],
      ['/proc/42/ns/user', 42, undefined],
      ['/proc/42/../1/ns/net', 42, undefined],
      ['/run/netns', 42, undefined],
      ['/run/netns/', 42, undefined],
      ['/run/netns/../../etc/passwd', 42, undefined],
      ['/run/netns/a/b', 42, undefined],
      ['/run/netnsx/a', 42, undefined],
      ['/tmp/x', 42, undefined],
      ['/var/run/pins/pod-a', 42, undefined],
      ['/var/run/pins/sub/pod-a', 42, '/var/run/pins'],
    ];
    for (const [netns, pid, pinDir] of bad) {
      expect(() => resolveSettings(pinDir ? { netnsPinDir: pinDir } : {}, { 'nstool.netns': netns }, pid), netns).toThrow(
        expect.objectContaining({ code: 'ERR_NSTOOL_HOOK_SETTING', hint: expect.stringContaining('--netns') }),
      );
    }
    // A netns given by flag is trusted as is.
    expect(resolveSettings({ netns: '/tmp/x' }, { 'nstool.netns': '/proc/1/ns/net' }, 42).netns).toBe('/tmp/x');
  });
  it('reject relative paths and a conflist together with a network name', () => {
    expect(() => resolveSettings({ result: 'r.json' }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => resolveSettings({ conflist: '/x', confDir: '/d' }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => resolveSettings({ conflist: '/x' }, { 'nstool.cni.network': 'n' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => resolveSettings({}, { 'nstool.netns': '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => resolveSettings({}, { 'nstool.netns': 'run/netns/x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
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
  it('passes every path setting as a hook flag', () => {
    const s = { conflist: '/c.conflist', result: '/r.json', pluginPath: '/a:/b', cacheDir: '/cache', nodeNetns: '/run/netns/node', netnsPinDir: '/pins', netns: '/n', ifName: 'net1' };
    const h = cniHooks(s);
    for (const entry of [h.createRuntime[0]!, h.poststop[0]!]) {
      const args = entry.args!.slice(4);
      const flags = Object.fromEntries(Array.from({ length: args.length / 2 }, (_, i) => [args[2 * i], args[2 * i + 1]]));
      expect(flags).toEqual({
        '--conflist': '/c.conflist',
        '--result': '/r.json',
        '--plugin-path': '/a:/b',
        '--cache-dir': '/cache',
        '--node-netns': '/run/netns/node',
        '--netns-pin-dir': '/pins',
        '--netns': '/n',
        '--ifname': 'net1',
      });
      expect(entry.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    }
  });
  it('takes another nstool entry and node binary, and rejects bad settings while building', () => {
    const h = cniHooks({ nstoolBin: '/opt/nstool/bin/nstool.js', node: '/usr/bin/node', network: 'pods' });
    expect(h.createRuntime[0]).toEqual({
      path: '/usr/bin/node',
      args: ['/usr/bin/node', '/opt/nstool/bin/nstool.js', 'hook', 'create-runtime', '--network', 'pods'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    });
    for (const bad of [{ netnsPinDir: 'pins' }, { nstoolBin: 'bin/nstool.js' }, { timeout: 0 }, { result: 'rel' }, { conflist: '/a', confDir: '/b' }]) {
      expect(() => cniHooks(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });
});
