// Hostile input: fuzzed names, maps and paths either succeed (and are
// cleaned up) or fail with a typed ERR_INVALID_ARG_* error (or
// ERR_NSTOOL_HOST_ROOT_MAP for a map that gives a pod id host root) before
// any side effect; symlinks in a pin dir are never followed.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { NstoolError } from '../../src/errors.js';
import { native } from '../../src/native.js';
import { createPodNetnsSync, deletePodNetns, inspectNetns } from '../../src/netns.js';

const prefix = testPrefix('hostile');
trackLeaks(prefix);

// Everything lives under BASE, a directory of this file's own.
const BASE = `/run/${prefix}`;
const PIN_DIR = `${BASE}/netns`;
const USERNS_DIR = `${BASE}/userns`;
const DIRS = { pinDir: PIN_DIR, usernsPinDir: USERNS_DIR };
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

// Registered after trackLeaks, so it runs before its check (hooks unwind as a stack).
afterAll(() => {
  for (const m of mountPoints().filter((p) => p.startsWith(BASE)).reverse()) native.unmountSync(m);
  rmSync(BASE, { recursive: true, force: true });
});

function state(): string {
  const list = (d: string) => { try { return readdirSync(d).sort().join('|'); } catch { return '-'; } };
  return [list(PIN_DIR), list(USERNS_DIR), mountPoints().filter((m) => m.startsWith(BASE)).length].join(' / ');
}

function expectInvalidArg(e: unknown, codes = /^ERR_INVALID_ARG_/): void {
  expect(e).toBeInstanceOf(NstoolError);
  expect((e as NstoolError).code).toMatch(codes);
}

// Independent of src/names.ts: what a pin name must never hold.
const UNSAFE_NAME = /^-|[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const hostRoot = (m: Array<{ hostID: number }>) => m.some((r) => r.hostID === 0);

function expectCode(fn: () => unknown, code: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NstoolError);
  expect((err as NstoolError).code).toBe(code);
}

async function expectRejectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(NstoolError);
  expect((err as NstoolError).code).toBe(code);
}

/**
 * Create with ARGS; on success check the pin (its name safe, its maps free of
 * host root unless allowed) and delete it; on error no side effect.
 */
async function createOrNothing(opts: Record<string, unknown>): Promise<void> {
  const before = state();
  let made;
  try {
    made = createPodNetnsSync({ ...DIRS, pinUserns: true, ...opts } as never);
  } catch (e) {
    expectInvalidArg(e, /^(ERR_INVALID_ARG_|ERR_NSTOOL_HOST_ROOT_MAP$)/);
    expect(state()).toBe(before);
    return;
  }
  const after = readdirSync(PIN_DIR);
  expect((await inspectNetns(made.path, DIRS)).inode).toBe(made.netnsInode);
  expect((await deletePodNetns(made.path, DIRS)).existed).toBe(true);
  expect(made.name).not.toMatch(UNSAFE_NAME);
  // The file has exactly the name asked for (no U+FFFD stand-in).
  expect(after).toContain(made.name);
  if (opts['allowHostRoot'] !== true) {
    expect(hostRoot(made.uidMap)).toBe(false);
    expect(hostRoot(made.gidMap)).toBe(false);
  }
  expect(made.path).toBe(path.join(PIN_DIR, made.name));
  expect(state()).toBe(before);
}

// Names built from the characters that make trouble: controls, "-", "/", ".".
const trouble = fc.constantFrom('a', 'b', '-', '.', '/', ' ', '\t', '\n', '\r', '\x1b', '\x7f', '\x85', '\x9b', '\u2028', '\u202e', 'é', '\ud800', '\udc00', '\0');
const anyName = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: trouble, maxLength: 12 }),
  fc.tuple(fc.constantFrom('', '-', '--', 'ok-'), fc.string({ unit: trouble, maxLength: 6 }), fc.constantFrom('', 'x', '-rf')).map((p) => p.join('')),
  fc.constantFrom('', '.', '..', 'a/b', '../x', '/etc', 'x\0y', 'a'.repeat(255), 'a'.repeat(256), 'é'.repeat(128), ' ', '-', '-rf', '--help', 'a\tb', 'a\nb', '\x1b[2J', 'a\x7f', '\u2028', 'x\ud800'),
  fc.anything(),
);

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const anyNumber = fc.oneof(u32, fc.constantFrom(-1, 2 ** 32, 0.5, NaN, Infinity, 1e20), fc.double(), fc.anything());
const mapping = fc.record({ containerID: anyNumber, hostID: anyNumber, size: anyNumber });
const goodMapping = fc.record({ containerID: u32, hostID: u32, size: fc.integer({ min: 1, max: 2 ** 32 - 1 }) });
// A range holding host id 0, alone or after a harmless one.
const rootMapping = fc.record({ containerID: fc.integer({ min: 0, max: 100 }), hostID: fc.constant(0), size: fc.integer({ min: 1, max: 65536 }) });
const anyMap = fc.oneof(
  fc.constantFrom('0:0:65536', '0:0:1', '0:1:10,10:0:1', '0:100000:65536,65536:0:1'),
  fc.array(rootMapping, { minLength: 1, maxLength: 1 }),
  fc.tuple(fc.constant({ containerID: 200, hostID: 100000, size: 10 }), rootMapping),
  fc.anything(),
  fc.string(),
  fc.array(fc.tuple(u32, u32, u32).map((t) => t.join(':')), { maxLength: 4 }).map((a) => a.join(',')),
  mapping,
  fc.array(fc.oneof(mapping, goodMapping), { maxLength: 5 }),
  fc.array(goodMapping, { minLength: 1, maxLength: 3 }),
);

describeRoot('hostile input', () => {
  it('the test pin dirs are ready', () => {
    mkdirSync(BASE, { recursive: true });
    native.ensurePinDirSync(PIN_DIR);
    native.ensurePinDirSync(USERNS_DIR);
    expect(state()).toBe(' /  / 2');
  });

  it('fuzzed names: success and cleanup, or ERR_INVALID_ARG_* and no side effect', async () => {
    await fc.assert(fc.asyncProperty(anyName, (name) => createOrNothing({ name, uidMap: MAP })), { numRuns: 300 });
  });

  it('fuzzed maps: success and cleanup, or ERR_INVALID_ARG_* / ERR_NSTOOL_HOST_ROOT_MAP and no side effect', async () => {
    await fc.assert(
      fc.asyncProperty(anyMap, fc.option(anyMap, { nil: undefined }), fc.option(fc.boolean(), { nil: undefined }), (uidMap, gidMap, allowHostRoot) =>
        createOrNothing({
          name: `${prefix}-map`,
          uidMap,
          ...(gidMap === undefined ? {} : { gidMap }),
          ...(allowHostRoot === undefined ? {} : { allowHostRoot }),
        }),
      ),
      { numRuns: 400 },
    );
  });

  // The kernel refuses id 4294967295 ((u32)-1) as the first id of a range.
  it.each(['4294967295:100000:1', '0:4294967295:1'])('map %s that the kernel refuses is refused up front', async (uidMap) => {
    await createOrNothing({ name: `${prefix}-edge`, uidMap });
  });

  // The kernel takes a map in one write of less than a page.
  it('340 wide mappings (over a page of text) are refused up front', async () => {
    const uidMap = Array.from({ length: 340 }, (_, i) => ({ containerID: 4e9 + i, hostID: 4e9 + i, size: 1 }));
    await createOrNothing({ name: `${prefix}-wide`, uidMap });
  });

  it('fuzzed pin dirs and setgroups that are not valid are refused before any side effect', async () => {
    const badDir = fc.oneof(
      fc.string().filter((s) => !s.startsWith('/')),
      fc.string().map((s) => `/run/${s}\0x`),
      fc.anything().filter((v) => v !== undefined && v !== null && typeof v !== 'string'),
    );
    await fc.assert(
      fc.asyncProperty(badDir, fc.constantFrom('pinDir', 'usernsPinDir'), async (dir, key) => {
        const before = state();
        expect(() => createPodNetnsSync({ ...DIRS, name: `${prefix}-dir`, uidMap: MAP, pinUserns: true, [key]: dir } as never)).toThrow(NstoolError);
        try {
          createPodNetnsSync({ ...DIRS, name: `${prefix}-dir`, uidMap: MAP, pinUserns: true, [key]: dir } as never);
        } catch (e) {
          expectInvalidArg(e);
        }
        expect(state()).toBe(before);
      }),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.anything().filter((v) => v !== undefined && v !== 'allow' && v !== 'deny'), async (setgroups) => {
        await createOrNothing({ name: `${prefix}-sg`, uidMap: MAP, setgroups });
      }),
      { numRuns: 100 },
    );
  });

  it('fuzzed names given to delete and inspect: ERR_INVALID_ARG_*, or "nothing there", never a side effect', async () => {
    await fc.assert(
      fc.asyncProperty(anyName.filter((n) => !(typeof n === 'string' && n.startsWith('/'))), async (name) => {
        const before = state();
        const del = await deletePodNetns(name as string, DIRS).then((r) => r, (e: unknown) => e);
        if (del instanceof Error) expectInvalidArg(del);
        else expect(del).toMatchObject({ existed: false, stale: false });
        const ins = await inspectNetns(name as string, DIRS).then((r) => r, (e: unknown) => e);
        expect(ins).toBeInstanceOf(NstoolError);
        expect((ins as NstoolError).code).toMatch(/^(ERR_INVALID_ARG_|ENOENT$)/);
        expect(state()).toBe(before);
      }),
      { numRuns: 200 },
    );
  });

  it('symlinks in the pin dirs are never followed: create EEXIST, delete and inspect ELOOP, links and targets untouched', async () => {
    const target = `${BASE}/target`;
    writeFileSync(target, 'keep me');
    const real = createPodNetnsSync({ ...DIRS, name: `${prefix}-real`, uidMap: MAP });
    const links = { file: target, pin: real.path, dangling: `${BASE}/nowhere`, dir: BASE };
    for (const [n, to] of Object.entries(links)) symlinkSync(to, path.join(PIN_DIR, n));
    // A userns-pin-dir link makes the second pin fail: the netns pin is rolled back.
    symlinkSync(target, path.join(USERNS_DIR, 'ulink'));
    try {
      for (const n of Object.keys(links)) {
        expectCode(() => createPodNetnsSync({ ...DIRS, name: n, uidMap: MAP }), 'EEXIST');
        await expectRejectCode(deletePodNetns(n, DIRS), 'ELOOP');
        await expectRejectCode(inspectNetns(n, DIRS), 'ELOOP');
      }
      expectCode(() => createPodNetnsSync({ ...DIRS, name: 'ulink', uidMap: MAP, pinUserns: true }), 'EEXIST');
      expect(readdirSync(PIN_DIR).includes('ulink')).toBe(false);
      for (const [n, to] of Object.entries(links)) expect(readlinkSync(path.join(PIN_DIR, n))).toBe(to);
      expect(readFileSync(target, 'utf8')).toBe('keep me');
      expect(lstatSync(`${BASE}/nowhere`, { throwIfNoEntry: false })).toBeUndefined();
      expect((await inspectNetns(real.name, DIRS)).inode).toBe(real.netnsInode);
    } finally {
      for (const n of Object.keys(links)) rmSync(path.join(PIN_DIR, n));
      rmSync(path.join(USERNS_DIR, 'ulink'));
      await deletePodNetns(real.name, DIRS);
      rmSync(target);
    }
  });

  // O_DIRECTORY|O_NOFOLLOW on a symlink fails ENOTDIR: a symlinked pin dir is
  // "not a directory" too, and is never followed.
  it('a pin dir that is a regular file or a symlink gives ENOTDIR; nothing mounted, nothing made', () => {
    const file = `${BASE}/plainfile`;
    writeFileSync(file, '');
    const realDir = `${BASE}/realdir`;
    mkdirSync(realDir);
    symlinkSync(realDir, `${BASE}/linkdir`);
    const mounts = mountPoints().length;
    expectCode(() => createPodNetnsSync({ name: 'x', uidMap: MAP, pinDir: file }), 'ENOTDIR');
    expectCode(() => createPodNetnsSync({ name: 'x', uidMap: MAP, pinDir: `${file}/sub` }), 'ENOTDIR');
    expectCode(() => createPodNetnsSync({ name: 'x', uidMap: MAP, pinDir: `${BASE}/linkdir` }), 'ENOTDIR');
    expect(mountPoints().length).toBe(mounts);
    expect(readdirSync(realDir)).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('');
  });
});
