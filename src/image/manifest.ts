/**
 * Manifests of directory trees: everything a base must share with its image, one canonical record per entry, so that
 * "this base is an exact copy of that image" is a comparison of two manifests (issue 10: a base synchronised in place
 * from a snapshot of an older base must end up equal to a full write; `nodectl check --deep` re-checks kept bases).
 *
 * What an entry records (and why):
 *  - path (relative, the root is ""; bytes that are not UTF-8 are kept, see pathToString), type, permission bits
 *    (incl. setuid/setgid/sticky), numeric uid/gid;
 *  - regular files: size and sha256 of the content; symlinks: the target; char/block devices: major/minor;
 *  - mtime in nanoseconds (as a decimal string) of EVERY entry, directories and symlinks included. A full write
 *    (copyTree = `cp -a`) preserves them all, and directory mtimes carry meaning (systemd's ConditionNeedsUpdate=
 *    compares /usr's mtime), so a synchronised base is only "identical" once the sync has restored directory mtimes
 *    too (after adding/removing entries, deepest first, as `rsync -a` does). A caller that knowingly accepts
 *    directory mtimes differing says so with `compareManifests(a, b, { ignoreDirMtimes: true })`, and the diff and
 *    its summary then state that they were not compared; nothing is dropped silently;
 *  - all extended attributes, names and raw values (base64): security.selinux, security.capability,
 *    system.posix_acl_access/default, trusted.*, user.* (read with getfattr, see xattrs.ts);
 *  - hard links: non-directories sharing an inode with another walked path get `link` = the first path of their group
 *    in manifest order, so trees with the same link structure have equal manifests whatever their inode numbers.
 * Not recorded: atime/ctime/inode numbers (a copy cannot keep them), nlink (it counts links outside the walk, e.g.
 * excluded paths; the groups above capture the structure), allocation/sparseness (differs between filesystems for the
 * same content, e.g. ext4 inline data), directory sizes.
 *
 * Entries are sorted by the raw bytes of their paths. The pure part (paths, serialisation, parsing, hard-link
 * grouping, comparison, digest) comes first; the walk and the hashing (buildManifest) at the end of this file.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CancelledError, InvalidArgumentError } from '../errors';
import { readXattrs, unescapeOctal, type Xattr } from './xattrs';

export const MANIFEST_VERSION = 1;
export const MANIFEST_FORMAT = 'imgbased-manifest';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
const ENTRY_TYPES: readonly EntryType[] = ['file', 'dir', 'symlink', 'char', 'block', 'fifo', 'socket'];

export interface ManifestEntry {
  /** Relative to the root ("" = the root itself), `/`-separated, escaped by pathToString. */
  readonly path: string;
  readonly type: EntryType;
  /** Permission bits incl. setuid, setgid and sticky (st_mode & 07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time in nanoseconds since the epoch, decimal (beyond a JSON number's exact range). */
  readonly mtimeNs: string;
  /** Regular files only. */
  readonly size?: number;
  /** Regular files only: lowercase hex. */
  readonly sha256?: string;
  /** Symlinks only: the target, escaped like paths. */
  readonly target?: string;
  /** Char/block devices only. */
  readonly major?: number;
  readonly minor?: number;
  /** Hard-link group: the first path (manifest order) of the walked paths sharing this entry's inode. */
  readonly link?: string;
  /** Another filesystem is mounted here: its content was not walked; the other fields describe what lstat sees. */
  readonly mountPoint?: true;
  /** Extended attributes: name (escaped like paths) → raw value in base64. Absent when there are none. */
  readonly xattrs?: Readonly<Record<string, string>>;
}

export interface Manifest {
  readonly version: typeof MANIFEST_VERSION;
  /** Sorted by the raw bytes of their paths; the first is the root (""). */
  readonly entries: readonly ManifestEntry[];
}

/** A manifest that cannot be parsed: names the line and what is wrong with it. */
export class ManifestFormatError extends InvalidArgumentError {}

// ---------------------------------------------------------------------------------------------------------------
// Paths: raw bytes <-> strings

const BACKSLASH = 0x5c;

/** Length of the valid UTF-8 sequence starting at `i` (1–4), or 0 (no overlongs, surrogates or > U+10FFFF). */
function utf8SequenceLength(buf: Uint8Array, i: number): number {
  const c0 = buf[i] ?? 0;
  if (c0 < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c0 >= 0xc2 && c0 <= 0xdf) need = 1;
  else if (c0 >= 0xe0 && c0 <= 0xef) {
    need = 2;
    if (c0 === 0xe0) lo = 0xa0;
    if (c0 === 0xed) hi = 0x9f;
  } else if (c0 >= 0xf0 && c0 <= 0xf4) {
    need = 3;
    if (c0 === 0xf0) lo = 0x90;
    if (c0 === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k <= need; k++) {
    const c = buf[i + k];
    if (c === undefined) return 0;
    if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return 0;
  }
  return need + 1;
}

/**
 * Raw path (or xattr name) bytes → manifest string: valid UTF-8 as is, a backslash as `\\`, every byte that is not
 * part of valid UTF-8 as `\xhh`. Lossless (see pathFromString) and the identity for ordinary names.
 */
export function pathToString(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buf.includes(BACKSLASH) && isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  for (let i = 0; i < buf.length; ) {
    const n = utf8SequenceLength(buf, i);
    const b = buf[i] ?? 0;
    if (n === 0) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else if (b === BACKSLASH) out += '\\\\';
    else out += buf.toString('utf8', i, i + n);
    i += Math.max(n, 1);
  }
  return out;
}

/** The inverse of pathToString. Throws on an escape it does not know. */
export function pathFromString(s: string): Buffer {
  if (!s.includes('\\')) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = s.indexOf('\\'); i >= 0; i = s.indexOf('\\', start)) {
    parts.push(Buffer.from(s.slice(start, i), 'utf8'));
    const next = s[i + 1];
    const hex = s.slice(i + 2, i + 4);
    if (next === '\\') {
      parts.push(Buffer.from([BACKSLASH]));
      start = i + 2;
    } else if (next === 'x' && /^[0-9a-f]{2}$/.test(hex)) {
      parts.push(Buffer.from([parseInt(hex, 16)]));
      start = i + 4;
    } else {
      throw new InvalidArgumentError(`bad escape in ${JSON.stringify(s)} at offset ${i}`);
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** Manifest order: by the raw bytes of the paths. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(pathFromString(a), pathFromString(b));
}

/** A path for messages: as is when printable, else JSON-quoted (newlines, tabs, control bytes). */
function showPath(path: string): string {
  if (path === '') return '.';
  return /[\u0000-\u0020\u007f"]/.test(path) ? JSON.stringify(path) : path;
}

// ---------------------------------------------------------------------------------------------------------------
// Hard-link groups

export interface LinkCandidate {
  readonly path: string;
  /** Identifies the inode within one tree (e.g. `${dev}:${ino}`). */
  readonly inode: string;
}

/**
 * Hard-link groups: for every path that shares its inode with at least one other candidate, the group's id = its
 * first path in manifest order. Inode numbers never leave this function, so equal structures give equal ids.
 */
export function linkGroups(candidates: readonly LinkCandidate[]): Map<string, string> {
  const byInode = new Map<string, string[]>();
  for (const c of candidates) {
    const group = byInode.get(c.inode);
    if (group) group.push(c.path);
    else byInode.set(c.inode, [c.path]);
  }
  const result = new Map<string, string>();
  for (const paths of byInode.values()) {
    if (paths.length < 2) continue;
    const sorted = [...paths].sort(comparePaths);
    const leader = sorted[0] ?? '';
    for (const p of sorted) result.set(p, leader);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Serialisation

/** Canonical JSON of an entry: fixed key order, xattrs sorted by name bytes. */
function serializeEntry(e: ManifestEntry): string {
  const parts = [
    `"path":${JSON.stringify(e.path)}`,
    `"type":${JSON.stringify(e.type)}`,
    `"mode":${e.mode}`,
    `"uid":${e.uid}`,
    `"gid":${e.gid}`,
    `"mtimeNs":${JSON.stringify(e.mtimeNs)}`,
  ];
  if (e.size !== undefined) parts.push(`"size":${e.size}`);
  if (e.sha256 !== undefined) parts.push(`"sha256":${JSON.stringify(e.sha256)}`);
  if (e.target !== undefined) parts.push(`"target":${JSON.stringify(e.target)}`);
  if (e.major !== undefined) parts.push(`"major":${e.major}`);
  if (e.minor !== undefined) parts.push(`"minor":${e.minor}`);
  if (e.link !== undefined) parts.push(`"link":${JSON.stringify(e.link)}`);
  if (e.mountPoint === true) parts.push(`"mountPoint":true`);
  if (e.xattrs !== undefined) {
    const names = Object.keys(e.xattrs).sort(comparePaths);
    const attrs = names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(e.xattrs?.[n] ?? '')}`);
    parts.push(`"xattrs":{${attrs.join(',')}}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * JSON lines: a header `{"format":"imgbased-manifest","version":1,"count":N}`, then one compact JSON object per
 * entry in manifest order, each line ending in `\n`. Canonical: equal manifests serialise to equal bytes.
 */
export function serializeManifest(m: Manifest): string {
  const header = `{"format":${JSON.stringify(MANIFEST_FORMAT)},"version":${m.version},"count":${m.entries.length}}`;
  return [header, ...m.entries.map(serializeEntry)].join('\n') + '\n';
}

/** sha256 (hex) of the canonical serialisation: identifies a manifest (e.g. the one stored with a base). */
export function manifestDigest(m: Manifest): string {
  return createHash('sha256').update(serializeManifest(m), 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing (strict: unknown fields, wrong types, bad order or structure are errors naming the line)

type Json = Record<string, unknown>;

const ENTRY_FIELDS = new Set([
  'path', 'type', 'mode', 'uid', 'gid', 'mtimeNs', 'size', 'sha256', 'target', 'major', 'minor', 'link', 'mountPoint', 'xattrs',
]);
const HEADER_FIELDS = new Set(['format', 'version', 'count']);
const U32 = 0xffffffff;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(lineNo: number, what: string): never {
  throw new ManifestFormatError(`manifest line ${lineNo}: ${what}`);
}

function parseJsonLine(line: string, lineNo: number): Json {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    fail(lineNo, `not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(v)) fail(lineNo, 'not a JSON object');
  return v;
}

function checkKnown(o: Json, known: ReadonlySet<string>, lineNo: number): void {
  for (const k of Object.keys(o)) if (!known.has(k)) fail(lineNo, `unknown field ${JSON.stringify(k)}`);
}

function intField(o: Json, key: string, max: number, lineNo: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) fail(lineNo, `${key} must be an integer 0…${max}`);
  return v;
}

function optInt(o: Json, key: string, max: number, lineNo: number): number | undefined {
  return o[key] === undefined ? undefined : intField(o, key, max, lineNo);
}

/** A canonical escaped string (pathToString(pathFromString(s)) === s). */
function canonicalString(v: unknown, what: string, lineNo: number): string {
  if (typeof v !== 'string') fail(lineNo, `${what} must be a string`);
  let bytes: Buffer;
  try {
    bytes = pathFromString(v);
  } catch {
    fail(lineNo, `${what} has a bad escape`);
  }
  if (pathToString(bytes) !== v) fail(lineNo, `${what} is not in canonical form`);
  if (bytes.includes(0)) fail(lineNo, `${what} holds a NUL byte`);
  return v;
}

function checkPath(v: unknown, lineNo: number, what = 'path'): string {
  const p = canonicalString(v, what, lineNo);
  if (p !== '' && p.split('/').some((c) => c === '' || c === '.' || c === '..')) fail(lineNo, `${what} ${JSON.stringify(p)} is not a normalised relative path`);
  return p;
}

function parseXattrs(v: unknown, lineNo: number): Record<string, string> {
  if (!isObject(v)) fail(lineNo, 'xattrs must be an object');
  const names = Object.keys(v);
  if (names.length === 0) fail(lineNo, 'xattrs must be left out when there are none');
  const out: Array<[string, string]> = [];
  for (const name of names) {
    canonicalString(name, `xattr name ${JSON.stringify(name)}`, lineNo);
    if (name === '') fail(lineNo, 'empty xattr name');
    const value = v[name];
    if (typeof value !== 'string' || Buffer.from(value, 'base64').toString('base64') !== value) {
      fail(lineNo, `xattr ${JSON.stringify(name)} must be canonical base64`);
    }
    out.push([name, value]);
  }
  return Object.fromEntries(out);
}

/** Which optional fields each type must have (the others it must not have). */
const REQUIRED_BY_TYPE: Record<EntryType, readonly string[]> = {
  file: ['size', 'sha256'],
  dir: [],
  symlink: ['target'],
  char: ['major', 'minor'],
  block: ['major', 'minor'],
  fifo: [],
  socket: [],
};
const TYPED_FIELDS = ['size', 'sha256', 'target', 'major', 'minor'];

function parseEntry(o: Json, lineNo: number): ManifestEntry {
  checkKnown(o, ENTRY_FIELDS, lineNo);
  const path = checkPath(o.path, lineNo);
  const type = o.type;
  if (typeof type !== 'string' || !(ENTRY_TYPES as readonly string[]).includes(type)) fail(lineNo, `unknown type ${JSON.stringify(type)}`);
  const t = type as EntryType;
  const required = REQUIRED_BY_TYPE[t];
  for (const k of TYPED_FIELDS) {
    if (required.includes(k) && o[k] === undefined) fail(lineNo, `a ${t} needs ${k}`);
    if (!required.includes(k) && o[k] !== undefined) fail(lineNo, `a ${t} has no ${k}`);
  }
  const mtimeNs = o.mtimeNs;
  if (typeof mtimeNs !== 'string' || !/^-?(0|[1-9][0-9]*)$/.test(mtimeNs)) fail(lineNo, 'mtimeNs must be a decimal string');
  const sha256 = o.sha256;
  if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))) fail(lineNo, 'sha256 must be 64 lowercase hex digits');
  if (o.mountPoint !== undefined && o.mountPoint !== true) fail(lineNo, 'mountPoint must be true or left out');
  if (o.link !== undefined && t === 'dir') fail(lineNo, 'a dir has no link');
  const size = optInt(o, 'size', Number.MAX_SAFE_INTEGER, lineNo);
  const major = optInt(o, 'major', U32, lineNo);
  const minor = optInt(o, 'minor', U32, lineNo);
  return {
    path,
    type: t,
    mode: intField(o, 'mode', 0o7777, lineNo),
    uid: intField(o, 'uid', U32, lineNo),
    gid: intField(o, 'gid', U32, lineNo),
    mtimeNs,
    ...(size === undefined ? {} : { size }),
    ...(typeof sha256 === 'string' ? { sha256 } : {}),
    ...(o.target === undefined ? {} : { target: canonicalString(o.target, 'target', lineNo) }),
    ...(major === undefined ? {} : { major }),
    ...(minor === undefined ? {} : { minor }),
    ...(o.link === undefined ? {} : { link: checkPath(o.link, lineNo, 'link') }),
    ...(o.mountPoint === true ? { mountPoint: true as const } : {}),
    ...(o.xattrs === undefined ? {} : { xattrs: parseXattrs(o.xattrs, lineNo) }),
  };
}

function parseHeader(line: string | undefined): number {
  if (line === undefined || line === '') fail(1, 'empty manifest (no header)');
  const h = parseJsonLine(line, 1);
  checkKnown(h, HEADER_FIELDS, 1);
  if (h.format !== MANIFEST_FORMAT) fail(1, `format must be ${JSON.stringify(MANIFEST_FORMAT)}`);
  if (h.version !== MANIFEST_VERSION) fail(1, `unsupported version ${JSON.stringify(h.version)} (this is version ${MANIFEST_VERSION})`);
  return intField(h, 'count', Number.MAX_SAFE_INTEGER, 1);
}

/** Order, parents and hard-link groups of parsed entries (line numbers are 1-based, the header is line 1). */
function checkStructure(entries: readonly ManifestEntry[]): void {
  if (entries.length === 0) fail(1, 'no entries (a manifest holds at least the root)');
  const dirs = new Set<string>();
  const byPath = new Map<string, ManifestEntry>();
  const groupSizes = new Map<string, number>();
  let prev: Buffer | null = null;
  entries.forEach((e, i) => {
    const lineNo = i + 2;
    const key = pathFromString(e.path);
    if (i === 0 && (e.path !== '' || e.type !== 'dir')) fail(lineNo, 'the first entry must be the root directory ("")');
    if (prev !== null && Buffer.compare(prev, key) >= 0) fail(lineNo, `${JSON.stringify(e.path)} is out of order or repeated`);
    prev = key;
    if (i > 0) {
      const slash = e.path.lastIndexOf('/');
      const parent = slash < 0 ? '' : e.path.slice(0, slash);
      if (!dirs.has(parent)) fail(lineNo, `parent of ${JSON.stringify(e.path)} is not a walked directory`);
    }
    if (e.type === 'dir' && e.mountPoint !== true) dirs.add(e.path);
    byPath.set(e.path, e);
    if (e.link !== undefined) {
      const leader = byPath.get(e.link);
      if (leader === undefined || leader.link !== e.link) fail(lineNo, `link ${JSON.stringify(e.link)} does not name the first entry of its group`);
      groupSizes.set(e.link, (groupSizes.get(e.link) ?? 0) + 1);
    }
  });
  for (const [leader, n] of groupSizes) if (n < 2) fail(1, `hard-link group ${JSON.stringify(leader)} has a single member`);
}

/**
 * Parse serializeManifest's output. Strict: an unknown header or entry field, a wrong type, a field that does not
 * belong to the entry's type, paths out of order, a missing parent directory, a broken hard-link group, a count that
 * does not match or a missing final newline is a ManifestFormatError naming the line.
 */
export function parseManifest(text: string): Manifest {
  const lines = text.split('\n');
  if (lines.pop() !== '') fail(lines.length + 1, 'missing final newline');
  const count = parseHeader(lines[0]);
  const entries = lines.slice(1).map((line, i) => {
    if (line === '') fail(i + 2, 'empty line');
    return parseEntry(parseJsonLine(line, i + 2), i + 2);
  });
  if (entries.length !== count) fail(1, `header says ${count} entries, found ${entries.length}`);
  checkStructure(entries);
  return { version: MANIFEST_VERSION, entries };
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison

export type DiffField = 'type' | 'mode' | 'uid' | 'gid' | 'mtime' | 'size' | 'sha256' | 'target' | 'device' | 'link' | 'mountPoint' | 'xattr';

export interface FieldDifference {
  readonly field: DiffField;
  /** For field 'xattr': the attribute's name. */
  readonly name?: string;
  /** Display values on each side; null = absent on that side. */
  readonly a: string | null;
  readonly b: string | null;
}

export interface ChangedEntry {
  readonly path: string;
  readonly differences: readonly FieldDifference[];
}

export interface ManifestDiff {
  /** No entry added, removed or changed (in the fields compared). */
  readonly equal: boolean;
  /** Only in b. */
  readonly added: readonly ManifestEntry[];
  /** Only in a. */
  readonly removed: readonly ManifestEntry[];
  readonly changed: readonly ChangedEntry[];
  /** What was deliberately not compared (e.g. "directory mtimes"); empty for a full comparison. */
  readonly ignored: readonly string[];
}

export interface CompareOptions {
  /** Do not compare the mtimes of directories (recorded in `ignored`, so summaries say so). Default false. */
  readonly ignoreDirMtimes?: boolean;
}

const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

/** Nanoseconds since the epoch → `2025-01-01T00:00:00.123456789Z`. */
export function formatMtimeNs(ns: string): string {
  const n = BigInt(ns);
  let s = n / 1_000_000_000n;
  let frac = n % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    s -= 1n;
  }
  const iso = new Date(Number(s) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${iso}.${frac.toString().padStart(9, '0')}Z`;
}

function scalar(field: DiffField, a: string | number | undefined, b: string | number | undefined, fmt = (v: string | number): string => String(v)): FieldDifference[] {
  if (a === b) return [];
  return [{ field, a: a === undefined ? null : fmt(a), b: b === undefined ? null : fmt(b) }];
}

function xattrDifferences(a: ManifestEntry, b: ManifestEntry): FieldDifference[] {
  const xa = a.xattrs ?? {};
  const xb = b.xattrs ?? {};
  const names = [...new Set([...Object.keys(xa), ...Object.keys(xb)])].sort(comparePaths);
  const out: FieldDifference[] = [];
  for (const name of names) {
    const va = Object.hasOwn(xa, name) ? (xa[name] ?? null) : null;
    const vb = Object.hasOwn(xb, name) ? (xb[name] ?? null) : null;
    if (va !== vb) out.push({ field: 'xattr', name, a: va, b: vb });
  }
  return out;
}

const device = (e: ManifestEntry): string | undefined => (e.major === undefined ? undefined : `${e.major}:${e.minor ?? 0}`);

/** The fields in which two entries of the same path differ (only the type when the types differ). */
function entryDifferences(a: ManifestEntry, b: ManifestEntry, opts: CompareOptions): FieldDifference[] {
  if (a.type !== b.type) return [{ field: 'type', a: a.type, b: b.type }];
  const skipMtime = opts.ignoreDirMtimes === true && a.type === 'dir';
  return [
    ...scalar('mode', a.mode, b.mode, (v) => octal(Number(v))),
    ...scalar('uid', a.uid, b.uid),
    ...scalar('gid', a.gid, b.gid),
    ...(skipMtime ? [] : scalar('mtime', a.mtimeNs, b.mtimeNs, (v) => formatMtimeNs(String(v)))),
    ...scalar('size', a.size, b.size),
    ...scalar('sha256', a.sha256, b.sha256),
    ...scalar('target', a.target, b.target, (v) => JSON.stringify(v)),
    ...scalar('device', device(a), device(b)),
    ...scalar('link', a.link, b.link, (v) => JSON.stringify(v)),
    ...scalar('mountPoint', a.mountPoint === true ? 'yes' : 'no', b.mountPoint === true ? 'yes' : 'no'),
    ...xattrDifferences(a, b),
  ];
}

/**
 * Compare two manifests entry by entry: `added` = only in b, `removed` = only in a, `changed` = same path with the
 * fields that differ. Every field is compared unless an option says otherwise, and then `ignored` says what was not.
 */
export function compareManifests(a: Manifest, b: Manifest, opts: CompareOptions = {}): ManifestDiff {
  const inB = new Map(b.entries.map((e) => [e.path, e]));
  const removed: ManifestEntry[] = [];
  const changed: ChangedEntry[] = [];
  for (const ea of a.entries) {
    const eb = inB.get(ea.path);
    if (eb === undefined) {
      removed.push(ea);
      continue;
    }
    inB.delete(ea.path);
    const differences = entryDifferences(ea, eb, opts);
    if (differences.length > 0) changed.push({ path: ea.path, differences });
  }
  const added = [...inB.values()];
  return {
    equal: added.length === 0 && removed.length === 0 && changed.length === 0,
    added,
    removed,
    changed,
    ignored: opts.ignoreDirMtimes === true ? ['directory mtimes'] : [],
  };
}

/** An xattr value for messages: quoted text when it is short printable ASCII (a trailing NUL dropped), else null. */
function xattrText(b64: string): string | null {
  const raw = Buffer.from(b64, 'base64');
  const text = (raw.at(-1) === 0 ? raw.subarray(0, -1) : raw).toString('latin1');
  return text.length <= 64 && /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : null;
}

function describe(d: FieldDifference): string {
  if (d.field === 'xattr') {
    const name = `xattr ${d.name ?? '?'}`;
    if (d.a === null) return `${name} added`;
    if (d.b === null) return `${name} removed`;
    const ta = xattrText(d.a);
    const tb = xattrText(d.b);
    return ta !== null && tb !== null ? `${name} ${ta} vs ${tb}` : `${name} differs`;
  }
  if (d.field === 'sha256') return d.a !== null && d.b !== null ? 'sha256 differs' : `sha256 ${d.a ?? 'none'} vs ${d.b ?? 'none'}`;
  const label = d.field === 'link' ? 'hard-link group' : d.field === 'mountPoint' ? 'mount point' : d.field;
  return `${label} ${d.a ?? 'none'} vs ${d.b ?? 'none'}`;
}

/**
 * One line for error messages, e.g. `3 differences: etc/foo: sha256 differs; usr/bin/x: mode 0755 vs 0750;
 * usr/lib/new: added`, at most `max` items (then "… and N more"), in path order; says what was not compared.
 */
export function summarizeDiff(diff: ManifestDiff, max = 20): string {
  const note = diff.ignored.length > 0 ? ` (not compared: ${diff.ignored.join(', ')})` : '';
  const items: Array<[string, string]> = [
    ...diff.removed.map((e): [string, string] => [e.path, `${showPath(e.path)}: removed`]),
    ...diff.added.map((e): [string, string] => [e.path, `${showPath(e.path)}: added`]),
    ...diff.changed.map((c): [string, string] => [c.path, `${showPath(c.path)}: ${c.differences.map(describe).join(', ')}`]),
  ];
  if (items.length === 0) return `no differences${note}`;
  const keys = new Map(items.map(([p]) => [p, pathFromString(p)]));
  items.sort(([p], [q]) => Buffer.compare(keys.get(p) ?? Buffer.alloc(0), keys.get(q) ?? Buffer.alloc(0)));
  const shown = items.slice(0, Math.max(0, max)).map(([, text]) => text);
  const more = items.length > shown.length ? `${shown.length > 0 ? '; ' : ''}… and ${items.length - shown.length} more` : '';
  return `${items.length} difference${items.length === 1 ? '' : 's'}${note}: ${shown.join('; ')}${more}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Walking and hashing

export interface BuildManifestOptions {
  /** Stops the walk, the hashing and getfattr; buildManifest then rejects with CancelledError. */
  readonly signal?: AbortSignal;
  /** Regular files hashed so far (hard links count once) and their bytes: after each batch, and once at the end. */
  readonly onProgress?: (filesDone: number, bytesHashed: number) => void;
  /** Leave out a path (as in the manifest) and everything below it; never called for the root. */
  readonly exclude?: (relPath: string) => boolean;
  /** Worker threads that list directories and hash files; default min(4, available CPUs). */
  readonly concurrency?: number;
}

/**
 * What the walk keeps of an entry (compact: a real base has 10^5 of them). Raw byte strings (paths, targets) are
 * held as latin1 strings: lossless, ordered like the bytes, and far lighter than Buffer objects.
 */
interface RawEntry {
  /** The relative path's raw bytes, latin1. */
  readonly rel: string;
  /** The manifest path (pathToString of the bytes; the same string as `rel` for plain ASCII). */
  readonly path: string;
  readonly type: EntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: string;
  readonly size: number;
  readonly nlink: number;
  /** `${dev}:${ino}`: hard-link groups and hashing once per inode. */
  readonly inode: string;
  readonly device?: { readonly major: number; readonly minor: number };
  /** Symlink target's raw bytes, latin1. */
  readonly target?: string;
  readonly mountPoint: boolean;
}

const HASH_BUFFER = 1024 * 1024;
/** One hashing request: up to JOB_FILES files or about JOB_BYTES bytes. */
const JOB_FILES = 256;
const JOB_BYTES = 32 * 1024 * 1024;

/*
 * Listing and hashing run in worker threads with synchronous calls. Measured on 20k–100k files (bench/manifest.ts):
 * through the promise or callback fs API every lstat, open, read and close is a hand-off to libuv's thread pool and
 * back, which cost more CPU than the reading and hashing themselves, and the hashing ran on the main thread; the
 * workers need about half the CPU, hash on several cores, leave the event loop (the daemon's D-Bus traffic) and the
 * thread pool alone, and stop at once on terminate().
 *
 * The worker is plain JavaScript evaluated from this string (no separate file to find from src/, dist/ or jest).
 * Byte strings cross as latin1 strings: a structured clone of a Buffer copies its whole (pooled) ArrayBuffer.
 *   { op: 'list', dir }        → { entries: [name, st_mode, uid, gid, mtimeNs, size, nlink, dev, ino, rdev, target|null][] }
 *   { op: 'hash', paths, sizes } → { results: Array<{ sha256 } | { error, code }> }
 *   any failure of a whole request → { error, code }
 * Hashing opens O_NOFOLLOW|O_NONBLOCK (a path that became a symlink fails, a FIFO does not block) and reads 1 MiB
 * chunks; the last read asks for one byte more than the size the walk saw, so a small file costs one read, and a file
 * that grew or shrank since the walk is reported.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(${HASH_BUFFER});
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const SLASH = Buffer.from('/');
function failure(e) {
  return { error: String(e && e.message ? e.message : e), code: String(e && e.code ? e.code : '') };
}
function list(dir) {
  const d = Buffer.from(dir, 'latin1');
  return fs.readdirSync(d, { encoding: 'buffer' }).map((name) => {
    const path = Buffer.concat([d, SLASH, name]);
    const st = fs.lstatSync(path, { bigint: true });
    const target = st.isSymbolicLink() ? fs.readlinkSync(path, { encoding: 'buffer' }).toString('latin1') : null;
    return [name.toString('latin1'), Number(st.mode), Number(st.uid), Number(st.gid), String(st.mtimeNs), Number(st.size),
      Number(st.nlink), String(st.dev), String(st.ino), String(st.rdev), target];
  });
}
function hashFile(path, size) {
  const fd = fs.openSync(Buffer.from(path, 'latin1'), FLAGS);
  try {
    const hash = createHash('sha256');
    let done = 0;
    for (;;) {
      const want = Math.min(buf.length, size - done + 1);
      const n = fs.readSync(fd, buf, 0, want, null);
      if (done + n > size) return { error: 'it grew while the manifest was being built', code: '' };
      hash.update(buf.subarray(0, n));
      done += n;
      if (n < want) break;
    }
    if (done !== size) return { error: 'it shrank while the manifest was being built', code: '' };
    return { sha256: hash.digest('hex') };
  } finally {
    fs.closeSync(fd);
  }
}
function handle(job) {
  if (job.op === 'list') return { entries: list(job.dir) };
  if (job.op === 'hash') {
    return { results: job.paths.map((p, i) => { try { return hashFile(p, job.sizes[i]); } catch (e) { return failure(e); } }) };
  }
  throw new Error('unknown request ' + String(job.op));
}
parentPort.on('message', (job) => {
  let reply;
  try {
    reply = handle(job);
  } catch (e) {
    reply = failure(e);
  }
  parentPort.postMessage(reply);
});
`;

type WorkerRequest = { readonly op: 'list'; readonly dir: string } | { readonly op: 'hash'; readonly paths: string[]; readonly sizes: number[] };

interface Pending {
  readonly request: WorkerRequest;
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** A fixed set of worker threads serving requests one at a time each, first come first served. */
class FsWorkers {
  private readonly all: Worker[];
  private readonly idle: Worker[];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private failure: unknown = null;

  constructor(n: number) {
    this.all = Array.from({ length: n }, () => this.spawn());
    this.idle = [...this.all];
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (reply: unknown) => {
      const pending = this.busy.get(w);
      this.busy.delete(w);
      this.idle.push(w);
      pending?.resolve(reply);
      this.pump();
    });
    w.on('error', (e) => this.fail(e));
    w.on('exit', (code) => this.fail(new Error(`manifest worker exited (${code})`)));
    return w;
  }

  request(request: WorkerRequest): Promise<unknown> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.failure === null && this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop();
      const next = this.queue.shift();
      if (w === undefined || next === undefined) return;
      this.busy.set(w, next);
      w.postMessage(next.request);
    }
  }

  /** From now on every pending and future request rejects with `error` (the first failure wins). */
  private fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const p of [...this.busy.values(), ...this.queue]) p.reject(error);
    this.busy.clear();
    this.queue.length = 0;
  }

  /** Stop every worker, mid-request if need be; pending requests reject with `reason`. Idempotent. */
  async close(reason: unknown = new Error('manifest workers closed')): Promise<void> {
    this.fail(reason);
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

const S_IFMT = 0o170000;
const TYPE_BY_FORMAT = new Map<number, EntryType>([
  [0o100000, 'file'],
  [0o040000, 'dir'],
  [0o120000, 'symlink'],
  [0o020000, 'char'],
  [0o060000, 'block'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
]);

/** Linux's dev_t encoding (glibc gnu_dev_major/minor). */
function majorMinor(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Mount points strictly below `root`, as latin1 strings of their raw relative paths (from /proc/self/mountinfo). */
async function mountPointsBelow(root: string): Promise<Set<string>> {
  const real = Buffer.from(await realpath(root));
  const prefix = real.length === 1 ? real : Buffer.concat([real, Buffer.from('/')]);
  let info: Buffer;
  try {
    info = await readFile('/proc/self/mountinfo');
  } catch {
    return new Set(); // no /proc: the st_dev check alone
  }
  const result = new Set<string>();
  for (let start = 0; start < info.length; ) {
    const nl = info.indexOf(0x0a, start);
    const end = nl < 0 ? info.length : nl;
    const fields = info.toString('latin1', start, end).split(' ');
    start = end + 1;
    const field = fields[4];
    const mountPoint = field === undefined ? null : unescapeOctal(Buffer.from(field, 'latin1'));
    if (mountPoint && mountPoint.length > prefix.length && mountPoint.compare(prefix, 0, prefix.length, 0, prefix.length) === 0) {
      result.add(mountPoint.toString('latin1', prefix.length));
    }
  }
  return result;
}

/** Raw latin1 path → manifest path, without work for the usual printable ASCII. */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;
const displayPath = (rel: string): string => (PLAIN.test(rel) ? rel : pathToString(Buffer.from(rel, 'latin1')));

interface WalkContext {
  /** The root's raw bytes, latin1. */
  readonly root: string;
  readonly rootDev: string;
  readonly mounts: ReadonlySet<string>;
  readonly opts: BuildManifestOptions;
}

const absolute = (ctx: WalkContext, rel: string): string => (rel === '' ? ctx.root : `${ctx.root}/${rel}`);

/** The fields a listing gives per entry (as the worker sends them, validated). */
interface Listed {
  readonly name: string;
  readonly stMode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: string;
  readonly size: number;
  readonly nlink: number;
  readonly dev: string;
  readonly ino: string;
  readonly rdev: string;
  readonly target: string | null;
}

function malformed(what: string): Error {
  return new Error(`manifest worker: malformed ${what}`);
}

function listedFrom(t: unknown): Listed {
  if (!Array.isArray(t) || t.length !== 11) throw malformed('listing');
  const [name, stMode, uid, gid, mtimeNs, size, nlink, dev, ino, rdev, target] = t as unknown[];
  const strings = [name, mtimeNs, dev, ino, rdev].every((v) => typeof v === 'string');
  const numbers = [stMode, uid, gid, size, nlink].every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
  if (!strings || !numbers || (target !== null && typeof target !== 'string')) throw malformed('listing');
  return {
    name: name as string, stMode: stMode as number, uid: uid as number, gid: gid as number, mtimeNs: mtimeNs as string,
    size: size as number, nlink: nlink as number, dev: dev as string, ino: ino as string, rdev: rdev as string,
    target: target as string | null,
  };
}

function rawEntry(ctx: WalkContext, rel: string, l: Listed): RawEntry {
  const type = TYPE_BY_FORMAT.get(l.stMode & S_IFMT);
  if (type === undefined) throw new Error(`${JSON.stringify(displayPath(rel))} has an unknown file type (mode ${l.stMode.toString(8)})`);
  return {
    rel,
    path: displayPath(rel),
    type,
    mode: l.stMode & 0o7777,
    uid: l.uid,
    gid: l.gid,
    mtimeNs: l.mtimeNs,
    size: l.size,
    nlink: l.nlink,
    inode: `${l.dev}:${l.ino}`,
    ...(type === 'char' || type === 'block' ? { device: majorMinor(BigInt(l.rdev)) } : {}),
    ...(l.target === null ? {} : { target: l.target }),
    mountPoint: rel !== '' && (l.dev !== ctx.rootDev || ctx.mounts.has(rel)),
  };
}

/** List one directory in a worker: its entries minus the excluded ones. */
async function listDir(ctx: WalkContext, workers: FsWorkers, dir: RawEntry): Promise<RawEntry[]> {
  const reply = await workers.request({ op: 'list', dir: absolute(ctx, dir.rel) });
  if (!isObject(reply)) throw malformed('reply');
  if (typeof reply.error === 'string') throw new Error(`cannot list ${JSON.stringify(dir.path === '' ? '.' : dir.path)}: ${reply.error}`);
  if (!Array.isArray(reply.entries)) throw malformed('reply');
  const out: RawEntry[] = [];
  for (const t of reply.entries as unknown[]) {
    const listed = listedFrom(t);
    const rel = dir.rel === '' ? listed.name : `${dir.rel}/${listed.name}`;
    const entry = rawEntry(ctx, rel, listed);
    if (ctx.opts.exclude?.(entry.path) !== true) out.push(entry);
  }
  return out;
}

/** Every entry below the root, breadth-first (each level's directories listed by the workers in parallel). */
async function walk(ctx: WalkContext, workers: FsWorkers, root: RawEntry): Promise<RawEntry[]> {
  const all: RawEntry[] = [root];
  let level: RawEntry[] = [root];
  while (level.length > 0) {
    checkAbort(ctx.opts.signal);
    const next: RawEntry[] = [];
    await Promise.all(
      level.map(async (dir) => {
        for (const e of await listDir(ctx, workers, dir)) {
          all.push(e);
          if (e.type === 'dir' && !e.mountPoint) next.push(e);
        }
      }),
    );
    level = next;
  }
  return all;
}

function makeJobs(files: readonly RawEntry[]): RawEntry[][] {
  const jobs: RawEntry[][] = [];
  let current: RawEntry[] = [];
  let bytes = 0;
  for (const f of files) {
    if (current.length > 0 && (current.length >= JOB_FILES || bytes + f.size > JOB_BYTES)) {
      jobs.push(current);
      current = [];
      bytes = 0;
    }
    current.push(f);
    bytes += f.size;
  }
  if (current.length > 0) jobs.push(current);
  return jobs;
}

/** Hash one batch in a worker; the digests in batch order. */
async function hashJob(ctx: WalkContext, workers: FsWorkers, job: readonly RawEntry[]): Promise<string[]> {
  const reply = await workers.request({ op: 'hash', paths: job.map((f) => absolute(ctx, f.rel)), sizes: job.map((f) => f.size) });
  if (!isObject(reply)) throw malformed('reply');
  if (typeof reply.error === 'string') throw new Error(`hashing failed: ${reply.error}`);
  const results = reply.results;
  if (!Array.isArray(results) || results.length !== job.length) throw malformed('reply');
  return job.map((f, i) => {
    const r: unknown = results[i];
    if (isObject(r) && typeof r.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256)) return r.sha256;
    if (isObject(r) && typeof r.error === 'string') throw new Error(`cannot hash ${JSON.stringify(f.path)}: ${r.error}`);
    throw malformed('result');
  });
}

/** Hash every regular file once per inode, in batches across the workers; the digests by inode key. */
async function hashAll(ctx: WalkContext, workers: FsWorkers, files: readonly RawEntry[]): Promise<Map<string, string>> {
  const unique = new Map<string, RawEntry>();
  for (const f of files) if (!unique.has(f.inode)) unique.set(f.inode, f);
  const digests = new Map<string, string>();
  let filesDone = 0;
  let bytesDone = 0;
  await Promise.all(
    makeJobs([...unique.values()]).map(async (job) => {
      const sums = await hashJob(ctx, workers, job);
      job.forEach((f, i) => digests.set(f.inode, sums[i] ?? ''));
      filesDone += job.length;
      bytesDone += job.reduce((n, f) => n + f.size, 0);
      ctx.opts.onProgress?.(filesDone, bytesDone);
    }),
  );
  ctx.opts.onProgress?.(filesDone, bytesDone);
  return digests;
}

/** The manifest record of one walked entry. */
function toEntry(raw: RawEntry, sha256: string | undefined, link: string | undefined, xattrs: Record<string, string> | undefined): ManifestEntry {
  return {
    path: raw.path,
    type: raw.type,
    mode: raw.mode,
    uid: raw.uid,
    gid: raw.gid,
    mtimeNs: raw.mtimeNs,
    ...(raw.type === 'file' ? { size: raw.size, sha256: sha256 ?? '' } : {}),
    ...(raw.target === undefined ? {} : { target: displayPath(raw.target) }),
    ...(raw.device === undefined ? {} : raw.device),
    ...(link === undefined ? {} : { link }),
    ...(raw.mountPoint ? { mountPoint: true as const } : {}),
    ...(xattrs === undefined ? {} : { xattrs }),
  };
}

/** The root's own record, from an lstat in this thread. */
async function rootEntry(ctx: Omit<WalkContext, 'rootDev'>, root: string): Promise<RawEntry> {
  const st = await lstat(root, { bigint: true });
  if (!st.isDirectory()) throw new InvalidArgumentError(`${root} is not a directory`);
  const listed: Listed = {
    name: '', stMode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: String(st.mtimeNs), size: Number(st.size),
    nlink: Number(st.nlink), dev: String(st.dev), ino: String(st.ino), rdev: String(st.rdev), target: null,
  };
  return rawEntry({ ...ctx, rootDev: listed.dev }, '', listed);
}

/** The xattrs of every entry as manifest records (escaped names, cached: a tree uses a handful of names). */
function xattrRecords(xattrs: ReadonlyArray<readonly Xattr[]>): Array<Record<string, string> | undefined> {
  const names = new Map<string, string>();
  const escaped = (raw: string): string => {
    let name = names.get(raw);
    if (name === undefined) names.set(raw, (name = displayPath(raw)));
    return name;
  };
  return xattrs.map((attrs) => (attrs.length === 0 ? undefined : Object.fromEntries(attrs.map((x) => [escaped(x.name), x.base64]))));
}

/**
 * Walk the tree at `root` and build its manifest. Symlinks are never followed (the root itself must be a real
 * directory, not a symlink to one). Mount points are not crossed: an entry on another device than the root, or
 * listed in /proc/self/mountinfo as a mount point (a bind mount from the same filesystem keeps st_dev), is recorded
 * with `mountPoint: true` and what lstat sees there (the mounted root), but nothing below it is walked. Directories
 * are listed and regular files hashed (streaming, hard links once) by `concurrency` worker threads; xattrs come from
 * getfattr (xattrs.ts) while files are being hashed. The tree must not change while it is walked (a file whose size
 * changes is an error; other changes may go unnoticed or make the manifest describe a mix of states).
 */
export async function buildManifest(root: string, opts: BuildManifestOptions = {}): Promise<Manifest> {
  const concurrency = opts.concurrency ?? Math.min(4, availableParallelism());
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError(`concurrency must be a positive integer, not ${concurrency}`);
  checkAbort(opts.signal);
  const base = { root: Buffer.from(root).toString('latin1'), mounts: await mountPointsBelow(root), opts };
  const rootRaw = await rootEntry(base, root);
  const ctx: WalkContext = { ...base, rootDev: rootRaw.inode.slice(0, rootRaw.inode.indexOf(':')) };
  const workers = new FsWorkers(concurrency);
  const onAbort = (): void => void workers.close(new CancelledError());
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await walk(ctx, workers, rootRaw);
    raw.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)); // latin1: byte order
    const xattrsP = readXattrs(root, raw.map((e) => e.rel), opts.signal ? { signal: opts.signal } : {});
    const [hashed, xattrs] = await settleBoth(hashAll(ctx, workers, raw.filter((e) => e.type === 'file')), xattrsP);
    checkAbort(opts.signal);
    const links = linkGroups(raw.filter((e) => e.type !== 'dir' && e.nlink > 1).map((e) => ({ path: e.path, inode: e.inode })));
    const records = xattrRecords(xattrs);
    const entries = raw.map((e, i) => toEntry(e, e.type === 'file' ? hashed.get(e.inode) : undefined, links.get(e.path), records[i]));
    return { version: MANIFEST_VERSION, entries };
  } catch (e) {
    throw opts.signal?.aborted ? new CancelledError() : e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await workers.close();
  }
}

/** Await both; if either fails, wait for the other to settle too, then throw (a CancelledError first). */
async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'fulfilled' && rb.status === 'fulfilled') return [ra.value, rb.value];
  const reasons = [ra, rb].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  throw reasons.find((r) => r instanceof CancelledError) ?? reasons[0];
}
