// Runtime failures are classified once, from each runtime's own wording, so
// callers ask `reason` instead of matching text.
import { describe, expect, it } from 'vitest';
import { classifyRuntimeMessage, isExists, isNotFound, RuntimeError } from '../../src/runc/error.js';

const err = (runtimeMessage: string) =>
  new RuntimeError({ command: 'state', runtimeMessage, exitCode: 1, signal: null, argv: ['crun', 'state', 'x'], stderr: '' });

describe('classifyRuntimeMessage', () => {
  it('knows a missing container in runc and crun words', () => {
    for (const m of [
      'container does not exist', // runc 1.1.5
      'runc exec failed: container does not exist',
      'error opening file `/run/crun/web-1/status`: No such file or directory', // crun 1.8.1
      'container `web-1` does not exist: error opening file `/run/crun/web-1/status`: No such file or directory', // crun 1.9+
    ]) {
      expect(classifyRuntimeMessage(m), m).toBe('not-found');
    }
  });

  it('knows a taken id in runc and crun words', () => {
    for (const m of [
      'runc create failed: container with given ID already exists', // runc 1.1.5
      'container with id exists: web-1', // runc 1.2
      'container `web-1` already exists', // crun
    ]) {
      expect(classifyRuntimeMessage(m), m).toBe('exists');
    }
  });

  it('does not mistake look-alikes', () => {
    for (const m of [
      'error opening file `config.json`: No such file or directory',
      'error opening file `/run/crun/web-1/status`: Permission denied',
      'mkdir /run/runc/x: file exists',
      'cgroup path /sys/fs/cgroup/x already exists',
      '',
    ]) {
      expect(classifyRuntimeMessage(m), m).toBe('other');
    }
    expect(classifyRuntimeMessage('error mounting "sysfs" to rootfs at "/sys": operation not permitted')).toBe('netns-not-owned');
  });

  it('RuntimeError carries the reason; isNotFound/isExists read it', () => {
    expect(err('container does not exist')).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', reason: 'not-found' });
    expect(isNotFound(err('container does not exist'))).toBe(true);
    expect(isExists(err('container `a` already exists'))).toBe(true);
    expect(isNotFound(err('something else'))).toBe(false);
    // Anything that is not a runtime failure is neither.
    expect(isNotFound(Object.assign(new Error('container does not exist'), { code: 'ENOENT' }))).toBe(false);
    expect(isNotFound(null)).toBe(false);
    expect(isExists(undefined)).toBe(false);
  });
});
