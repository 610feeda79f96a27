// Leak accounting for a test file: what it created (by its name prefix)
// under the pin dirs and in the mount table, this process's open fds and
// its child processes, recorded before the file and compared after.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import { randomBytes } from 'node:crypto';

export interface Snapshot {
  pins: string[];
  mounts: string[];
  fds: string[];
  children: number[];
}

const PIN_DIRS = ['/run/netns', '/run/nstool/userns'];

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

/** Mount points from /proc/self/mountinfo (5th field, octal escapes kept). */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!);
}

export function openFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // the fd of the readdir itself is gone by now
    }
  }
  return out;
}

/** The children of PARENT (default: this process), from /proc. */
export function childPids(parent = process.pid): number[] {
  const me = parent;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === me) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function snapshot(prefix: string, extraDirs: string[] = []): Snapshot {
  const mine = (p: string) => p.includes(prefix);
  return {
    pins: [...PIN_DIRS, ...extraDirs].flatMap(listDir).filter(mine).sort(),
    mounts: mountPoints().filter(mine).sort(),
    fds: openFds().filter((f) => !f.includes('/proc/self/fd') && !/anon_inode:\[(eventpoll|eventfd|timerfd|io_uring)\]/.test(f)).sort(),
    children: childPids().sort(),
  };
}

/** A prefix unique to one test file, for everything that file creates. */
export function testPrefix(tag: string): string {
  return `nstest-${tag}-${randomBytes(3).toString('hex')}`;
}

/**
 * Registers before/after hooks for the current file: after all its tests,
 * nothing named with PREFIX may remain, and fds and children must be back.
 */
export function trackLeaks(prefix: string, opts: { extraDirs?: string[] } = {}): void {
  let before: Snapshot | undefined;
  beforeAll(() => {
    before = snapshot(prefix, opts.extraDirs);
  });
  afterAll(async () => {
    // Children reaped by libuv may need a tick to disappear.
    for (let i = 0; i < 50 && childPids().length > before!.children.length; i++) await new Promise((r) => setTimeout(r, 20));
    const after = snapshot(prefix, opts.extraDirs);
    expect(after.pins, 'pins left behind').toEqual(before!.pins);
    expect(after.mounts, 'mounts left behind').toEqual(before!.mounts);
    expect(after.children, 'child processes left behind').toEqual(before!.children);
    expect(after.fds, 'fds left open').toEqual(before!.fds);
  });
}
