/**
 * Open a delivered image: loop-mount the squashfs read-only, then its `LiveOS/rootfs.img` read-only, and read the NVR
 * from `/usr/share/imgbase/build/meta/nvr` inside the tree. The returned handle owns both mounts; `close()` releases
 * them (idempotent). On any failure while opening, everything mounted so far is released before the error propagates.
 */
import { lstat, mkdir, mkdtemp, readFile, realpath, rmdir, statfs } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { CancelledError, ImgbasedError, VerificationFailedError } from '../errors';
import { parseBaseName, type Nvr } from '../model/names';
import type { FsType } from '../storage/backend';
import { detectFsType, loopMount, unmountIfMounted } from './mount';

export const NVR_PATH = 'usr/share/imgbase/build/meta/nvr';
export const ROOTFS_PATH = 'LiveOS/rootfs.img';

export interface OpenImageOptions {
  readonly imagePath: string;
  /** Mountpoints are created in a fresh directory below this one (which must exist). */
  readonly workDir: string;
  readonly signal?: AbortSignal;
}

export interface OpenedImage {
  readonly imagePath: string;
  /** The image's NVR, validated as a base name (e.g. `ovirt-node-ng-4.5.6-0.20250101.0`). */
  readonly nvr: string;
  readonly parsedNvr: Nvr;
  /** Path of LiveOS/rootfs.img inside the mounted squashfs (for block copies). */
  readonly rootfsImage: string;
  /** Where the image's root tree is mounted (read-only). */
  readonly root: string;
  readonly fsType: FsType;
  /** Apparent size of rootfs.img: the minimum size of a block-copied base. */
  readonly imageSizeBytes: number;
  /** Bytes in use in the image's filesystem (statfs): what a tree copy writes. */
  readonly usedBytes: number;
  /** Unmount both filesystems and remove the mountpoints. Safe to call more than once. */
  close(): Promise<void>;
}

const MAX_NVR_FILE = 4096;

/** Structural: errors from node:fs may come from another realm (jest), so no instanceof Error. */
function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function messageOf(e: unknown): string {
  return typeof e === 'object' && e !== null && 'message' in e && typeof e.message === 'string' ? e.message : String(e);
}

/** Read the NVR file without following links out of the image tree (a hostile image could point at host files). */
async function readNvrFile(root: string): Promise<string> {
  const path = join(root, NVR_PATH);
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
      throw new VerificationFailedError(`image has no /${NVR_PATH}`, { hint: 'is this an oVirt Node image?' });
    }
    throw e;
  }
  if (!real.startsWith(root + sep)) throw new VerificationFailedError(`/${NVR_PATH} in the image points outside the image`);
  const st = await lstat(real);
  if (!st.isFile()) throw new VerificationFailedError(`/${NVR_PATH} in the image is not a regular file`);
  if (st.size > MAX_NVR_FILE) throw new VerificationFailedError(`/${NVR_PATH} in the image is ${st.size} bytes long; expected one NVR`);
  return (await readFile(real, 'utf8')).trim();
}

export async function openImage(opts: OpenImageOptions): Promise<OpenedImage> {
  if (opts.signal?.aborted) throw new CancelledError();
  const signalOpt = opts.signal ? { signal: opts.signal } : {};

  let kind: Awaited<ReturnType<typeof detectFsType>>;
  try {
    kind = await detectFsType(opts.imagePath);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new VerificationFailedError(`image ${opts.imagePath} does not exist`);
    throw e;
  }
  if (kind !== 'squashfs') throw new VerificationFailedError(`${opts.imagePath} is not a squashfs image`);

  const dir = await mkdtemp(join(opts.workDir, 'image-'));
  const squashMnt = join(dir, 'squashfs');
  const rootMnt = join(dir, 'root');
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Inner first; try both even if one fails, then report the first failure.
      const results = await Promise.allSettled([unmountIfMounted(rootMnt)]);
      results.push(...(await Promise.allSettled([unmountIfMounted(squashMnt)])));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        closing = null; // allow a retry
        throw failed.reason;
      }
      for (const d of [rootMnt, squashMnt, dir]) await rmdir(d).catch((e: unknown) => {
        if (errnoCode(e) !== 'ENOENT') throw e;
      });
    })();
    return closing;
  };

  try {
    await mkdir(squashMnt);
    await mkdir(rootMnt);
    try {
      await loopMount({ source: opts.imagePath, target: squashMnt, fsType: 'squashfs', ...signalOpt });
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      throw new VerificationFailedError(`cannot mount ${opts.imagePath}: the squashfs is corrupt (${messageOf(e)})`, { cause: e });
    }

    const rootfsImage = join(squashMnt, ROOTFS_PATH);
    let imageSizeBytes: number;
    try {
      const st = await lstat(rootfsImage);
      if (!st.isFile()) throw new VerificationFailedError(`${ROOTFS_PATH} in the image is not a regular file`);
      imageSizeBytes = st.size;
    } catch (e) {
      if (e instanceof ImgbasedError) throw e;
      throw new VerificationFailedError(`image has no ${ROOTFS_PATH}`, { cause: e, hint: 'is this an oVirt Node image?' });
    }

    let fsType: FsType;
    try {
      const detected = await detectFsType(rootfsImage);
      if (detected !== 'ext4' && detected !== 'xfs') throw new Error(`found ${detected ?? 'no known filesystem'}`);
      fsType = detected;
    } catch (e) {
      throw new VerificationFailedError(`${ROOTFS_PATH} in the image is not an ext4 or xfs filesystem (${messageOf(e)})`, { cause: e });
    }
    try {
      await loopMount({ source: rootfsImage, target: rootMnt, fsType, ...signalOpt });
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      throw new VerificationFailedError(`cannot mount ${ROOTFS_PATH} from the image (${fsType}): ${messageOf(e)}`, { cause: e });
    }

    const nvr = await readNvrFile(rootMnt);
    const parsedNvr = parseBaseName(nvr);
    const fs = await statfs(rootMnt, { bigint: false });
    const usedBytes = (fs.blocks - fs.bfree) * fs.bsize;
    if (opts.signal?.aborted) throw new CancelledError();
    return { imagePath: opts.imagePath, nvr, parsedNvr, rootfsImage, root: rootMnt, fsType, imageSizeBytes, usedBytes, close };
  } catch (e) {
    await close().catch(() => undefined); // the original error matters more; a leftover mount is visible in mountinfo
    throw e;
  }
}

/** Open, run, always close. */
export async function withOpenedImage<T>(opts: OpenImageOptions, fn: (image: OpenedImage) => Promise<T>): Promise<T> {
  const image = await openImage(opts);
  try {
    return await fn(image);
  } finally {
    await image.close();
  }
}
