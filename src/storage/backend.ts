/**
 * The storage contract. Two implementations: `lvm` (lvm2 CLI, production) and `dir` (directories, sandbox and the
 * fast test tier). ONE contract suite (test/storage/contract.ts) runs against both.
 *
 * Names are LV names (see model/names.ts). All operations are idempotent where an undo may repeat them
 * (remove of a missing volume is an error; use `removeIfExists` from undo paths).
 */

/** LVM tags exactly as real imgbased writes them. */
export const TAG = {
  vg: 'imgbased:vg',
  pool: 'imgbased:pool',
  init: 'imgbased:init',
  base: 'imgbased:base',
  layer: 'imgbased:layer',
  volume: 'imgbased:volume',
} as const;
export type ImgbasedTag = (typeof TAG)[keyof typeof TAG];

export type FsType = 'ext4' | 'xfs';

export interface VolumeInfo {
  readonly name: string;
  readonly tags: readonly string[];
  /** Virtual size in bytes. */
  readonly sizeBytes: number;
  /** `--permission r`. */
  readonly readOnly: boolean;
  /** LVM activation skip flag (`k` in lv_attr). */
  readonly activationSkip: boolean;
  readonly active: boolean;
  /** Thin snapshot origin, informational only (may be null even for snapshots; never rely on it). */
  readonly origin: string | null;
  /** True when the volume lives in the imgbased thin pool. */
  readonly thin: boolean;
}

export interface PoolUsage {
  readonly sizeBytes: number;
  /** Bytes still free for data. */
  readonly freeBytes: number;
  readonly dataPercent: number;
  readonly metadataPercent: number;
  /** thin_pool_autoextend_threshold of the pool's profile (100 = autoextend off), null when unknown. */
  readonly autoextendThreshold: number | null;
}

export interface CreateVolumeOptions {
  readonly sizeBytes: number;
  /** Make a filesystem of this type (ext4 gets `-E discard`); omit for a raw volume. */
  readonly fsType?: FsType;
  readonly tags?: readonly string[];
}

export interface MountOptions {
  readonly readOnly?: boolean;
}

export interface StorageBackend {
  readonly kind: 'lvm' | 'dir';
  /** The volume group name (dir: a label for the pool) — used in `rd.lvm.lv=VG/LV` and `root=/dev/VG/LV`. */
  readonly vgName: string;

  /** Every volume of the VG / pool dir, tagged or not, excluding the thin pool itself and LVM internals. */
  list(): Promise<VolumeInfo[]>;
  /** One volume, or null. */
  get(name: string): Promise<VolumeInfo | null>;

  /** Tag the VG `imgbased:vg` and the pool `imgbased:pool`; grow pool metadata / set the pool profile (lvm). */
  markLayout(): Promise<void>;
  /** Tags on the VG (lvm) or pool (dir). */
  layoutTags(): Promise<{ vg: readonly string[]; pool: readonly string[] }>;

  /** New thin volume in the pool, optionally with a filesystem. Throws NoSpace when the pool cannot hold it. */
  createThin(name: string, opts: CreateVolumeOptions): Promise<void>;
  /** Thin snapshot of `origin` named `name` (writable; activation skip as LVM gives it: y). */
  snapshot(origin: string, name: string, opts?: { tags?: readonly string[] }): Promise<void>;
  remove(name: string): Promise<void>;
  removeIfExists(name: string): Promise<boolean>;

  addTags(name: string, tags: readonly string[]): Promise<void>;
  removeTags(name: string, tags: readonly string[]): Promise<void>;
  setReadOnly(name: string, readOnly: boolean): Promise<void>;
  setActivationSkip(name: string, skip: boolean): Promise<void>;
  /** Always with `-K` (ignore activation skip). */
  activate(name: string): Promise<void>;
  deactivate(name: string): Promise<void>;
  /** imgbased protect: permission r, activation skip y, inactive. */
  protect(name: string): Promise<void>;
  /** Reverse of protect: permission rw, activation skip n, active (-K). */
  unprotect(name: string): Promise<void>;

  /** Filesystem type of the volume, null when it has none we know. */
  fsType(name: string): Promise<FsType | null>;
  fsUuid(name: string): Promise<string>;
  /** Give the filesystem a new random UUID (ext4: e2fsck -f + tune2fs -U; xfs: xfs_admin -U). Returns it. */
  newFsUuid(name: string): Promise<string>;
  /** Grow the volume and its filesystem to at least sizeBytes (never shrinks). */
  grow(name: string, sizeBytes: number): Promise<void>;

  /** Mount (activating with -K as needed) and return the path where the tree is visible. */
  mount(name: string, opts?: MountOptions): Promise<string>;
  unmount(name: string): Promise<void>;
  /** Block device of the volume (lvm: /dev/VG/LV), null for backends without block devices (dir). */
  blockDevice(name: string): string | null;

  poolUsage(): Promise<PoolUsage>;
}

/** Mount, run, always unmount. */
export async function withMounted<T>(
  backend: StorageBackend,
  name: string,
  opts: MountOptions,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const path = await backend.mount(name, opts);
  try {
    return await fn(path);
  } finally {
    await backend.unmount(name);
  }
}
