/**
 * A manifest of a directory tree — one canonical line per entry with everything a base copy must preserve: type,
 * mode, owner, size, mtime (ns), content sha256, symlink target, device numbers, hard-link group, sparseness and all
 * xattrs (incl. ACLs and security.selinux). Two trees are equal copies when their manifests are equal.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run } from '../system/run';

export type TreeManifest = ReadonlyMap<string, string>;

export interface ManifestOptions {
  /** Hash file contents (default true). */
  readonly contents?: boolean;
  /** Relative paths left out (with everything below them). */
  readonly exclude?: readonly string[];
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chr';
  if (st.isBlockDevice()) return 'blk';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** All xattrs of the tree, by relative path, from one `getfattr -R` run (no symlinks followed). */
async function readXattrs(root: string): Promise<Map<string, string[]>> {
  const { stdout } = await run(['getfattr', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { okCodes: [0, 1] });
  const out = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = line.slice('# file: '.length).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      const rel = abs === root ? '.' : abs.slice(root.length + 1);
      current = [];
      out.set(rel, current);
    } else if (line.length > 0 && current !== null) {
      current.push(line);
    }
  }
  for (const list of out.values()) list.sort();
  return out;
}

async function sha256(path: string, size: bigint): Promise<string> {
  if (size <= 1024n * 1024n) return createHash('sha256').update(await readFile(path)).digest('hex');
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), h);
  return h.digest('hex');
}

export async function treeManifest(root: string, opts: ManifestOptions = {}): Promise<TreeManifest> {
  const exclude = new Set(opts.exclude ?? []);
  const xattrs = await readXattrs(root);
  const inodes = new Map<bigint, string>();
  const lines = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const type = typeOf(st);
    const fields = [
      type,
      `mode=${(st.mode & 0o7777n).toString(8)}`,
      `uid=${st.uid}`,
      `gid=${st.gid}`,
      `mtime=${st.mtimeNs}`,
    ];
    if (type === 'file') {
      fields.push(`size=${st.size}`);
      if (st.blocks * 512n < st.size) fields.push('sparse');
      if (opts.contents !== false) fields.push(`sha256=${await sha256(abs, st.size)}`);
    }
    if (type === 'symlink') fields.push(`target=${await readlink(abs)}`);
    if (type === 'chr' || type === 'blk') fields.push(`rdev=${st.rdev}`);
    if (type !== 'dir' && st.nlink > 1n) {
      const first = inodes.get(st.ino);
      if (first === undefined) inodes.set(st.ino, rel);
      fields.push(`links=${st.nlink}`, `group=${first ?? rel}`);
    }
    fields.push(...(xattrs.get(rel) ?? []));
    lines.set(rel, fields.join(' '));
    if (type === 'dir') {
      const names = (await readdir(abs)).sort();
      for (const name of names) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        if (!exclude.has(child)) await walk(child);
      }
    }
  };
  await walk('.');
  return lines;
}

/** Human-readable differences (empty when the trees match), at most `limit` lines. */
export function diffManifests(expected: TreeManifest, actual: TreeManifest, limit = 20): string[] {
  const out: string[] = [];
  for (const [path, line] of expected) {
    const other = actual.get(path);
    if (other === undefined) out.push(`missing: ${path}`);
    else if (other !== line) out.push(`differs: ${path}\n  expected ${line}\n  actual   ${other}`);
    if (out.length >= limit) return out;
  }
  for (const path of actual.keys()) {
    if (!expected.has(path)) out.push(`extra: ${path}`);
    if (out.length >= limit) return out;
  }
  return out;
}
