// CRI merge rules for argv, environment and working directory; every spec
// built here is checked against the OCI JSON schema.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildSpec, DEFAULT_PATH, mergeArgs, mergeEnv } from '../../src/oci/index.js';
import type { BuildSpecOptions, Spec } from '../../src/oci/index.js';
import { schemaErrors } from '../fixtures/oci/schema.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { errorCode } from '../helpers/errors.js';

const prefix = testPrefix('ociproc');
trackLeaks(prefix);

let dir: string;
let rootfs: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const image = { entrypoint: ['/entry', '-e'], cmd: ['serve', '--port=80'], env: ['LANG=C.UTF-8', 'MODE=image'], workingDir: '/srv' };

function build(opts: Partial<BuildSpecOptions>): Spec {
  const s = buildSpec({ rootfs, ...opts });
  expect(schemaErrors(s)).toEqual([]);
  expect(schemaErrors(s, 'closed')).toEqual([]);
  return s;
}

const code = errorCode;

describe('process.args', () => {
  it('image only: Entrypoint then Cmd', () => {
    expect(build({ image }).process.args).toEqual(['/entry', '-e', 'serve', '--port=80']);
  });

  it('command replaces Entrypoint and drops Cmd', () => {
    expect(build({ image, command: ['/bin/sh'] }).process.args).toEqual(['/bin/sh']);
  });

  it('command and args: both from the caller', () => {
    expect(build({ image, command: ['/bin/sh'], args: ['-c', 'true'] }).process.args).toEqual(['/bin/sh', '-c', 'true']);
  });

  it('args alone replace Cmd and keep Entrypoint', () => {
    expect(build({ image, args: ['debug'] }).process.args).toEqual(['/entry', '-e', 'debug']);
  });

  it('args alone with no Entrypoint run the args', () => {
    expect(build({ image: { cmd: ['a'] }, args: ['/bin/b', 'c'] }).process.args).toEqual(['/bin/b', 'c']);
  });

  it('an empty list counts as not given', () => {
    expect(build({ image, command: [], args: [] }).process.args).toEqual(['/entry', '-e', 'serve', '--port=80']);
    expect(build({ image, command: [], args: ['x'] }).process.args).toEqual(['/entry', '-e', 'x']);
  });

  it('Entrypoint [""] means none', () => {
    expect(build({ image: { entrypoint: [''], cmd: ['/bin/sh'] } }).process.args).toEqual(['/bin/sh']);
  });

  it('nothing to run is ERR_NSTOOL_NO_COMMAND', () => {
    expect(code(() => buildSpec({ rootfs }))).toBe('ERR_NSTOOL_NO_COMMAND');
    expect(code(() => buildSpec({ rootfs, image: { env: ['A=1'] } }))).toBe('ERR_NSTOOL_NO_COMMAND');
    expect(code(() => buildSpec({ rootfs, image: { entrypoint: [''] } }))).toBe('ERR_NSTOOL_NO_COMMAND');
    expect(code(() => buildSpec({ rootfs, command: [''] }))).toBe('ERR_NSTOOL_NO_COMMAND');
  });

  it('bad argument lists are refused', () => {
    expect(code(() => buildSpec({ rootfs, command: ['/bin/sh', 'a\0b'] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec({ rootfs, command: '/bin/sh' as never }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => buildSpec({ rootfs, args: [1 as never] }))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('matches the CRI rule for any combination (property)', () => {
    const list = fc.array(fc.string({ minLength: 1 }).filter((s) => !s.includes('\0')), { maxLength: 3 });
    fc.assert(
      fc.property(list, list, list, list, (entrypoint, cmd, command, args) => {
        const want = command.length > 0 ? [...command, ...args] : [...entrypoint, ...(args.length > 0 ? args : cmd)];
        if (want.length === 0) expect(code(() => mergeArgs({ entrypoint, cmd }, command, args))).toBe('ERR_NSTOOL_NO_COMMAND');
        else expect(mergeArgs({ entrypoint, cmd }, command, args)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});

describe('process.env', () => {
  it('default PATH first, then the image, then the caller; caller wins in place', () => {
    expect(build({ image, env: { MODE: 'caller', EXTRA: 'x=y' } }).process.env).toEqual([DEFAULT_PATH, 'LANG=C.UTF-8', 'MODE=caller', 'EXTRA=x=y']);
  });

  it('a PATH from the image or the caller replaces the default', () => {
    expect(build({ command: ['x'], image: { env: ['PATH=/img'] } }).process.env).toEqual(['PATH=/img']);
    expect(build({ command: ['x'], image: { env: ['A=1', 'PATH=/img'] }, env: ['PATH=/mine'] }).process.env).toEqual(['PATH=/mine', 'A=1']);
  });

  it('takes KEY=VALUE lists too, the last duplicate winning', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=', 'A=4', 'C=5'])).toEqual([DEFAULT_PATH, 'A=4', 'B=3', 'C=5']);
  });

  it('refuses entries that are not KEY=VALUE', () => {
    for (const bad of [['NOEQUALS'], ['=v'], ['A=\0']]) expect(code(() => mergeEnv(undefined, bad)), JSON.stringify(bad)).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => mergeEnv(['BROKEN'], undefined))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => mergeEnv(undefined, { 'A=B': 'c' }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => mergeEnv(undefined, { A: 1 as never }))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('order is stable and each name appears once (property)', () => {
    const name = fc.constantFrom('A', 'B', 'C', 'PATH', 'D_1');
    const entries = fc.array(fc.tuple(name, fc.string().filter((s) => !s.includes('\0'))), { maxLength: 6 });
    fc.assert(
      fc.property(entries, entries, (img, mine) => {
        const out = mergeEnv(
          img.map(([k, v]) => `${k}=${v}`),
          mine.map(([k, v]) => `${k}=${v}`),
        );
        const keys = out.map((e) => e.slice(0, e.indexOf('=')));
        expect(new Set(keys).size).toBe(keys.length);
        expect(keys[0]).toBe('PATH');
        const last = new Map<string, string>([['PATH', DEFAULT_PATH.slice(5)], ...img, ...mine]);
        for (const e of out) expect(e.slice(e.indexOf('=') + 1)).toBe(last.get(e.slice(0, e.indexOf('=')))!);
        // Names first seen in the image keep their relative order.
        const imgOrder: string[] = [...new Set(img.map(([k]) => k))].filter((k) => k !== 'PATH');
        expect(keys.filter((k) => imgOrder.includes(k))).toEqual(imgOrder);
      }),
      { numRuns: 300 },
    );
  });
});

describe('process.cwd', () => {
  it('caller, else the image WorkingDir, else /', () => {
    expect(build({ image, cwd: '/work' }).process.cwd).toBe('/work');
    expect(build({ image }).process.cwd).toBe('/srv');
    expect(build({ command: ['x'] }).process.cwd).toBe('/');
    expect(build({ image: { ...image, workingDir: '' } }).process.cwd).toBe('/');
  });

  it('must be absolute', () => {
    expect(code(() => buildSpec({ rootfs, command: ['x'], cwd: 'rel' }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => buildSpec({ rootfs, image: { ...image, workingDir: 'rel' } }))).toBe('ERR_INVALID_ARG_VALUE');
  });
});
