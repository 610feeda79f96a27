// What create-runtime set up, kept for post-stop, so that post-stop undoes
// exactly that and nothing a later annotation names. One file per container:
// <cacheDir>/nstool-hook/<container id>. Post-stop knows only the id (from the
// runtime) and its flags, and both hooks share the cache dir flag, so that is
// where the record must be; --result is optional and may be read by others.
// The file is JSON with a kind tag (like libcni's cniCacheV1 next to it):
// readable by an operator, versioned, and checked field by field when read
// back, since a path formed from it is acted on as root.
import { constants } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { NstoolError, requireAbsolute } from '../errors.js';
import { untrustedPath } from '../trusted-path.js';
import { writeFileAtomic } from '../atomic-file.js';
import { validateContainerId, validateIfName, validateNetworkName } from '../cni/names.js';
import { showValue } from '../show.js';
import type { NetnsRef, NetnsSource } from './netns.js';

export const RECORD_KIND = 'nstoolHookV1';
const RECORD_DIR = 'nstool-hook';
const MAX_BYTES = 64 * 1024;
const SOURCES: readonly NetnsSource[] = ['pid', 'annotation', 'flag'];

export interface HookRecord {
  kind: typeof RECORD_KIND;
  containerId: string;
  /** The network list's name and the interface ADD was run with. */
  network: string;
  ifName: string;
  /** The netns ADD was run in, with its identity at the time. */
  netns: NetnsRef;
}

export type RecordRead = { state: 'missing'; path: string } | { state: 'corrupt'; path: string; reason: string } | { state: 'ok'; path: string; record: HookRecord };

export function recordPath(cacheDir: string, containerId: string): string {
  requireAbsolute(cacheDir, 'cacheDir');
  // The container id rule (one plain name, first character alphanumeric) makes it a safe file name.
  return path.join(path.normalize(cacheDir), RECORD_DIR, validateContainerId(containerId));
}

/** Writes the record atomically, 0600 in a 0700 dir. */
export async function writeRecord(cacheDir: string, r: HookRecord): Promise<string> {
  const p = recordPath(cacheDir, r.containerId);
  await mkdir(path.dirname(p), { recursive: true, mode: 0o700 });
  const bad = await untrustedPath(path.dirname(p));
  if (bad) {
    throw new NstoolError(`the hook record dir ${path.dirname(p)} could be changed by another user: ${bad.dir} ${bad.why}`, {
      code: 'ERR_NSTOOL_HOOK_SETTING',
      path: bad.dir,
      hint: 'give --cache-dir a dir only root can write (the default /var/lib/cni is)',
    });
  }
  await writeFileAtomic(p, JSON.stringify(r) + '\n', 0o600);
  return p;
}

export async function removeRecord(cacheDir: string, containerId: string): Promise<void> {
  await unlink(recordPath(cacheDir, containerId)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

function fail(what: string): never {
  throw new Error(what);
}

/** OBJ as a record for container ID, or an Error saying what is wrong with it. */
export function checkRecord(obj: unknown, id: string): HookRecord {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail('not a JSON object');
  const r = obj as Record<string, unknown>;
  if (r['kind'] !== RECORD_KIND) fail(`kind is not ${RECORD_KIND}`);
  if (r['containerId'] !== id) fail(`it is for container ${showValue(r['containerId'])}, not ${showValue(id)}`);
  try {
    validateNetworkName(r['network']);
    validateIfName(r['ifName']);
  } catch (err) {
    fail((err as Error).message);
  }
  const n = r['netns'] as Record<string, unknown> | null;
  if (n === null || typeof n !== 'object') fail('netns is not an object');
  const p = n['path'];
  if (typeof p !== 'string' || p.length > 4095 || (p !== '' && (!path.isAbsolute(p) || p.includes('\0') || path.normalize(p) !== p))) {
    fail(`netns path ${showValue(p)} is not a normalized absolute path`);
  }
  for (const k of ['dev', 'ino']) if (typeof n[k] !== 'string' || !/^\d{1,20}$/.test(n[k] as string)) fail(`netns ${k} is not a decimal number`);
  if (!SOURCES.includes(n['source'] as NetnsSource)) fail(`netns source ${showValue(n['source'])} is unknown`);
  return {
    kind: RECORD_KIND,
    containerId: id,
    network: r['network'] as string,
    ifName: r['ifName'] as string,
    netns: { path: p, dev: n['dev'] as string, ino: n['ino'] as string, source: n['source'] as NetnsSource },
  };
}

/** The record for ID: missing, corrupt (with why) or checked. Never follows a link or blocks on a FIFO. */
export async function readRecord(cacheDir: string, id: string): Promise<RecordRead> {
  const p = recordPath(cacheDir, id);
  // A record another user could have planted is no record: post-stop would act on its word.
  const bad = await untrustedPath(path.dirname(p));
  if (bad) return { state: 'corrupt', path: p, reason: `${bad.dir} could be changed by another user (${bad.why})` };
  let text: string;
  try {
    const fh = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { state: 'corrupt', path: p, reason: 'not a regular file' };
      if (st.size > MAX_BYTES) return { state: 'corrupt', path: p, reason: `larger than ${MAX_BYTES} bytes` };
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: 'missing', path: p };
    return { state: 'corrupt', path: p, reason: `cannot be read: ${code ?? (err as Error).message}` };
  }
  try {
    return { state: 'ok', path: p, record: checkRecord(JSON.parse(text), id) };
  } catch (err) {
    return { state: 'corrupt', path: p, reason: err instanceof SyntaxError ? 'not JSON' : (err as Error).message };
  }
}
