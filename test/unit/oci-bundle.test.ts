// writeBundle: config.json written atomically, mode 0600 (it holds the env), nothing else left.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, writeBundle } from '../../src/oci/index.js';
import type { Spec } from '../../src/oci/index.js';
import { schemaErrors } from '../fixtures/oci/schema.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const prefix = testPrefix('ocibundle');
trackLeaks(prefix);

let dir: string;
let spec: Spec;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(rootfs);
  spec = buildSpec({ rootfs, command: ['/bin/sh'], hostname: 'b' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const codeOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'no error', (e: { code?: string }) => String(e.code));

describe('writeBundle', () => {
  it('writes config.json with mode 0600 that reads back as the spec and validates', async () => {
    const b = path.join(dir, 'b1');
    mkdirSync(b);
    const old = process.umask(0o000);
    try {
      expect(await writeBundle(b, spec)).toBe(path.join(b, 'config.json'));
    } finally {
      process.umask(old);
    }
    const st = statSync(path.join(b, 'config.json'));
    expect(st.mode & 0o777).toBe(0o600);
    const back = JSON.parse(readFileSync(path.join(b, 'config.json'), 'utf8')) as unknown;
    expect(back).toEqual(spec);
    expect(schemaErrors(back)).toEqual([]);
    expect(readdirSync(b)).toEqual(['config.json']);
  });

  it('replaces an existing config.json whole', async () => {
    const b = path.join(dir, 'b2');
    mkdirSync(b);
    writeFileSync(path.join(b, 'config.json'), '{"old": true, "padding": "' + 'x'.repeat(100000) + '"}', { mode: 0o644 });
    await writeBundle(b, spec);
    expect(JSON.parse(readFileSync(path.join(b, 'config.json'), 'utf8'))).toEqual(spec);
    expect(statSync(path.join(b, 'config.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(b)).toEqual(['config.json']);
  });

  it('replaces a symlink named config.json instead of writing through it', async () => {
    const b = path.join(dir, 'b3');
    mkdirSync(b);
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, path.join(b, 'config.json'));
    await writeBundle(b, spec);
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect(JSON.parse(readFileSync(path.join(b, 'config.json'), 'utf8'))).toEqual(spec);
  });

  it('fails with the errno and leaves nothing when the directory is missing', async () => {
    expect(await codeOf(writeBundle(path.join(dir, 'missing'), spec))).toBe('ENOENT');
    expect(await codeOf(writeBundle('relative', spec))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await codeOf(writeBundle(dir, {} as Spec))).toBe('ERR_INVALID_ARG_TYPE');
  });
});
