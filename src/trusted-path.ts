// Whether only root can change what a path leads to. Root acts on paths it
// builds under a state or bundle dir: if any dir on the way is another
// user's, or writable by others without the sticky bit, or a link others can
// replace, that user can swap what the path names between our check and our
// use (or plant files root then trusts). Checked component by component,
// without following a link before its owner and place are checked.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';

const MAX_LINKS = 40;

export interface Untrusted {
  /** The dir or link at fault. */
  dir: string;
  why: string;
}

function mode(m: number): string {
  return (m & 0o7777).toString(8);
}

/** What the walk asks for: a path's lstat (null when missing) or a link's target. */
type Ask = { lstat: string } | { readlink: string };

function* walk(p: string, stickyOk: boolean, depth: number): Generator<Ask, Untrusted | undefined, Stats | null | string> {
  if (depth > MAX_LINKS) return { dir: p, why: 'has too many levels of links' };
  const parts = path.normalize(path.resolve(p)).split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) cur = path.join(cur, parts[i - 1]!);
    const last = i === parts.length;
    const st = (yield { lstat: cur }) as Stats | null;
    if (st === null) return undefined;
    if (st.isSymbolicLink()) {
      if (st.uid !== 0) return { dir: cur, why: `is a link owned by uid ${st.uid}, who can point it elsewhere` };
      const target = path.resolve(path.dirname(cur), (yield { readlink: cur }) as string);
      return yield* walk(path.join(target, ...parts.slice(i)), stickyOk, depth + 1);
    }
    if (!st.isDirectory()) return { dir: cur, why: 'is not a directory' };
    if (st.uid !== 0) return { dir: cur, why: `is owned by uid ${st.uid}` };
    if ((st.mode & 0o022) !== 0 && ((last && !stickyOk) || (st.mode & 0o1000) === 0)) return { dir: cur, why: `is writable by other users (mode ${mode(st.mode)})` };
  }
  return undefined;
}

function missing(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT') return null;
  throw err;
}

/**
 * Why another user could change what P leads to, or undefined when only
 * root can. Every existing dir on the way must be root's and writable by
 * root alone (or sticky, where others cannot rename root's entries); P
 * itself (when it exists) must be a root dir no one else may write (sticky
 * only with STICKY_OK: others then make entries of their own in it, which
 * a dir whose entries root reads back must not allow); a link is followed
 * only when it is root's (its dir was checked).
 * Components that do not exist end the walk: whoever makes them checks again.
 */
export async function untrustedPath(p: string, stickyOk = false): Promise<Untrusted | undefined> {
  const w = walk(p, stickyOk, 0);
  for (let r = w.next(); ; ) {
    if (r.done) return r.value;
    const a = r.value;
    r = w.next('lstat' in a ? await lstat(a.lstat).catch(missing) : await readlink(a.readlink));
  }
}

/** untrustedPath without trips to the pool, for paths whose dirs are in memory (a tmpfs, the dentry cache). */
export function untrustedPathSync(p: string, stickyOk = false): Untrusted | undefined {
  const w = walk(p, stickyOk, 0);
  for (let r = w.next(); ; ) {
    if (r.done) return r.value;
    const a = r.value;
    let answer: Stats | null | string;
    if ('lstat' in a) {
      try {
        answer = lstatSync(a.lstat);
      } catch (err) {
        answer = missing(err as NodeJS.ErrnoException);
      }
    } else answer = readlinkSync(a.readlink);
    r = w.next(answer);
  }
}
