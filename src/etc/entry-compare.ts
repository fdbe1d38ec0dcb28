/**
 * "Does this entry differ?" — type, permission bits, owner, symlink target, device number and file content.
 * Extended attributes and timestamps are not compared (they are copied along when an entry is carried).
 */
import * as fs from 'node:fs';
import type { TreeEntry } from './tree-scan';

export interface CompareOptions {
  /**
   * Treat two regular files with equal size and equal mtime (nanoseconds) as equal without reading them (rsync's quick
   * check). Off = always compare content when sizes match.
   */
  quickCheck: boolean;
}

const CHUNK = 64 * 1024;

/** Byte-by-byte equality of two regular files known to have `size` bytes each. */
export function sameContent(a: string, b: string, size: number): boolean {
  if (size <= CHUNK) {
    // Small files (nearly all of /etc): one read each.
    return fs.readFileSync(a).equals(fs.readFileSync(b));
  }
  const fa = fs.openSync(a, 'r');
  try {
    const fb = fs.openSync(b, 'r');
    try {
      const ba = Buffer.allocUnsafe(CHUNK);
      const bb = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const na = fs.readSync(fa, ba, 0, CHUNK, null);
        const nb = fs.readSync(fb, bb, 0, CHUNK, null);
        if (na !== nb) return false;
        if (na === 0) return true;
        if (ba.compare(bb, 0, nb, 0, na) !== 0) return false;
      }
    } finally {
      fs.closeSync(fb);
    }
  } finally {
    fs.closeSync(fa);
  }
}

/** Metadata-only part of the comparison: kind, owner, mode (ignored for symlinks), device number. */
export function sameMetadata(a: TreeEntry, b: TreeEntry): boolean {
  if (a.kind !== b.kind || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.kind !== 'symlink' && a.mode !== b.mode) return false;
  if ((a.kind === 'char' || a.kind === 'block') && a.rdev !== b.rdev) return false;
  return true;
}

/** Full comparison of entry `a` at path `pa` with entry `b` at path `pb`. */
export function sameEntry(pa: string, a: TreeEntry, pb: string, b: TreeEntry, opts: CompareOptions): boolean {
  if (!sameMetadata(a, b)) return false;
  switch (a.kind) {
    case 'file':
      return sameFileContent(pa, a, pb, b, opts);
    case 'symlink':
      return a.size === b.size && sameLinkTarget(pa, pb);
    case 'dir':
    case 'char':
    case 'block':
    case 'fifo':
    case 'socket':
      return true;
  }
}

export function sameLinkTarget(pa: string, pb: string): boolean {
  return fs.readlinkSync(pa, 'buffer').equals(fs.readlinkSync(pb, 'buffer'));
}

/** Content-only comparison of two regular files (size first, then optional quick check, then bytes). */
export function sameFileContent(pa: string, a: TreeEntry, pb: string, b: TreeEntry, opts: CompareOptions): boolean {
  if (a.size !== b.size) return false;
  if (a.dev === b.dev && a.ino === b.ino) return true;
  if (opts.quickCheck && a.mtimeNs === b.mtimeNs) return true;
  return sameContent(pa, pb, a.size);
}
