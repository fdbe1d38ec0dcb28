/**
 * Extended attributes of many files at once, read with `getfattr` (package `attr`): Node has no xattr API.
 *
 * The paths go to `xargs -0 getfattr -h -d -m - -e base64` on stdin as raw bytes (NUL-separated), so names that are
 * not UTF-8 or hold newlines pass unchanged, and xargs packs them into as few getfattr processes as the argument
 * limit allows (one or a handful for a whole tree, instead of one per file). Unlike `getfattr -R`, only the listed
 * paths are read — the caller's walk decides what belongs to the tree (no mount crossing, exclusions). `-h` reads
 * the attributes of symlinks themselves; `-m -` includes every namespace (security.*, system.posix_acl_*, trusted.*,
 * user.*). A file on a filesystem without xattr support reads as having none (getfattr ignores ENOTSUP).
 *
 * getfattr's dump escapes `\`, newline, carriage return (and `=` in attribute names) as `\ooo` octal; every other
 * byte is printed raw. parseGetfattrDump works on bytes and undoes exactly that.
 */
import { spawn } from 'node:child_process';
import { CancelledError, ToolError } from '../errors';

/** One attribute. Strings rather than Buffers: a base holds 10^5 labelled entries, and Buffer objects are heavy. */
export interface Xattr {
  /** The name's raw bytes as a latin1 string (lossless: `Buffer.from(name, 'latin1')` gives the bytes back). */
  readonly name: string;
  /** The raw value, canonical base64. */
  readonly base64: string;
}

const NL = 0x0a;
const BACKSLASH = 0x5c;
const FILE_PREFIX = Buffer.from('# file: ');
const EQ = 0x3d;
const ZERO = 0x30; // '0'
const S = 0x73; // 's'

/** Undo getfattr's quoting: `\ooo` (three octal digits) becomes that byte; anything else is taken as is. */
export function unescapeOctal(bytes: Buffer): Buffer {
  if (!bytes.includes(BACKSLASH)) return bytes;
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    if (b === BACKSLASH && i + 3 < bytes.length && isOctal(bytes[i + 1]) && isOctal(bytes[i + 2]) && isOctal(bytes[i + 3])) {
      out[n++] = (((bytes[i + 1] ?? 0) - 0x30) << 6) | (((bytes[i + 2] ?? 0) - 0x30) << 3) | ((bytes[i + 3] ?? 0) - 0x30);
      i += 3;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n);
}

function isOctal(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x37;
}

function dumpError(lineNo: number, what: string): Error {
  return new Error(`getfattr output line ${lineNo}: ${what}`);
}

/** `name=0sBASE64` (or a bare `name`: an empty value in older getfattr versions). */
function parseAttributeLine(line: Buffer, lineNo: number): Xattr {
  const eq = line.indexOf(EQ);
  if (eq < 0) return { name: unescapeOctal(line).toString('latin1'), base64: '' };
  if (eq === 0) throw dumpError(lineNo, 'attribute without a name');
  if (line[eq + 1] !== ZERO || line[eq + 2] !== S) throw dumpError(lineNo, 'value is not base64 (0s…)');
  const base64 = line.toString('latin1', eq + 3);
  if (Buffer.from(base64, 'base64').toString('base64') !== base64) throw dumpError(lineNo, 'value is not canonical base64');
  return { name: unescapeOctal(line.subarray(0, eq)).toString('latin1'), base64 };
}

/**
 * Parse `getfattr -d -e base64` output (with or without -R): calls `onFile` for each `# file:` block, in output order,
 * with the file name as printed, unescaped (raw bytes), and its attributes in output order. Files without attributes
 * do not appear in getfattr's output. Throws on anything it does not recognise.
 */
export function parseGetfattrDump(out: Buffer, onFile: (file: Buffer, xattrs: readonly Xattr[]) => void): void {
  let file: Buffer | null = null;
  let attrs: Xattr[] = [];
  const flush = (): void => {
    if (file !== null) onFile(file, attrs);
    file = null;
    attrs = [];
  };
  let lineNo = 0;
  for (let start = 0; start < out.length; ) {
    const nl = out.indexOf(NL, start);
    const end = nl < 0 ? out.length : nl;
    const line = out.subarray(start, end);
    start = end + 1;
    lineNo++;
    if (line.length === 0) {
      flush();
    } else if (line.length >= FILE_PREFIX.length && line.compare(FILE_PREFIX, 0, FILE_PREFIX.length, 0, FILE_PREFIX.length) === 0) {
      flush();
      file = Buffer.from(unescapeOctal(line.subarray(FILE_PREFIX.length))); // a copy: `out` may be large
    } else if (file === null) {
      throw dumpError(lineNo, 'attribute outside a "# file:" block');
    } else {
      attrs.push(parseAttributeLine(line, lineNo));
    }
  }
  flush();
}

export interface ReadXattrsOptions {
  /** Kills getfattr (and xargs) and rejects with CancelledError. */
  readonly signal?: AbortSignal;
}

/** stdin for xargs -0: `.` for the root, `./rel` for the others (never mistaken for an option), NUL-terminated. */
function xargsInput(relPaths: readonly string[]): Buffer {
  let total = 0;
  for (const rel of relPaths) total += (rel === '' ? 1 : rel.length + 2) + 1;
  const input = Buffer.allocUnsafe(total);
  let at = 0;
  for (const rel of relPaths) {
    at += input.write(rel === '' ? '.' : `./${rel}`, at, 'latin1');
    input[at++] = 0;
  }
  return input;
}

/** Whether getfattr's name for a file (`.` or `./rel`) is `rel` (raw bytes, latin1). */
function namesPath(file: Buffer, rel: string): boolean {
  if (rel === '') return file.length === 1 && file[0] === 0x2e;
  return file.length === rel.length + 2 && file[0] === 0x2e && file[1] === 0x2f && file.toString('latin1', 2) === rel;
}

const GETFATTR = ['getfattr', '--no-dereference', '--dump', '--match=-', '--encoding=base64', '--absolute-names', '--'];
const ARGV = ['xargs', '-0', '--no-run-if-empty', '--', ...GETFATTR];

/** Run xargs+getfattr in `cwd` with `input` on stdin; the raw stdout. Its own process group, killed on abort. */
function runGetfattr(cwd: string, input: Buffer, signal: AbortSignal | undefined): Promise<Buffer> {
  if (signal?.aborted) return Promise.reject(new CancelledError());
  return new Promise((resolve, reject) => {
    const child = spawn(ARGV[0] ?? 'xargs', ARGV.slice(1), {
      cwd,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // a process group: an abort ends xargs and the getfattr it runs
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // xargs may die before reading everything (abort)
    child.on('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new ToolError(ARGV, null, e.message, { cause: e }));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (aborted) return reject(new CancelledError());
      if (code === 0) return resolve(Buffer.concat(out));
      reject(new ToolError(ARGV, code, Buffer.concat(err).toString('utf8')));
    });
    child.stdin.end(input);
  });
}

const NONE: readonly Xattr[] = Object.freeze([]);

/**
 * All extended attributes of `relPaths` (relative to `root`; each the latin1 string of its raw bytes, as
 * `buf.toString('latin1')` gives it; the empty path is the root itself), without following symlinks. Returns one
 * list per input path, in input order, each sorted by name (bytes); empty when the entry has none. getfattr reports files in argument order, so its blocks are matched to the inputs in one pass; a
 * name it was not asked about (or out of order) is an error, and so is a path that cannot be read (e.g. removed
 * meanwhile: a ToolError).
 */
export async function readXattrs(root: string, relPaths: readonly string[], opts: ReadXattrsOptions = {}): Promise<Array<readonly Xattr[]>> {
  const result: Array<readonly Xattr[]> = new Array<readonly Xattr[]>(relPaths.length).fill(NONE);
  if (relPaths.length === 0) return result;
  const out = await runGetfattr(root, xargsInput(relPaths), opts.signal);
  let next = 0;
  parseGetfattrDump(out, (file, attrs) => {
    while (next < relPaths.length && !namesPath(file, relPaths[next] ?? '')) next++;
    if (next >= relPaths.length) throw new Error(`getfattr reported a path it was not asked about (or out of order): ${JSON.stringify(file.toString('latin1'))}`);
    result[next++] = [...attrs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  });
  return result;
}
