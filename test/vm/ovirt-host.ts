/**
 * VM tier helpers shared by the files that need an oVirt-like host on the blank disk (engine-lvm, daemon-systemd):
 * what the oVirt installer leaves behind before `imgbased init` — VG onn, thin pool00, a thin root LV holding a
 * test image's tree, a sysroot with /boot, /etc/imgbased (config + trusted key), the shared /var seeded from the
 * image — and the lvs view of the VG the tests compare.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { openImage } from '../../src/image/inspect';
import { isInternalLv, LV_FIELDS, parseLvsReport, REPORT_ARGS } from '../../src/storage/lvm-report';
import { GiB, makeVg, MiB, sh, type VgFixture } from './lvm-fixture';

export const VG = 'onn';
export const POOL = 'pool00';
export const ROOT_BYTES = 256 * MiB;
export const CMDLINE = 'root=/dev/onn/root ro rd.lvm.lv=onn/root crashkernel=auto quiet\n';

export interface LvState {
  attr: string;
  tags: readonly string[];
  origin: string | null;
  size: number;
}

/** Every LV of the VG (thin pool and internals excluded) straight from `lvs`. */
export async function lvsState(vg: string = VG): Promise<Record<string, LvState>> {
  const recs = parseLvsReport(await sh('lvs', ...REPORT_ARGS, '-o', LV_FIELDS.join(','), vg));
  return Object.fromEntries(
    recs.filter((r) => !isInternalLv(r)).sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => [r.name, { attr: r.attrString, tags: [...r.tags].sort(), origin: r.origin, size: r.sizeBytes }]),
  );
}

export interface OvirtInstallOptions {
  /** The host tree: "/" (the guest itself, for the daemon under systemd); default <fx.mountRoot>/sysroot. */
  readonly sysroot?: string;
  /** The image the "installer" copies into the root LV (its /var seeds the shared /var). */
  readonly imagePath: string;
  /** The trusted OpenPGP key (copied to etc/imgbased/trusted.d/test.asc). */
  readonly trustedKey: string;
  /** Contents of etc/imgbased/imgbased.conf. */
  readonly config: string;
  /** Write proc/cmdline (a sysroot directory only: /proc/cmdline is the kernel's). */
  readonly writeCmdline: boolean;
}

export interface OvirtHost {
  readonly fx: VgFixture;
  readonly sysroot: string;
  /** An empty directory (<fx.mountRoot>/running), used to fill the root LV; free for the caller afterwards. */
  readonly scratchMount: string;
}

/** The default config of an oVirt-like host on the test disk: lvm backend, VG onn, pool00, signatures required. */
export const OVIRT_CONFIG = `[Storage]\nBackend=lvm\nVolumeGroup=${VG}\nThinPool=${POOL}\n[Upgrade]\nRequireSignature=true\n`;

/**
 * The installer: VG + thin pool (1 GiB, 16 MiB metadata, --errorwhenfull y; imgbased's init grows the metadata),
 * a thin root LV with the image's tree, sysroot dirs, config, trusted key. fx.cleanup() wipes the disk.
 */
export async function installOvirtHost(o: OvirtInstallOptions): Promise<OvirtHost> {
  const fx = await makeVg({ vg: VG, pool: POOL, poolBytes: GiB, poolMetadataBytes: 16 * MiB });
  await sh('lvchange', '-q', '--errorwhenfull', 'y', `${VG}/${POOL}`);
  const sysroot = o.sysroot ?? path.join(fx.mountRoot, 'sysroot');
  const scratchMount = path.join(fx.mountRoot, 'running');
  await fs.mkdir(scratchMount);
  await sh('lvcreate', '-qy', '--thin', '--virtualsize', `${ROOT_BYTES}b`, '-n', 'root', `${VG}/${POOL}`);
  await sh('mkfs.ext4', '-q', '-E', 'discard', `/dev/${VG}/root`);
  for (const d of ['boot', 'etc/imgbased/trusted.d', 'var/lib/imgbased', 'run/imgbased', ...(o.writeCmdline ? ['proc'] : [])]) {
    await fs.mkdir(path.join(sysroot, d), { recursive: true });
  }
  const image = await openImage({ imagePath: o.imagePath, workDir: path.join(sysroot, 'run/imgbased') });
  try {
    await sh('mount', `/dev/${VG}/root`, scratchMount);
    await sh('cp', '-a', '--', `${image.root}/.`, scratchMount);
    await sh('cp', '-a', '--', `${image.root}/var/.`, path.join(sysroot, 'var'));
    await sh('umount', scratchMount);
  } finally {
    await image.close();
  }
  await fs.writeFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), o.config);
  await fs.copyFile(o.trustedKey, path.join(sysroot, 'etc/imgbased/trusted.d/test.asc'));
  if (o.writeCmdline) await fs.writeFile(path.join(sysroot, 'proc/cmdline'), CMDLINE);
  return { fx, sysroot, scratchMount };
}
