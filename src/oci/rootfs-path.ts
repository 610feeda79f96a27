// Reading files of a container rootfs from the host without leaving it: every
// symlink is resolved as if the rootfs were "/" (absolute targets restart at
// the rootfs, ".." stops at it), and the final open refuses a symlink.
// (libuv opens every file O_CLOEXEC.)
import { constants, fstatSync, lstatSync, openSync, closeSync, readlinkSync, readSync } from 'node:fs';
import path from 'node:path';
import { invalidArg, NstoolError } from '../errors.js';

const MAX_LINKS = 40; // what the kernel allows in one lookup
const MAX_FILE_BYTES = 8 * 1024 * 1024;

/**
 * The host path of PATH inside ROOT, symlinks resolved within ROOT. Missing
 * components are fine (the result then names a file that does not exist).
 */
export function resolveInRoot(root: string, p: string): string {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const c = parts.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, c);
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      // Missing: the rest cannot be links, keep it literal.
    }
    if (!isLink) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) {
      throw new NstoolError(`too many symbolic links resolving ${p} in ${root}`, { code: 'ELOOP', path: host });
    }
    const target = readlinkSync(host);
    if (target.startsWith('/')) done.length = 0;
    parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return path.join(root, ...done);
}

/**
 * Reads PATH of the rootfs as text; undefined when it does not exist. Only a
 * regular file is read (a device or fifo placed there must not hang or flood us).
 */
export function readRootfsFile(root: string, p: string): string | undefined {
  const host = resolveInRoot(root, p);
  let fd: number;
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    // ELOOP here means the last component turned into a link after we looked.
    throw new NstoolError(`cannot open ${p} in the rootfs ${root}`, { code: code ?? 'EIO', path: host, cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw invalidArg(`${p} in the rootfs ${root} is not a regular file`, 'ERR_NSTOOL_ROOTFS_FILE');
    if (st.size > MAX_FILE_BYTES) throw invalidArg(`${p} in the rootfs ${root} is larger than ${MAX_FILE_BYTES} bytes`, 'ERR_NSTOOL_ROOTFS_FILE');
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
