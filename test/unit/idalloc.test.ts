// The allocator's pure parts: pools from the subid files, block choice,
// the journal read back from disk, inotify records. No root needed.
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_POOL,
  decodeRecord,
  hostRanges,
  intersectRanges,
  Ledger,
  normalizeRanges,
  parseIdRange,
  parseInotify,
  parseSubidFile,
  pickBlock,
  resolvePool,
  subtractRanges,
  usernsKey,
  validateSubidUser,
} from '../../src/idalloc.js';
import { errorCode } from '../helpers/errors.js';

const code = errorCode;
const used = (...rs: Array<[number, number]>) => rs.map(([s, n]) => ({ s, e: s + n })).sort((a, b) => a.s - b.s);

describe('ranges', () => {
  it('normalizes, intersects and subtracts', () => {
    expect(normalizeRanges([{ start: 10, count: 5 }, { start: 0, count: 10 }, { start: 20, count: 1 }])).toEqual([
      { start: 0, count: 15 },
      { start: 20, count: 1 },
    ]);
    expect(intersectRanges([{ start: 0, count: 100 }], [{ start: 50, count: 100 }])).toEqual([{ start: 50, count: 50 }]);
    expect(intersectRanges([{ start: 0, count: 10 }], [{ start: 10, count: 10 }])).toEqual([]);
    expect(subtractRanges([{ start: 0, count: 100 }], [{ start: 10, count: 10 }, { start: 90, count: 20 }])).toEqual([
      { start: 0, count: 10 },
      { start: 20, count: 70 },
    ]);
    expect(hostRanges([{ containerID: 0, hostID: 100000, size: 65536 }])).toEqual([{ start: 100000, count: 65536 }]);
  });

  it('parses a range and refuses what the kernel would', () => {
    expect(parseIdRange('2147483648:65536')).toEqual({ start: 2147483648, count: 65536 });
    expect(parseIdRange({ start: 1, count: 2 })).toEqual({ start: 1, count: 2 });
    expect(code(() => parseIdRange('1:0'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => parseIdRange('4294967295:1'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => parseIdRange('4294901760:65536'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => parseIdRange('-1:5'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => parseIdRange({ start: 1.5, count: 2 }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => parseIdRange(7))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('takes subid user names as the files hold them', () => {
    expect(validateSubidUser('containers')).toBe('containers');
    expect(code(() => validateSubidUser('a:b'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => validateSubidUser('a\nb'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => validateSubidUser(''))).toBe('ERR_INVALID_ARG_VALUE');
    expect(code(() => validateSubidUser(5))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('the pool', () => {
  const files = (subuid: string, subgid = subuid) => ({ user: 'containers', subuid, subgid });

  it("is the user's ranges that both files give it", () => {
    const f = 'alice:100000:65536\ncontainers:2147483648:1000000\ncontainers:3000000000:65536\n';
    expect(resolvePool(files(f))).toEqual([
      { start: 2147483648, count: 1000000 },
      { start: 3000000000, count: 65536 },
    ]);
    // gid file narrower: only what both give.
    expect(resolvePool(files(f, 'containers:2147483648:131072\n'))).toEqual([{ start: 2147483648, count: 131072 }]);
    // A uid line counts for the user with that uid.
    expect(resolvePool({ user: 'bob', uid: 1001, subuid: '1001:500000:65536', subgid: 'bob:500000:65536' })).toEqual([{ start: 500000, count: 65536 }]);
  });

  it('skips malformed lines and comments', () => {
    expect(parseSubidFile('# comment\ncontainers:1:2:3\ncontainers:x:5\n:1:2\ncontainers:10:0\ncontainers:7:8')).toEqual([
      { who: 'containers', range: { start: 7, count: 8 } },
    ]);
  });

  it('falls back to the built-in range less everything delegated when neither file names the user', () => {
    expect(resolvePool(files(''))).toEqual([BUILTIN_POOL]);
    // A delegated range inside the built-in one is never handed out.
    const pool = resolvePool(files('alice:3000000000:65536\n', 'bob:2147483648:65536\n'));
    expect(pool).toEqual([
      { start: 2147483648 + 65536, count: 3000000000 - 2147483648 - 65536 },
      { start: 3000065536, count: BUILTIN_POOL.start + BUILTIN_POOL.count - 3000065536 },
    ]);
  });

  it('refuses a user named in one file only, or with no common range', () => {
    expect(code(() => resolvePool(files('containers:2147483648:65536\n', '')))).toBe('ERR_NSTOOL_SUBID');
    expect(code(() => resolvePool(files('containers:2147483648:65536\n', 'containers:3000000000:65536\n')))).toBe('ERR_NSTOOL_SUBID');
    expect(code(() => resolvePool(files('everyone:0:4294967295\n')))).toBe('ERR_NSTOOL_SUBID');
  });
});

describe('picking a block', () => {
  const pool = [{ start: 1000, count: 10 * 100 }];

  it('takes the lowest aligned block no live range touches', () => {
    expect(pickBlock(pool, [], 100)).toBe(1000);
    expect(pickBlock(pool, used([1000, 100]), 100)).toBe(1100);
    // A foreign unaligned range blocks both blocks it touches.
    expect(pickBlock(pool, used([1050, 100]), 100)).toBe(1200);
    // Ranges sorted by start may end in any order.
    expect(pickBlock(pool, used([1000, 450], [1100, 10]), 100)).toBe(1500);
    // Ranges outside the pool do not matter.
    expect(pickBlock(pool, used([0, 1000], [2000, 5000]), 100)).toBe(1000);
    // A hole left by a deleted pod is reused.
    expect(pickBlock(pool, used([1000, 100], [1200, 100]), 100)).toBe(1100);
  });

  it('goes on to the next pool range, and says when nothing is left', () => {
    const two = [{ start: 0, count: 150 }, { start: 500, count: 100 }];
    expect(pickBlock(two, used([0, 100]), 100)).toBe(500);
    expect(pickBlock(two, used([0, 100], [550, 1]), 100)).toBeUndefined();
    expect(pickBlock([{ start: 0, count: 99 }], [], 100)).toBeUndefined();
  });

  it('gives 1000 pods 1000 disjoint blocks', () => {
    const l = new Ledger();
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const b = pickBlock([{ start: 2 ** 31, count: 2 ** 31 - 65536 }], l.used, 65536)!;
      expect(seen.has(b)).toBe(false);
      seen.add(b);
      l.apply(['+', '/run/netns', `p${i}`, `i${i + 10}`, 1, [b, 65536], [b, 65536]]);
    }
    // Free one in the middle: the next pod gets exactly that block.
    l.apply(['-', '/run/netns', 'p500']);
    expect(pickBlock([{ start: 2 ** 31, count: 2 ** 31 - 65536 }], l.used, 65536)).toBe(2 ** 31 + 500 * 65536);
  });
});

describe('the ledger', () => {
  it('tracks entries and finds overlaps, claimed ones apart', () => {
    const l = new Ledger();
    l.apply(['+', '/run/netns', 'auto', 'i1', 1, [3000000000, 65536], [3000000000, 65536]]);
    l.apply(['+', '/run/netns', 'shared', 'i2', 0, [100000, 65536], [100000, 65536]]);
    expect(l.overlapping([{ start: 3000000100, count: 1 }], true).map((h) => h.entry.name)).toEqual(['auto', 'auto']);
    expect(l.overlapping([{ start: 100000, count: 1 }], true)).toEqual([]);
    expect(l.overlapping([{ start: 100000, count: 1 }], false).map((h) => h.entry.name)).toContain('shared');
    // Replacing an entry removes its old ranges.
    l.apply(['+', '/run/netns', 'auto', 'i3', 1, [4000000000, 10], [4000000000, 10]]);
    expect(l.overlapping([{ start: 3000000000, count: 65536 }], false)).toEqual([]);
    l.apply(['-', '/run/netns', 'shared']);
    expect(l.used.map((u) => u.s)).toEqual([4000000000, 4000000000]);
    // A snapshot rebuilds the same state.
    const copy = new Ledger();
    for (const r of l.snapshot()) copy.apply(r);
    expect([...copy.entries.values()]).toEqual([...l.entries.values()]);
  });

  it('names userns identities by the never-reused id where the kernel has one', () => {
    expect(usernsKey(4242, 4, 4026531837)).toBe('i4242');
    expect(usernsKey(0, 4, 4026531837)).toBe('n4:4026531837');
  });
});

describe('the journal read back from disk', () => {
  it('takes well-formed records', () => {
    expect(decodeRecord('["+","/run/netns","web",  "i99",1,[2147483648,65536],[2147483648,65536]]')[0]).toBe('+');
    expect(decodeRecord('["d","/run/netns","2049:12:34:56",1]')).toEqual(['d', '/run/netns', '2049:12:34:56', 1]);
    expect(decodeRecord('["d","/run/netns",null,0]')).toEqual(['d', '/run/netns', null, 0]);
    expect(decodeRecord('["h",1,"boot","4:5"]')).toEqual(['h', 1, 'boot', '4:5']);
  });

  it('refuses anything that would form a bad path or a bad range', () => {
    const bad = [
      '["+","run/netns","web","i1",1,[1,2],[1,2]]', // relative dir
      '["+","/run/../etc","web","i1",1,[1,2],[1,2]]', // not normalized
      '["+","/run/netns","../x","i1",1,[1,2],[1,2]]', // name with a slash
      '["+","/run/netns","..","i1",1,[1,2],[1,2]]',
      '["+","/run/netns","a\\u0000b","i1",1,[1,2],[1,2]]',
      '["+","/run/netns","web","x1",1,[1,2],[1,2]]', // key form
      '["+","/run/netns","web","i1",2,[1,2],[1,2]]', // flag
      '["+","/run/netns","web","i1",1,[1],[1,2]]', // odd ranges
      '["+","/run/netns","web","i1",1,[4294967295,1],[1,2]]', // id -1
      '["+","/run/netns","web","i1",1,[1,0],[1,2]]', // empty range
      '["d","/run/netns","1:2:3",1]', // stamp form
      '["h",2,"boot","4:5"]', // version
      '["zz"]',
      '{"a":1}',
      'not json',
    ];
    for (const line of bad) expect(() => decodeRecord(line), line).toThrow();
  });
});

describe('inotify records', () => {
  it('parses NUL-padded names and several events in one read', () => {
    const ev = (wd: number, mask: number, name: string) => {
      const n = Buffer.from(name);
      const len = name ? Math.ceil((n.length + 1) / 16) * 16 : 0;
      const b = Buffer.alloc(16 + len);
      b.writeInt32LE(wd, 0);
      b.writeUInt32LE(mask, 4);
      b.writeUInt32LE(len, 12);
      n.copy(b, 16);
      return b;
    };
    const buf = Buffer.concat([ev(1, 0x100, 'pod-a'), ev(2, 0x200, 'x'.repeat(40)), ev(-1, 0x4000, '')]);
    expect(parseInotify(buf)).toEqual([
      { wd: 1, mask: 0x100, name: 'pod-a' },
      { wd: 2, mask: 0x200, name: 'x'.repeat(40) },
      { wd: -1, mask: 0x4000, name: '' },
    ]);
    // A truncated record is not made up.
    expect(parseInotify(buf.subarray(0, 20))).toEqual([]);
  });
});
