import { describe, expect, it } from 'vitest';
import {
  createArgs,
  deleteArgs,
  execArgs,
  globalArgs,
  killArgs,
  listArgs,
  signalName,
  startArgs,
  stateArgs,
  validateContainerId,
} from '../../src/runc/args.js';
import { parseVersion } from '../../src/runc/client.js';
import { lastLogError, RuntimeError, runtimeHint } from '../../src/runc/error.js';
import { specNeedsIdmap as mountsNeedIdmap } from '../../src/oci/build.js';

const bad = (code = 'ERR_INVALID_ARG_VALUE') => expect.objectContaining({ code });

describe('runtime argv', () => {
  it('puts global flags first, log as JSON', () => {
    expect(globalArgs({ root: '/run/x', log: '/tmp/l.json' })).toEqual(['--root', '/run/x', '--log', '/tmp/l.json', '--log-format', 'json']);
    expect(globalArgs({ systemdCgroup: true })).toEqual(['--systemd-cgroup']);
    expect(globalArgs({})).toEqual([]);
    expect(() => globalArgs({ root: 'rel' })).toThrow(bad());
  });

  it('create: bundle, pid file, console socket, id last', () => {
    expect(createArgs('c1', '/b', { pidFile: '/b/pid' })).toEqual(['create', '--bundle', '/b', '--pid-file', '/b/pid', 'c1']);
    expect(createArgs('c1', '/b', { consoleSocket: '/s', noPivot: true, noNewKeyring: true })).toEqual([
      'create', '--bundle', '/b', '--console-socket', '/s', '--no-pivot', '--no-new-keyring', 'c1',
    ]);
    expect(() => createArgs('c1', 'b')).toThrow(bad());
  });

  it('start, state, delete, list', () => {
    expect(startArgs('a')).toEqual(['start', 'a']);
    expect(stateArgs('a.b_c-1')).toEqual(['state', 'a.b_c-1']);
    expect(deleteArgs('a')).toEqual(['delete', 'a']);
    expect(deleteArgs('a', { force: true })).toEqual(['delete', '--force', 'a']);
    expect(listArgs()).toEqual(['list', '--format', 'json']);
  });

  it('kill: signal names normalised, --all before the id', () => {
    expect(killArgs('a')).toEqual(['kill', 'a', 'SIGTERM']);
    expect(killArgs('a', 'KILL', { all: true })).toEqual(['kill', '--all', 'a', 'SIGKILL']);
    expect(killArgs('a', 9)).toEqual(['kill', 'a', 'SIGKILL']);
    expect(signalName('sigusr1')).toBe('SIGUSR1');
    expect(() => killArgs('a', 'NOPE')).toThrow(bad());
    expect(() => killArgs('a', 999)).toThrow(bad());
  });

  it('exec: flags before the id, the program after it untouched', () => {
    expect(execArgs('a', { argv: ['ls', '-l', '--all'], env: { A: '1' }, cwd: '/tmp', user: '0:0' })).toEqual([
      'exec', '--cwd', '/tmp', '--env', 'A=1', '--user', '0:0', 'a', 'ls', '-l', '--all',
    ]);
    expect(execArgs('a', { processFile: '/p.json', detach: true, pidFile: '/pid' })).toEqual([
      'exec', '--process', '/p.json', '--detach', '--pid-file', '/pid', 'a',
    ]);
    expect(() => execArgs('a', { argv: [] })).toThrow(bad());
    expect(() => execArgs('a', { argv: ['x'], env: { 'A=B': '1' } })).toThrow(bad());
    expect(() => execArgs('a', { argv: ['x'], user: 'root' })).toThrow(bad());
  });

  it.each(['', '-a', '-rf', '--help', '.a', 'a/b', 'a b', '../x', 'a\0b', 'a\tb', 'a\nb', 'a\n', 'a\x1b[31m', 'a\x7f', 'a\u2028', 'x'.repeat(1025)])('rejects container id %j', (id) => {
    expect(() => validateContainerId(id)).toThrow(bad());
    expect(() => startArgs(id)).toThrow(bad());
  });

  it('never repeats a huge or hostile value in its errors', () => {
    const huge = `\x1b${'v'.repeat(20 * 1024 * 1024)}`;
    for (const fn of [
      () => startArgs(huge),
      () => killArgs('a', huge),
      () => execArgs('a', { argv: ['x'], env: { [`${huge}=`]: '1' } }),
      () => execArgs('a', { argv: ['x'], user: huge }),
    ]) {
      let msg = '';
      try {
        fn();
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
        msg = (e as Error).message;
      }
      expect(msg.length).toBeGreaterThan(0);
      expect(msg.length).toBeLessThan(1000);
      expect(msg).not.toContain('\x1b');
    }
  });

  it('rejects a non-string id with ERR_INVALID_ARG_TYPE', () => {
    expect(() => validateContainerId(3)).toThrow(bad('ERR_INVALID_ARG_TYPE'));
  });
});

describe('runtime output', () => {
  it('takes the last level=error line of a JSON log', () => {
    const log = [
      '{"level":"info","msg":"hello","time":"t"}',
      '{"level":"error","msg":"first","time":"t"}',
      'torn line {',
      '{"level":"error","msg":"container \\"x\\" does not exist","time":"t"}',
      '{"level":"warning","msg":"later","time":"t"}',
      '',
    ].join('\n');
    expect(lastLogError(log)).toBe('container "x" does not exist');
    expect(lastLogError('')).toBeUndefined();
  });

  it('parses runc and crun version text', () => {
    expect(parseVersion('runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n')).toMatchObject({
      name: 'runc', version: '1.1.5+ds1', commit: '1.1.5+ds1-1+deb12u1', spec: '1.0.2-dev',
    });
    expect(parseVersion('crun version 1.8.1\ncommit: abc\n')).toMatchObject({ name: 'crun', version: '1.8.1' });
    expect(parseVersion('garbage')).toMatchObject({ name: 'unknown', version: 'unknown' });
  });

  it('hints at createPodNetns for the sysfs EPERM', () => {
    const msg = 'error mounting "sysfs" to rootfs at "/sys": operation not permitted';
    expect(runtimeHint(msg)).toMatch(/createPodNetns/);
    const e = new RuntimeError({ command: 'create', runtimeMessage: msg, exitCode: 1, signal: null, argv: ['runc', 'create', 'x'], stderr: '' });
    expect(e).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', exitCode: 1, runtimeMessage: msg, argv: ['runc', 'create', 'x'] });
    expect(e.hint).toMatch(/createPodNetns/);
  });

  it('finds idmapped mounts in a spec', () => {
    expect(mountsNeedIdmap({ mounts: [{ destination: '/a', source: '/b', options: ['bind'] }] })).toBe(false);
    expect(mountsNeedIdmap({ mounts: [{ destination: '/a', uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] }] })).toBe(true);
    expect(mountsNeedIdmap({ mounts: [{ destination: '/a', options: ['rbind', 'ridmap'] }] })).toBe(true);
    expect(mountsNeedIdmap({ mounts: [{ destination: '/a', uidMappings: [] }] })).toBe(false);
    expect(mountsNeedIdmap(null)).toBe(false);
  });
});
