/**
 * Loop mounts of image files (squashfs, ext4, xfs) and their cleanup. Every mount made here uses `mount -o loop`,
 * whose loop device util-linux creates with autoclear: unmounting (or a failed mount) releases the device.
 */
import { open } from 'node:fs/promises';
import { ToolError } from '../errors';
import { readMounts } from '../system/mountinfo';
import { run } from '../system/run';
import type { FsType } from '../storage/backend';

export type LoopFsType = 'squashfs' | FsType;

/** Read `length` bytes at `position` (fewer at end of file). */
async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Filesystem type from the superblock magic: squashfs `hsqs` @0, xfs `XFSB` @0, ext2/3/4 0xEF53 @1080. */
export async function detectFsType(path: string): Promise<LoopFsType | null> {
  const head = await readAt(path, 0, 1082);
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'hsqs') return 'squashfs';
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'XFSB') return 'xfs';
  if (head.length >= 1082 && head.readUInt16LE(1080) === 0xef53) return 'ext4';
  return null;
}

/** Read-only mount options per type: a read-only view must never replay a journal (the loop device is read-only). */
const RO_OPTIONS: Record<LoopFsType, string> = {
  squashfs: 'ro,loop',
  ext4: 'ro,loop,noload',
  xfs: 'ro,loop,nouuid,norecovery',
};

export interface LoopMountOptions {
  readonly source: string;
  readonly target: string;
  readonly fsType: LoopFsType;
  /** Default true. A writable loop mount (used by the test image builder) gets `rw,loop`. */
  readonly readOnly?: boolean;
  readonly signal?: AbortSignal;
}

export async function loopMount(opts: LoopMountOptions): Promise<void> {
  const options = opts.readOnly === false ? 'rw,loop' : RO_OPTIONS[opts.fsType];
  await run(['mount', '-t', opts.fsType, '-o', options, opts.source, opts.target], opts.signal ? { signal: opts.signal } : {});
}

/** Mount points currently listed in /proc/self/mountinfo. */
export async function listMountPoints(): Promise<string[]> {
  return (await readMounts()).map((m) => m.mountPoint);
}

export async function isMountPoint(path: string): Promise<boolean> {
  return (await listMountPoints()).includes(path);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Unmount `target` if it is mounted. Retries while the mount is busy (a just-finished child may still hold it);
 * never lazy-unmounts, so a failure is reported rather than hidden.
 */
export async function unmountIfMounted(target: string): Promise<void> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 10; attempt++) {
    if (!(await isMountPoint(target))) return;
    try {
      await run(['umount', target]);
      return;
    } catch (e) {
      lastError = e;
      await sleep(100 * (attempt + 1));
    }
  }
  if (!(await isMountPoint(target))) return;
  if (lastError instanceof ToolError) throw lastError;
  throw new ToolError(['umount', target], null, String(lastError));
}
