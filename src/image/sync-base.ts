/**
 * The "delta" base write: the new base starts as a thin snapshot of the newest base and the new image's tree is
 * synchronised into it in place. Unchanged files keep their (shared) blocks, so the pool grows only by what changed.
 *
 * rsync does the synchronisation: -a (owners as numbers, modes, times, symlinks, devices, specials), -H (hard
 * links), -A (ACLs), -X (every xattr incl. security.selinux and security.capability), -S (sparse), --delete (what
 * the image no longer has), --modify-window=-1 (times compared and kept to the nanosecond: the default compares whole
 * seconds and would leave sub-second differences). Its quick check (size and mtime) decides what is rewritten. That
 * check is blind to a file whose content changed while its size and mtime did not — common in images: mkfs.ext4 -d
 * keeps whole seconds only, reproducible builds clamp mtimes. So the origin's stored manifest (its image's) and the new
 * image's are compared (quickCheckBlind) and those files are sent again with --ignore-times (resyncFiles); an origin
 * without a stored manifest (the base `init` made) is synchronised with --checksum instead. The manifest comparison
 * that follows (src/image/manifest.ts, step verify-base) proves the result equal to the image in any case.
 */
import { CancelledError, FailedError } from '../errors';
import { run } from '../system/run';
import type { Manifest, ManifestEntry } from './manifest';
import { pathFromString } from './manifest';

const RSYNC = ['rsync', '-aHAXS', '--numeric-ids', '--modify-window=-1', '--stats'] as const;

export interface SyncTreeOptions {
  readonly srcRoot: string;
  readonly dstRoot: string;
  readonly signal?: AbortSignal;
  /** (files seen so far, bytes transferred so far) — from rsync's progress output, coarse. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Bytes the image's tree holds (for progress). */
  readonly bytesTotal?: number;
  /** Compare the content of files of equal size (both sides are read): for an origin whose manifest is unknown. */
  readonly checksum?: boolean;
}

export interface SyncTreeResult {
  /** Regular-file bytes rsync wrote (rsync's "Total transferred file size"). */
  readonly bytesWritten: number;
  /** Files (of every type) created or rewritten. */
  readonly filesTransferred: number;
  /** Entries removed because the image no longer has them. */
  readonly filesDeleted: number;
  /** Regular-file bytes of the whole image tree ("Total file size"). */
  readonly bytesTotal: number;
}

/** The numbers of `rsync --stats` output (GNU rsync 3.x; thousands separators allowed). Pure. */
export function parseRsyncStats(out: string): SyncTreeResult {
  const num = (label: RegExp): number => {
    const m = label.exec(out);
    if (!m?.[1]) throw new FailedError(`rsync --stats: no "${label.source}" in its output`);
    return Number(m[1].replace(/[,.]/g, ''));
  };
  return {
    bytesWritten: num(/^Total transferred file size: ([\d,.]+) bytes/m),
    filesTransferred: num(/^Number of regular files transferred: ([\d,.]+)/m),
    filesDeleted: /^Number of deleted files: ([\d,.]+)/m.test(out) ? num(/^Number of deleted files: ([\d,.]+)/m) : 0,
    bytesTotal: num(/^Total file size: ([\d,.]+) bytes/m),
  };
}

export async function syncTree(opts: SyncTreeOptions): Promise<SyncTreeResult> {
  if (opts.signal?.aborted) throw new CancelledError();
  const total = opts.bytesTotal ?? 0;
  opts.onProgress?.(0, total);
  let last = -1;
  const { stdout } = await run(
    [...RSYNC, '--delete', '--info=progress2', '--no-inc-recursive', ...(opts.checksum ? ['--checksum'] : []), '--',
      `${opts.srcRoot}/`, `${opts.dstRoot}/`],
    {
      ...(opts.signal ? { signal: opts.signal } : {}),
      dieWithParent: true,
      // progress2 lines: "\r    1,234,567  42%   10.00MB/s    0:00:01 (xfr#3, to-chk=5/10)"
      onStdout: (chunk) => {
        for (const m of chunk.matchAll(/([\d,]+)\s+(\d{1,3})%/g)) {
          const pct = Number(m[2]);
          if (pct !== last && total > 0) {
            last = pct;
            opts.onProgress?.(Math.floor((total * Math.min(pct, 99)) / 100), total);
          }
        }
      },
    },
  );
  if (opts.signal?.aborted) throw new CancelledError();
  const r = parseRsyncStats(stdout);
  opts.onProgress?.(total || r.bytesTotal, total || r.bytesTotal);
  return r;
}

/**
 * Regular files that rsync's quick check takes for unchanged although their content differs: the same size and mtime
 * in the origin's manifest and the image's, another sha256. With every other member of their hard-link groups (sending
 * one member alone would split the group). Paths as in the manifests. Pure.
 */
export function quickCheckBlind(origin: Manifest, image: Manifest): string[] {
  const before = new Map<string, ManifestEntry>();
  for (const e of origin.entries) if (e.type === 'file') before.set(e.path, e);
  const groups = new Map<string, string[]>();
  for (const e of image.entries) {
    if (e.type === 'file' && e.link !== undefined) groups.set(e.link, [...(groups.get(e.link) ?? []), e.path]);
  }
  const out = new Set<string>();
  for (const e of image.entries) {
    const o = before.get(e.path);
    if (e.type !== 'file' || !o || o.size !== e.size || o.mtimeNs !== e.mtimeNs || o.sha256 === e.sha256) continue;
    for (const p of e.link !== undefined ? groups.get(e.link) ?? [e.path] : [e.path]) out.add(p);
  }
  return [...out].sort();
}

/** Send these files (manifest paths, relative to both roots) again whatever their size and mtime say. */
export async function resyncFiles(opts: { srcRoot: string; dstRoot: string; paths: readonly string[]; signal?: AbortSignal }): Promise<SyncTreeResult> {
  if (opts.signal?.aborted) throw new CancelledError();
  const list = Buffer.concat(opts.paths.flatMap((p) => [pathFromString(p), Buffer.from([0])]));
  const { stdout } = await run([...RSYNC, '--ignore-times', '--from0', '--files-from=-', '--', `${opts.srcRoot}/`, `${opts.dstRoot}/`], {
    input: list, dieWithParent: true, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (opts.signal?.aborted) throw new CancelledError();
  return parseRsyncStats(stdout);
}
