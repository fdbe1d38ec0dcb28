/**
 * Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it over the target,
 * fsync the directory. A reader (or a reboot) sees either the old content or the new, never a torn file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileDurable(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(dir);
}

/** Remove a file (if present) and make the removal durable. */
export async function unlinkDurable(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  await fsyncDir(path.dirname(file));
  return true;
}
