/**
 * Durable file operations for the boot partition: every write is temp file in the same directory → fsync →
 * rename over → fsync of the directory, so a crash leaves either the old or the new file, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fs } from 'node:fs';
import * as path from 'node:path';

function tempName(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function isEnoent(err: unknown): boolean {
  return errnoCode(err) === 'ENOENT';
}

/** fsync a directory so that renames/unlinks in it are on disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems (vfat on older kernels) refuse fsync on a directory; the rename itself is still done.
    if (errnoCode(err) !== 'EINVAL') throw err;
  } finally {
    await handle.close();
  }
}

/** Create `dir` (and parents) and fsync each parent that gained an entry; `mode` applies to the directories created. */
export async function mkdirDurable(dir: string, mode?: number): Promise<void> {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (;;) {
    try {
      await fs.stat(cur);
      break;
    } catch (err) {
      if (!isEnoent(err)) throw err;
      missing.push(cur);
      const parent = path.dirname(cur);
      if (parent === cur) break;
      cur = parent;
    }
  }
  if (missing.length === 0) return;
  await fs.mkdir(dir, { recursive: true, ...(mode === undefined ? {} : { mode }) });
  for (const created of missing.reverse()) await fsyncDir(path.dirname(created));
}

async function replaceWith(temp: string, dest: string): Promise<void> {
  try {
    await fs.rename(temp, dest);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(dest));
}

/** Atomically replace `dest` with `data` (the directory must exist). */
export async function writeFileDurable(dest: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = tempName(dest);
  const handle = await fs.open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  await replaceWith(temp, dest);
}

/** Atomically replace `dest` with a copy of `src` (mode preserved). */
export async function copyFileDurable(src: string, dest: string): Promise<void> {
  const temp = tempName(dest);
  try {
    await fs.copyFile(src, temp, fsc.COPYFILE_EXCL);
    const handle = await fs.open(temp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await replaceWith(temp, dest);
}

/** Remove a file or tree if present and fsync its parent. Returns true when something was removed. */
export async function removeDurable(target: string): Promise<boolean> {
  try {
    await fs.lstat(target);
  } catch (err) {
    if (isEnoent(err)) return false;
    throw err;
  }
  await fs.rm(target, { recursive: true, force: true });
  await fsyncDir(path.dirname(target));
  return true;
}

/** Names the atomic writers above give their temp files (`.NAME.tmp-PID-RANDOM`). */
export const TEMP_FILE_RE = /^\..+\.tmp-\d+-[0-9a-f]{8}$/;

/**
 * Remove the temp files an atomic write left in `dir` when the process died (or the power went) between creating and
 * renaming them. Only for directories whose writers are known to be gone (start-up recovery, under the host lock).
 * Returns the names removed.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isEnoent(err)) return [];
    throw err;
  }
  const stale = names.filter((n) => TEMP_FILE_RE.test(n)).sort();
  for (const n of stale) await fs.rm(path.join(dir, n), { force: true });
  if (stale.length > 0) await fsyncDir(dir);
  return stale;
}

/**
 * Follow symlinks at `p` (EL UEFI hosts have /boot/grub2/grubenv -> ../efi/EFI/<os>/grubenv) so that a rename
 * replaces the target file instead of the link. Relative targets resolve against the link's directory.
 */
export async function resolveLinks(p: string, maxDepth = 8): Promise<string> {
  let cur = p;
  for (let i = 0; i < maxDepth; i++) {
    let target: string;
    try {
      const st = await fs.lstat(cur);
      if (!st.isSymbolicLink()) return cur;
      target = await fs.readlink(cur);
    } catch (err) {
      if (isEnoent(err)) return cur;
      throw err;
    }
    cur = path.resolve(path.dirname(cur), target);
  }
  return cur;
}
