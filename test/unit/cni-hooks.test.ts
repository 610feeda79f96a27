// The pure parts of hook mode: OCI state parsing, settings from flags and
// annotations, and the hooks object a spec builder puts in config.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cniHooks, NSTOOL_BIN } from '../../src/hook/hooks.js';
import { cniAnnotations, FLAG_ONLY_ANNOTATIONS, resolveSettings } from '../../src/hook/settings.js';
import { checkRecord, recordPath } from '../../src/hook/record.js';
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
    expect(resolveSettings({ ifName: 'eth9', confDir: '/etc/d' }, ann, 42)).toEqual({ netns: '/run/netns/p', confDir: '/etc/d', network: 'n1', ifName: 'eth9' });
  });
  it('round-trip network, ifName and netns through annotations', () => {
    const s = { netns: '/run/netns/x', network: 'n1', ifName: 'net1' };
    expect(cniAnnotations(s)).toEqual({ 'nstool.netns': '/run/netns/x', 'nstool.cni.network': 'n1', 'nstool.cni.ifname': 'net1' });
    expect(resolveSettings({}, cniAnnotations(s), 42)).toEqual(s);
  });
  it('cniAnnotations() refuses path settings, which are hook flags only', () => {
    for (const k of ['conflist', 'confDir', 'result', 'pluginPath', 'cacheDir', 'nodeNetns', 'netnsPinDir', 'pidlessNetnsDir']) {
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
      ['nstool.cni.cachedir', 'nstool.cni.conflist', 'nstool.cni.confdir', 'nstool.cni.netnspindir', 'nstool.cni.nodenetns', 'nstool.cni.path', 'nstool.cni.pidlessnetnsdir', 'nstool.cni.result'].sort(),
    );
  });
  it('take all path settings from flags', () => {
    const s = { netns: '/n', confDir: '/d', network: 'n1', result: '/r.json', pluginPath: '/a:/b', cacheDir: '/c', nodeNetns: '/nn', netnsPinDir: '/pins', pidlessNetnsDir: '/vm' };
    expect(resolveSettings(s, {})).toEqual(s);
  });
  it('an annotated netns must be where the container\'s own can be: /proc/<pid>/ns/net or a pin in /run/netns or --netns-pin-dir; without a pid only in --pidless-netns-dir', () => {
    type Flags = { netnsPinDir?: string; pidlessNetnsDir?: string };
    const ok: [string, number | undefined, Flags, string][] = [
      ['/proc/42/ns/net', 42, {}, '/proc/42/ns/net'],
      ['/run/netns/pod-a', 42, {}, '/run/netns/pod-a'],
      ['/run/netns/./pod-a', 42, {}, '/run/netns/pod-a'],
      ['/var/run/pins/pod-a', 42, { netnsPinDir: '/var/run/pins' }, '/var/run/pins/pod-a'],
      ['/var/run/pins/pod-a', 42, { netnsPinDir: '/var/run/pins/' }, '/var/run/pins/pod-a'],
      ['/run/vm/pod-a', undefined, { pidlessNetnsDir: '/run/vm' }, '/run/vm/pod-a'],
    ];
    for (const [netns, pid, flags, want] of ok) {
      expect(resolveSettings(flags, { 'nstool.netns': netns }, pid).netns, netns).toBe(want);
    }
    const bad: [string, number | undefined, Flags][] = [
      ['/proc/1/ns/net', 42, {}],
      ['/proc/42/ns/net', undefined, {}],
      ['/proc/self/ns/net', 42, {}],
      ['/proc/42/ns/user', 42, {}],
      ['/proc/42/../1/ns/net', 42, {}],
      ['/run/netns', 42, {}],
      ['/run/netns/', 42, {}],
      ['/run/netns/../../etc/passwd', 42, {}],
      ['/run/netns/a/b', 42, {}],
      ['/run/netnsx/a', 42, {}],
      ['/tmp/x', 42, {}],
      ['/var/run/pins/pod-a', 42, {}],
      ['/var/run/pins/sub/pod-a', 42, { netnsPinDir: '/var/run/pins' }],
      // No pid: nothing to compare with, so not even /run/netns, unless the flag names the runtime's pin dir.
      ['/run/netns/pod-a', undefined, {}],
      ['/var/run/pins/pod-a', undefined, { netnsPinDir: '/var/run/pins' }],
      ['/run/netns/pod-a', undefined, { pidlessNetnsDir: '/run/vm' }],
      ['/run/vm/sub/pod-a', undefined, { pidlessNetnsDir: '/run/vm' }],
      // The pidless dir is for states without a pid only.
      ['/run/vm/pod-a', 42, { pidlessNetnsDir: '/run/vm' }],
    ];
    for (const [netns, pid, flags] of bad) {
      expect(() => resolveSettings(flags, { 'nstool.netns': netns }, pid), `${netns} ${pid}`).toThrow(
        expect.objectContaining({ code: 'ERR_NSTOOL_HOOK_SETTING', hint: expect.stringMatching(/--netns|--pidless-netns-dir/) }),
      );
    }
    // A netns given by flag is trusted as is.
    expect(resolveSettings({ netns: '/tmp/x' }, { 'nstool.netns': '/proc/1/ns/net' }, 42).netns).toBe('/tmp/x');
  });
  it('cap every value and quote it capped: a 20 MB annotation gives a short message', () => {
    const big = 'y'.repeat(20 * 1024 * 1024);
    for (const [k, v] of [['nstool.netns', big], ['nstool.netns', `/run/netns/${big}`], ['nstool.cni.ifname', big], ['nstool.cni.network', big], ['nstool.cni.ifname', 'eth0\u001b[2J'], ['nstool.cni.network', 'a/b']]) {
      let err: Error | undefined;
      try {
        resolveSettings({}, { [k]: v }, 42);
      } catch (e) {
        err = e as Error;
      }
      expect(err, k).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      expect(err!.message.length, k).toBeLessThan(400);
      expect(err!.message, k).not.toMatch(/[\u0000-\u001f]/);
    }
    expect(resolveSettings({}, { 'nstool.cni.ifname': 'x'.repeat(15), 'nstool.cni.network': 'n'.repeat(255) }, 42)).toEqual({ ifName: 'x'.repeat(15), network: 'n'.repeat(255) });
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
    const s = { conflist: '/c.conflist', result: '/r.json', pluginPath: '/a:/b', cacheDir: '/cache', nodeNetns: '/run/netns/node', netnsPinDir: '/pins', pidlessNetnsDir: '/vm', netns: '/n', ifName: 'net1' };
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
        '--pidless-netns-dir': '/vm',
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

describe('hook record', () => {
  const good = {
    kind: 'nstoolHookV1',
    containerId: 'c1',
    network: 'pods',
    ifName: 'eth0',
    netns: { path: '/run/netns/pod-1', dev: '4', ino: '4026532177', source: 'annotation' },
  };
  it('lives at <cacheDir>/nstool-hook/<id>, the id being one safe name', () => {
    expect(recordPath('/var/lib/cni/', 'c1')).toBe('/var/lib/cni/nstool-hook/c1');
    for (const id of ['..', '.x', 'a/b', '', 'a b']) expect(() => recordPath('/c', id), id).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => recordPath('rel', 'c1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
  it('is taken only when every field checks out', () => {
    expect(checkRecord(good, 'c1')).toEqual(good);
    expect(checkRecord({ ...good, netns: { ...good.netns, path: '' } }, 'c1').netns.path).toBe('');
    const bad: unknown[] = [
      null,
      [],
      'x',
      { ...good, kind: 'cniCacheV1' },
      { ...good, containerId: 'c2' },
      { ...good, network: 'a/b' },
      { ...good, network: '' },
      { ...good, ifName: 'eth0/x' },
      { ...good, ifName: 'x'.repeat(16) },
      { ...good, netns: null },
      { ...good, netns: { ...good.netns, path: 'run/netns/x' } },
      { ...good, netns: { ...good.netns, path: '/run/netns/../../etc/passwd' } },
      { ...good, netns: { ...good.netns, path: '/run/netns/a\u0000' } },
      { ...good, netns: { ...good.netns, dev: 4 } },
      { ...good, netns: { ...good.netns, ino: '-1' } },
      { ...good, netns: { ...good.netns, source: 'guess' } },
    ];
    for (const r of bad) expect(() => checkRecord(r, 'c1'), JSON.stringify(r)).toThrow();
  });
});
