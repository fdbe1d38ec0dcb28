/**
 * Manifests of real trees (host tier, as root): equal trees made differently compare equal; every single difference
 * is detected and named; mount points are not crossed; copies of a test image (cp -a, copyTree) equal the image;
 * odd file names survive; cancellation stops early. Plus the pure parts: path escaping, serialisation, strict
 * parsing, hard-link grouping, comparison and summaries, getfattr's dump format.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, lutimes, mkdir, mkdtemp, readdir, rename, rm, symlink, unlink, writeFile, appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, InvalidArgumentError } from '../../src/errors';
import { openImage, type OpenedImage } from '../../src/image/inspect';
import {
  buildManifest, compareManifests, comparePaths, formatMtimeNs, linkGroups, manifestDigest, ManifestFormatError, parseManifest,
  pathFromString, pathToString, serializeManifest, summarizeDiff, type Manifest, type ManifestDiff, type ManifestEntry,
} from '../../src/image/manifest';
import { unmountIfMounted } from '../../src/image/mount';
import { buildTestImage } from '../../src/image/test-image-builder';
import { copyTree } from '../../src/image/write-base';
import { parseGetfattrDump, readXattrs, unescapeOctal } from '../../src/image/xattrs';
import { run } from '../../src/system/run';
import { cleanupDir, makeExt4Mount } from './helpers';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** A scratch directory on a filesystem with user xattrs (tmpfs before Linux 6.6 has none: then /var/tmp). */
async function scratchWithXattrs(): Promise<string> {
  for (const base of [tmpdir(), '/var/tmp']) {
    const d = await mkdtemp(join(base, 'imgbased-manifest-'));
    try {
      await run(['setfattr', '-n', 'user.probe', '-v', '1', d]);
      await run(['setfattr', '-x', 'user.probe', d]);
      return d;
    } catch {
      await rm(d, { recursive: true, force: true });
    }
  }
  throw new Error('no scratch directory with user xattrs');
}

type P = string | Buffer;
const at = (root: string, rel: P): Buffer => Buffer.concat([Buffer.from(`${root}/`), Buffer.from(rel)]);
const s = (b: Buffer): string => b.toString('latin1'); // argv for run() is string-only: only ASCII paths go there

/** Readable list of a diff: `path:field[/xattr]`, `+path`, `-path`. */
function diffKeys(d: ManifestDiff): string[] {
  return [
    ...d.added.map((e) => `+${e.path}`),
    ...d.removed.map((e) => `-${e.path}`),
    ...d.changed.flatMap((c) => c.differences.map((f) => `${c.path}:${f.field}${f.name === undefined ? '' : `/${f.name}`}`)),
  ];
}

const NON_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2d, 0xc3]); // "bad" ff fe "-" and a lone lead byte
const BIG = randomBytes(3 * 1024 * 1024 + 123);

/**
 * The reference tree, as a list of operations; buildTree applies them in order or reversed (with other tools and
 * orders for the same result), so two trees with different inode numbers, creation orders and histories result.
 */
interface FileSpec { content: Buffer; mode: number; uid?: number; gid?: number; xattrs?: Record<string, string>; acl?: string; caps?: string }
type Spec =
  | ({ kind: 'file' } & FileSpec)
  | { kind: 'dir'; mode: number; uid?: number; gid?: number; defaultAcl?: string; xattrs?: Record<string, string> }
  | { kind: 'symlink'; target: string }
  | { kind: 'hardlink'; to: string }
  | { kind: 'char' | 'block'; major: number; minor: number; mode: number }
  | { kind: 'fifo'; mode: number }
  | { kind: 'socket' };

const TREE: Array<[P, Spec]> = [
  ['etc', { kind: 'dir', mode: 0o755 }],
  ['etc/foo.conf', { kind: 'file', content: Buffer.from('setting = 1\n'), mode: 0o644, xattrs: { 'user.x': 'one' } }],
  ['etc/acl.conf', { kind: 'file', content: Buffer.from('acl\n'), mode: 0o640, gid: 36, acl: 'u:107:r' }],
  ['etc/secret', { kind: 'file', content: Buffer.from('s3cret\n'), mode: 0o600, uid: 107, gid: 107 }],
  ['usr', { kind: 'dir', mode: 0o755 }],
  ['usr/bin', { kind: 'dir', mode: 0o755, xattrs: { 'security.selinux': 'system_u:object_r:bin_t:s0' } }],
  ['usr/bin/tool', { kind: 'file', content: Buffer.from('#!/bin/sh\necho tool\n'), mode: 0o755, xattrs: { 'security.selinux': 'system_u:object_r:bin_t:s0' }, caps: 'cap_net_raw+ep' }],
  ['usr/bin/setuid', { kind: 'file', content: Buffer.from('#!/bin/sh\n'), mode: 0o4755 }],
  ['usr/bin/alias', { kind: 'symlink', target: 'tool' }],
  ['usr/bin/hard', { kind: 'hardlink', to: 'usr/bin/tool' }],
  ['usr/lib', { kind: 'dir', mode: 0o755 }],
  ['usr/lib/a.txt', { kind: 'file', content: Buffer.from('same\n'), mode: 0o644 }],
  ['usr/lib/b.txt', { kind: 'hardlink', to: 'usr/lib/a.txt' }],
  ['usr/lib/c.txt', { kind: 'file', content: Buffer.from('same\n'), mode: 0o644 }],
  ['usr/lib/big.bin', { kind: 'file', content: BIG, mode: 0o644 }],
  ['usr/lib/empty', { kind: 'file', content: Buffer.alloc(0), mode: 0o644 }],
  ['dev', { kind: 'dir', mode: 0o755 }],
  ['dev/null', { kind: 'char', major: 1, minor: 3, mode: 0o666 }],
  ['dev/loop0', { kind: 'block', major: 7, minor: 0, mode: 0o660 }],
  ['run', { kind: 'dir', mode: 0o755 }],
  ['run/fifo', { kind: 'fifo', mode: 0o600 }],
  ['run/sock', { kind: 'socket' }],
  ['tmp', { kind: 'dir', mode: 0o1777 }],
  ['var', { kind: 'dir', mode: 0o755 }],
  ['var/shared', { kind: 'dir', mode: 0o2775, gid: 36, defaultAcl: 'g:36:rwx' }],
  ['names', { kind: 'dir', mode: 0o755 }],
  ['names/with space', { kind: 'file', content: Buffer.from('space\n'), mode: 0o644 }],
  ['names/new\nline', { kind: 'file', content: Buffer.from('newline\n'), mode: 0o644 }],
  ['names/back\\slash', { kind: 'file', content: Buffer.from('backslash\n'), mode: 0o644 }],
  ['names/é', { kind: 'file', content: Buffer.from('utf8\n'), mode: 0o644 }],
  [Buffer.concat([Buffer.from('names/'), NON_UTF8]), { kind: 'file', content: Buffer.from('bytes\n'), mode: 0o644, xattrs: { 'user.n': 'v' } }],
  ['mnt', { kind: 'dir', mode: 0o755 }],
];

/** setfattr for any path: via /proc/self/fd would be overkill; non-ASCII paths get their xattrs through a rename. */
async function setXattr(root: string, rel: P, name: string, value: string): Promise<void> {
  const path = at(root, rel);
  if (/^[\x20-\x7e]*$/.test(s(path))) {
    await run(['setfattr', '-h', '-n', name, '-v', value, s(path)]);
    return;
  }
  const tmp = at(root, 'xattr-tmp');
  await rename(path, tmp);
  try {
    await run(['setfattr', '-h', '-n', name, '-v', value, s(tmp)]);
  } finally {
    await rename(tmp, path);
  }
}

async function makeSocket(path: Buffer): Promise<void> {
  const tmp = `${path.toString()}.listening`;
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(tmp, resolve));
  await rename(tmp, path); // close() unlinks the listening path; the renamed socket stays
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function createFile(root: string, rel: P, f: FileSpec, variant: boolean): Promise<void> {
  const path = at(root, rel);
  if (variant) {
    // other history: created writable by everyone, content in two appends, xattrs before the content
    await writeFile(path, '', { mode: 0o666 });
    for (const [n, v] of Object.entries(f.xattrs ?? {})) await setXattr(root, rel, n, v);
    await appendFile(path, f.content.subarray(0, Math.floor(f.content.length / 2)));
    await appendFile(path, f.content.subarray(Math.floor(f.content.length / 2)));
  } else {
    await writeFile(path, f.content);
    for (const [n, v] of Object.entries(f.xattrs ?? {})) await setXattr(root, rel, n, v);
  }
  if (f.uid !== undefined || f.gid !== undefined) await chown(path, f.uid ?? 0, f.gid ?? 0);
  await chmod(path, f.mode); // after chown, which clears setuid
  if (f.acl !== undefined) await run(['setfacl', '-m', f.acl, s(path)]);
  if (f.caps !== undefined) await run(['setcap', f.caps, s(path)]); // last: writes and chown drop capabilities
}

async function createEntry(root: string, rel: P, spec: Spec, variant: boolean, all: ReadonlyMap<string, Spec>): Promise<void> {
  const path = at(root, rel);
  switch (spec.kind) {
    case 'file':
      return createFile(root, rel, spec, variant);
    case 'dir':
      await mkdir(path, { recursive: true });
      return;
    case 'symlink':
      await symlink(spec.target, path);
      return;
    case 'hardlink': {
      const target = all.get(spec.to);
      if (variant && target?.kind === 'file') {
        // the other way round: the link's name gets the content, the original name becomes the link
        await createFile(root, rel, target, true);
        await link(path, at(root, spec.to));
      } else {
        await link(at(root, spec.to), path);
      }
      return;
    }
    case 'char':
    case 'block':
      await run(['mknod', '-m', spec.mode.toString(8), s(path), spec.kind === 'char' ? 'c' : 'b', String(spec.major), String(spec.minor)]);
      return;
    case 'fifo':
      await run(variant ? ['mknod', '-m', spec.mode.toString(8), s(path), 'p'] : ['mkfifo', '-m', spec.mode.toString(8), s(path)]);
      return;
    case 'socket':
      await makeSocket(path);
      return;
  }
}

/** Deterministic, distinct mtimes for every entry (from the path), so mtimes are really compared. */
async function fixTimes(root: string): Promise<void> {
  const visit = async (rel: Buffer): Promise<void> => {
    const path = rel.length === 0 ? Buffer.from(root) : at(root, rel);
    const st = await lstat(path);
    if (st.isDirectory()) {
      for (const name of await readdir(path, { encoding: 'buffer' })) await visit(rel.length === 0 ? name : Buffer.concat([rel, Buffer.from('/'), name]));
    }
    let h = 7;
    for (const b of rel) h = (h * 31 + b) % 1_000_003;
    const t = 1_735_689_600 + h + (h % 997) / 1000;
    await lutimes(path, t, t);
  };
  await visit(Buffer.alloc(0));
}

/** Build TREE under `root`; `variant` = reversed order, other tools and histories, directories fixed up last. */
async function buildTree(root: string, variant: boolean): Promise<void> {
  await mkdir(root);
  await chmod(root, 0o755);
  const all = new Map(TREE.map(([p, spec]) => [Buffer.from(p).toString('latin1'), spec]));
  const ordered = variant ? [...TREE].reverse() : TREE;
  const doneLinks = new Set<string>();
  for (const [rel, spec] of ordered) {
    if (spec.kind === 'dir' && variant) continue; // made by the files' mkdir -p below, fixed up after
    if (variant && spec.kind !== 'dir') await mkdir(at(root, Buffer.from(rel).subarray(0, Buffer.from(rel).lastIndexOf(0x2f))), { recursive: true });
    if (variant && doneLinks.has(Buffer.from(rel).toString('latin1'))) continue;
    if (variant && spec.kind === 'hardlink') doneLinks.add(spec.to);
    await createEntry(root, rel, spec, variant, all);
  }
  for (const [rel, spec] of TREE) {
    if (spec.kind !== 'dir') continue;
    const path = at(root, rel);
    await mkdir(path, { recursive: true });
    if (spec.uid !== undefined || spec.gid !== undefined) await chown(path, spec.uid ?? 0, spec.gid ?? 0);
    await chmod(path, spec.mode);
    if (spec.defaultAcl !== undefined) await run(['setfacl', '-d', '-m', spec.defaultAcl, s(path)]);
    for (const [n, v] of Object.entries(spec.xattrs ?? {})) await setXattr(root, rel, n, v);
  }
  await fixTimes(root);
}

/** Run `fn`, then put back the mtimes (ns-exact) of `rels` that still exist: isolates the difference under test. */
async function keepingTimes(root: string, rels: readonly string[], fn: () => Promise<void>): Promise<void> {
  const before = new Map<string, bigint>();
  for (const rel of rels) {
    const st = await lstat(rel === '' ? root : join(root, rel), { bigint: true }).catch(() => null);
    if (st) before.set(rel, st.mtimeNs);
  }
  await fn();
  for (const [rel, ns] of before) {
    const exists = await lstat(rel === '' ? root : join(root, rel)).then(() => true, () => false);
    const stamp = `@${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
    if (exists) await run(['touch', '-h', '-m', '-d', stamp, rel === '' ? root : join(root, rel)]);
  }
}


let scratch: string;
let treeA: string;
let manifestA: Manifest;

beforeAll(async () => {
  scratch = await scratchWithXattrs();
  treeA = join(scratch, 'a');
  await buildTree(treeA, false);
  manifestA = await buildManifest(treeA);
});
afterAll(async () => {
  await cleanupDir(scratch);
});

const find = (m: Manifest, path: string): ManifestEntry | undefined => m.entries.find((e) => e.path === path);

// ---------------------------------------------------------------------------------------------------------------
// Pure parts

describe('paths', () => {
  test('raw bytes ↔ strings: lossless, identity for ordinary UTF-8, escapes for the rest', () => {
    const cases: Array<[Buffer, string]> = [
      [Buffer.from('usr/bin/tool'), 'usr/bin/tool'],
      [Buffer.from('with space/new\nline/é/😀'), 'with space/new\nline/é/😀'],
      [Buffer.from('back\\slash'), 'back\\\\slash'],
      [Buffer.from([0x61, 0xff, 0xfe]), 'a\\xff\\xfe'],
      [Buffer.from([0xc0, 0xaf]), '\\xc0\\xaf'], // overlong "/"
      [Buffer.from([0xed, 0xa0, 0x80]), '\\xed\\xa0\\x80'], // a surrogate
      [Buffer.from([0xf4, 0x90, 0x80, 0x80]), '\\xf4\\x90\\x80\\x80'], // beyond U+10FFFF
      [Buffer.from([0x78, 0xc3]), 'x\\xc3'], // truncated sequence
      [Buffer.from([0xc3, 0xa9, 0xff]), 'é\\xff'],
    ];
    for (const [bytes, str] of cases) {
      expect(pathToString(bytes)).toBe(str);
      expect(pathFromString(str).equals(bytes)).toBe(true);
    }
    expect(() => pathFromString('a\\n')).toThrow(InvalidArgumentError);
    expect(() => pathFromString('a\\xZZ')).toThrow(InvalidArgumentError);
  });

  test('manifest order is byte order', () => {
    const paths = ['b', 'a/b', 'a-b', 'a', '\\xff', 'é', 'Z'];
    expect([...paths].sort(comparePaths)).toEqual(['Z', 'a', 'a-b', 'a/b', 'b', 'é', '\\xff']);
  });
});

describe('getfattr dump parsing', () => {
  const parse = (dump: Buffer): Array<[string, Array<[string, string]>]> => {
    const out: Array<[string, Array<[string, string]>]> = [];
    parseGetfattrDump(dump, (file, attrs) => out.push([file.toString('latin1'), attrs.map((x) => [x.name, Buffer.from(x.base64, 'base64').toString('hex')])]));
    return out;
  };

  test('escaped names, raw bytes, empty values, several files', () => {
    const dump = Buffer.concat([
      Buffer.from('# file: ./new\\012line\nuser.x=0sMQ==\nuser.e=0s\nuser.bare\n\n# file: ./'),
      Buffer.from([0xff, 0x20, 0x5c]),
      Buffer.from('134\nuser.eq\\075x=0sAP8B\nsecurity.selinux=0sc3lzX3U6b2JqZWN0X3I6YmluX3Q6czAA\n'),
    ]);
    expect(parse(dump)).toEqual([
      ['./new\nline', [['user.x', '31'], ['user.e', ''], ['user.bare', '']]],
      [Buffer.from([0x2e, 0x2f, 0xff, 0x20, 0x5c]).toString('latin1'), [
        ['user.eq=x', '00ff01'],
        ['security.selinux', Buffer.from('sys_u:object_r:bin_t:s0\0').toString('hex')],
      ]],
    ]);
    expect(parse(Buffer.alloc(0))).toEqual([]);
  });

  test('anything unexpected is an error', () => {
    expect(() => parse(Buffer.from('user.x=0sMQ==\n'))).toThrow(/line 1: attribute outside/);
    expect(() => parse(Buffer.from('# file: a\nuser.x="text"\n'))).toThrow(/line 2: value is not base64/);
    expect(() => parse(Buffer.from('# file: a\nuser.x=0s!!\n'))).toThrow(/line 2: value is not canonical base64/);
    expect(() => parse(Buffer.from('# file: a\n=0sMQ==\n'))).toThrow(/line 2: attribute without a name/);
  });

  test('octal unescaping leaves other backslashes alone', () => {
    expect(unescapeOctal(Buffer.from('a\\040b\\134\\9x\\01')).toString('latin1')).toBe('a b\\\\9x\\01');
  });

  test('readXattrs: odd names, symlinks, the root, entries without xattrs, in input order', async () => {
    const rels = ['', 'etc', 'etc/foo.conf', 'usr/bin/alias', 'names/new\nline', Buffer.concat([Buffer.from('names/'), NON_UTF8]).toString('latin1'), 'usr/bin/tool'];
    const x = await readXattrs(treeA, rels);
    expect(x.map((attrs) => attrs.map((a) => a.name))).toEqual([
      [], [], ['user.x'], [], [], ['user.n'], ['security.capability', 'security.selinux'],
    ]);
    await expect(readXattrs(treeA, ['no/such/file'])).rejects.toThrow(/No such file/);
  });
});

function entry(path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry {
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1735689600000000000', size: 1, sha256: 'a'.repeat(64), ...extra };
}
const dirEntry = (path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => {
  const { size: _s, sha256: _h, ...rest } = entry(path, { type: 'dir', mode: 0o755, ...extra });
  return rest;
};
const manifest = (...entries: ManifestEntry[]): Manifest => ({ version: 1, entries });

describe('serialisation and parsing', () => {
  const m = manifest(
    dirEntry(''),
    entry('a', { link: 'a' }),
    entry('b', { link: 'a', xattrs: { 'user.z': 'MQ==', 'security.selinux': 'eA==' } }),
    { path: 'dev', type: 'char', mode: 0o666, uid: 0, gid: 0, mtimeNs: '-5', major: 1, minor: 3 },
    dirEntry('mnt', { mountPoint: true }),
    { path: 'sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: '0', target: '../x\\xff' },
  );

  test('round trip; canonical; digest', () => {
    const text = serializeManifest(m);
    expect(text.split('\n')[0]).toBe('{"format":"imgbased-manifest","version":1,"count":6}');
    expect(text).toContain('"xattrs":{"security.selinux":"eA==","user.z":"MQ=="}');
    expect(text.endsWith('\n')).toBe(true);
    const back = parseManifest(text);
    expect(back).toEqual(m);
    expect(serializeManifest(back)).toBe(text);
    expect(manifestDigest(back)).toBe(manifestDigest(m));
    expect(manifestDigest(m)).toMatch(/^[0-9a-f]{64}$/);
    // key order on input does not matter; the digest is of the canonical form
    const shuffled = text.replace('{"path":"a","type":"file"', '{"type":"file","path":"a"');
    expect(manifestDigest(parseManifest(shuffled))).toBe(manifestDigest(m));
    expect(manifestDigest(manifest(dirEntry(''), entry('a', { sha256: 'b'.repeat(64) })))).not.toBe(manifestDigest(manifest(dirEntry(''), entry('a'))));
  });

  const bad: Array<[string, (lines: string[]) => void, RegExp]> = [
    ['unknown entry field', (l) => (l[2] = l[2]?.replace('"mode"', '"colour":1,"mode"') ?? ''), /line 3: unknown field "colour"/],
    ['unknown header field', (l) => (l[0] = '{"format":"imgbased-manifest","version":1,"count":6,"x":1}'), /line 1: unknown field "x"/],
    ['other version', (l) => (l[0] = '{"format":"imgbased-manifest","version":2,"count":6}'), /line 1: unsupported version 2/],
    ['other format', (l) => (l[0] = '{"format":"mtree","version":1,"count":6}'), /line 1: format must be/],
    ['wrong count', (l) => (l[0] = '{"format":"imgbased-manifest","version":1,"count":7}'), /header says 7 entries, found 6/],
    ['unknown type', (l) => (l[2] = l[2]?.replace('"type":"file"', '"type":"door"') ?? ''), /line 3: unknown type "door"/],
    ['field of another type', (l) => (l[6] = l[6]?.replace('}', ',"size":1}') ?? ''), /line 7: a symlink has no size/],
    ['missing required field', (l) => (l[4] = l[4]?.replace(',"minor":3', '') ?? ''), /line 5: a char needs minor/],
    ['mode out of range', (l) => (l[2] = l[2]?.replace('"mode":420', '"mode":4096') ?? ''), /line 3: mode must be an integer/],
    ['bad sha256', (l) => (l[2] = l[2]?.replace('aaaa', 'AAAA') ?? ''), /line 3: sha256 must be 64 lowercase hex/],
    ['out of order', (l) => ([l[4], l[5]] = [l[5] ?? '', l[4] ?? '']), /line 6: "dev" is out of order or repeated/],
    ['repeated path', (l) => (l[5] = l[5]?.replace('"path":"mnt"', '"path":"dev"') ?? ''), /line 6: "dev" is out of order or repeated/],
    ['missing parent', (l) => (l[2] = l[2]?.replace('"path":"a"', '"path":"nodir/a"') ?? ''), /parent of "nodir\/a" is not a walked directory|out of order/],
    ['below a mount point', (l) => {
      l.splice(6, 0, '{"path":"mnt/x","type":"fifo","mode":420,"uid":0,"gid":0,"mtimeNs":"0"}');
      l[0] = '{"format":"imgbased-manifest","version":1,"count":7}';
    }, /line 7: parent of "mnt\/x" is not a walked directory/],
    ['broken link group', (l) => (l[3] = l[3]?.replace('"link":"a"', '"link":"dev"') ?? ''), /line 4: link "dev" does not name the first entry/],
    ['non-canonical path', (l) => (l[2] = l[2]?.replace('"path":"a"', '"path":"\\\\x61"') ?? ''), /line 3: path is not in canonical form/],
    ['bad escape', (l) => (l[2] = l[2]?.replace('"path":"a"', '"path":"\\\\q"') ?? ''), /line 3: path has a bad escape/],
    ['not normalised', (l) => (l[2] = l[2]?.replace('"path":"a"', '"path":"./a"') ?? ''), /line 3: path ".\/a" is not a normalised/],
    ['bad base64', (l) => (l[3] = l[3]?.replace('"MQ=="', '"MQ"') ?? ''), /line 4: xattr "user.z" must be canonical base64/],
    ['not JSON', (l) => (l[2] = '{"path":'), /line 3: not JSON/],
    ['empty line', (l) => l.splice(2, 0, ''), /line 3: empty line/],
  ];
  test.each(bad)('rejects: %s', (_name, edit, message) => {
    const lines = serializeManifest(m).split('\n');
    lines.pop();
    edit(lines);
    const text = `${lines.join('\n')}\n`;
    expect(() => parseManifest(text)).toThrow(ManifestFormatError);
    expect(() => parseManifest(text)).toThrow(message);
  });

  test('rejects a missing final newline and an empty text', () => {
    expect(() => parseManifest(serializeManifest(m).slice(0, -1))).toThrow(/missing final newline/);
    expect(() => parseManifest('')).toThrow(/missing final newline|empty manifest/);
    expect(() => parseManifest('\n')).toThrow(/empty manifest/);
    expect(() => parseManifest('{"format":"imgbased-manifest","version":1,"count":0}\n')).toThrow(/line 1: no entries/);
  });
});

describe('hard-link groups', () => {
  test('id = first path in manifest order; singletons get none; inode numbers do not matter', () => {
    const one = linkGroups([
      { path: 'z', inode: '1:10' },
      { path: 'b/x', inode: '1:10' },
      { path: 'b-y', inode: '1:10' },
      { path: 'alone', inode: '1:11' },
      { path: 'p', inode: '1:12' },
      { path: 'q', inode: '1:12' },
    ]);
    expect(Object.fromEntries(one)).toEqual({ 'b-y': 'b-y', 'b/x': 'b-y', z: 'b-y', p: 'p', q: 'p' });
    const other = linkGroups([
      { path: 'q', inode: '2:99' },
      { path: 'p', inode: '2:99' },
      { path: 'alone', inode: '2:5' },
      { path: 'b/x', inode: '2:7' },
      { path: 'z', inode: '2:7' },
      { path: 'b-y', inode: '2:7' },
    ]);
    expect(Object.fromEntries(other)).toEqual(Object.fromEntries(one));
  });
});

describe('comparison and summaries', () => {
  const a = manifest(
    dirEntry(''),
    dirEntry('etc'),
    entry('etc/foo'),
    entry('etc/gone'),
    entry('usr', { type: 'file' }),
    entry('x', { mode: 0o755, xattrs: { 'user.a': 'MQ==', 'security.selinux': Buffer.from('a_t\0').toString('base64') } }),
  );
  const b = manifest(
    dirEntry(''),
    dirEntry('etc', { mtimeNs: '1735689601000000000' }),
    entry('etc/foo', { sha256: 'b'.repeat(64) }),
    entry('etc/new'),
    dirEntry('usr'),
    entry('x', { mode: 0o750, xattrs: { 'user.b': 'MQ==', 'security.selinux': Buffer.from('b_t\0').toString('base64') } }),
  );

  test('added, removed, changed with the fields that differ', () => {
    const d = compareManifests(a, b);
    expect(d.equal).toBe(false);
    expect(diffKeys(d)).toEqual([
      '+etc/new', '-etc/gone', 'etc:mtime', 'etc/foo:sha256', 'usr:type', 'x:mode',
      'x:xattr/security.selinux', 'x:xattr/user.a', 'x:xattr/user.b',
    ]);
    expect(d.ignored).toEqual([]);
    expect(summarizeDiff(d)).toBe(
      '6 differences: etc: mtime 2025-01-01T00:00:00.000000000Z vs 2025-01-01T00:00:01.000000000Z; etc/foo: sha256 differs; ' +
        'etc/gone: removed; etc/new: added; usr: type file vs dir; ' +
        'x: mode 0755 vs 0750, xattr security.selinux "a_t" vs "b_t", xattr user.a removed, xattr user.b added',
    );
    expect(summarizeDiff(d, 2)).toBe('6 differences: etc: mtime 2025-01-01T00:00:00.000000000Z vs 2025-01-01T00:00:01.000000000Z; etc/foo: sha256 differs; … and 4 more');
    expect(summarizeDiff(compareManifests(a, a))).toBe('no differences');
  });

  test('ignoring directory mtimes is explicit, in the diff and in its summary', () => {
    const onlyDirTime = manifest(dirEntry(''), dirEntry('etc', { mtimeNs: '1' }), entry('etc/foo'));
    const ref = manifest(dirEntry(''), dirEntry('etc'), entry('etc/foo'));
    expect(compareManifests(ref, onlyDirTime).equal).toBe(false);
    const d = compareManifests(ref, onlyDirTime, { ignoreDirMtimes: true });
    expect(d.equal).toBe(true);
    expect(d.ignored).toEqual(['directory mtimes']);
    expect(summarizeDiff(d)).toBe('no differences (not compared: directory mtimes)');
    // file mtimes are still compared
    const fileTime = manifest(dirEntry(''), dirEntry('etc'), entry('etc/foo', { mtimeNs: '2' }));
    expect(diffKeys(compareManifests(ref, fileTime, { ignoreDirMtimes: true }))).toEqual(['etc/foo:mtime']);
  });

  test('odd paths are quoted in summaries', () => {
    const d = compareManifests(manifest(dirEntry('')), manifest(dirEntry(''), entry('new\nline')));
    expect(summarizeDiff(d)).toBe('1 difference: "new\\nline": added');
  });

  test('mtime formatting keeps nanoseconds', () => {
    expect(formatMtimeNs('1735689600123456789')).toBe('2025-01-01T00:00:00.123456789Z');
    expect(formatMtimeNs('-1')).toBe('1969-12-31T23:59:59.999999999Z');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Real trees

describe('buildManifest on real trees', () => {
  test('the reference tree: every kind of entry and attribute is recorded', () => {
    const e = (p: string): ManifestEntry => {
      const found = find(manifestA, p);
      if (!found) throw new Error(`no ${p} in the manifest`);
      return found;
    };
    expect(manifestA.entries[0]?.path).toBe('');
    expect(e('etc/foo.conf')).toMatchObject({ type: 'file', mode: 0o644, size: 12, xattrs: { 'user.x': Buffer.from('one').toString('base64') } });
    expect(e('etc/secret')).toMatchObject({ uid: 107, gid: 107, mode: 0o600 });
    expect(Object.keys(e('etc/acl.conf').xattrs ?? {})).toEqual(['system.posix_acl_access']);
    expect(Object.keys(e('var/shared').xattrs ?? {})).toEqual(['system.posix_acl_default']);
    expect(e('var/shared').mode).toBe(0o2775);
    expect(Object.keys(e('usr/bin/tool').xattrs ?? {}).sort()).toEqual(['security.capability', 'security.selinux']);
    expect(e('usr/bin/setuid').mode).toBe(0o4755);
    expect(e('tmp').mode).toBe(0o1777);
    expect(e('usr/bin/alias')).toMatchObject({ type: 'symlink', target: 'tool' });
    expect(e('usr/bin/hard').link).toBe('usr/bin/hard');
    expect(e('usr/bin/tool').link).toBe('usr/bin/hard');
    expect(e('usr/lib/a.txt').link).toBe('usr/lib/a.txt');
    expect(e('usr/lib/b.txt').link).toBe('usr/lib/a.txt');
    expect(e('usr/lib/c.txt').link).toBeUndefined();
    expect(e('usr/lib/big.bin').size).toBe(BIG.length);
    expect(e('usr/lib/empty')).toMatchObject({ size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
    expect(e('dev/null')).toMatchObject({ type: 'char', major: 1, minor: 3, mode: 0o666 });
    expect(e('dev/loop0')).toMatchObject({ type: 'block', major: 7, minor: 0 });
    expect(e('run/fifo')).toMatchObject({ type: 'fifo', mode: 0o600 });
    expect(e('run/sock').type).toBe('socket');
    expect(e('names/with space').type).toBe('file');
    expect(e('names/new\nline').type).toBe('file');
    expect(e('names/back\\\\slash').type).toBe('file');
    expect(e('names/é').type).toBe('file');
    expect(e('names/bad\\xff\\xfe-\\xc3').xattrs).toEqual({ 'user.n': Buffer.from('v').toString('base64') });
    for (const x of manifestA.entries) expect(x.mtimeNs).toMatch(/^\d{19}$/);
    expect(parseManifest(serializeManifest(manifestA))).toEqual(manifestA);
  });

  test('two trees made differently (order, tools, link direction, history) but equal compare equal', async () => {
    const b = join(scratch, 'b');
    await buildTree(b, true);
    const mb = await buildManifest(b, { concurrency: 8 });
    const d = compareManifests(manifestA, mb);
    expect(summarizeDiff(d)).toBe('no differences');
    expect(manifestDigest(mb)).toBe(manifestDigest(manifestA));
    // and really different inodes
    expect((await lstat(join(b, 'usr/bin/tool'))).ino).not.toBe((await lstat(join(treeA, 'usr/bin/tool'))).ino);
    const m1 = await buildManifest(b, { concurrency: 1 });
    expect(serializeManifest(m1)).toBe(serializeManifest(mb));
  });

  test('cp -a of the tree is equal', async () => {
    const c = join(scratch, 'cp-a');
    await run(['cp', '-a', treeA, c]);
    expect(summarizeDiff(compareManifests(manifestA, await buildManifest(c)))).toBe('no differences');
  });

  const nonUtf8 = Buffer.concat([Buffer.from('names/'), NON_UTF8]);
  const sh = (argv: string[]): Promise<void> => run(argv).then(() => undefined);
  /** [name, mutation, paths whose mtimes are put back afterwards, expected diffKeys, expected summary]. */
  const mutations: Array<[string, (root: string) => Promise<void>, string[], string[], RegExp]> = [
    ['content (same size)', (r) => writeFile(join(r, 'etc/foo.conf'), 'setting = 2\n'), ['etc/foo.conf'], ['etc/foo.conf:sha256'], /^1 difference: etc\/foo.conf: sha256 differs$/],
    ['content (other size)', (r) => writeFile(join(r, 'etc/foo.conf'), 'setting = 10\n'), ['etc/foo.conf'], ['etc/foo.conf:size', 'etc/foo.conf:sha256'], /etc\/foo.conf: size 12 vs 13, sha256 differs/],
    ['content of a large file, last byte', async (r) => {
      const buf = Buffer.from(BIG);
      buf[buf.length - 1] = (buf[buf.length - 1] ?? 0) ^ 1;
      await writeFile(join(r, 'usr/lib/big.bin'), buf);
    }, ['usr/lib/big.bin'], ['usr/lib/big.bin:sha256'], /usr\/lib\/big.bin: sha256 differs/],
    ['mode', (r) => chmod(join(r, 'etc/foo.conf'), 0o640), [], ['etc/foo.conf:mode'], /^1 difference: etc\/foo.conf: mode 0644 vs 0640$/],
    ['setuid bit', (r) => chmod(join(r, 'usr/bin/setuid'), 0o755), [], ['usr/bin/setuid:mode'], /mode 4755 vs 0755/],
    ['sticky bit of a directory', (r) => chmod(join(r, 'tmp'), 0o777), [], ['tmp:mode'], /tmp: mode 1777 vs 0777/],
    ['uid', (r) => chown(join(r, 'etc/foo.conf'), 36, 0), [], ['etc/foo.conf:uid'], /etc\/foo.conf: uid 0 vs 36/],
    ['gid', (r) => chown(join(r, 'etc/foo.conf'), 0, 36), [], ['etc/foo.conf:gid'], /etc\/foo.conf: gid 0 vs 36/],
    ['mtime of a file', (r) => lutimes(join(r, 'etc/foo.conf'), 1_000_000_000, 1_000_000_000), [], ['etc/foo.conf:mtime'], /etc\/foo.conf: mtime \S+ vs 2001-09-09T01:46:40.000000000Z/],
    ['symlink target', async (r) => {
      await unlink(join(r, 'usr/bin/alias'));
      await symlink('setuid', join(r, 'usr/bin/alias'));
    }, ['usr/bin/alias', 'usr/bin'], ['usr/bin/alias:target'], /usr\/bin\/alias: target "tool" vs "setuid"/],
    ['xattr value', (r) => sh(['setfattr', '-n', 'user.x', '-v', 'two', join(r, 'etc/foo.conf')]), [], ['etc/foo.conf:xattr/user.x'], /xattr user.x "one" vs "two"/],
    ['added xattr', (r) => sh(['setfattr', '-n', 'user.new', '-v', '1', join(r, 'etc/secret')]), [], ['etc/secret:xattr/user.new'], /etc\/secret: xattr user.new added/],
    ['removed xattr', (r) => sh(['setfattr', '-x', 'user.x', join(r, 'etc/foo.conf')]), [], ['etc/foo.conf:xattr/user.x'], /xattr user.x removed/],
    ['security.selinux label', (r) => sh(['setfattr', '-n', 'security.selinux', '-v', 'system_u:object_r:etc_t:s0', join(r, 'usr/bin/setuid')]), [], ['usr/bin/setuid:xattr/security.selinux'], /usr\/bin\/setuid: xattr security.selinux added/],
    ['security.selinux label of a directory', (r) => sh(['setfattr', '-n', 'security.selinux', '-v', 'system_u:object_r:usr_t:s0', join(r, 'usr/bin')]), [], ['usr/bin:xattr/security.selinux'], /usr\/bin: xattr security.selinux "system_u:object_r:bin_t:s0" vs "system_u:object_r:usr_t:s0"/],
    ['security.capability added (setcap)', (r) => sh(['setcap', 'cap_net_admin+ep', join(r, 'usr/bin/setuid')]), [], ['usr/bin/setuid:xattr/security.capability'], /xattr security.capability added/],
    ['security.capability changed (setcap)', (r) => sh(['setcap', 'cap_net_admin+ep', join(r, 'usr/bin/tool')]), [], ['usr/bin/hard:xattr/security.capability', 'usr/bin/tool:xattr/security.capability'], /usr\/bin\/tool: xattr security.capability differs/],
    ['access ACL (setfacl)', (r) => sh(['setfacl', '-m', 'u:108:r', join(r, 'etc/acl.conf')]), [], ['etc/acl.conf:xattr/system.posix_acl_access'], /etc\/acl.conf: xattr system.posix_acl_access differs/],
    ['default ACL (setfacl -d)', (r) => sh(['setfacl', '-d', '-m', 'u:108:rx', join(r, 'var/shared')]), [], ['var/shared:xattr/system.posix_acl_default'], /var\/shared: xattr system.posix_acl_default differs/],
    ['hard link broken', async (r) => {
      await sh(['cp', '-p', join(r, 'usr/lib/b.txt'), join(r, 'usr/lib/b.tmp')]);
      await rename(join(r, 'usr/lib/b.tmp'), join(r, 'usr/lib/b.txt'));
    }, ['usr/lib'], ['usr/lib/a.txt:link', 'usr/lib/b.txt:link'], /usr\/lib\/a.txt: hard-link group "usr\/lib\/a.txt" vs none/],
    ['hard link added', async (r) => {
      await unlink(join(r, 'usr/lib/c.txt'));
      await link(join(r, 'usr/lib/a.txt'), join(r, 'usr/lib/c.txt'));
    }, ['usr/lib'], ['usr/lib/c.txt:link', 'usr/lib/c.txt:mtime'], /usr\/lib\/c.txt: mtime .*, hard-link group none vs "usr\/lib\/a.txt"/],
    ['device numbers (mknod)', async (r) => {
      await unlink(join(r, 'dev/null'));
      await sh(['mknod', '-m', '666', join(r, 'dev/null'), 'c', '1', '5']);
    }, ['dev/null', 'dev'], ['dev/null:device'], /dev\/null: device 1:3 vs 1:5/],
    ['char → block device', async (r) => {
      await unlink(join(r, 'dev/null'));
      await sh(['mknod', '-m', '666', join(r, 'dev/null'), 'b', '1', '3']);
    }, ['dev/null', 'dev'], ['dev/null:type'], /dev\/null: type char vs block/],
    ['fifo added', (r) => sh(['mkfifo', '-m', '600', join(r, 'run/fifo2')]), ['run'], ['+run/fifo2'], /^1 difference: run\/fifo2: added$/],
    ['fifo → file', async (r) => {
      await unlink(join(r, 'run/fifo'));
      await writeFile(join(r, 'run/fifo'), '', { mode: 0o600 });
    }, ['run/fifo', 'run'], ['run/fifo:type'], /run\/fifo: type fifo vs file/],
    ['file → dir', async (r) => {
      await unlink(join(r, 'etc/secret'));
      await mkdir(join(r, 'etc/secret'));
    }, ['etc/secret', 'etc'], ['etc/secret:type'], /etc\/secret: type file vs dir/],
    ['file added', (r) => writeFile(join(r, 'etc/new.conf'), 'x\n'), ['etc'], ['+etc/new.conf'], /^1 difference: etc\/new.conf: added$/],
    ['file removed', (r) => unlink(join(r, 'etc/secret')), ['etc'], ['-etc/secret'], /^1 difference: etc\/secret: removed$/],
    ['directory removed', (r) => rm(join(r, 'run'), { recursive: true }), [''], ['-run', '-run/fifo', '-run/sock'], /^3 differences: run: removed; run\/fifo: removed; run\/sock: removed$/],
    ['file with a newline in its name', (r) => writeFile(join(r, 'names/new\nline'), 'changed\n'), ['names/new\nline'], ['names/new\nline:sha256'], /^1 difference: "names\/new\\nline": sha256 differs$/],
    ['file with a space in its name', (r) => chmod(join(r, 'names/with space'), 0o600), [], ['names/with space:mode'], /"names\/with space": mode 0644 vs 0600/],
    ['file with a non-UTF-8 name', (r) => chmod(at(r, nonUtf8), 0o600), [], ['names/bad\\xff\\xfe-\\xc3:mode'], /names\/bad\\xff\\xfe-\\xc3: mode 0644 vs 0600/],
  ];

  test.each(mutations)('detects and names a single difference: %s', async (_name, mutate, keep, expected, summary) => {
    const copy = await mkdtemp(join(scratch, 'mut-'));
    const root = join(copy, 't');
    await run(['cp', '-a', treeA, root]);
    expect(compareManifests(manifestA, await buildManifest(root)).equal).toBe(true);
    await keepingTimes(root, keep, () => mutate(root));
    const d = compareManifests(manifestA, await buildManifest(root));
    expect(diffKeys(d).sort()).toEqual([...expected].sort());
    expect(summarizeDiff(d)).toMatch(summary);
    await rm(copy, { recursive: true });
  });

  test('directory mtimes: compared by default, ignorable explicitly', async () => {
    const root = join(scratch, 'dirtime');
    await run(['cp', '-a', treeA, root]);
    await writeFile(join(root, 'etc/tmp'), 'x');
    await unlink(join(root, 'etc/tmp')); // etc's mtime moved, nothing else
    const m = await buildManifest(root);
    expect(diffKeys(compareManifests(manifestA, m))).toEqual(['etc:mtime']);
    const d = compareManifests(manifestA, m, { ignoreDirMtimes: true });
    expect(d.equal).toBe(true);
    expect(summarizeDiff(d)).toBe('no differences (not compared: directory mtimes)');
  });

  test('mount points are recorded but not crossed (bind mount from the same filesystem, tmpfs)', async () => {
    const root = join(scratch, 'mounts');
    await run(['cp', '-a', treeA, root]);
    const bindSrc = join(scratch, 'bind-src');
    await mkdir(join(bindSrc, 'deep'), { recursive: true });
    await writeFile(join(bindSrc, 'deep/inside'), 'should not be walked\n');
    await keepingTimes(root, ['usr'], async () => {
      await mkdir(join(root, 'usr/tmpfs'));
    });
    try {
      await run(['mount', '--bind', bindSrc, join(root, 'mnt')]);
      await run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', join(root, 'usr/tmpfs')]);
      await writeFile(join(root, 'usr/tmpfs/file'), 'on tmpfs\n');
      const m = await buildManifest(root);
      expect(m.entries.filter((e) => e.path.startsWith('mnt/') || e.path.startsWith('usr/tmpfs/'))).toEqual([]);
      expect(find(m, 'mnt')).toMatchObject({ type: 'dir', mountPoint: true });
      expect(find(m, 'usr/tmpfs')).toMatchObject({ type: 'dir', mountPoint: true });
      expect(find(m, 'usr/bin/tool')?.mountPoint).toBeUndefined();
      const d = compareManifests(manifestA, m);
      expect(diffKeys(d)).toContain('mnt:mountPoint');
      expect(diffKeys(d)).toContain('+usr/tmpfs');
      expect(summarizeDiff(d)).toMatch(/mnt: .*mount point no vs yes/);
      expect(parseManifest(serializeManifest(m))).toEqual(m);
    } finally {
      await unmountIfMounted(join(root, 'usr/tmpfs'));
      await unmountIfMounted(join(root, 'mnt'));
    }
    // unmounted: the same tree again, walked fully
    const after = await buildManifest(root, { exclude: (p) => p === 'usr/tmpfs' });
    expect(find(after, 'mnt')?.mountPoint).toBeUndefined();
  });

  test('exclude leaves out a path and everything below it', async () => {
    const seen: string[] = [];
    const m = await buildManifest(treeA, { exclude: (p) => (seen.push(p), p === 'usr/lib' || p === 'names/é') });
    expect(m.entries.some((e) => e.path === 'usr/lib' || e.path.startsWith('usr/lib/') || e.path === 'names/é')).toBe(false);
    expect(find(m, 'usr/bin/tool')).toBeDefined();
    expect(seen).not.toContain('');
    expect(seen).not.toContain('usr/lib/a.txt');
    expect(parseManifest(serializeManifest(m))).toEqual(m);
  });

  test('progress counts files (hard links once) and bytes; the root must be a real directory', async () => {
    const calls: Array<[number, number]> = [];
    await buildManifest(treeA, { onProgress: (f, b) => calls.push([f, b]) });
    const files = manifestA.entries.filter((e) => e.type === 'file');
    const unique = new Map(files.map((e) => [e.link ?? e.path, e.size ?? 0]));
    const last = calls[calls.length - 1];
    expect(last).toEqual([unique.size, [...unique.values()].reduce((x, y) => x + y, 0)]);
    expect(calls.every(([f], i) => i === 0 || f >= (calls[i - 1]?.[0] ?? 0))).toBe(true);

    await expect(buildManifest(join(treeA, 'etc/foo.conf'))).rejects.toBeInstanceOf(InvalidArgumentError);
    await symlink(treeA, join(scratch, 'link-to-a'));
    await expect(buildManifest(join(scratch, 'link-to-a'))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(buildManifest(treeA, { concurrency: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test('cancellation: an abort between batches stops early with CancelledError', async () => {
    const root = join(scratch, 'cancel');
    await mkdir(root);
    const chunk = randomBytes(4096);
    for (let d = 0; d < 16; d++) {
      await mkdir(join(root, `d${d}`));
      await Promise.all(Array.from({ length: 256 }, (_, i) => writeFile(join(root, `d${d}`, `f${i}`), chunk)));
    }
    const ac = new AbortController();
    let maxFiles = 0;
    const p = buildManifest(root, {
      signal: ac.signal,
      concurrency: 2,
      onProgress: (files) => {
        maxFiles = Math.max(maxFiles, files);
        ac.abort();
      },
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(maxFiles).toBeGreaterThan(0);
    expect(maxFiles).toBeLessThan(4096 / 2);

    await expect(buildManifest(root, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
  });

  test('cancellation: an abort in the middle of a large file stops it there', async () => {
    const root = join(scratch, 'cancel-large');
    await mkdir(root);
    // 4 GiB, sparse: hashing it takes seconds, so an abort after 100 ms lands inside it
    await writeFile(join(root, 'huge'), '');
    await run(['truncate', '-s', '4G', join(root, 'huge')]);
    const ac = new AbortController();
    const progress: number[] = [];
    setTimeout(() => ac.abort(), 100);
    await expect(buildManifest(root, { signal: ac.signal, onProgress: (files) => progress.push(files) })).rejects.toBeInstanceOf(CancelledError);
    expect(progress.filter((f) => f > 0)).toEqual([]);
  });
});

describe('a test image and its copies', () => {
  let dir: string;
  let img: OpenedImage;
  let imageManifest: Manifest;

  beforeAll(async () => {
    dir = await mkdtemp(join(scratch, 'image-'));
    const work = join(dir, 'work');
    await mkdir(work);
    const { imagePath } = await buildTestImage({
      outDir: dir,
      nvr: 'ovirt-node-ng-4.5.6-0.20250101.0',
      files: {
        'usr/bin/with-caps': { content: '#!/bin/sh\n', mode: 0o755, xattrs: { 'trusted.t': 'x' } },
        'usr/lib/acl-file': { content: 'acl\n', mode: 0o640, uid: 107, gid: 36, acl: 'g:36:rw' },
      },
    });
    img = await openImage({ imagePath, workDir: work });
    imageManifest = await buildManifest(img.root);
  });
  afterAll(async () => {
    await img?.close();
  });

  test('the image tree holds what the builder wrote', () => {
    expect(find(imageManifest, 'usr/bin/example-setuid')?.mode).toBe(0o4755);
    expect(find(imageManifest, 'usr/bin/example-hardlink')?.link).toBe('usr/bin/example-hardlink');
    expect(find(imageManifest, 'usr/bin/example-tool')?.link).toBe('usr/bin/example-hardlink');
    expect(find(imageManifest, 'dev/null')).toMatchObject({ type: 'char', major: 1, minor: 3 });
    expect(Object.keys(find(imageManifest, 'usr/lib/acl-file')?.xattrs ?? {})).toEqual(['system.posix_acl_access']);
    expect(find(imageManifest, 'usr/bin/example-tool')?.xattrs?.['security.selinux']).toBe(Buffer.from('system_u:object_r:bin_t:s0').toString('base64'));
    expect(find(imageManifest, 'lost+found')?.type).toBe('dir');
  });

  test('equals itself after cp -a', async () => {
    const dst = join(dir, 'cp-a');
    await mkdir(dst);
    await run(['cp', '-a', '--no-target-directory', `${img.root}/.`, dst]);
    const d = compareManifests(imageManifest, await buildManifest(dst));
    expect(summarizeDiff(d)).toBe('no differences');
  });

  test('equals itself after copyTree into a fresh ext4 filesystem', async () => {
    const dst = await makeExt4Mount(dir, 'copytree', 64);
    try {
      await copyTree({ srcRoot: img.root, dstRoot: dst.mnt });
      const m = await buildManifest(dst.mnt);
      expect(summarizeDiff(compareManifests(imageManifest, m))).toBe('no differences');
      expect(manifestDigest(m)).toBe(manifestDigest(imageManifest));
      // and a change on the copy is named
      await run(['setfattr', '-n', 'security.selinux', '-v', 'system_u:object_r:etc_t:s0', join(dst.mnt, 'usr/bin/example-tool')]);
      expect(summarizeDiff(compareManifests(imageManifest, await buildManifest(dst.mnt)))).toBe(
        '2 differences: usr/bin/example-hardlink: xattr security.selinux "system_u:object_r:bin_t:s0" vs "system_u:object_r:etc_t:s0"; ' +
          'usr/bin/example-tool: xattr security.selinux "system_u:object_r:bin_t:s0" vs "system_u:object_r:etc_t:s0"',
      );
    } finally {
      await dst.unmount();
    }
  });
});
