/**
 * Boot entries on a boot directory (a sysroot's /boot, passed in): kernel install under `<bootDir>/<layer>/`,
 * BLS entries in `<bootDir>/loader/entries/`, the default in the grubenv. Every write is durable
 * (temp + fsync + rename + directory fsync). Entries are recognised by `img.bootid=<layer>`, not by file name.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { NotFoundError } from '../errors';
import { assertLvName, parseLayerName } from '../model/names';
import { rpmvercmp } from '../model/rpmvercmp';
import { type BlsEntry, blsGet, bootIdOf, formatBls, isNodeTitle, nodeEntry, parseBls } from './bls';
import { copyFileDurable, isEnoent, mkdirDurable, removeDurable, writeFileDurable } from '../system/durable';
import { getNextEntry, getSavedEntry, readGrubenv, updateGrubenv, withNextEntry, withSavedEntry } from './grubenv';

export function entriesDir(bootDir: string): string {
  return path.join(bootDir, 'loader', 'entries');
}

/** EL layout: `<bootDir>/grub2/grubenv`. */
export function defaultGrubenvPath(bootDir: string): string {
  return path.join(bootDir, 'grub2', 'grubenv');
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel

export interface InstalledKernel {
  readonly kernelVersion: string;
  /** Relative to the boot partition: `/<layer>/vmlinuz-<kver>`. */
  readonly linux: string;
  /** Relative to the boot partition: `/<layer>/initramfs-<kver>.img`. */
  readonly initrd: string;
}

export interface FoundKernel {
  readonly kernelVersion: string;
  readonly vmlinuz: string;
  readonly initrd: string;
  /** FIPS HMAC of the kernel (`.vmlinuz-<kver>.hmac`), checked by dracut next to the booted kernel. */
  readonly hmac: string | undefined;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch (err) {
    if (isEnoent(err)) return false;
    throw err;
  }
}

/** The newest kernel (rpm version order) in `<root>/boot` with its initrd (EL `initramfs-<kver>.img` or Debian `initrd.img-<kver>`). */
export async function findKernel(root: string): Promise<FoundKernel> {
  const dir = path.join(root, 'boot');
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isEnoent(err)) throw new NotFoundError(`no kernel in ${dir}: the directory does not exist`, { cause: err });
    throw err;
  }
  const kvers: string[] = [];
  for (const name of names) {
    const m = /^vmlinuz-(.+)$/.exec(name);
    const kver = m?.[1];
    if (kver === undefined || kver.startsWith('0-rescue-')) continue;
    if (await isFile(path.join(dir, name))) kvers.push(kver);
  }
  kvers.sort((a, b) => rpmvercmp(b, a));
  const kver = kvers[0];
  if (kver === undefined) throw new NotFoundError(`no kernel (vmlinuz-<version>) in ${dir}`);
  for (const initrdName of [`initramfs-${kver}.img`, `initrd.img-${kver}`]) {
    const initrd = path.join(dir, initrdName);
    if (await isFile(initrd)) {
      const hmac = path.join(dir, `.vmlinuz-${kver}.hmac`);
      return { kernelVersion: kver, vmlinuz: path.join(dir, `vmlinuz-${kver}`), initrd, hmac: (await isFile(hmac)) ? hmac : undefined };
    }
  }
  throw new NotFoundError(`kernel ${kver} in ${dir} has no initramfs-${kver}.img or initrd.img-${kver}`);
}

export interface InstallKernelOptions {
  readonly bootDir: string;
  readonly layer: string;
  /** The mounted tree of the new layer. */
  readonly layerRoot: string;
}

/** Copy the layer's newest kernel and initrd into `<bootDir>/<layer>/` (idempotent: files are replaced). */
export async function installKernel(opts: InstallKernelOptions): Promise<InstalledKernel> {
  parseLayerName(opts.layer);
  const found = await findKernel(opts.layerRoot);
  const kver = found.kernelVersion;
  const dest = path.join(opts.bootDir, opts.layer);
  await mkdirDurable(dest);
  const linux = `vmlinuz-${kver}`;
  const initrd = `initramfs-${kver}.img`;
  await copyFileDurable(found.vmlinuz, path.join(dest, linux));
  await copyFileDurable(found.initrd, path.join(dest, initrd));
  if (found.hmac !== undefined) await copyFileDurable(found.hmac, path.join(dest, `.vmlinuz-${kver}.hmac`));
  return { kernelVersion: kver, linux: `/${opts.layer}/${linux}`, initrd: `/${opts.layer}/${initrd}` };
}

// ---------------------------------------------------------------------------------------------------------------
// Entries

export interface EntryFile {
  /** File name in loader/entries, e.g. `<layer>.conf`. */
  readonly file: string;
  /** The BLS id grub uses (file name without `.conf`); this is what `saved_entry` holds. */
  readonly id: string;
  readonly path: string;
  readonly bootId: string | undefined;
  readonly title: string | undefined;
  readonly entry: BlsEntry;
}

/** All entries in `<bootDir>/loader/entries` sorted by file name; a missing directory has none. */
export async function readEntries(bootDir: string): Promise<EntryFile[]> {
  const dir = entriesDir(bootDir);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isEnoent(err)) return [];
    throw err;
  }
  const out: EntryFile[] = [];
  for (const file of names.filter((n) => n.endsWith('.conf')).sort()) {
    const p = path.join(dir, file);
    if (!(await isFile(p))) continue;
    const entry = parseBls(await fs.readFile(p, 'utf8'));
    out.push({ file, id: file.slice(0, -'.conf'.length), path: p, bootId: bootIdOf(entry), title: blsGet(entry, 'title'), entry });
  }
  return out;
}

/** The entry carrying `img.bootid=<layer>` (our own `<layer>.conf` first when there are several). */
export async function findEntry(bootDir: string, layer: string): Promise<EntryFile | undefined> {
  const matches = (await readEntries(bootDir)).filter((e) => e.bootId === layer);
  return matches.find((e) => e.file === `${layer}.conf`) ?? matches[0];
}

export interface WriteEntryOptions {
  readonly bootDir: string;
  readonly layer: string;
  /** The image NVR (title `<NVR> (<kver>)`). */
  readonly nvr: string;
  readonly vg: string;
  readonly kernel: InstalledKernel;
  /** Arguments carried from the running layer's entry (kernel-args `extraArgs`). */
  readonly extraArgs?: readonly string[];
  /** '' when /boot is its own partition (default), '/boot' when it lives on /. */
  readonly bootPrefix?: string;
  /** `crashkernel=` value when the extra arguments carry none. */
  readonly crashkernel?: string;
}

/**
 * Write `loader/entries/<layer>.conf` and drop any other entry file for the same layer (e.g. one grubby named),
 * so the layer has exactly one entry. Idempotent.
 */
export async function writeEntry(opts: WriteEntryOptions): Promise<EntryFile> {
  parseLayerName(opts.layer);
  assertLvName(opts.vg);
  const entry = nodeEntry({
    layer: opts.layer,
    nvr: opts.nvr,
    vg: opts.vg,
    kernelVersion: opts.kernel.kernelVersion,
    linux: opts.kernel.linux,
    initrd: opts.kernel.initrd,
    ...(opts.bootPrefix === undefined ? {} : { bootPrefix: opts.bootPrefix }),
    ...(opts.extraArgs === undefined ? {} : { extraArgs: opts.extraArgs }),
    ...(opts.crashkernel === undefined ? {} : { crashkernel: opts.crashkernel }),
  });
  const dir = entriesDir(opts.bootDir);
  await mkdirDurable(dir);
  const file = `${opts.layer}.conf`;
  const p = path.join(dir, file);
  await writeFileDurable(p, formatBls(entry), 0o644);
  for (const other of await readEntries(opts.bootDir)) {
    if (other.bootId === opts.layer && other.file !== file) await removeDurable(other.path);
  }
  return { file, id: opts.layer, path: p, bootId: opts.layer, title: blsGet(entry, 'title'), entry };
}

export interface RemovedEntry {
  /** Entry files removed. */
  readonly files: readonly string[];
  /** True when `<bootDir>/<layer>/` existed and was removed. */
  readonly kernelDir: boolean;
}

/** Remove every entry of `layer` (by img.bootid, plus our `<layer>.conf`) and `<bootDir>/<layer>/`. Idempotent. */
export async function removeEntry(bootDir: string, layer: string): Promise<RemovedEntry> {
  parseLayerName(layer);
  const files: string[] = [];
  for (const e of await readEntries(bootDir)) {
    if (e.bootId === layer || e.file === `${layer}.conf`) {
      if (await removeDurable(e.path)) files.push(e.file);
    }
  }
  const kernelDir = await removeDurable(path.join(bootDir, layer));
  return { files, kernelDir };
}

/** An entry that is not a node entry: no img.bootid and no node title. */
export function isForeignEntry(e: Pick<EntryFile, 'bootId' | 'title'>): boolean {
  return e.bootId === undefined && !isNodeTitle(e.title ?? '');
}

/** Remove the distribution's own entries (what layout init does). Returns the removed file names. */
export async function removeForeignEntries(bootDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await readEntries(bootDir)) {
    if (isForeignEntry(e) && (await removeDurable(e.path))) removed.push(e.file);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------------------------
// Default and one-shot entry (grubenv)

export interface GrubenvOptions {
  /** Default `<bootDir>/grub2/grubenv`. */
  readonly grubenvPath?: string;
}

async function entryFor(bootDir: string, layer: string): Promise<EntryFile> {
  parseLayerName(layer);
  const entry = await findEntry(bootDir, layer);
  if (entry === undefined) throw new NotFoundError(`no boot entry for layer ${layer} in ${entriesDir(bootDir)}`);
  return entry;
}

/** Map a grubenv entry reference (BLS id; a title from legacy setups) to the layer of that entry. */
async function layerOfRef(bootDir: string, ref: string | undefined): Promise<string | undefined> {
  if (ref === undefined) return undefined;
  const entries = await readEntries(bootDir);
  const e = entries.find((x) => x.id === ref) ?? entries.find((x) => x.title === ref);
  return e?.bootId;
}

/** The layer whose entry `saved_entry` names, or undefined (unset, or not a node entry). */
export async function getDefault(bootDir: string, opts: GrubenvOptions = {}): Promise<string | undefined> {
  const env = await readGrubenv(opts.grubenvPath ?? defaultGrubenvPath(bootDir));
  return layerOfRef(bootDir, getSavedEntry(env));
}

/** Make the layer's entry the default (`saved_entry` = its BLS id). Throws NotFoundError without an entry. */
export async function setDefault(bootDir: string, layer: string, opts: GrubenvOptions = {}): Promise<void> {
  const entry = await entryFor(bootDir, layer);
  const file = opts.grubenvPath ?? defaultGrubenvPath(bootDir);
  await mkdirDurable(path.dirname(file));
  await updateGrubenv(file, (env) => withSavedEntry(env, entry.id));
}

/** The layer grub boots once on the next boot (`next_entry`), or undefined. */
export async function getNextBoot(bootDir: string, opts: GrubenvOptions = {}): Promise<string | undefined> {
  const env = await readGrubenv(opts.grubenvPath ?? defaultGrubenvPath(bootDir));
  return layerOfRef(bootDir, getNextEntry(env));
}

/** Boot `layer` once on the next boot (trial boot); `undefined` clears it. */
export async function setNextBoot(bootDir: string, layer: string | undefined, opts: GrubenvOptions = {}): Promise<void> {
  const id = layer === undefined ? undefined : (await entryFor(bootDir, layer)).id;
  const file = opts.grubenvPath ?? defaultGrubenvPath(bootDir);
  await mkdirDurable(path.dirname(file));
  await updateGrubenv(file, (env) => withNextEntry(env, id));
}
