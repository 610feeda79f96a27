// An OCI bundle's config.json, written so a reader never sees half a file.
// Mode 0600: it carries the container's environment (secrets, tokens) and
// only the runtime, which runs as root, reads it.
// (libuv opens every file O_CLOEXEC, so the flag is implicit here.)
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { invalidArg, NstoolError, requireAbsolute } from '../errors.js';
import type { Spec } from './types.js';

/** Writes DIR/config.json (mode 0600) via a temporary file, fsync and rename; returns its path. */
export async function writeBundle(dir: string, spec: Spec): Promise<string> {
  requireAbsolute(dir, 'bundle dir');
  if (spec === null || typeof spec !== 'object' || typeof spec.ociVersion !== 'string') throw invalidArg('spec must be an OCI runtime config', 'ERR_INVALID_ARG_TYPE');
  const text = `${JSON.stringify(spec, null, 2)}\n`;
  const final = path.join(dir, 'config.json');
  const tmp = path.join(dir, `.config.json.${randomBytes(6).toString('hex')}.tmp`);
  let fh;
  try {
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NstoolError(`cannot write the bundle config in ${dir}`, {
      code: e.code ?? 'EIO',
      path: dir,
      hint: e.code === 'ENOENT' ? 'create the bundle directory first' : undefined,
      cause: err,
    });
  }
  try {
    try {
      await fh.writeFile(text);
      await fh.chmod(0o600); // whatever the umask left
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    throw new NstoolError(`cannot write ${final}`, { code: e.code ?? 'EIO', path: final, cause: err });
  }
  // The rename is durable only once the directory is synced.
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
  return final;
}
