// The attack: a tenant renames inside its own rootfs while root reads the
// rootfs's /etc/passwd and /etc/group (resolveUser, buildSpec), trying to
// make root read a host file instead. Here a child process keeps swapping
// rootfs/etc with symlinks to a "host" dir (absolute, relative, climbing
// with ".."), atomically, with renameat2(RENAME_EXCHANGE). Root must only
// ever see the rootfs's ids or a typed error.
// Then the two ways the native core resolves a path in a root (openat2 and
// the O_PATH walk used where openat2 is missing) must give the same answers.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, resolveUser } from '../../src/oci/index.js';
import { native, type ResolveHow } from '../../src/native.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const prefix = testPrefix('rootfsrace');
trackLeaks(prefix);

const ROOTFS_PASSWD = 'root:x:0:0::/root:/bin/sh\npod:x:1234:1234::/home/pod:/bin/sh\n';
const ROOTFS_GROUP = 'root:x:0:\npod:x:1234:\nstaff:x:50:pod\n';
const HOST_PASSWD = 'root:x:0:0::/root:/bin/sh\npod:x:4321:4321::/:/bin/sh\nhostonly:x:4444:4444::/:/bin/sh\n';
const HOST_GROUP = 'root:x:0:\npod:x:4321:\nhostonly:x:4444:pod\n';
const HOST_IDS = [4321, 4444];

// Swaps ROOT/etc with each link in turn (out and back), until the deadline.
const ATTACKER = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
root, seconds, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
etc = os.path.join(root, 'etc').encode()
links = [os.path.join(root, n).encode() for n in names]
deadline = time.monotonic() + seconds
swaps = 0
sys.stdout.write('ready\\n'); sys.stdout.flush()
while time.monotonic() < deadline:
    for l in links:
        for _ in range(2):
            if libc.renameat2(-100, etc, -100, l, 2) != 0:
                sys.exit('renameat2: ' + os.strerror(ctypes.get_errno()))
            swaps += 1
print(swaps)
`;

let dir: string;
let rootfs: string;
let hostDir: string;
let attacker: ChildProcess | undefined;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  rootfs = path.join(dir, 'rootfs');
  hostDir = path.join(dir, 'host-dir');
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  writeFileSync(path.join(rootfs, 'etc/passwd'), ROOTFS_PASSWD);
  writeFileSync(path.join(rootfs, 'etc/group'), ROOTFS_GROUP);
  mkdirSync(hostDir);
  writeFileSync(path.join(hostDir, 'passwd'), HOST_PASSWD);
  writeFileSync(path.join(hostDir, 'group'), HOST_GROUP);
  // What the tenant swaps in for etc: the host dir by absolute path, by a
  // relative path, and by climbing far above the rootfs first.
  symlinkSync(hostDir, path.join(rootfs, 'swap-abs'));
  symlinkSync(path.relative(rootfs, hostDir), path.join(rootfs, 'swap-rel'));
  symlinkSync(`${'../'.repeat(12)}${hostDir.slice(1)}`, path.join(rootfs, 'swap-climb'));
});

afterAll(async () => {
  await stopAttacker();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the swapping loop; resolves once it runs, with its end. */
function startAttacker(seconds: number): Promise<{ done: Promise<string> }> {
  const child = spawn('python3', ['-c', ATTACKER, rootfs, String(seconds), 'swap-abs', 'swap-rel', 'swap-climb'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  attacker = child;
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      attacker = undefined;
      if (code === 0) resolve(out);
      else reject(new Error(`attacker exited ${code ?? signal}: ${err}`));
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => out.includes('ready\n') && resolve());
    done.then(() => resolve(), reject);
  });
  return ready.then(() => ({ done }));
}

async function stopAttacker(): Promise<void> {
  const child = attacker;
  if (!child) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

function errCode(e: unknown): string {
  return String((e as { code?: unknown }).code);
}

/** Runs FN over and over for a bounded while. */
function hammer(seconds: number, fn: () => void): number {
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end && n < 500_000) {
    fn();
    n++;
  }
  return n;
}

describeRoot('a tenant renaming inside its rootfs while root reads it', () => {
  const ALLOWED_ERRORS = new Set(['ERR_NSTOOL_UNKNOWN_USER', 'ERR_NSTOOL_UNKNOWN_GROUP']);

  it('resolveUser and buildSpec never return ids from outside the rootfs', async () => {
    const a = await startAttacker(8);
    const leaks: string[] = [];
    const unexpected: string[] = [];
    let ok = 0;
    let swapped = 0; // calls that met etc as a link (the attack was live)
    const check = (what: string, fn: () => { uid: number; gid: number; additionalGids?: number[] }, mayResolve: boolean) => {
      try {
        const u = fn();
        const ids = [u.uid, u.gid, ...(u.additionalGids ?? [])];
        if (!mayResolve || ids.some((i) => HOST_IDS.includes(i))) leaks.push(`${what}: ${JSON.stringify(u)}`);
        else if (u.uid !== 1234 || u.gid !== 1234) unexpected.push(`${what}: ${JSON.stringify(u)}`);
        else ok++;
      } catch (e) {
        if (!ALLOWED_ERRORS.has(errCode(e))) unexpected.push(`${what}: ${errCode(e)} ${String(e)}`);
        else if (mayResolve) swapped++;
      }
    };
    let i = 0;
    const calls = hammer(3, () => {
      switch (i++ % 4) {
        case 0:
          return check('pod', () => resolveUser(rootfs, 'pod'), true);
        case 1:
          return check('hostonly', () => resolveUser(rootfs, 'hostonly'), false);
        case 2:
          return check('pod:hostonly', () => resolveUser(rootfs, 'pod:hostonly'), false);
        default:
          return check('buildSpec', () => buildSpec({ rootfs, command: ['/bin/sh'], user: 'pod' }).process.user as never, true);
      }
    });
    await stopAttacker();
    await a.done.catch(() => undefined);

    expect(leaks.slice(0, 5), `host ids leaked in ${leaks.length} of ${calls} calls`).toEqual([]);
    expect(unexpected.slice(0, 5)).toEqual([]);
    // Not vacuous: the rootfs was read, and reads met the swapped state.
    expect(ok).toBeGreaterThan(0);
    expect(swapped).toBeGreaterThan(0);
  });

  for (const how of ['openat2', 'walk'] as const) {
    it(`the ${how} resolution reads only the rootfs's files`, async () => {
      const a = await startAttacker(8);
      const leaks: string[] = [];
      let read = 0;
      let missing = 0;
      hammer(2, () => {
        for (const f of ['/etc/passwd', 'etc/group']) {
          const r = native.readInRootSync(rootfs, f, 1 << 20, how);
          if (r === null) missing++;
          else if (r.data === null || ![ROOTFS_PASSWD, ROOTFS_GROUP].includes(r.data.toString())) leaks.push(`${f}: ${String(r.data)}`);
          else read++;
        }
      });
      await stopAttacker();
      await a.done.catch(() => undefined);
      expect(leaks.slice(0, 3), `${leaks.length} reads escaped`).toEqual([]);
      expect(read).toBeGreaterThan(0);
      expect(missing).toBeGreaterThan(0);
    });
  }
});

type Outcome = { missing: true } | { error: string } | { type: string; size: number; data: string | null };

const TYPES: Record<number, string> = { 0o100000: 'file', 0o040000: 'dir', 0o010000: 'fifo', 0o020000: 'chr', 0o120000: 'link' };

function outcome(root: string, p: string, how: ResolveHow, max = 1 << 20): Outcome {
  try {
    const r = native.readInRootSync(root, p, max, how);
    if (r === null) return { missing: true };
    const type = TYPES[r.mode & 0o170000] ?? 'other';
    return { type, size: type === 'dir' ? 0 : r.size, data: r.data === null ? null : r.data.toString() };
  } catch (e) {
    return { error: errCode(e) };
  }
}

describeRoot('openat2 and the O_PATH walk agree', () => {
  let r: string;
  beforeAll(() => {
    r = path.join(dir, 'parity');
    const at = (p: string) => path.join(r, p);
    mkdirSync(at('etc'), { recursive: true });
    mkdirSync(at('a/b/c'), { recursive: true });
    writeFileSync(at('etc/passwd'), 'inner\n');
    writeFileSync(at('a/b/file'), 'ab\n');
    // Inside copies of the host paths the links name: reading them proves the link was followed in the root.
    mkdirSync(at(hostDir.slice(1)), { recursive: true });
    writeFileSync(path.join(at(hostDir.slice(1)), 'passwd'), 'shadowed\n');
    symlinkSync(path.join(hostDir, 'passwd'), at('abs-file')); // -> the inside copy
    symlinkSync('/nonexistent-host-file', at('abs-missing'));
    symlinkSync(hostDir, at('abs-dir'));
    symlinkSync(`${'../'.repeat(12)}etc/passwd`, at('climb'));
    symlinkSync('../../../../etc/passwd', at('a/b/c/rel-climb'));
    symlinkSync('../file', at('a/b/c/rel-up'));
    symlinkSync('/a/b/c', at('dirlink'));
    symlinkSync('loop-b', at('loop-a'));
    symlinkSync('/loop-a', at('loop-b'));
    symlinkSync('self', at('self'));
    symlinkSync('etc/passwd', at('chain0'));
    for (let i = 1; i <= 40; i++) symlinkSync(`chain${i - 1}`, at(`chain${i}`));
  });

  it('every case, both ways', () => {
    execFileSync('mkfifo', [path.join(r, 'fifo')]);
    execFileSync('mknod', [path.join(r, 'null'), 'c', '1', '3']);
    const cases: Array<[string, Outcome]> = [
      ['/etc/passwd', { type: 'file', size: 6, data: 'inner\n' }],
      ['etc/passwd', { type: 'file', size: 6, data: 'inner\n' }],
      ['/abs-file', { type: 'file', size: 9, data: 'shadowed\n' }],
      ['/abs-missing', { missing: true }],
      ['/abs-dir/passwd', { type: 'file', size: 9, data: 'shadowed\n' }],
      ['/abs-dir/group', { missing: true }],
      ['/climb', { type: 'file', size: 6, data: 'inner\n' }],
      ['/../../../../etc/passwd', { type: 'file', size: 6, data: 'inner\n' }],
      ['/a/../../../etc/passwd', { type: 'file', size: 6, data: 'inner\n' }],
      ['/a/b/c/rel-climb', { type: 'file', size: 6, data: 'inner\n' }],
      ['/a/b/c/rel-up', { type: 'file', size: 3, data: 'ab\n' }],
      ['/dirlink/../file', { type: 'file', size: 3, data: 'ab\n' }],
      ['/dirlink/', { type: 'dir', size: 0, data: null }],
      ['/', { type: 'dir', size: 0, data: null }],
      ['/loop-a', { error: 'ELOOP' }],
      ['/self', { error: 'ELOOP' }],
      ['/chain39', { type: 'file', size: 6, data: 'inner\n' }], // 40 links: the kernel's limit
      ['/chain40', { error: 'ELOOP' }],
      ['/missing', { missing: true }],
      ['/etc/missing', { missing: true }],
      ['/etc/passwd/x', { missing: true }],
      ['/etc/passwd/', { missing: true }],
      ['/etc/passwd/..', { missing: true }],
      ['', { missing: true }],
      ['/fifo', { type: 'fifo', size: 0, data: null }],
      ['/null', { type: 'chr', size: 0, data: null }],
    ];
    for (const [p, want] of cases) {
      expect(outcome(r, p, 'openat2'), `openat2 ${p}`).toEqual(want);
      expect(outcome(r, p, 'walk'), `walk ${p}`).toEqual(want);
      expect(outcome(r, p, 'auto'), `auto ${p}`).toEqual(want);
    }
  });

  it('a file larger than the limit is named but not read', () => {
    for (const how of ['openat2', 'walk'] as const) {
      expect(outcome(r, '/etc/passwd', how, 5), how).toEqual({ type: 'file', size: 6, data: null });
      expect(outcome(r, '/etc/passwd', how, 6), how).toEqual({ type: 'file', size: 6, data: 'inner\n' });
    }
  });

  it('a procfs magic link is refused, and a missing root reads as missing', () => {
    // /proc/self/root is a magic link: following it would leave any root.
    for (const how of ['openat2', 'walk'] as const) {
      expect(outcome('/proc/self', 'root/etc/passwd', how), how).toEqual({ error: 'ELOOP' });
      expect(outcome(path.join(dir, 'no-such-root'), '/etc/passwd', how), how).toEqual({ missing: true });
    }
  });

  it('the promise variant gives the same answer', async () => {
    const r2 = await native.readInRoot(r, '/abs-dir/passwd', 1 << 20);
    expect(r2?.data?.toString()).toBe('shadowed\n');
    await expect(native.readInRoot(r, '/loop-a', 1 << 20, 'walk')).rejects.toMatchObject({ code: 'ELOOP', syscall: 'openat' });
    await expect(native.readInRoot(r, '/loop-a', 1 << 20, 'openat2')).rejects.toMatchObject({ code: 'ELOOP', syscall: 'openat2' });
  });
});

describe('bad arguments to the native call', () => {
  it('are TypeErrors before anything is opened', () => {
    expect(() => native.readInRootSync('/', '/etc/passwd', -1)).toThrow(TypeError);
    expect(() => native.readInRootSync('/', '/etc/passwd', 10, 'x' as ResolveHow)).toThrow(TypeError);
    expect(() => native.readInRootSync('/', 'a\0b', 10)).toThrow(TypeError);
  });
});
