import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CacheEntry, ResultCache } from '../../src/cni/cache.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const prefix = testPrefix('cnicache');
trackLeaks(prefix, { extraDirs: [tmpdir()] });
const dir = path.join(tmpdir(), `${prefix}-cache`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = { network: 'net1', containerId: 'c1', ifName: 'eth0' };
const entry = (n: number): CacheEntry => ({
  kind: 'cniCacheV1',
  containerId: 'c1',
  ifName: 'eth0',
  networkName: 'net1',
  result: { cniVersion: '1.0.0', ips: [{ address: `10.0.0.${n}/24` }] },
});

describe('CNI result cache', () => {
  const cache = new ResultCache(dir);
  const file = cache.pathOf(key);

  it('writes the libcni layout with 0700 dirs and a 0600 file, and reads it back', async () => {
    expect(await cache.read(key)).toEqual({ state: 'missing' });
    expect(await cache.write(key, entry(1))).toBe(path.join(dir, 'results', 'net1-c1-eth0'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await cache.read(key)).toEqual({ state: 'ok', entry: entry(1) });
  });

  it('replaces by rename: a new inode, the old one untouched, no temp files left', async () => {
    const before = statSync(file).ino;
    const held = readFileSync(file, 'utf8');
    await cache.write(key, entry(2));
    expect(statSync(file).ino).not.toBe(before);
    expect(JSON.parse(held).result.ips[0].address).toBe('10.0.0.1/24');
    expect(readdirSync(path.dirname(file))).toEqual(['net1-c1-eth0']);
  });

  it('a write that fails midway leaves the previous entry and no temp file', async () => {
    const bad = { ...entry(3), result: { n: 1n } } as unknown as CacheEntry; // JSON.stringify throws on BigInt
    await expect(cache.write(key, bad)).rejects.toThrow();
    expect(await cache.read(key)).toEqual({ state: 'ok', entry: entry(2) });
    expect(readdirSync(path.dirname(file))).toEqual(['net1-c1-eth0']);
  });

  it('a rename that fails removes its temp file', async () => {
    const blocked = cache.pathOf({ ...key, containerId: 'c2' });
    mkdirSync(path.join(blocked, 'x'), { recursive: true }); // a non-empty dir cannot be renamed over
    await expect(cache.write({ ...key, containerId: 'c2' }, entry(3))).rejects.toMatchObject({ code: expect.stringMatching(/^E(ISDIR|NOTEMPTY|EXIST)$/) });
    expect(readdirSync(path.dirname(file)).sort()).toEqual(['net1-c1-eth0', 'net1-c2-eth0']);
    rmSync(blocked, { recursive: true });
  });

  it('reads back an entry larger than one read, and one of exactly 64 KiB', async () => {
    const big = { ...entry(1), result: { cniVersion: '1.0.0', pad: 'x'.repeat(150_000) } };
    await cache.write(key, big);
    expect(await cache.read(key)).toEqual({ state: 'ok', entry: big });
    const base = JSON.stringify({ ...entry(1), result: { cniVersion: '1.0.0', pad: '' } }).length;
    const exact = { ...entry(1), result: { cniVersion: '1.0.0', pad: 'y'.repeat(64 * 1024 - base) } };
    await cache.write(key, exact);
    expect(statSync(file).size).toBe(64 * 1024);
    expect(await cache.read(key)).toEqual({ state: 'ok', entry: exact });
  });

  it('concurrent writers leave one complete entry', async () => {
    await Promise.all([4, 5, 6, 7, 8].map((n) => cache.write(key, entry(n))));
    const r = await cache.read(key);
    expect(r.state).toBe('ok');
    expect(readdirSync(path.dirname(file))).toEqual(['net1-c1-eth0']);
  });

  it.each([
    ['empty', ''],
    ['whitespace', '  \n'],
    ['truncated', '{"kind":"cniCacheV1","result":'],
    ['wrong kind', '{"kind":"x","result":{}}'],
    ['no result', '{"kind":"cniCacheV1"}'],
  ])('reads a %s file as corrupt', async (_n, text) => {
    writeFileSync(file, text);
    expect((await cache.read(key)).state).toBe('corrupt');
  });

  it('reads a directory in the file\'s place as corrupt, and remove is idempotent', async () => {
    rmSync(file);
    mkdirSync(file);
    expect((await cache.read(key)).state).toBe('corrupt');
    rmSync(file, { recursive: true });
    expect(await cache.remove(key)).toBe(false);
    await cache.write(key, entry(9));
    expect(await cache.remove(key)).toBe(true);
    expect(await cache.read(key)).toEqual({ state: 'missing' });
  });

  it('reports a file where the results dir should be with its errno code', async () => {
    const ro = path.join(dir, 'ro');
    mkdirSync(ro);
    writeFileSync(path.join(ro, 'results'), 'a file where a dir should be');
    chmodSync(ro, 0o500);
    await expect(new ResultCache(ro).write(key, entry(1))).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
  });

  it('rejects keys that are not plain names before touching the disk', () => {
    for (const k of [
      { ...key, network: '../x' },
      { ...key, containerId: 'a/b' },
      { ...key, ifName: 'a/b' },
    ]) {
      expect(() => cache.pathOf(k)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(() => new ResultCache('rel')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
