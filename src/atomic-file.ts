// Replacing a file so readers see the old content or the new, never a torn
// or empty one: tmp file in the same dir, fsync, rename, fsync the dir.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // The rename itself must reach the disk before success is reported.
  const dh = await open(dir, 'r').catch(() => null);
  if (dh) await dh.sync().catch(() => {}).finally(() => dh.close());
}
