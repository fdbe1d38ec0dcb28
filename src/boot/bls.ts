/**
 * Boot Loader Specification Type #1 entries (`/boot/loader/entries/*.conf`) as grub's blscfg and grubby read them:
 * one `key value` per line, `#` comments, keys may repeat (`initrd`, `options`). Pure: no I/O.
 */
import { InvalidArgumentError, InvalidNameError } from '../errors';
import { isLayerName, parseNvr } from '../model/names';
import { argKey, argValue, joinArgs, mergeArgs, splitArgs } from './kernel-args';

export interface BlsField {
  readonly key: string;
  readonly value: string;
}

/** An entry as an ordered list of fields (unknown keys kept). */
export interface BlsEntry {
  readonly fields: readonly BlsField[];
}

/** The kernel argument that marks a node entry and names its layer. */
export const BOOTID_ARG = 'img.bootid';

export function parseBls(text: string): BlsEntry {
  const fields: BlsField[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m || m[1] === undefined) continue;
    fields.push({ key: m[1], value: m[2] ?? '' });
  }
  return { fields };
}

export function formatBls(entry: BlsEntry): string {
  let out = '';
  for (const { key, value } of entry.fields) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new InvalidArgumentError(`"${key}" is not a valid BLS key`);
    if (/[\n\r\0]/.test(value)) throw new InvalidArgumentError(`BLS value for "${key}" contains a line break or NUL`);
    out += value === '' ? `${key}\n` : `${key} ${value}\n`;
  }
  return out;
}

/** First value of `key`. */
export function blsGet(entry: BlsEntry, key: string): string | undefined {
  return entry.fields.find((f) => f.key === key)?.value;
}

export function blsGetAll(entry: BlsEntry, key: string): string[] {
  return entry.fields.filter((f) => f.key === key).map((f) => f.value);
}

/** All `options` lines as one argument list (blscfg concatenates them). */
export function blsOptions(entry: BlsEntry): string[] {
  return blsGetAll(entry, 'options').flatMap(splitArgs);
}

/** The layer named by `img.bootid=` in the entry's options (the first one), if any. */
export function bootIdOf(entry: BlsEntry): string | undefined {
  const arg = blsOptions(entry).find((a) => argKey(a) === BOOTID_ARG);
  return arg === undefined ? undefined : argValue(arg) || undefined;
}

/**
 * A title a node entry may carry: `<NVR> (<kernel>)` as we write it, or a bare NVR / layer name (older imgbased
 * titled entries by layer). Distribution entries ("CentOS Linux (3.10…) 7 (Core)") are not node titles.
 */
export function isNodeTitle(title: string): boolean {
  const m = /^(\S+)(?: \([^()\s]+\))?$/.exec(title.trim());
  const head = m?.[1];
  if (head === undefined) return false;
  if (isLayerName(head)) return true;
  try {
    parseNvr(head);
    return true;
  } catch (err) {
    if (err instanceof InvalidNameError) return false;
    throw err;
  }
}

export interface NodeEntrySpec {
  /** Layer name (`NVR+N`); also the LV name and the img.bootid. */
  readonly layer: string;
  /** Image NVR for the title. */
  readonly nvr: string;
  readonly vg: string;
  readonly kernelVersion: string;
  /** Kernel and initrd relative to the boot partition, e.g. `/<layer>/vmlinuz-<kver>`. */
  readonly linux: string;
  readonly initrd: string;
  /** '' when /boot is its own partition, '/boot' when it lives on the root filesystem. */
  readonly bootPrefix?: string;
  /** Carried arguments (see kernel-args `extraArgs`); a `crashkernel=` here replaces `crashkernel`. */
  readonly extraArgs?: readonly string[];
  /** Value for `crashkernel=` when the extra arguments have none; omitted when neither gives one. */
  readonly crashkernel?: string;
}

export function assertBootPrefix(prefix: string): void {
  if (prefix !== '' && !/^(\/[A-Za-z0-9_.+-]+)+$/.test(prefix)) {
    throw new InvalidArgumentError(`boot prefix "${prefix}" must be empty or an absolute path like /boot`);
  }
}

/** The options of a node entry: managed arguments in imgbased's order, then the extra arguments. */
export function nodeEntryArgs(spec: NodeEntrySpec): string[] {
  const extra = spec.extraArgs ?? [];
  const crash = extra.filter((a) => argKey(a) === 'crashkernel');
  const crashArg = crash[crash.length - 1] ?? (spec.crashkernel === undefined ? undefined : `crashkernel=${spec.crashkernel}`);
  const managed = [
    `root=/dev/${spec.vg}/${spec.layer}`,
    'ro',
    ...(crashArg === undefined ? [] : [crashArg]),
    `rd.lvm.lv=${spec.vg}/${spec.layer}`,
    'rootflags=discard',
    `${BOOTID_ARG}=${spec.layer}`,
  ];
  return mergeArgs(
    managed,
    extra.filter((a) => argKey(a) !== 'crashkernel'),
  );
}

/** The BLS entry for a layer, with the fields EL's grubby writes. */
export function nodeEntry(spec: NodeEntrySpec): BlsEntry {
  const prefix = spec.bootPrefix ?? '';
  assertBootPrefix(prefix);
  for (const p of [spec.linux, spec.initrd]) {
    if (!p.startsWith('/')) throw new InvalidArgumentError(`boot path "${p}" must start with /`);
  }
  const fields: BlsField[] = [
    { key: 'title', value: `${spec.nvr} (${spec.kernelVersion})` },
    { key: 'version', value: spec.kernelVersion },
    { key: 'linux', value: prefix + spec.linux },
    { key: 'initrd', value: prefix + spec.initrd },
    { key: 'options', value: joinArgs(nodeEntryArgs(spec)) },
    { key: 'grub_users', value: '$grub_users' },
    { key: 'grub_arg', value: '--unrestricted' },
    { key: 'grub_class', value: 'kernel' },
  ];
  return { fields };
}
