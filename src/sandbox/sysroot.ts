/**
 * Sandbox mode: a complete host tree under a directory (dir backend, /boot, /etc/imgbased, /var, a fake
 * /proc/cmdline) for the demo, the bus tier and the fast tests. "Booting" writes the kernel command line of the
 * entry grub would pick (one-shot next_entry first, then saved_entry) into <sysroot>/proc/cmdline.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { findEntry, getDefault, getNextBoot, setNextBoot } from '../boot/boot-entries';
import { blsGet } from '../boot/bls';
import type { UnitStates } from '../boot/gates';
import type { Config } from '../config/config';
import { DEFAULT_CONFIG } from '../config/config';
import { resolvePaths } from '../config/paths';
import { Engine } from '../engine';
import { FailedError, NotFoundError } from '../errors';
import { openImage } from '../image/inspect';
import type { Logger } from '../log';
import { DirBackend } from '../storage/dir';
import { run } from '../system/run';
import type { Outcome } from '../transaction/runner';

export const SANDBOX_POOL = '/var/lib/imgbased/pool';
export const SANDBOX_ROOT_LV = 'root';

export function sandboxConfigText(opts: { requireSignature: boolean; libvirtUri?: string }): string {
  return [
    '# imgbased sandbox: dir backend inside this sysroot',
    '[Storage]',
    'Backend=dir',
    `DirPool=${SANDBOX_POOL}`,
    '[Upgrade]',
    'ImageDir=/var/lib/imgbased/images',
    `RequireSignature=${opts.requireSignature}`,
    ...(opts.libvirtUri ? [`LibvirtURI=${opts.libvirtUri}`] : []),
    '',
  ].join('\n');
}

/**
 * The sandbox's virtual machines: libvirt's test driver reading a node description inside the sysroot
 * (etc/imgbased/sandbox-libvirt.xml), so the running-VMs guard asks a real libvirt and tests can start and stop
 * "VMs" by rewriting the file.
 */
export const SANDBOX_LIBVIRT_XML = 'etc/imgbased/sandbox-libvirt.xml';

export function sandboxLibvirtXml(domains: ReadonlyArray<{ name: string; running: boolean }>): string {
  const dom = domains.map((d, i) => `  <domain type='test'>
    <name>${d.name.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e19${(16 + i).toString(16)}</uuid>
    <memory>65536</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <devices></devices>
    <test:runstate xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>${d.running ? 1 : 5}</test:runstate>
  </domain>
`).join('');
  return `<node>
${dom}</node>
`;
}

/** Simulated reboot for the daemon in sandbox mode (what logind does on a host). */
/**
 * Unit states in sandbox mode (no systemd on the private bus): `<sysroot>/run/imgbased-sandbox/units/<unit>` holds
 * the unit's ActiveState ("active", "failed", …); no file = "inactive". Tests and the demo write these files.
 */
export const SANDBOX_UNITS_DIR = 'run/imgbased-sandbox/units';

export function sandboxUnits(sysroot: string): UnitStates {
  return {
    async activeState(unit: string): Promise<string> {
      if (unit.includes('/')) return 'inactive';
      try {
        return (await fs.readFile(path.join(sysroot, SANDBOX_UNITS_DIR, unit), 'utf8')).trim() || 'inactive';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'inactive';
        throw e;
      }
    },
  };
}

/** Set a sandbox unit's state (null removes it: "inactive"). */
export async function setSandboxUnit(sysroot: string, unit: string, state: string | null): Promise<void> {
  const dir = path.join(sysroot, SANDBOX_UNITS_DIR);
  await fs.mkdir(dir, { recursive: true });
  if (state === null) await fs.rm(path.join(dir, unit), { force: true });
  else await fs.writeFile(path.join(dir, unit), `${state}\n`);
}

export function sandboxRebooter(engine: Engine): { blockingInhibitors(): Promise<string[]>; reboot(): Promise<void> } {
  return {
    blockingInhibitors: () => Promise.resolve([]),
    reboot: async () => {
      await bootSandbox(engine);
    },
  };
}

export interface CreateSandboxOptions {
  /** The sysroot to create (must be empty or missing). */
  readonly sysroot: string;
  /** Image the "installer" put on the root volume before init. */
  readonly installImage: string;
  /** Public keys to trust (files copied into etc/imgbased/trusted.d). */
  readonly trustedKeys?: readonly string[];
  readonly requireSignature?: boolean;
  readonly log?: Logger;
}

export interface Sandbox {
  readonly engine: Engine;
  readonly init: Outcome;
  /** The layer booted after init. */
  readonly booted: string;
}

/** Lay out a sysroot as an oVirt Node install would leave it, run `init`, and boot the first layer. */
export async function createSandbox(opts: CreateSandboxOptions): Promise<Sandbox> {
  const paths = resolvePaths(opts.sysroot);
  for (const d of [paths.bootDir, paths.trustedKeysDir, paths.stateDir, paths.varDir, paths.runDir, path.dirname(paths.cmdline)]) {
    await fs.mkdir(d, { recursive: true });
  }
  const requireSignature = opts.requireSignature ?? true;
  const libvirtXml = path.join(paths.sysroot, SANDBOX_LIBVIRT_XML);
  await fs.writeFile(libvirtXml, sandboxLibvirtXml([{ name: 'sandbox-vm', running: false }]));
  await fs.writeFile(paths.configFile, sandboxConfigText({ requireSignature, libvirtUri: `test://${libvirtXml}` }));
  for (const key of opts.trustedKeys ?? []) {
    await fs.copyFile(key, path.join(paths.trustedKeysDir, path.basename(key)));
  }
  await fs.writeFile(paths.cmdline, 'root=/dev/onn/root ro rd.lvm.lv=onn/root crashkernel=auto quiet\n');

  const config: Config = { ...DEFAULT_CONFIG, backend: 'dir', dirPool: SANDBOX_POOL, requireSignature };
  const backend = new DirBackend({ poolDir: path.join(paths.sysroot, SANDBOX_POOL) });
  // What the installer does: a root volume holding the image's tree (plus /var content on the shared /var).
  const image = await openImage({ imagePath: opts.installImage, workDir: paths.runDir });
  try {
    await backend.createThin(SANDBOX_ROOT_LV, { sizeBytes: Math.max(image.imageSizeBytes, 64 << 20), fsType: image.fsType });
    await run(['cp', '-a', '--', `${image.root}/.`, backend.volumePath(SANDBOX_ROOT_LV)]);
    await run(['cp', '-a', '--', `${path.join(image.root, 'var')}/.`, paths.varDir]);
  } finally {
    await image.close();
  }
  const engine = await Engine.open({ sysroot: paths.sysroot, config, backend, ...(opts.log ? { log: opts.log } : {}) });
  const init = await engine.init(SANDBOX_ROOT_LV, null, { initiator: 'installer' });
  if (init.error) throw init.error;
  const booted = await bootSandbox(engine);
  return { engine, init, booted };
}

/**
 * "Reboot" the sandbox: boot the one-shot next_entry if set (and clear it, as grub does), else the saved_entry;
 * write that entry's kernel command line to <sysroot>/proc/cmdline. Returns the booted layer.
 */
export async function bootSandbox(engine: Engine): Promise<string> {
  const { bootDir, grubenv, cmdline } = engine.paths;
  const next = await getNextBoot(bootDir, { grubenvPath: grubenv });
  if (next) await setNextBoot(bootDir, undefined, { grubenvPath: grubenv });
  const layer = next ?? (await getDefault(bootDir, { grubenvPath: grubenv }));
  if (!layer) throw new NotFoundError('nothing to boot: grubenv names no default entry');
  const entry = await findEntry(bootDir, layer);
  const options = entry ? blsGet(entry.entry, 'options') : undefined;
  const linux = entry ? blsGet(entry.entry, 'linux') : undefined;
  if (!options || !linux) throw new FailedError(`the boot entry of ${layer} has no kernel or options`);
  await fs.writeFile(cmdline, `BOOT_IMAGE=(hd0,msdos1)${linux} ${options}\n`);
  return layer;
}
