// The tmp files of writeFileAtomic: their names carry the writer's pid, and
// removeAtomicLitter removes only those whose writer is gone or that are old.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { atomicTmpName, inMemory, parseAtomicTmp, removeAtomicLitter, writeFileAtomic } from '../../src/atomic-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'nstest-atomic-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

// A pid above pid_max (at most 2^22) is never in use.
const DEAD = 9_999_999;
const old = (p: string) => utimesSync(p, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));

it('names tmp files after the target and the writer', () => {
  const t = path.basename(atomicTmpName('/x/s.json'));
  expect(parseAtomicTmp(t)).toEqual({ target: 's.json', pid: process.pid });
  expect(parseAtomicTmp('.s.json.tmp-0123456789ab')).toEqual({ target: 's.json' });
  for (const n of ['s.json', '.s.json.tmp-', '.s.json.tmp-12-xyz', 's.json.tmp-1-0123456789ab', '.s.json.tmp-0-0123456789ab']) expect(parseAtomicTmp(n), n).toBeNull();
});

it('removes what dead or old writers left, and nothing else', async () => {
  const f = (n: string) => path.join(dir, n);
  writeFileSync(f('.a.tmp-' + process.pid + '-0123456789ab'), 'x'); // mine, in flight
  writeFileSync(f(`.b.tmp-${DEAD}-0123456789ab`), 'x'); // writer gone
  writeFileSync(f('.c.tmp-0123456789ab'), 'x'); // no pid, young
  writeFileSync(f('.d.tmp-0123456789ab'), 'x'); // no pid, old
  old(f('.d.tmp-0123456789ab'));
  writeFileSync(f(`.e.tmp-${process.pid}-0123456789ab`), 'x'); // live writer, but old
  old(f(`.e.tmp-${process.pid}-0123456789ab`));
  writeFileSync(f('state.json'), 'x');
  writeFileSync(f('.state.json.tmp-keep'), 'x');
  symlinkSync('/etc/passwd', f(`.g.tmp-${DEAD}-0123456789ab`)); // not a regular file
  mkdirSync(f(`.h.tmp-${DEAD}-0123456789ab`));
  const gone = [`.b.tmp-${DEAD}-0123456789ab`, '.d.tmp-0123456789ab', `.e.tmp-${process.pid}-0123456789ab`].map(f);
  const dry = await removeAtomicLitter(dir, { dryRun: true });
  expect(dry.sort()).toEqual(gone.sort());
  expect(readdirSync(dir)).toHaveLength(9);
  expect((await removeAtomicLitter(dir)).sort()).toEqual(gone.sort());
  expect(readdirSync(dir).sort()).toEqual(
    ['.a.tmp-' + process.pid + '-0123456789ab', '.c.tmp-0123456789ab', 'state.json', '.state.json.tmp-keep', `.g.tmp-${DEAD}-0123456789ab`, `.h.tmp-${DEAD}-0123456789ab`].sort(),
  );
  expect(await removeAtomicLitter(path.join(dir, 'missing'))).toEqual([]);
});

it('a completed write leaves no tmp file', async () => {
  await writeFileAtomic(path.join(dir, 's.json'), '{}');
  expect(readdirSync(dir)).toEqual(['s.json']);
});

/** The fs type /proc/self/mountinfo gives for the mount P is on (the longest mount point above it). */
function fsTypeOf(p: string): string {
  let best = { at: '', type: '' };
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)) {
    const f = line.split(' ');
    const at = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const type = f[f.indexOf('-') + 1]!;
    if ((p === at || p.startsWith(at === '/' ? '/' : `${at}/`)) && at.length >= best.at.length) best = { at, type };
  }
  return best.type;
}

it('skips the fsyncs only on a tmpfs or ramfs, where nothing outlives a reboot anyway', async () => {
  for (const d of ['/dev/shm', dir, process.cwd()]) {
    const type = fsTypeOf(realpathSync(d));
    expect(await inMemory(d), `${d} (${type})`).toBe(type === 'tmpfs' || type === 'ramfs');
  }
  // Cannot be told: fsync.
  expect(await inMemory(path.join(dir, 'missing'))).toBe(false);
  // The write itself is the same on either.
  for (const d of ['/dev/shm', dir]) {
    const f = path.join(d, `nstest-atomic-${process.pid}.json`);
    try {
      await writeFileAtomic(f, 'new');
      expect(readFileSync(f, 'utf8')).toBe('new');
      expect(readdirSync(d).filter((n) => n.includes(`nstest-atomic-${process.pid}.json.tmp`))).toEqual([]);
    } finally {
      rmSync(f, { force: true });
    }
  }
});
