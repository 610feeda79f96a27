import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  allocateFromSubid,
  assertNoHostRoot,
  hostRootMapping,
  HOST_ROOT_MAP,
  formatIdMap,
  parseIdMap,
  parseKernelMap,
  sameIdMap,
  toHostId,
  toKernelMap,
  MAX_MAP_LINES,
} from '../../src/idmap.js';
import { errorCode } from '../helpers/errors.js';

const code = errorCode;

describe('id maps', () => {
  it('parses the short form, lists, kernel text and objects alike', () => {
    const want = [{ containerID: 0, hostID: 100000, size: 65536 }];
    expect(parseIdMap('0:100000:65536')).toEqual(want);
    expect(parseIdMap(['0:100000:65536'])).toEqual(want);
    expect(parseIdMap('         0     100000      65536\n')).toEqual(want);
    expect(parseIdMap({ containerID: 0, hostID: 100000, size: 65536 })).toEqual(want);
    expect(parseIdMap('0:1000:1,1:100000:65535')).toHaveLength(2);
  });

  it('formats for people and for the kernel', () => {
    const m = parseIdMap('0:1000:1,1:100000:65535');
    expect(formatIdMap(m)).toBe('0:1000:1,1:100000:65535');
    expect(toKernelMap(m)).toBe('0 1000 1\n1 100000 65535\n');
    expect(parseKernelMap('         0       1000          1\n         1     100000      65535\n')).toEqual(m);
  });

  it('rejects bad maps with ERR_INVALID_ARG_VALUE', () => {
    for (const bad of [
      '',
      '0:100000',
      'a:b:c',
      '0:100000:0',
      '-1:0:1',
      '0:4294967296:1',
      '0:4294967295:2',
      '0:4294967295:1', // id 4294967295 is never valid
      '4294967295:100000:1',
      '1:0:4294967295',
      '0:100000:10,5:200000:10', // container ranges overlap
      '0:100000:10,20:100005:10', // host ranges overlap
    ]) {
      expect(code(() => parseIdMap(bad)), bad).toBe('ERR_INVALID_ARG_VALUE');
    }
    const many = Array.from({ length: MAX_MAP_LINES + 1 }, (_, i) => `${i}:${100000 + i}:1`).join(',');
    expect(code(() => parseIdMap(many))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => parseIdMap([{ containerID: 1.5, hostID: 0, size: 1 }]))).toBe('ERR_INVALID_ARG_VALUE');
    // 340 lines of wide numbers pass the line limit but not the one-page write.
    const wide = Array.from({ length: MAX_MAP_LINES }, (_, i) => `${1000000000 + i}:${2000000000 + i}:1`).join(',');
    expect(code(() => parseIdMap(wide))).toBe('ERR_INVALID_ARG_VALUE');
    // The host's own map is the widest valid one.
    expect(parseIdMap('0:0:4294967295')).toEqual([{ containerID: 0, hostID: 0, size: 4294967295 }]);
  });

  it('refuses a huge map before parsing it, and never repeats a huge value', () => {
    const many = Array.from({ length: 100_000 }, (_, i) => `${i}:${100000 + i}:1`).join(',');
    expect(code(() => parseIdMap(many))).toBe('ERR_INVALID_ARG_VALUE');
    const huge = '9'.repeat(20 * 1024 * 1024);
    for (const bad of [huge, `0:${huge}:1`, `0:1:\x1b${huge}`, [{ containerID: huge, hostID: 1, size: 1 }], [huge as unknown as string]]) {
      let msg = '';
      try {
        parseIdMap(bad as never);
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
        msg = (e as Error).message;
      }
      expect(msg.length).toBeGreaterThan(0);
      expect(msg.length).toBeLessThan(1000);
      expect(msg).not.toContain('\x1b');
    }
  });

  it('finds the range that maps a container id to host id 0 (root)', () => {
    expect(hostRootMapping(parseIdMap('0:100000:65536'))).toBeUndefined();
    expect(hostRootMapping(parseIdMap('0:1:65536'))).toBeUndefined();
    expect(hostRootMapping(parseIdMap('0:0:1'))).toEqual({ containerID: 0, hostID: 0, size: 1 });
    expect(hostRootMapping(parseIdMap('0:1:10,10:0:1'))).toEqual({ containerID: 10, hostID: 0, size: 1 });
    expect(hostRootMapping(parseIdMap('0:0:4294967295'))).toEqual({ containerID: 0, hostID: 0, size: 4294967295 });
  });

  it('refuses host-root maps with ERR_NSTOOL_HOST_ROOT_MAP naming the map and the range', () => {
    expect(HOST_ROOT_MAP).toBe('ERR_NSTOOL_HOST_ROOT_MAP');
    expect(() => assertNoHostRoot(parseIdMap('0:100000:65536'), 'uidMap')).not.toThrow();
    for (const [text, range] of [['0:0:65536', '0:0:65536'], ['0:1:10,10:0:1', '10:0:1'], ['5:200000:1,0:0:5', '0:0:5']] as const) {
      let err: { code?: string; message?: string; hint?: string } = {};
      try {
        assertNoHostRoot(parseIdMap(text), 'gidMap');
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.code, text).toBe('ERR_NSTOOL_HOST_ROOT_MAP');
      expect(err.message).toContain('gidMap');
      expect(err.message).toContain(range);
      expect(err.hint).toMatch(/allowHostRoot/);
    }
  });

  it('maps ids and compares maps regardless of order', () => {
    const m = parseIdMap('0:100000:65536');
    expect(toHostId(m, 0)).toBe(100000);
    expect(toHostId(m, 65535)).toBe(165535);
    expect(toHostId(m, 65536)).toBeUndefined();
    expect(sameIdMap(parseIdMap('0:1:1,1:5:1'), parseIdMap('1:5:1,0:1:1'))).toBe(true);
    expect(sameIdMap(parseIdMap('0:1:1'), parseIdMap('0:2:1'))).toBe(false);
  });

  it('allocates from a subid file by user name or uid', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'nstest-subid-'));
    try {
      const f = path.join(dir, 'subuid');
      writeFileSync(f, 'alice:100000:1000\nbob:200000:65536\n1001:300000:65536\n');
      expect(await allocateFromSubid('bob', { file: f })).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
      expect(await allocateFromSubid('carol', { file: f, uid: 1001 })).toEqual([{ containerID: 0, hostID: 300000, size: 65536 }]);
      await expect(allocateFromSubid('alice', { file: f })).rejects.toMatchObject({ code: 'ERR_NSTOOL_SUBID' });
      await expect(allocateFromSubid('bob', { file: path.join(dir, 'missing') })).rejects.toMatchObject({ code: 'ERR_NSTOOL_SUBID' });
      const err = (await allocateFromSubid(`\x1b${'u'.repeat(1e6)}`, { file: f }).catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe('ERR_NSTOOL_SUBID');
      expect(err.message.length).toBeLessThan(1000);
      expect(err.message).not.toContain('\x1b');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
