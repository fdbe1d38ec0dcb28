/**
 * Writing a base volume from an opened image, two ways:
 *  - copyTree: file-level copy of the image's tree into a fresh, mounted filesystem (any size, any fs type);
 *  - copyBlocks: block-level sparse copy of LiveOS/rootfs.img onto a block device (the caller then grows the
 *    filesystem and gives it a new UUID — the storage backend's grow()/newFsUuid()).
 * Both report progress as (bytesDone, bytesTotal) and stop on an AbortSignal with CancelledError; after a cancel the
 * destination holds a partial copy and must be discarded by the caller (the transaction's undo removes the volume).
 */
import { open, stat, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { CancelledError, FailedError, InvalidArgumentError, NoSpaceError } from '../errors';
import { run } from '../system/run';

export type ProgressFn = (bytesDone: number, bytesTotal: number) => void;

export interface CopyTreeOptions {
  /** Root of the source tree (e.g. OpenedImage.root). */
  readonly srcRoot: string;
  /** Mounted root of the destination filesystem (normally fresh and empty but for lost+found). */
  readonly dstRoot: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressFn;
  /** Bytes expected (default: used bytes of the source filesystem, statfs). */
  readonly bytesTotal?: number;
  /** How often progress is sampled (default 250 ms). */
  readonly pollMs?: number;
}

export interface CopyBlocksOptions {
  /** The filesystem image (e.g. OpenedImage.rootfsImage). */
  readonly rootfsImage: string;
  /** Target block device (or a regular file). Must read as zeros where the image has zeros: a fresh thin volume. */
  readonly device: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressFn;
  /** Chunks in flight at once (default defaultCopyConcurrency()). */
  readonly concurrency?: number;
}

export interface CopyBlocksResult {
  /** Size of the image (all of it is now on the device). */
  readonly bytesTotal: number;
  /** Bytes actually written (non-zero regions). */
  readonly bytesWritten: number;
}

async function usedBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return (s.blocks - s.bfree) * s.bsize;
}

/**
 * `cp -a` (GNU coreutils) measured fastest here against `rsync -aHAX` and a tar pipe (see bench/base-write.ts), and it
 * preserves everything imgbased needs: owners (numeric), modes incl. setuid, times, hard links, symlinks, device nodes,
 * sparse files (SEEK_DATA), and every xattr incl. ACLs and security.selinux (`--preserve=xattr` makes an xattr that
 * cannot be copied an error instead of a silent loss). Progress = growth of the destination's used bytes.
 */
export async function copyTree(opts: CopyTreeOptions): Promise<{ bytesTotal: number }> {
  if (opts.signal?.aborted) throw new CancelledError();
  const total = opts.bytesTotal ?? (await usedBytes(opts.srcRoot));
  const baseline = await usedBytes(opts.dstRoot);
  let last = -1;
  const report = (done: number): void => {
    const clamped = Math.max(0, Math.min(done, total));
    if (clamped !== last) {
      last = clamped;
      opts.onProgress?.(clamped, total);
    }
  };
  report(0);
  let sampling: Promise<void> = Promise.resolve();
  const timer = opts.onProgress
    ? setInterval(() => {
        sampling = usedBytes(opts.dstRoot).then(
          (u) => report(Math.min(u - baseline, Math.floor(total * 0.99))),
          () => undefined, // a sample may race the end of the copy; the final report comes below
        );
      }, opts.pollMs ?? 250)
    : null;
  try {
    await run(
      ['cp', '-a', '--preserve=xattr', '--sparse=auto', '--no-target-directory', `${opts.srcRoot}/.`, opts.dstRoot],
      { dieWithParent: true, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
  } finally {
    if (timer) clearInterval(timer);
    await sampling;
  }
  if (opts.signal?.aborted) throw new CancelledError();
  report(total);
  return { bytesTotal: total };
}

const CHUNK = 4 * 1024 * 1024;
/** Zero detection granularity: zero runs of this size are skipped instead of written. */
const GRAIN = 64 * 1024;
const ZERO = Buffer.alloc(GRAIN);

/** Size of a block device (blockdev --getsize64) or a regular file; null when it can grow (regular file). */
async function targetCapacity(device: string): Promise<number | null> {
  const st = await stat(device);
  if (st.isFile()) return null;
  if (!st.isBlockDevice()) throw new InvalidArgumentError(`${device} is neither a block device nor a regular file`);
  const { stdout } = await run(['blockdev', '--getsize64', device]);
  return Number(stdout.trim());
}

/** Default number of chunks in flight: reading (squashfs decompression) of one overlaps writing of another. */
export function defaultCopyConcurrency(): number {
  return Math.max(2, Math.min(4, availableParallelism()));
}

/** Offsets (relative to the buffer) and lengths of the maximal runs of non-zero grains in buf[0, length). */
export function nonZeroRuns(buf: Buffer, length: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let runStart = -1;
  for (let off = 0; off <= length; off += GRAIN) {
    const end = Math.min(off + GRAIN, length);
    const zero = off >= length || buf.subarray(off, end).equals(end - off === GRAIN ? ZERO : ZERO.subarray(0, end - off));
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      runs.push([runStart, off - runStart]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, length - runStart]);
  return runs;
}

/**
 * Sparse block copy: reads the image in 4 MiB chunks and writes only the 64 KiB grains that are not all zero, at the
 * same offsets. Zero detection by content rather than SEEK_HOLE because rootfs.img lives on squashfs, which reports
 * no holes. Skipped grains rely on the target reading as zeros (a fresh thin LV does; that also keeps it thin).
 * `concurrency` chunks are in flight at once (positional reads and writes), so the decompression of one overlaps the
 * write of another; progress is the sum of finished chunks and only grows.
 */
export async function copyBlocks(opts: CopyBlocksOptions): Promise<CopyBlocksResult> {
  if (opts.signal?.aborted) throw new CancelledError();
  const src = await open(opts.rootfsImage, 'r');
  try {
    const total = (await src.stat()).size;
    const capacity = await targetCapacity(opts.device);
    if (capacity !== null && capacity < total) {
      throw new NoSpaceError(`${opts.device} holds ${capacity} bytes; the image needs ${total}`);
    }
    const dst = await open(opts.device, 'r+');
    let written = 0;
    let done = 0;
    let nextChunk = 0;
    let failed = false;
    const chunks = Math.ceil(total / CHUNK);
    const worker = async (): Promise<void> => {
      const buf = Buffer.allocUnsafe(CHUNK);
      while (!failed && nextChunk < chunks) {
        if (opts.signal?.aborted) throw new CancelledError();
        const pos = nextChunk++ * CHUNK;
        const want = Math.min(CHUNK, total - pos);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await src.read(buf, got, want - got, pos + got);
          if (bytesRead === 0) throw new FailedError(`${opts.rootfsImage} ended at ${pos + got} of ${total} bytes`);
          got += bytesRead;
        }
        for (const [off, len] of nonZeroRuns(buf, got)) {
          await writeAll(dst, buf, off, len, pos + off);
          written += len;
        }
        done += got;
        opts.onProgress?.(done, total);
      }
    };
    try {
      opts.onProgress?.(0, total);
      const n = Math.max(1, Math.min(opts.concurrency ?? defaultCopyConcurrency(), chunks));
      const results = await Promise.allSettled(Array.from({ length: n }, () => worker().catch((e: unknown) => {
        failed = true;
        throw e;
      })));
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      if (capacity === null) await dst.truncate(Math.max(total, (await dst.stat()).size));
      await dst.sync();
    } finally {
      await dst.close();
    }
    return { bytesTotal: total, bytesWritten: written };
  } finally {
    await src.close();
  }
}

async function writeAll(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, offset: number, length: number, position: number): Promise<void> {
  while (length > 0) {
    const { bytesWritten } = await fh.write(buf, offset, length, position);
    offset += bytesWritten;
    position += bytesWritten;
    length -= bytesWritten;
  }
}
