/**
 * Kernel command lines: split/join (double quotes as the kernel's parser treats them), and the "extra" arguments of
 * an entry — everything except the arguments imgbased manages for a layer — so they can be carried to a new entry.
 */
import { InvalidArgumentError } from '../errors';
import { isLayerName } from '../model/names';

/**
 * Split on whitespace outside double quotes, like the kernel's next_arg(). Tokens keep their quotes so that
 * join(split(x)) only normalises whitespace. An unbalanced quote runs to the end of the line.
 */
export function splitArgs(cmdline: string): string[] {
  const args: string[] = [];
  let cur = '';
  let inQuote = false;
  for (const c of cmdline) {
    if (c === '"') inQuote = !inQuote;
    if (!inQuote && /\s/.test(c)) {
      if (cur) args.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur) args.push(cur);
  return args;
}

/** Quote an argument whose value holds whitespace (`key=a b` → `key="a b"`); arguments with quotes are kept. */
export function quoteArg(arg: string): string {
  if (/[\n\r\0]/.test(arg)) throw new InvalidArgumentError(`kernel argument ${JSON.stringify(arg)} contains a line break or NUL`);
  if (arg.includes('"') || !/\s/.test(arg)) return arg;
  const eq = arg.indexOf('=');
  return eq < 0 ? `"${arg}"` : `${arg.slice(0, eq + 1)}"${arg.slice(eq + 1)}"`;
}

export function joinArgs(args: readonly string[]): string {
  return args.filter((a) => a !== '').map(quoteArg).join(' ');
}

/** The parameter name of an argument (quotes removed): `rd.lvm.lv=vg/lv` → `rd.lvm.lv`, `ro` → `ro`. */
export function argKey(arg: string): string {
  const plain = arg.replace(/"/g, '');
  const eq = plain.indexOf('=');
  return eq < 0 ? plain : plain.slice(0, eq);
}

/** The value of an argument with quotes removed, or undefined for a bare flag. */
export function argValue(arg: string): string | undefined {
  const plain = arg.replace(/"/g, '');
  const eq = plain.indexOf('=');
  return eq < 0 ? undefined : plain.slice(eq + 1);
}

export interface ManagedScope {
  /** The volume group of the layers. */
  readonly vg: string;
  /** The layer whose entry the arguments come from. */
  readonly layer: string;
}

const ALWAYS_MANAGED = new Set(['root', 'ro', 'rw', 'rootflags', 'img.bootid', 'BOOT_IMAGE']);

/**
 * True for the arguments imgbased writes itself: root=, ro/rw, rootflags=, img.bootid=, BOOT_IMAGE= (added by grub),
 * and rd.lvm.lv= naming the layer's own LV — or any other node layer (`VG/NVR+N`) of the VG, which must never be
 * carried (it would keep activating, or wait for, a layer that may be gone).
 */
export function isManagedArg(arg: string, scope: ManagedScope): boolean {
  const key = argKey(arg);
  if (ALWAYS_MANAGED.has(key)) return true;
  if (key !== 'rd.lvm.lv') return false;
  const value = argValue(arg) ?? '';
  if (value === `${scope.vg}/${scope.layer}`) return true;
  const slash = value.indexOf('/');
  return slash >= 0 && value.slice(0, slash) === scope.vg && isLayerName(value.slice(slash + 1));
}

/** Arguments in order with exact duplicates removed (first occurrence kept). */
export function dedupeArgs(args: readonly string[]): string[] {
  return [...new Set(args.filter((a) => a !== ''))];
}

/**
 * Replace whole-token grub variable references (`$kernelopts`, `${kernelopts}`) by their value in `env` (split into
 * arguments). References to variables not in `env` are kept as they are.
 */
export function expandGrubVars(args: readonly string[], env: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const arg of args) {
    const m = /^\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))$/.exec(arg);
    const name = m ? (m[1] ?? m[2]) : undefined;
    const value = name === undefined ? undefined : env.get(name);
    if (value === undefined) out.push(arg);
    else out.push(...splitArgs(value));
  }
  return out;
}

/** The extra arguments of a layer's entry: all but the managed ones, without duplicates. */
export function extraArgs(cmdline: string | readonly string[], scope: ManagedScope): string[] {
  const args = typeof cmdline === 'string' ? splitArgs(cmdline) : cmdline;
  return dedupeArgs(args.filter((a) => !isManagedArg(a, scope)));
}

/** `base` followed by the arguments of `extra` not already in it (exact match). */
export function mergeArgs(base: readonly string[], extra: readonly string[]): string[] {
  return dedupeArgs([...base, ...extra]);
}
