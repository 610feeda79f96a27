// Reading files of a container rootfs from the host without leaving it. The
// tenant can rename and relink anything in its rootfs while we read, so no
// path is resolved here and opened later: the native core resolves and opens
// in one step, scoped to the rootfs (openat2 RESOLVE_IN_ROOT, or an O_PATH
// walk from a rootfs fd): absolute symlinks restart at the rootfs, ".." stops
// at it, procfs magic links are refused.
import { invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import { readInRootSync } from '../kernel/fs.js';

const MAX_FILE_BYTES = 8 * 1024 * 1024;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

const HINTS = {
  ELOOP: 'too many symbolic links (or a procfs magic link) on the way; fix the rootfs',
  EAGAIN: 'the rootfs kept changing during the lookup (something is renaming in it); retry',
};

/**
 * Reads P of the rootfs ROOT as text; undefined when it does not exist (or
 * ROOT does not). Only a regular file is read, and only opened for reading
 * once it is known to be one: a device or fifo placed there is refused with
 * ERR_NSTOOL_ROOTFS_FILE, never opened.
 */
export function readRootfsFile(root: string, p: string): string | undefined {
  requireAbsolute(root, 'rootfs');
  if (typeof p !== 'string' || p.includes('\0')) throw invalidArg('the path inside the rootfs must be a string without NUL');
  const f = readInRootSync(root, p, MAX_FILE_BYTES, 'auto', { context: `reading ${p} in the rootfs ${root}`, hints: HINTS });
  if (f === null) return undefined;
  if (f.data !== null) return f.data.toString('utf8');
  const why = (f.mode & S_IFMT) !== S_IFREG ? 'is not a regular file' : `is larger than ${MAX_FILE_BYTES} bytes`;
  throw new NstoolError(`${p} in the rootfs ${root} ${why}`, {
    code: 'ERR_NSTOOL_ROOTFS_FILE',
    path: root,
    hint: `make ${p} a regular file of the image`,
  });
}
