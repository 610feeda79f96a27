// toJSON() is the one serialisation of an error: each subclass's own fields
// reach --json, secondary failures are one `suppressed` list.
import { describe, expect, it } from 'vitest';
import { errorJson, ReportedFailure, UsageError } from '../../src/cli/context.js';
import { CniError } from '../../src/cni/errors.js';
import { errorToJSON, NstoolError } from '../../src/errors.js';
import { UsernsMismatchError } from '../../src/oci/namespaces.js';
import { ProcessError } from '../../src/process.js';
import { RuntimeError } from '../../src/runc/error.js';
import { SandboxError } from '../../src/sandbox/errors.js';
import { RollbackError } from '../../src/sandbox/rollback.js';

const roundTrip = (e: unknown) => JSON.parse(JSON.stringify(e)) as Record<string, unknown>;

describe('error JSON', () => {
  it('an NstoolError gives code, message and the fields that are set', () => {
    const e = new NstoolError('pinning x', { code: 'EPERM', errno: -1, syscall: 'mount', path: '/run/netns/x', hint: 'run as root' });
    expect(roundTrip(e)).toEqual({ code: 'EPERM', message: 'pinning x (run as root)', errno: -1, syscall: 'mount', path: '/run/netns/x', hint: 'run as root' });
    expect(errorJson(e)).toEqual(roundTrip(e));
  });

  it('each subclass adds its own fields', () => {
    const rt = new RuntimeError({ command: 'state', runtimeMessage: 'container does not exist', exitCode: 1, signal: null, argv: ['runc', 'state', 'x'], stderr: 'noise' });
    expect(roundTrip(rt)).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', reason: 'not-found', runtimeMessage: 'container does not exist', exitCode: 1, signal: null, argv: ['runc', 'state', 'x'] });
    expect(roundTrip(rt)).not.toHaveProperty('stderr');

    const cni = new CniError('bridge failed', { plugin: 'bridge', cniCode: 11, cniMsg: 'try again', cniDetails: 'busy' });
    expect(roundTrip(cni)).toEqual({ code: 'ERR_NSTOOL_CNI', message: 'bridge failed', plugin: 'bridge', cniCode: 11, cniMsg: 'try again', cniDetails: 'busy' });

    const pe = new ProcessError('x was killed', {
      code: 'ETIMEDOUT',
      argv: ['x'],
      result: { pid: 1, exitCode: null, signal: 'SIGKILL', stdout: 'a'.repeat(1000), stderr: '', truncated: false },
    });
    expect(roundTrip(pe)).toEqual({ code: 'ETIMEDOUT', message: 'x was killed', argv: ['x'], exitCode: null, signal: 'SIGKILL', truncated: false });

    const um = new UsernsMismatchError({ netnsPath: '/run/netns/a', usernsPath: '/run/u/b', netnsInode: 1, netnsOwnerInode: 2, usernsInode: 3 });
    expect(roundTrip(um)).toMatchObject({
      code: 'ERR_NSTOOL_USERNS_MISMATCH',
      netns: { path: '/run/netns/a', inode: 1, ownerInode: 2 },
      userns: { path: '/run/u/b', inode: 3 },
    });
  });

  it('a sandbox error carries its cause whole and every secondary failure with its step', () => {
    const cause = new CniError('ADD failed', { plugin: 'bridge', cniCode: 7 });
    const undo = new NstoolError('unpin failed', { code: 'EBUSY', path: '/run/netns/x' });
    const e = new SandboxError('creating sandbox s failed', { cause, step: 'netns', suppressed: [new RollbackError('netns', undo), new RollbackError('state file', new Error('disk full'))] });
    const j = roundTrip(e);
    expect(j).toMatchObject({ code: 'ERR_NSTOOL_CNI', step: 'netns', cause: { code: 'ERR_NSTOOL_CNI', plugin: 'bridge', cniCode: 7 } });
    expect(j['suppressed']).toEqual([
      { code: 'EBUSY', message: 'unpin failed', path: '/run/netns/x', step: 'netns' },
      { code: 'ERR_NSTOOL', message: 'disk full', step: 'state file' },
    ]);
  });

  it('secondary failures are one suppressed list: attached ones and a CNI DEL\'s otherErrors alike', () => {
    const e = Object.assign(new NstoolError('create failed', { code: 'ERR_NSTOOL_RUNTIME' }), { suppressed: [new NstoolError('undo failed', { code: 'EBUSY' })] });
    expect(roundTrip(e)['suppressed']).toEqual([{ code: 'EBUSY', message: 'undo failed' }]);
    const del = Object.assign(new CniError('DEL bridge', { plugin: 'bridge' }), { otherErrors: [new CniError('DEL portmap', { plugin: 'portmap' })] });
    expect(roundTrip(del)['suppressed']).toEqual([{ code: 'ERR_NSTOOL_CNI', message: 'DEL portmap', plugin: 'portmap' }]);
    // A plain error with an attached failure (a runtime's fs error, say).
    const plain = Object.assign(new Error('EIO: i/o error'), { code: 'EIO', syscall: 'read', suppressed: ['undo: gone'] });
    expect(errorToJSON(plain)).toEqual({ code: 'EIO', message: 'EIO: i/o error', syscall: 'read', suppressed: [{ code: 'ERR_NSTOOL', message: 'undo: gone' }] });
  });

  it('survives an error that lists itself, and values that are not errors', () => {
    const a = new NstoolError('a', { code: 'EA' }) as NstoolError & { suppressed?: unknown[] };
    a.suppressed = [a];
    let depth = 0;
    for (let j: Record<string, unknown> | undefined = errorToJSON(a); j; j = (j['suppressed'] as Record<string, unknown>[] | undefined)?.[0]) depth++;
    expect(depth).toBeGreaterThan(1);
    expect(depth).toBeLessThan(20);
    expect(errorToJSON('just text')).toEqual({ code: 'ERR_NSTOOL', message: 'just text' });
    expect(errorToJSON(null)).toEqual({ code: 'ERR_NSTOOL', message: 'null' });
  });

  it('the CLI errors: usage has its code, a reported failure carries its findings', () => {
    expect(roundTrip(new UsageError('give a name'))).toEqual({ code: 'ERR_NSTOOL_USAGE', message: 'give a name' });
    expect(roundTrip(new ReportedFailure('unhealthy', 'ERR_NSTOOL_SANDBOX_UNHEALTHY', { id: 's', checks: [{ name: 'pause', ok: false }] }))).toEqual({
      code: 'ERR_NSTOOL_SANDBOX_UNHEALTHY',
      message: 'unhealthy',
      id: 's',
      checks: [{ name: 'pause', ok: false }],
    });
  });
});
