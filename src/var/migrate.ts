/**
 * /var migration: /var is shared by all layers and only moves forward. The new image's /var is laid over it:
 *
 * - an entry the shared /var lacks is copied with all its metadata (a missing directory with everything below it);
 * - a regular file both have, with different content, is written next to the user's as `<name>.imgnew` (the user's
 *   file is never overwritten; an `.imgnew` left by an earlier migration is replaced by the newer one);
 * - anything else that differs (a symlink target, a type, mode or owner) is left as the user has it — reported when
 *   it is a type or link-target difference;
 * - nothing on the shared /var is ever deleted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors';
import { run } from '../system/run';
import { copyEntries } from '../etc/copy-entries';
import { sameFileContent, sameLinkTarget } from '../etc/entry-compare';
import { lstatEntry, throwIfAborted, yieldToLoop, type TreeEntry } from '../etc/tree-scan';

export const IMGNEW_SUFFIX = '.imgnew';

export interface MigrateVarOptions {
  /** The new image's /var (read only). */
  imageVar: string;
  /** The shared /var (only ever added to). */
  sharedVar: string;
  signal?: AbortSignal;
  /** Treat equal size + mtime as equal content without reading (default false: /var files are compared by content). */
  quickCheck?: boolean;
  /** rsync binary (default "rsync"). */
  rsync?: string;
  /** cp binary for the `.imgnew` copies (default "cp"). */
  cp?: string;
  /** sync binary (default "sync"): `sync -f <sharedVar>` makes what was added durable before the step is done. */
  sync?: string;
}

export type VarConflictKind =
  /** The image has a different type at this path (e.g. a directory where the user has a file); user's kept. */
  | 'type-differs'
  /** Both have a symlink here, pointing elsewhere; the user's is kept. */
  | 'symlink-differs'
  /** `<name>.imgnew` exists and is not a regular file, so the image's version could not be placed. */
  | 'imgnew-blocked';

export interface VarConflict {
  /** Relative to /var. */
  path: string;
  kind: VarConflictKind;
}

export interface VarResult {
  /** Topmost entries copied (a copied directory brings everything below it). */
  copied: string[];
  /** Entries copied including everything below copied directories. */
  copiedEntries: number;
  /** Paths of the user's files next to which `<path>.imgnew` was written. */
  imgnew: string[];
  /** Entries present on both sides and left alone (same content, or differing only in metadata). */
  kept: number;
  conflicts: VarConflict[];
}

export async function migrateVar(opts: MigrateVarOptions): Promise<VarResult> {
  const { imageVar, sharedVar, signal } = opts;
  for (const dir of [imageVar, sharedVar]) {
    if (lstatEntry(dir)?.kind !== 'dir') throw new InvalidArgumentError(`${dir} is not a directory`);
  }
  const cmp = { quickCheck: opts.quickCheck ?? false };
  const result: VarResult = { copied: [], copiedEntries: 0, imgnew: [], kept: 0, conflicts: [] };
  const pending: string[] = [''];
  let sinceYield = 0;
  for (let rel = pending.pop(); rel !== undefined; rel = pending.pop()) {
    for (const name of fs.readdirSync(path.join(imageVar, rel)).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const src = path.join(imageVar, child);
      const dst = path.join(sharedVar, child);
      const img = lstatEntry(src);
      if (img === undefined) continue;
      const mine = lstatEntry(dst);
      if (++sinceYield >= 512) {
        sinceYield = 0;
        await yieldToLoop(signal);
      }
      if (mine === undefined) {
        result.copied.push(child);
        result.copiedEntries += img.kind === 'dir' ? 1 + countBelow(src) : 1;
      } else if (img.kind !== mine.kind) {
        result.conflicts.push({ path: child, kind: 'type-differs' });
      } else if (img.kind === 'dir') {
        result.kept++;
        pending.push(child);
      } else if (img.kind === 'symlink' && !sameLinkTarget(src, dst)) {
        result.conflicts.push({ path: child, kind: 'symlink-differs' });
      } else if (img.kind === 'file' && !sameFileContent(src, img, dst, mine, cmp)) {
        await placeImgnew({ opts, rel: child, img, result, cmp });
      } else {
        result.kept++;
      }
    }
  }
  throwIfAborted(signal);
  await copyEntries({
    from: imageVar,
    to: sharedVar,
    paths: result.copied,
    additive: true,
    ...(opts.rsync === undefined ? {} : { rsync: opts.rsync }),
    ...(signal === undefined ? {} : { signal }),
  });
  // The shared /var stays mounted, so nothing flushes it the way unmounting a layer does: without this the entries
  // just copied live in the page cache only, while the journal already says the step is done and the transaction may
  // complete. A power cut then leaves the new layer's /var entries empty or missing (issue 11: the power-cut torture
  // checks them). syncfs(2) of the shared /var's filesystem: file data, inodes and the new directory entries.
  if (result.copied.length > 0 || result.imgnew.length > 0) {
    await run([opts.sync ?? 'sync', '-f', sharedVar], signal === undefined ? {} : { signal });
  }
  return result;
}

/** Write the image's version of `rel` as `<rel>.imgnew` (cp -a: owner, mode, times, xattrs, ACLs). */
async function placeImgnew(args: {
  opts: MigrateVarOptions;
  rel: string;
  img: TreeEntry;
  result: VarResult;
  cmp: { quickCheck: boolean };
}): Promise<void> {
  const { opts, rel, img, result } = args;
  const src = path.join(opts.imageVar, rel);
  const dst = path.join(opts.sharedVar, rel + IMGNEW_SUFFIX);
  const existing = lstatEntry(dst);
  if (existing !== undefined && existing.kind !== 'file') {
    result.conflicts.push({ path: rel, kind: 'imgnew-blocked' });
    return;
  }
  result.imgnew.push(rel);
  if (existing !== undefined && sameFileContent(src, img, dst, existing, args.cmp)) return;
  // One process per differing file: these are a handful of edited config/state files, not the bulk of /var.
  await run([opts.cp ?? 'cp', '-a', '--remove-destination', '--no-target-directory', '--', src, dst], {
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
}

function countBelow(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    n++;
    if (e.isDirectory()) n += countBelow(path.join(dir, e.name));
  }
  return n;
}
