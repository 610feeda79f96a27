// Replacing a file so readers see the old content or the new, never a torn
// or empty one: tmp file in the same dir, fsync, rename, fsync the dir.
// The rename alone is what makes it atomic against a crash of the process;
// the fsyncs make it durable against a crash of the machine, which a tmpfs
// (the usual /run) does not survive anyway: there they are skipped.
// The tmp name carries the writer's pid, so a writer killed between open
// and rename leaves a file that removeAtomicLitter can tell from one in use.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, renameSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { lstat, open, readdir, rename, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';

// .<target>.tmp-<pid>-<12 hex>; older versions wrote .<target>.tmp-<12 hex>.
const TMP_RE = /^\.(.+)\.tmp-(?:([1-9][0-9]{0,9})-)?([0-9a-f]{12})$/;

export function atomicTmpName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** The target and writer of a tmp file name writeFileAtomic makes, or null for any other name. */
export function parseAtomicTmp(name: string): { target: string; pid?: number } | null {
  const m = TMP_RE.exec(name);
  if (!m) return null;
  return m[2] === undefined ? { target: m[1]! } : { target: m[1]!, pid: Number(m[2]) };
}

// Filesystems whose content is gone after a reboot: an fsync there buys nothing.
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** Whether DIR is on a tmpfs or ramfs; false when that cannot be told (then fsync). */
export async function inMemory(dir: string): Promise<boolean> {
  try {
    const t = (await statfs(dir)).type;
    return t === TMPFS_MAGIC || t === RAMFS_MAGIC;
  } catch {
    return false;
  }
}

/** inMemory, asked without a trip to the pool (one statfs). */
export function inMemorySync(dir: string): boolean {
  try {
    const t = statfsSync(dir).type;
    return t === TMPFS_MAGIC || t === RAMFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * writeFileAtomic in a dir in memory, done at once: there each call is a few
 * microseconds of memory work, less than one trip to the pool, and nothing
 * waits on a disk. Returns false, having written nothing, when DIR is not in
 * memory: the caller then uses writeFileAtomic.
 */
export function writeFileAtomicInMemorySync(file: string, data: string | Buffer, mode = 0o600): boolean {
  const dir = path.dirname(file);
  if (!inMemorySync(dir)) return false;
  const tmp = atomicTmpName(file);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // not made, or already renamed
    }
    throw err;
  }
  return true;
}

export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = atomicTmpName(file);
  // Asked on every write, never cached: a mount over DIR changes the answer.
  // It runs on the pool next to the open, so it costs no extra wait.
  const volatile = inMemory(dir);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      if (!(await volatile)) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  if (await volatile) return;
  // The rename itself must reach the disk before success is reported.
  const dh = await open(dir, 'r').catch(() => null);
  if (dh) await dh.sync().catch(() => {}).finally(() => dh.close());
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface LitterOptions {
  /** A tmp file at least this old is litter even if its writer's pid is in use (default 60 s). */
  minAgeMs?: number;
  /** Only report. */
  dryRun?: boolean;
}

/**
 * Removes the tmp files writeFileAtomic left in DIR when its writer died:
 * regular files with its name pattern whose writer is gone or that are older
 * than minAgeMs. Returns their paths; a missing DIR has none.
 */
export async function removeAtomicLitter(dir: string, o: LitterOptions = {}): Promise<string[]> {
  const minAge = o.minAgeMs ?? 60_000;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names.sort()) {
    const t = parseAtomicTmp(name);
    if (!t) continue;
    const p = path.join(dir, name);
    const st = await lstat(p).catch(() => null);
    if (!st?.isFile()) continue;
    const old = Date.now() - st.mtimeMs >= minAge;
    if (!old && (t.pid === undefined || alive(t.pid))) continue;
    if (!o.dryRun) {
      try {
        await unlink(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // its writer renamed it meanwhile
        throw err;
      }
    }
    out.push(p);
  }
  return out;
}
