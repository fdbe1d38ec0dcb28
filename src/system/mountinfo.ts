/** /proc/self/mountinfo, parsed; and release of mounts a killed process left behind. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { run } from './run';

export interface MountLine {
  readonly mountPoint: string;
  /** Per-mount options followed by the superblock options. */
  readonly options: readonly string[];
  readonly fsType: string;
  readonly source: string;
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Field 5 is the mount point, 6 the per-mount options; after " - ": fs type, source, super options. */
export function parseMountinfo(text: string): MountLine[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const [pre = '', post = ''] = line.split(' - ');
    const f = pre.split(' ');
    const [fsType = '', source = '', superOpts = ''] = post.split(' ');
    return {
      mountPoint: unescape(f[4] ?? ''),
      options: [...(f[5] ?? '').split(','), ...superOpts.split(',')],
      fsType,
      source: unescape(source),
    };
  });
}

export async function readMounts(file = '/proc/self/mountinfo'): Promise<MountLine[]> {
  return parseMountinfo(await fs.readFile(file, 'utf8'));
}

/**
 * Unmount everything mounted below `dir` (deepest first) and remove the emptied mountpoint directories.
 * A SIGKILLed transaction leaves its image and volume mounts behind; recovery calls this before undoing.
 * Returns the mount points released.
 */
export async function releaseMountsBelow(dir: string): Promise<string[]> {
  const root = path.resolve(dir) + path.sep;
  const mountedBelow = async (): Promise<string[]> =>
    [...new Set((await readMounts()).map((m) => m.mountPoint).filter((p) => p.startsWith(root)))];
  const released = await mountedBelow();
  // Order is not only nesting: a loop mount of a file inside another mount (rootfs.img in the squashfs) keeps that
  // mount busy until its loop device is released. Retry in passes until nothing is left or nothing moves.
  let lastError: unknown = null;
  for (let pass = 0; pass < 50; pass++) {
    const left = (await mountedBelow()).sort((a, b) => b.length - a.length);
    if (left.length === 0) {
      await removeEmptyDirs(dir, false);
      return released;
    }
    let progress = false;
    for (const p of left) {
      try {
        await run(['umount', p]);
        progress = true;
      } catch (e) {
        lastError = e;
      }
    }
    if (!progress) await new Promise((r) => setTimeout(r, 100));
  }
  throw lastError ?? new Error(`could not release the mounts below ${dir}`);
}

/** rmdir every empty directory below `dir` (bottom-up); non-empty ones and files stay. */
async function removeEmptyDirs(dir: string, self: boolean): Promise<void> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) if (e.isDirectory()) await removeEmptyDirs(path.join(dir, e.name), true);
  if (!self) return;
  try {
    await fs.rmdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT' && code !== 'EBUSY') throw e;
  }
}
