/**
 * VM tier helpers: a fresh volume group + thin pool on the guest's blank virtio disk, and its complete removal.
 * Only meaningful inside the guest (scripts/test-vm.sh); the disk path comes from test/vm/guest-run.sh.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../../src/system/run';
import { parseLvsReport, LV_FIELDS, REPORT_ARGS, type LvRecord } from '../../src/storage/lvm-report';

export const DISK = process.env['IMGBASED_VM_DISK'] ?? '/dev/disk/by-id/virtio-imgbased-lvm';
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Run a tool (argv, no shell); returns stdout. */
export async function sh(...argv: string[]): Promise<string> {
  return (await run(argv)).stdout;
}

export interface VgFixture {
  readonly vg: string;
  readonly pool: string;
  readonly mountRoot: string;
  cleanup(): Promise<void>;
}

export interface VgOptions {
  readonly vg: string;
  readonly pool?: string;
  /** Thin pool data size (default 4 GiB). */
  readonly poolBytes?: number;
  /** Thin pool metadata size (default: what lvcreate picks, a few MiB: smaller than imgbased's 1 GiB). */
  readonly poolMetadataBytes?: number;
  /** Size of the PV to use (default: the whole disk). */
  readonly pvBytes?: number;
}

/** Remove every trace of LVM from the test disk (leftovers of a crashed test file included). */
export async function wipeDisk(): Promise<void> {
  await run(['udevadm', 'settle']);
  const mounts = await run(['findmnt', '-rn', '-o', 'TARGET,SOURCE'], { okCodes: [0, 1] });
  for (const line of mounts.stdout.split('\n').reverse()) {
    const [target, source] = line.split(' ');
    if (target !== undefined && source?.startsWith('/dev/mapper/') === true && target.startsWith('/tmp/imgbased-vm-')) {
      await run(['umount', '-l', target]).catch(() => undefined);
    }
  }
  const pv = await run(['pvs', '--noheadings', '-o', 'vg_name', DISK], { okCodes: [0, 5] });
  const vg = pv.stdout.trim();
  if (pv.code === 0 && vg !== '') await run(['vgremove', '-ff', '-y', vg]);
  await run(['pvremove', '-ff', '-y', DISK], { okCodes: [0, 5] });
  await run(['wipefs', '-qa', DISK]);
}

export async function makeVg(opts: VgOptions): Promise<VgFixture> {
  const pool = opts.pool ?? 'pool00';
  await wipeDisk();
  const pvArgs = opts.pvBytes === undefined ? [] : ['--setphysicalvolumesize', `${opts.pvBytes}b`];
  await sh('pvcreate', '-qy', ...pvArgs, DISK);
  await sh('vgcreate', '-q', opts.vg, DISK);
  const meta = opts.poolMetadataBytes === undefined ? [] : ['--poolmetadatasize', `${opts.poolMetadataBytes}b`];
  await sh('lvcreate', '-qy', '--type', 'thin-pool', '-L', `${opts.poolBytes ?? 4 * GiB}b`, ...meta, '-n', pool, opts.vg);
  const mountRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-vm-'));
  return {
    vg: opts.vg,
    pool,
    mountRoot,
    cleanup: async () => {
      await wipeDisk();
      await fs.rm(mountRoot, { recursive: true, force: true });
    },
  };
}

/** The raw lvs record of one LV, straight from lvm2 (to check attrs exactly as imgbased would see them). */
export async function lvRecord(vg: string, lv: string): Promise<LvRecord> {
  const out = await sh('lvs', ...REPORT_ARGS, '-o', LV_FIELDS.join(','), `${vg}/${lv}`);
  const [rec] = parseLvsReport(out);
  if (rec === undefined) throw new Error(`no lvs record for ${vg}/${lv}`);
  return rec;
}

export async function lvAttr(vg: string, lv: string): Promise<string> {
  return (await lvRecord(vg, lv)).attrString;
}
