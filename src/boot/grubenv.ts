/**
 * The GRUB environment block (grubenv) exactly as grub's lib/envblk.c reads and writes it: the signature line,
 * `name=value\n` lines (`\` and newline in values escaped with `\`), padded with `#` to a fixed size (1024 bytes).
 * Formatting and parsing are pure; `writeGrubenv` is the one durable writer.
 */
import { promises as fs } from 'node:fs';
import { InvalidArgumentError } from '../errors';
import { isEnoent, resolveLinks, writeFileDurable } from '../system/durable';

export const GRUBENV_SIGNATURE = '# GRUB Environment Block\n';
export const GRUBENV_SIZE = 1024;

/** Variable read by grub.cfg to pick the default entry (a BLS entry id on EL). */
export const SAVED_ENTRY = 'saved_entry';
/** One-shot default: grub.cfg boots it once and clears it (used for trial boots). */
export const NEXT_ENTRY = 'next_entry';

/** Ordered variables; insertion order is the order in the block. */
export type GrubEnv = ReadonlyMap<string, string>;

export function assertGrubenvName(name: string): void {
  if (name.length === 0 || name.startsWith('#') || /[=\n\\\0]/.test(name)) {
    throw new InvalidArgumentError(`"${name}" is not a valid GRUB environment variable name`);
  }
}

function escapeValue(value: string): string {
  if (value.includes('\0')) throw new InvalidArgumentError('GRUB environment values cannot contain NUL');
  return value.replace(/[\\\n]/g, (c) => `\\${c}`);
}

/** The block bytes for `env`; throws InvalidArgumentError when the variables do not fit in `GRUBENV_SIZE`. */
export function formatGrubenv(env: GrubEnv): Buffer {
  let body = GRUBENV_SIGNATURE;
  for (const [name, value] of env) {
    assertGrubenvName(name);
    body += `${name}=${escapeValue(value)}\n`;
  }
  const used = Buffer.byteLength(body, 'utf8');
  if (used > GRUBENV_SIZE) {
    throw new InvalidArgumentError(
      `GRUB environment variables need ${used} bytes; the block holds ${GRUBENV_SIZE}`,
      { hint: 'remove unused variables with grub-editenv <file> unset <name>' },
    );
  }
  return Buffer.concat([Buffer.from(body, 'utf8'), Buffer.alloc(GRUBENV_SIZE - used, '#')]);
}

/** Index just past the end of the line starting at `p`, skipping `\`-escaped characters like grub does. */
function nextLine(s: string, p: number): number {
  while (p < s.length) {
    if (s[p] === '\\') p += 2;
    else if (s[p] === '\n') break;
    else p++;
  }
  return p + 1;
}

/**
 * Parse a block as grub_envblk_iterate does: any size, lines starting with `#` are comments (grub-editenv on Debian
 * and Fedora adds a WARNING line), a broken tail ends the parse. A name given twice keeps its last value.
 */
export function parseGrubenv(data: Buffer | string): Map<string, string> {
  const s = typeof data === 'string' ? data : data.toString('utf8');
  if (!s.startsWith(GRUBENV_SIGNATURE)) {
    throw new InvalidArgumentError('not a GRUB environment block (missing "# GRUB Environment Block" signature)');
  }
  const env = new Map<string, string>();
  let p = nextLine(s, 0);
  while (p < s.length) {
    if (s[p] === '#') {
      p = nextLine(s, p);
      continue;
    }
    const eq = s.indexOf('=', p);
    if (eq < 0) break;
    const name = s.slice(p, eq);
    let q = eq + 1;
    let value = '';
    while (q < s.length && s[q] !== '\n') {
      if (s[q] === '\\') {
        const next = s[q + 1];
        if (next !== undefined) value += next;
        q += 2;
      } else {
        value += s[q];
        q++;
      }
    }
    if (q >= s.length) break;
    env.set(name, value);
    p = q + 1;
  }
  return env;
}

export function getSavedEntry(env: GrubEnv): string | undefined {
  return env.get(SAVED_ENTRY) || undefined;
}

export function getNextEntry(env: GrubEnv): string | undefined {
  return env.get(NEXT_ENTRY) || undefined;
}

/** A copy of `env` with `name` set (position kept when it exists) or removed (`undefined`); other keys intact. */
export function withVar(env: GrubEnv, name: string, value: string | undefined): Map<string, string> {
  assertGrubenvName(name);
  const out = new Map(env);
  if (value === undefined) out.delete(name);
  else out.set(name, value);
  return out;
}

export function withSavedEntry(env: GrubEnv, entryId: string): Map<string, string> {
  return withVar(env, SAVED_ENTRY, entryId);
}

/** Set (or clear, with `undefined`) the one-shot next entry. */
export function withNextEntry(env: GrubEnv, entryId: string | undefined): Map<string, string> {
  return withVar(env, NEXT_ENTRY, entryId);
}

/** Read a grubenv file; a missing file reads as an empty environment. */
export async function readGrubenv(file: string): Promise<Map<string, string>> {
  let data: Buffer;
  try {
    data = await fs.readFile(file);
  } catch (err) {
    if (isEnoent(err)) return new Map();
    throw err;
  }
  return parseGrubenv(data);
}

/**
 * Durably replace the grubenv at `file` (temp + fsync + rename + directory fsync). A symlinked grubenv (EL UEFI)
 * is written at its target; an existing file keeps its mode. The directory must exist.
 */
export async function writeGrubenv(file: string, env: GrubEnv): Promise<void> {
  const data = formatGrubenv(env);
  const target = await resolveLinks(file);
  let mode = 0o644;
  try {
    mode = (await fs.stat(target)).mode & 0o7777;
  } catch (err) {
    if (!isEnoent(err)) throw err;
  }
  await writeFileDurable(target, data, mode);
}

/** Read, transform, write back; returns the environment written. */
export async function updateGrubenv(
  file: string,
  change: (env: Map<string, string>) => Map<string, string>,
): Promise<Map<string, string>> {
  const next = change(await readGrubenv(await resolveLinks(file)));
  await writeGrubenv(file, next);
  return next;
}
