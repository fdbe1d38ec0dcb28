/**
 * Real-file fixtures for the /etc and /var tests: small trees written from a spec, copied with `cp -a` the way an
 * image build copies /etc into /usr/share/factory/etc (so untouched files keep identical metadata).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A string is a regular file's content; `{ link }` a symlink; `{ dir: true }` an (empty) directory. */
export type Node = string | { link: string } | { dir: true };
export type Spec = Record<string, Node>;

export const IMAGE_TIME = new Date('2024-01-01T00:00:00Z');

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Write `spec` under `root` (parents created as needed); every entry gets the image build time as mtime. */
export function writeTree(root: string, spec: Spec): void {
  fs.mkdirSync(root, { recursive: true });
  for (const [rel, node] of Object.entries(spec)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof node === 'string') fs.writeFileSync(p, node, { mode: 0o644 });
    else if ('link' in node) fs.symlinkSync(node.link, p);
    else fs.mkdirSync(p, { recursive: true });
  }
  touchAll(root);
}

function touchAll(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) touchAll(p);
    if (!e.isSymbolicLink()) fs.utimesSync(p, IMAGE_TIME, IMAGE_TIME);
    else fs.lutimesSync(p, IMAGE_TIME, IMAGE_TIME);
  }
  fs.utimesSync(dir, IMAGE_TIME, IMAGE_TIME);
}

export function cpa(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  execFileSync('cp', ['-a', '--no-target-directory', from, to]);
}

export function read(p: string): string {
  return fs.readFileSync(p, 'utf8');
}

/** All xattrs of a path (hex-encoded values), as `getfattr -d -m -` prints them. */
export function xattrs(p: string): Record<string, string> {
  const out = execFileSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', p], { encoding: 'utf8' });
  const res: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) res[m[1]] = m[2];
  }
  return res;
}

export function setXattr(p: string, name: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', value, p]);
}

export function getfacl(p: string): string {
  return execFileSync('getfacl', ['--omit-header', '--numeric', '--absolute-names', p], { encoding: 'utf8' });
}

/** Write `content` and move the mtime forward so it is distinct from the image build time. */
export function edit(p: string, content: string, when = new Date('2025-06-01T12:00:00Z')): void {
  fs.writeFileSync(p, content);
  fs.utimesSync(p, when, when);
}
