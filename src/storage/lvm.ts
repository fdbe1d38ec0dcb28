/**
 * The production storage backend: LVM thin volumes through the lvm2 CLI only (lvcreate/lvremove/lvchange/lvextend/
 * lvs/vgs/vgchange/lvmconfig), plus the filesystem tools (mkfs, e2fsck, tune2fs, xfs_admin, resize2fs, xfs_growfs,
 * blkid, mount, umount). Every tool runs through system/run.ts.
 *
 * Compatible with hosts laid out by real imgbased: the same tags, the same protect/unprotect sequences, every
 * activation with -K (--ignoreactivationskip), the same pool profile and metadata size.
 */
import { mkdir, rmdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedError, InvalidArgumentError, NoSpaceError, NotFoundError, ToolError } from '../errors';
import { assertLvName } from '../model/names';
import { mkdirDurable, writeFileDurable } from '../system/durable';
import { run, type RunResult } from '../system/run';
import {
  TAG,
  type CreateVolumeOptions,
  type FsType,
  type MountOptions,
  type PoolUsage,
  type StorageBackend,
  type VolumeInfo,
} from './backend';
import {
  LV_FIELDS,
  REPORT_ARGS,
  VG_FIELDS,
  isInternalLv,
  parseLvmconfigInt,
  parseLvsReport,
  parseVgsReport,
  poolFreeBytes,
  volumeInfo,
  type LvRecord,
  type VgRecord,
} from './lvm-report';

export interface LvmBackendOptions {
  /** Volume group (on imgbased hosts the one tagged imgbased:vg, usually "onn"). */
  readonly vg: string;
  /** Thin pool LV name inside the VG (tagged imgbased:pool, usually "pool00"). */
  readonly pool: string;
  /** Directory under which mount() creates one mountpoint per volume. */
  readonly mountRoot: string;
  /** Where LVM looks for profiles (lvm.conf config/profile_dir); default /etc/lvm/profile. */
  readonly profileDir?: string;
  /** Receives notes worth a log line (e.g. pool metadata that could not be grown). Default: ignored. */
  readonly onNotice?: (message: string) => void;
}

/** Name of the LVM metadata profile real imgbased attaches to its pool, and its settings. */
export const POOL_PROFILE = 'imgbased-pool';
export const POOL_PROFILE_SETTINGS = { thin_pool_autoextend_threshold: 70, thin_pool_autoextend_percent: 20 } as const;
/** imgbased grows the pool metadata to this size before the first layer (check_metadata_size(resize=True)). */
export const POOL_METADATA_MIN_BYTES = 1024 * 1024 * 1024;

export function poolProfileText(): string {
  const s = POOL_PROFILE_SETTINGS;
  return (
    '# Written by imgbased: grow the thin pool by 20% once it is 70% full (needs free space in the VG).\n' +
    'activation {\n' +
    `\tthin_pool_autoextend_threshold=${s.thin_pool_autoextend_threshold}\n` +
    `\tthin_pool_autoextend_percent=${s.thin_pool_autoextend_percent}\n` +
    '}\n'
  );
}

/** What the last markLayout() did about the pool, for callers that want to report it. */
export interface LayoutReport {
  readonly metadataBytesBefore: number | null;
  readonly metadataBytesAfter: number | null;
  /** Why metadata was not grown although it is below 1 GiB (e.g. not enough free extents), null otherwise. */
  readonly metadataNotGrownReason: string | null;
  readonly profile: string | null;
}

const GiB = 1024 * 1024 * 1024;
function human(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export class LvmBackend implements StorageBackend {
  readonly kind = 'lvm' as const;
  readonly vgName: string;
  readonly poolName: string;
  readonly mountRoot: string;
  private readonly profileDir: string;
  private readonly notice: (message: string) => void;
  /** Volumes that mount() had to activate; unmount() deactivates them again (bases stay inactive at rest). */
  private readonly activatedByMount = new Set<string>();
  lastLayoutReport: LayoutReport | null = null;

  constructor(opts: LvmBackendOptions) {
    assertLvName(opts.vg);
    assertLvName(opts.pool);
    this.vgName = opts.vg;
    this.poolName = opts.pool;
    this.mountRoot = opts.mountRoot;
    this.profileDir = opts.profileDir ?? '/etc/lvm/profile';
    this.notice = opts.onNotice ?? ((): void => undefined);
  }

  /**
   * Find the layout real imgbased (or we) made: exactly one VG tagged imgbased:vg, and in it exactly one thin pool
   * tagged imgbased:pool. NotFoundError otherwise, naming what was found.
   */
  static async discover(opts: Omit<LvmBackendOptions, 'vg' | 'pool'>): Promise<LvmBackend> {
    const vgs = (await reportVgs([])).filter((v) => v.tags.includes(TAG.vg));
    const [vg, ...moreVgs] = vgs;
    if (vg === undefined) throw new NotFoundError(`no volume group is tagged ${TAG.vg}; is this an imgbased host?`);
    if (moreVgs.length > 0) {
      throw new NotFoundError(
        `${vgs.length} volume groups are tagged ${TAG.vg} (${vgs.map((v) => v.name).join(', ')}); expected exactly one`,
      );
    }
    const pools = (await reportLvs([vg.name])).filter((lv) => lv.attr.thinPool && lv.tags.includes(TAG.pool));
    const [pool, ...morePools] = pools;
    if (pool === undefined) throw new NotFoundError(`volume group ${vg.name} has no thin pool tagged ${TAG.pool}`);
    if (morePools.length > 0) {
      throw new NotFoundError(
        `volume group ${vg.name} has ${pools.length} thin pools tagged ${TAG.pool} ` +
          `(${pools.map((p) => p.name).join(', ')}); expected exactly one`,
      );
    }
    return new LvmBackend({ ...opts, vg: vg.name, pool: pool.name });
  }

  // ---------------------------------------------------------------------------------------------------- queries

  private lvPath(name: string): string {
    return `${this.vgName}/${name}`;
  }

  blockDevice(name: string): string {
    return `/dev/${this.vgName}/${name}`;
  }

  private mountPoint(name: string): string {
    return join(this.mountRoot, name);
  }

  private async records(): Promise<LvRecord[]> {
    try {
      return await reportLvs([this.vgName]);
    } catch (e) {
      if (e instanceof ToolError && /Volume group "[^"]*" not found/.test(e.stderr)) {
        throw new NotFoundError(`volume group ${this.vgName} does not exist`, { cause: e });
      }
      throw e;
    }
  }

  private async record(name: string): Promise<LvRecord | null> {
    return (await this.records()).find((lv) => lv.name === name) ?? null;
  }

  private async mustRecord(name: string): Promise<LvRecord> {
    const lv = await this.record(name);
    if (lv === null || isInternalLv(lv)) {
      throw new NotFoundError(`volume ${this.lvPath(name)} does not exist`);
    }
    return lv;
  }

  private async poolRecord(): Promise<LvRecord> {
    const pool = await this.record(this.poolName);
    if (pool === null || !pool.attr.thinPool) {
      throw new NotFoundError(`thin pool ${this.lvPath(this.poolName)} does not exist`);
    }
    return pool;
  }

  private async vgRecord(): Promise<VgRecord> {
    const vg = (await reportVgs([this.vgName])).find((v) => v.name === this.vgName);
    if (vg === undefined) throw new NotFoundError(`volume group ${this.vgName} does not exist`);
    return vg;
  }

  private toInfo(lv: LvRecord): VolumeInfo {
    return volumeInfo(lv, this.poolName);
  }

  async list(): Promise<VolumeInfo[]> {
    return (await this.records()).filter((lv) => !isInternalLv(lv)).map((lv) => this.toInfo(lv));
  }

  async get(name: string): Promise<VolumeInfo | null> {
    const lv = await this.record(name);
    return lv === null || isInternalLv(lv) ? null : this.toInfo(lv);
  }

  async layoutTags(): Promise<{ vg: readonly string[]; pool: readonly string[] }> {
    const [vg, pool] = await Promise.all([this.vgRecord(), this.poolRecord()]);
    return { vg: vg.tags, pool: pool.tags };
  }

  async poolUsage(): Promise<PoolUsage> {
    const pool = await this.poolRecord();
    return {
      sizeBytes: pool.sizeBytes,
      freeBytes: poolFreeBytes(pool),
      dataPercent: pool.dataPercent ?? 0,
      metadataPercent: pool.metadataPercent ?? 0,
      autoextendThreshold: await this.autoextendThreshold(pool),
    };
  }

  /** thin_pool_autoextend_threshold in force for the pool: its profile, else the VG's, else lvm.conf (default 100). */
  private async autoextendThreshold(pool: LvRecord): Promise<number | null> {
    const key = 'thin_pool_autoextend_threshold';
    let profile = pool.profile;
    if (profile === null) profile = (await this.vgRecord()).profile;
    const argv = ['lvmconfig', '--type', 'full'];
    // a metadata profile (attached with lvchange/vgchange --metadataprofile); `--profile` means a COMMAND profile,
    // for which lvmconfig rejects the thin_pool_autoextend_* settings
    if (profile !== null) argv.push('--metadataprofile', profile);
    argv.push(`activation/${key}`);
    try {
      return parseLvmconfigInt((await run(argv)).stdout, key);
    } catch (e) {
      if (e instanceof ToolError) return null;
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------------- layout

  async markLayout(): Promise<void> {
    const vg = await this.vgRecord();
    if (!vg.tags.includes(TAG.vg)) await run(['vgchange', '--addtag', TAG.vg, this.vgName]);
    let pool = await this.poolRecord();
    if (!pool.tags.includes(TAG.pool)) await run(['lvchange', '--addtag', TAG.pool, this.lvPath(this.poolName)]);

    // Like imgbased's check_metadata_size(resize=True): at least 1 GiB of pool metadata. lvextend grows the pool
    // metadata spare too, so it needs twice the growth in free extents; when that does not fit, keep going and say so.
    const before = pool.metadataSizeBytes;
    let reason: string | null = null;
    if (before !== null && before < POOL_METADATA_MIN_BYTES) {
      const grow = POOL_METADATA_MIN_BYTES - before;
      if (vg.freeBytes < 2 * grow) {
        reason =
          `pool ${this.lvPath(this.poolName)} metadata is ${human(before)}, below the 1 GiB imgbased uses; growing it ` +
          `needs ${human(2 * grow)} free in the volume group (metadata + its spare), ${human(vg.freeBytes)} free`;
      } else {
        try {
          await run(['lvextend', '--poolmetadatasize', `${POOL_METADATA_MIN_BYTES}b`, this.lvPath(this.poolName)]);
        } catch (e) {
          if (!(e instanceof ToolError)) throw e;
          reason = `growing pool ${this.lvPath(this.poolName)} metadata to 1 GiB failed: ${e.message}`;
        }
      }
      if (reason !== null) this.notice(reason);
    }

    // The imgbased-pool metadata profile: autoextend at 70 % by 20 %.
    await mkdirDurable(this.profileDir);
    const profilePath = join(this.profileDir, `${POOL_PROFILE}.profile`);
    const want = poolProfileText();
    const have = await readFile(profilePath, 'utf8').catch(() => null);
    if (have !== want) await writeFileDurable(profilePath, want, 0o644);
    if (pool.profile !== POOL_PROFILE) {
      await run(['lvchange', '--metadataprofile', POOL_PROFILE, this.lvPath(this.poolName)]);
    }
    pool = await this.poolRecord();
    this.lastLayoutReport = {
      metadataBytesBefore: before,
      metadataBytesAfter: pool.metadataSizeBytes,
      metadataNotGrownReason: reason,
      profile: pool.profile,
    };
  }

  // -------------------------------------------------------------------------------------------------- volumes

  async createThin(name: string, opts: CreateVolumeOptions): Promise<void> {
    assertLvName(name);
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes <= 0) {
      throw new InvalidArgumentError(`volume size must be a positive number of bytes, got ${opts.sizeBytes}`);
    }
    if ((await this.record(name)) !== null) {
      throw new InvalidArgumentError(`volume ${this.lvPath(name)} already exists`);
    }
    await this.checkSpace(name, opts.sizeBytes);
    const argv = ['lvcreate', '--thin', '--virtualsize', `${sectors(opts.sizeBytes)}b`, '--name', name];
    for (const tag of opts.tags ?? []) argv.push('--addtag', tag);
    argv.push(this.lvPath(this.poolName));
    await run(argv);
    if (opts.fsType !== undefined) {
      try {
        await this.activate(name);
        await this.mkfs(name, opts.fsType);
      } catch (e) {
        // a volume without its filesystem is useless: do not leak it
        await run(['lvremove', '-y', this.lvPath(name)]).catch(() => undefined);
        throw e;
      }
    }
  }

  /**
   * Real imgbased writes without checking (a known bug): a full pool stalls every volume in it. Refuse up front when
   * the new volume could not be filled: free data space in the pool, plus what autoextend may still take from the VG.
   */
  private async checkSpace(name: string, sizeBytes: number): Promise<void> {
    const pool = await this.poolRecord();
    const free = poolFreeBytes(pool);
    const threshold = await this.autoextendThreshold(pool);
    const autoextend = threshold !== null && threshold < 100;
    const vgFree = autoextend ? (await this.vgRecord()).freeBytes : 0;
    if (sizeBytes <= free + vgFree) return;
    throw new NoSpaceError(
      `cannot create ${this.lvPath(name)} of ${human(sizeBytes)} (${sizeBytes} bytes): thin pool ` +
        `${this.lvPath(this.poolName)} has ${human(free)} (${free} bytes) free of ${human(pool.sizeBytes)} ` +
        `(${pool.dataPercent ?? 0}% used)` +
        (autoextend ? ` and autoextend can add at most ${human(vgFree)} (${vgFree} bytes) from the volume group` : ''),
      { hint: 'remove old bases (Cleanup) or extend the thin pool (lvextend) and retry' },
    );
  }

  private async mkfs(name: string, fsType: FsType): Promise<void> {
    const dev = this.blockDevice(name);
    if (fsType === 'ext4') await run(['mkfs.ext4', '-q', '-F', '-E', 'discard', dev]);
    else await run(['mkfs.xfs', '-q', '-f', dev]);
  }

  async snapshot(origin: string, name: string, opts: { tags?: readonly string[] } = {}): Promise<void> {
    assertLvName(name);
    await this.mustRecord(origin);
    if ((await this.record(name)) !== null) {
      throw new InvalidArgumentError(`volume ${this.lvPath(name)} already exists`);
    }
    const argv = ['lvcreate', '--snapshot', '--name', name];
    for (const tag of opts.tags ?? []) argv.push('--addtag', tag);
    argv.push(this.lvPath(origin));
    await run(argv);
    // A snapshot of a protected (read-only) base would inherit --permission r; layers must be writeable.
    const snap = await this.mustRecord(name);
    if (snap.attr.readOnly) await run(['lvchange', '--permission', 'rw', this.lvPath(name)]);
  }

  async remove(name: string): Promise<void> {
    await this.mustRecord(name);
    if ((await this.mountedAt(name)) !== null) {
      throw new InvalidArgumentError(`volume ${this.lvPath(name)} is mounted; unmount it first`);
    }
    await run(['lvremove', '-y', this.lvPath(name)]);
    this.activatedByMount.delete(name);
  }

  async removeIfExists(name: string): Promise<boolean> {
    const lv = await this.record(name);
    if (lv === null || isInternalLv(lv)) return false;
    // an undo path: a mount left behind by a crashed step must not block the removal
    if ((await this.mountedAt(name)) !== null) await this.unmount(name);
    await run(['lvremove', '-y', this.lvPath(name)]);
    this.activatedByMount.delete(name);
    return true;
  }

  async addTags(name: string, tags: readonly string[]): Promise<void> {
    const lv = await this.mustRecord(name);
    const add = tags.filter((t) => !lv.tags.includes(t));
    if (add.length === 0) return;
    await run(['lvchange', ...add.flatMap((t) => ['--addtag', t]), this.lvPath(name)]);
  }

  async removeTags(name: string, tags: readonly string[]): Promise<void> {
    const lv = await this.mustRecord(name);
    const del = tags.filter((t) => lv.tags.includes(t));
    if (del.length === 0) return;
    await run(['lvchange', ...del.flatMap((t) => ['--deltag', t]), this.lvPath(name)]);
  }

  async setReadOnly(name: string, readOnly: boolean): Promise<void> {
    const lv = await this.mustRecord(name);
    // lvchange fails ("already read only") when nothing changes; undo paths repeat calls, so skip no-ops
    if (lv.attr.readOnly === readOnly) return;
    await run(['lvchange', '--permission', readOnly ? 'r' : 'rw', this.lvPath(name)]);
  }

  async setActivationSkip(name: string, skip: boolean): Promise<void> {
    const lv = await this.mustRecord(name);
    if (lv.attr.activationSkip === skip) return;
    await run(['lvchange', '--setactivationskip', skip ? 'y' : 'n', this.lvPath(name)]);
  }

  async activate(name: string): Promise<void> {
    const lv = await this.mustRecord(name);
    if (lv.attr.active) return;
    await run(['lvchange', '--activate', 'y', '--ignoreactivationskip', this.lvPath(name)]);
    await udevSettle();
  }

  async deactivate(name: string): Promise<void> {
    const lv = await this.mustRecord(name);
    if (!lv.attr.active) return;
    await run(['lvchange', '--activate', 'n', this.lvPath(name)]);
  }

  /**
   * imgbased's LV.protect(): `--permission r`, `--setactivationskip y`, `--activate n --ignoreactivationskip`, in that
   * order; steps already in effect are skipped (lvchange fails on "already read only"), so undo paths may repeat it.
   */
  async protect(name: string): Promise<void> {
    const lv = await this.mustRecord(name);
    const path = this.lvPath(name);
    if (!lv.attr.readOnly) await run(['lvchange', '--permission', 'r', path]);
    if (!lv.attr.activationSkip) await run(['lvchange', '--setactivationskip', 'y', path]);
    if (lv.attr.active) await run(['lvchange', '--activate', 'n', '--ignoreactivationskip', path]);
  }

  /** imgbased's LV.unprotect(): `--permission rw`, `--setactivationskip n`, `--activate y --ignoreactivationskip`. */
  async unprotect(name: string): Promise<void> {
    const lv = await this.mustRecord(name);
    const path = this.lvPath(name);
    if (lv.attr.readOnly) await run(['lvchange', '--permission', 'rw', path]);
    if (lv.attr.activationSkip) await run(['lvchange', '--setactivationskip', 'n', path]);
    if (!lv.attr.active) {
      await run(['lvchange', '--activate', 'y', '--ignoreactivationskip', path]);
      await udevSettle();
    }
  }

  // ---------------------------------------------------------------------------------------------- filesystems

  /** Run fn with the volume active; put it back to inactive afterwards when we had to activate it. */
  private async withActive<T>(name: string, fn: (dev: string) => Promise<T>): Promise<T> {
    const lv = await this.mustRecord(name);
    if (lv.attr.active) return fn(this.blockDevice(name));
    await this.activate(name);
    try {
      return await fn(this.blockDevice(name));
    } finally {
      await run(['lvchange', '--activate', 'n', this.lvPath(name)]).catch(() => undefined);
    }
  }

  private async probe(dev: string, tag: 'TYPE' | 'UUID'): Promise<string | null> {
    // -p: low-level probe of the device itself, never the blkid cache (a fresh UUID must show at once)
    const r = await run(['blkid', '-p', '-s', tag, '-o', 'value', dev], { okCodes: [0, 2] });
    const v = r.stdout.trim();
    return r.code === 0 && v !== '' ? v : null;
  }

  async fsType(name: string): Promise<FsType | null> {
    const t = await this.withActive(name, (dev) => this.probe(dev, 'TYPE'));
    return t === 'ext4' || t === 'xfs' ? t : null;
  }

  async fsUuid(name: string): Promise<string> {
    const uuid = await this.withActive(name, (dev) => this.probe(dev, 'UUID'));
    if (uuid === null) throw new NotFoundError(`volume ${this.lvPath(name)} has no filesystem UUID`);
    return uuid;
  }

  /**
   * A new layer must not share its filesystem UUID with its base (imgbased: `e2fsck -f` then `tune2fs -U random`;
   * xfs: `xfs_admin -U generate`). The volume must be writeable and not mounted.
   */
  async newFsUuid(name: string): Promise<string> {
    const lv = await this.mustRecord(name);
    if (lv.attr.readOnly) throw new InvalidArgumentError(`volume ${this.lvPath(name)} is read-only (protected)`);
    if ((await this.mountedAt(name)) !== null) {
      throw new InvalidArgumentError(`volume ${this.lvPath(name)} is mounted; unmount it before changing its UUID`);
    }
    return this.withActive(name, async (dev) => {
      const type = await this.probe(dev, 'TYPE');
      if (type === 'ext4') {
        // e2fsck: 0 clean, 1 errors corrected (e.g. a journal replayed from a snapshot of a mounted fs)
        await run(['e2fsck', '-f', '-y', dev], { okCodes: [0, 1] });
        await run(['tune2fs', ...uuidChangeArgs(ext4Features((await run(['tune2fs', '-l', dev])).stdout)), dev]);
      } else if (type === 'xfs') {
        try {
          await run(['xfs_admin', '-U', 'generate', dev]);
        } catch (e) {
          if (!(e instanceof ToolError)) throw e;
          // a snapshot of a mounted xfs has a dirty log, which xfs_admin refuses: replay it by mounting once
          await this.replayXfsLog(name, dev);
          await run(['xfs_admin', '-U', 'generate', dev]);
        }
      } else {
        throw new InvalidArgumentError(`volume ${this.lvPath(name)} has no ext4 or xfs filesystem (found ${type ?? 'none'})`);
      }
      const uuid = await this.probe(dev, 'UUID');
      if (uuid === null) throw new FailedError(`volume ${this.lvPath(name)} has no UUID after changing it`);
      return uuid;
    });
  }

  private async replayXfsLog(name: string, dev: string): Promise<void> {
    const dir = this.mountPoint(name);
    await mkdir(dir, { recursive: true });
    await run(['mount', '-t', 'xfs', '-o', 'nouuid', dev, dir]);
    await run(['umount', dir]);
  }

  async grow(name: string, sizeBytes: number): Promise<void> {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
      throw new InvalidArgumentError(`volume size must be a positive number of bytes, got ${sizeBytes}`);
    }
    const lv = await this.mustRecord(name);
    if (lv.sizeBytes < sizeBytes) {
      if (lv.attr.readOnly) throw new InvalidArgumentError(`volume ${this.lvPath(name)} is read-only (protected)`);
      await this.checkSpace(name, sizeBytes - lv.sizeBytes);
      await run(['lvextend', '--size', `${sectors(sizeBytes)}b`, this.lvPath(name)]);
    } else if (lv.attr.readOnly) {
      return;
    }
    // The filesystem always grows to the whole volume, also when the volume was big enough already: a block-copied
    // image is smaller than the volume it was written to (and lvcreate rounds sizes up to whole extents).
    await this.withActive(name, async (dev) => {
      const type = await this.probe(dev, 'TYPE');
      const mounted = await this.mountedAt(name);
      if (type === 'ext4') {
        // offline resize2fs insists on a filesystem checked since it was last mounted; online needs nothing. After
        // newFsUuid (e2fsck -f + tune2fs, no mount) it is, and a second full check would only cost time.
        if (mounted === null && needsCheckBeforeResize((await run(['tune2fs', '-l', dev])).stdout)) {
          await run(['e2fsck', '-f', '-y', dev], { okCodes: [0, 1] });
        }
        await run(['resize2fs', dev]);
      } else if (type === 'xfs') {
        // xfs grows only while mounted
        if (mounted !== null) {
          await run(['xfs_growfs', mounted]);
        } else {
          const dir = this.mountPoint(name);
          await mkdir(dir, { recursive: true });
          await run(['mount', '-t', 'xfs', '-o', 'nouuid', dev, dir]);
          try {
            await run(['xfs_growfs', dir]);
          } finally {
            await run(['umount', dir]);
          }
        }
      }
    });
  }

  /** Every mountpoint of the volume (findmnt order), empty when it is not mounted. */
  private async mountTargets(name: string): Promise<string[]> {
    const r = await run(['findmnt', '-rn', '-o', 'TARGET', '--source', this.blockDevice(name)], { okCodes: [0, 1] });
    if (r.code !== 0) return [];
    return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '').map(unescapeMount);
  }

  /** Where the volume is mounted (first target), null when it is not. */
  private async mountedAt(name: string): Promise<string | null> {
    return (await this.mountTargets(name))[0] ?? null;
  }

  async mount(name: string, opts: MountOptions = {}): Promise<string> {
    const lv = await this.mustRecord(name);
    const dir = this.mountPoint(name);
    const targets = await this.mountTargets(name);
    if (targets.includes(dir)) return dir;
    // The running layer is mounted read-write at / while an upgrade reads its /etc: a read-only view next to it is
    // fine; a second read-write mount is not something imgbased does.
    const elsewhere = targets[0] ?? null;
    if (elsewhere !== null && opts.readOnly !== true) {
      throw new InvalidArgumentError(`volume ${this.lvPath(name)} is already mounted at ${elsewhere}`);
    }
    if (lv.attr.readOnly && opts.readOnly !== true) {
      throw new InvalidArgumentError(`volume ${this.lvPath(name)} is read-only (protected) and cannot be mounted read-write`);
    }
    if (!lv.attr.active) {
      await this.activate(name);
      this.activatedByMount.add(name);
    }
    const dev = this.blockDevice(name);
    const type = await this.probe(dev, 'TYPE');
    if (type === null) throw new InvalidArgumentError(`volume ${this.lvPath(name)} has no filesystem to mount`);
    const options: string[] = [opts.readOnly === true ? 'ro' : 'rw'];
    // an xfs snapshot carries its origin's UUID until newFsUuid(); xfs refuses a second mount of one UUID
    if (type === 'xfs') options.push('nouuid');
    await mkdir(dir, { recursive: true });
    try {
      if (elsewhere === null) {
        await run(['mount', '-t', type, '-o', options.join(','), dev, dir]);
      } else {
        // Mounted elsewhere: the kernel shares that superblock and refuses to change its read-only state (EBUSY),
        // so a read-only mount of a read-write mounted volume is a mount of the same superblock made read-only
        // per mount point.
        try {
          await run(['mount', '-t', type, '-o', options.join(','), dev, dir]);
        } catch (e) {
          if (!(e instanceof ToolError)) throw e;
          await run(['mount', '-t', type, '-o', ['rw', ...options.slice(1)].join(','), dev, dir]);
          try {
            await run(['mount', '-o', 'remount,bind,ro', dir]);
          } catch (e2) {
            await run(['umount', dir]).catch(() => undefined);
            throw e2;
          }
        }
      }
    } catch (e) {
      await this.releaseMount(name, dir);
      throw e;
    }
    return dir;
  }

  /** Unmount the volume from OUR mountpoint; a mount made by someone else (the running layer at /) stays. */
  async unmount(name: string): Promise<void> {
    const dir = this.mountPoint(name);
    if ((await this.mountTargets(name)).includes(dir)) await run(['umount', dir]);
    await this.releaseMount(name, dir);
  }

  private async releaseMount(name: string, dir: string): Promise<void> {
    await rmdir(dir).catch(() => undefined);
    if (this.activatedByMount.delete(name)) {
      await run(['lvchange', '--activate', 'n', this.lvPath(name)]).catch(() => undefined);
    }
  }
}

// ------------------------------------------------------------------------------------------------------- helpers

/** lvm2 takes byte sizes only in whole 512-byte sectors (it then rounds up to whole extents itself). */
function sectors(bytes: number): number {
  return Math.ceil(bytes / 512) * 512;
}

async function reportLvs(selection: readonly string[]): Promise<LvRecord[]> {
  const r: RunResult = await run(['lvs', ...REPORT_ARGS, '-o', LV_FIELDS.join(','), ...selection]);
  return parseLvsReport(r.stdout);
}

async function reportVgs(selection: readonly string[]): Promise<VgRecord[]> {
  const r = await run(['vgs', ...REPORT_ARGS, '-o', VG_FIELDS.join(','), ...selection]);
  return parseVgsReport(r.stdout);
}

/** lvchange -ay returns before udev made /dev/VG/LV; wait for it (no-op without udev). */
async function udevSettle(): Promise<void> {
  await run(['udevadm', 'settle', '--timeout=30']).catch(() => undefined);
}

/** findmnt -r escapes blanks and backslashes as \x20 etc. */
function unescapeMount(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The feature names of `tune2fs -l` output ("Filesystem features: has_journal ext_attr …"). Pure. */
export function ext4Features(tune2fsList: string): Set<string> {
  const m = /^Filesystem features:\s*(.*)$/m.exec(tune2fsList);
  return new Set((m?.[1] ?? '').split(/\s+/).filter((f) => f !== '' && f !== '(none)'));
}

/**
 * tune2fs arguments for a new random UUID. Without metadata_csum_seed every metadata checksum is seeded from the
 * UUID, so a new one rewrites every group descriptor, bitmap and inode table block: on a thin snapshot that unshares
 * ~100 MiB of an image's metadata per layer or delta base. With the seed feature (kernel >= 4.4, e2fsprogs >= 1.43;
 * GRUB before 2.12 cannot read it, and Node's /boot is a separate filesystem) only the superblock changes. Pure.
 */
export function uuidChangeArgs(features: ReadonlySet<string>): string[] {
  return features.has('metadata_csum') && !features.has('metadata_csum_seed') ? ['-O', 'metadata_csum_seed', '-U', 'random'] : ['-U', 'random'];
}

/**
 * Whether offline resize2fs needs `e2fsck -f` first, from `tune2fs -l` output: resize2fs refuses a filesystem that is
 * not clean, has errors, or was mounted after it was last checked; a journal that still needs recovery (a snapshot of
 * a mounted filesystem) needs e2fsck as well. Anything unreadable counts as needing the check. Pure.
 */
export function needsCheckBeforeResize(tune2fsList: string): boolean {
  const field = (name: string): string | null => new RegExp(`^${name}:\\s*(.*?)\\s*$`, 'm').exec(tune2fsList)?.[1] ?? null;
  const state = field('Filesystem state');
  if (state !== 'clean' || ext4Features(tune2fsList).has('needs_recovery')) return true;
  const time = (v: string | null): number => (v === 'n/a' ? 0 : v === null ? NaN : Date.parse(v));
  const mounted = time(field('Last mount time'));
  const checked = time(field('Last checked'));
  return !(Number.isFinite(mounted) && Number.isFinite(checked) && checked >= mounted);
}
