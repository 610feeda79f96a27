// The on-disk record of each ADD result, so DEL and CHECK work after a
// restart. Same layout and format as libcni (<dir>/results/<net>-<id>-<if>,
// kind cniCacheV1), replaced by rename, so a crash of the writing process
// leaves the old file or the new one, never a torn one.
//
// It is not fsync'd (libcni does not fsync it either): a power cut in the
// seconds before the kernel writes it back can leave it missing or empty.
// That costs nothing the plugins keep: they write their own records without
// fsync too (host-local's reservation, made milliseconds before this entry,
// goes to disk in the same writeback, and its DEL releases by the container
// id written in it, not by prevResult), and a netns or veth does not outlive
// the power. Every reader validates what it reads: an empty, torn or foreign
// file reads as corrupt, DEL then runs without prevResult, gc acts on
// nothing it names, and the tmp file of a write cut short is gc's litter.
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { NstoolError, requireAbsolute } from '../errors.js';
import { atomicTmpName } from '../atomic-file.js';
import { validateContainerId, validateIfName, validateNetworkName } from './names.js';

export const DEFAULT_CACHE_DIR = '/var/lib/cni';

export interface CacheKey {
  network: string;
  containerId: string;
  ifName: string;
}

export interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  netns?: string;
  /** The network config list as base64 JSON, as libcni keeps it. */
  config?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result: Record<string, unknown>;
  /**
   * Which nstool instance made the entry (a sandbox state dir), so its gc
   * removes only its own; libcni ignores keys it does not know.
   */
  owner?: string;
}

export type CacheRead =
  | { state: 'missing' }
  | { state: 'corrupt'; reason: string }
  | { state: 'ok'; entry: CacheEntry };

function ioError(what: string, err: unknown, p: string): NstoolError {
  const e = err as NodeJS.ErrnoException;
  return new NstoolError(`${what} ${p}: ${e.message}`, {
    code: e.code ?? 'EIO',
    path: p,
    ...(e.syscall ? { syscall: e.syscall } : {}),
    hint: 'the CNI result cache directory must be writable by root',
    cause: err,
  });
}

/**
 * The text of the file P in as few trips to the pool as it takes (open,
 * one read, close for an entry: readFile also asks fstat and reads again
 * for the end). A short read of a regular file is its end; an entry is
 * replaced by rename, never written in place.
 */
async function readSmall(p: string): Promise<string> {
  const fh = await open(p, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      chunks.push(buf.subarray(0, bytesRead));
      if (bytesRead < buf.length) break;
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await fh.close();
  }
}

export class ResultCache {
  readonly dir: string;

  constructor(dir: string = DEFAULT_CACHE_DIR) {
    requireAbsolute(dir, 'cacheDir');
    this.dir = path.normalize(dir);
  }

  pathOf(k: CacheKey): string {
    validateNetworkName(k.network);
    validateContainerId(k.containerId);
    validateIfName(k.ifName);
    return path.join(this.dir, 'results', `${k.network}-${k.containerId}-${k.ifName}`);
  }

  /** Missing, corrupt (empty, unreadable, not JSON, wrong shape) or the entry. */
  async read(k: CacheKey): Promise<CacheRead> {
    const p = this.pathOf(k);
    let text: string;
    try {
      text = await readSmall(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
      return { state: 'corrupt', reason: (err as Error).message };
    }
    if (text.trim() === '') return { state: 'corrupt', reason: 'empty file' };
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      return { state: 'corrupt', reason: `invalid JSON: ${(err as Error).message}` };
    }
    const e = obj as Partial<CacheEntry> | null;
    if (!e || typeof e !== 'object' || e.kind !== 'cniCacheV1' || !e.result || typeof e.result !== 'object') {
      return { state: 'corrupt', reason: 'not a cniCacheV1 record' };
    }
    return { state: 'ok', entry: e as CacheEntry };
  }

  /** Writes ENTRY: tmp file 0600 in the same dir (named as gc's litter removal knows), then rename. */
  async write(k: CacheKey, entry: CacheEntry): Promise<string> {
    const p = this.pathOf(k);
    const dir = path.dirname(p);
    let text: string;
    try {
      text = JSON.stringify(entry);
    } catch (err) {
      throw ioError('writing', err, p);
    }
    const tmp = atomicTmpName(p);
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('writing', err, p);
      // The first entry: the dirs (0700) are made then, not asked for on every write.
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        fh = await open(tmp, 'wx', 0o600);
      } catch (e) {
        throw ioError('creating', e, dir);
      }
    }
    try {
      try {
        await fh.writeFile(text);
      } finally {
        await fh.close();
      }
      await rename(tmp, p);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw ioError('writing', err, p);
    }
    return p;
  }

  /** Removes the entry; a missing one is fine. */
  async remove(k: CacheKey): Promise<boolean> {
    const p = this.pathOf(k);
    try {
      await unlink(p);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError('removing', err, p);
    }
  }
}
