// The features cache: one file per set of inputs, named by a hash of them
// (boot, sysctls, uid, runtime binary realpath+inode+size+mtime, rootfs,
// bundles' filesystem, every plugin binary). A file is believed only when
// it is ours, private, holds exactly the same inputs and passes the shape
// check; anything else is a miss, never an error.
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { PluginListing, RuntimeFile } from './probes.js';
import { FeaturesData, validFeaturesData } from './report.js';

export const DEFAULT_FEATURES_CACHE_DIR = '/run/nstool/features';
const CACHE_MAX = 4 << 20;
const KEEP = 16;
const FILE_RE = /^[0-9a-f]{32}\.json$/;
const TMP_RE = /^\.[0-9a-f]{32}\.json\.tmp-[0-9a-f]{12}$/;

export interface CacheKeyInput {
  schema: number;
  nstoolVersion: string;
  bootId: string;
  euid: number;
  sysctl: unknown;
  runtime: RuntimeFile;
  rootfs?: string;
  workParent: string;
  pluginPath: string[];
  plugins: PluginListing;
}

function fileId(st: { dev: number; ino: number; size: number; mtimeMs: number } | null): unknown {
  return st ? [st.dev, st.ino, st.size, st.mtimeMs] : null;
}

function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

/** Everything a cached answer depends on, as a canonical string. */
export function cacheKey(k: CacheKeyInput): string {
  const rootfs = k.rootfs !== undefined ? statOrNull(k.rootfs) : null;
  return JSON.stringify({
    schema: k.schema,
    nstool: k.nstoolVersion,
    boot: k.bootId,
    euid: k.euid,
    sysctl: k.sysctl,
    runtime: [k.runtime.binary, k.runtime.path, fileId(k.runtime.stat)],
    rootfs: k.rootfs !== undefined ? [k.rootfs, fileId(rootfs), rootfs?.uid ?? null] : null,
    bundles: [k.workParent, statOrNull(k.workParent)?.dev ?? null],
    pluginPath: k.pluginPath,
    pluginDirs: k.plugins.dirs.map((d) => [d.path, d.exists]),
    plugins: k.plugins.plugins.map((p) => [p.name, p.path, fileId(p.stat)]),
  });
}

export function cacheFile(dir: string, key: string): string {
  return path.join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
}

const euid = (): number => process.geteuid?.() ?? 0;

/** DIR is a directory of ours that no one else can read or write. */
function privateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === euid() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** The cached data for KEY in FILE, or undefined (missing, not ours, not private, torn, other inputs, bad shape). */
export function readCache(dir: string, file: string, key: string): FeaturesData | undefined {
  if (!privateDir(dir)) return undefined;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== euid() || (st.mode & 0o077) !== 0 || st.size > CACHE_MAX) return undefined;
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    const doc = JSON.parse(buf.subarray(0, n).toString('utf8')) as unknown;
    if (doc === null || typeof doc !== 'object') return undefined;
    const d = doc as { key?: unknown; data?: unknown };
    if (d.key !== key) return undefined;
    return validFeaturesData(d.data);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Makes DIR 0700 (its parent 0711 when it is nstool's own /run/nstool); false when it is not usable. */
function prepareDir(dir: string, isDefault: boolean): boolean {
  try {
    if (isDefault) {
      try {
        mkdirSync(path.dirname(dir), { mode: 0o711 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    try {
      mkdirSync(dir, { recursive: !isDefault, mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== euid()) return false;
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
    return true;
  } catch {
    return false;
  }
}

/** Keeps the newest KEEP cache files and removes temp files a killed writer left. */
function sweep(dir: string, keep: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const files: Array<{ p: string; t: number }> = [];
  for (const n of names) {
    const p = path.join(dir, n);
    if (p === keep) continue;
    try {
      const st = lstatSync(p);
      if (!st.isFile()) continue;
      if (FILE_RE.test(n)) files.push({ p, t: st.mtimeMs });
      else if (TMP_RE.test(n) && Date.now() - st.mtimeMs > 60_000) unlinkSync(p);
    } catch {
      // gone meanwhile
    }
  }
  files.sort((a, b) => b.t - a.t);
  for (const f of files.slice(KEEP - 1)) {
    try {
      unlinkSync(f.p);
    } catch {
      // gone meanwhile
    }
  }
}

/** Writes DATA for KEY atomically, 0600; false when the cache dir cannot be used. */
export async function writeCache(dir: string, file: string, key: string, data: FeaturesData, isDefault: boolean): Promise<boolean> {
  if (!prepareDir(dir, isDefault)) return false;
  try {
    await writeFileAtomic(file, JSON.stringify({ key, data }), 0o600);
  } catch {
    return false;
  }
  sweep(dir, file);
  return true;
}
