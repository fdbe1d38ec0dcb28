/**
 * The `dir` storage backend: volumes are directories under a pool directory, snapshots are `cp -a --reflink=auto`,
 * LVM attributes (tags, permission, activation skip, size, fs UUID) live in a sidecar JSON written crash-safely.
 * Pool usage comes from statfs of the pool directory. Used by sandbox mode and the fast test tier.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError, InvalidArgumentError, NotFoundError } from '../errors';
import { assertLvName } from '../model/names';
import { run } from '../system/run';
import { writeFileDurable } from '../system/durable';
import type { CreateVolumeOptions, FsType, MountOptions, PoolUsage, StorageBackend, VolumeInfo } from './backend';
import { TAG } from './backend';

interface VolumeRecord {
  tags: string[];
  sizeBytes: number;
  readOnly: boolean;
  activationSkip: boolean;
  active: boolean;
  origin: string | null;
  fsType: FsType | null;
  fsUuid: string;
}

interface PoolState {
  version: 1;
  vgTags: string[];
  poolTags: string[];
  autoextendThreshold: number | null;
  volumes: Record<string, VolumeRecord>;
}

const STATE_FILE = 'imgbased-dir-pool.json';

function emptyState(): PoolState {
  return { version: 1, vgTags: [], poolTags: [], autoextendThreshold: null, volumes: {} };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseState(text: string, file: string): PoolState {
  const raw: unknown = JSON.parse(text);
  const bad = (what: string): never => {
    throw new FailedError(`dir pool state ${file} is invalid: ${what}`);
  };
  if (!isRecord(raw) || raw['version'] !== 1 || !isRecord(raw['volumes'])) return bad('not a version 1 state');
  const strings = (v: unknown, what: string): string[] =>
    Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : bad(what);
  const volumes: Record<string, VolumeRecord> = {};
  for (const [name, v] of Object.entries(raw['volumes'])) {
    if (!isRecord(v)) return bad(`volume ${name}`);
    const fsType = v['fsType'];
    if (fsType !== null && fsType !== 'ext4' && fsType !== 'xfs') return bad(`volume ${name} fsType`);
    if (typeof v['sizeBytes'] !== 'number' || typeof v['fsUuid'] !== 'string') return bad(`volume ${name} fields`);
    const origin = v['origin'];
    volumes[name] = {
      tags: strings(v['tags'], `volume ${name} tags`),
      sizeBytes: v['sizeBytes'],
      readOnly: v['readOnly'] === true,
      activationSkip: v['activationSkip'] === true,
      active: v['active'] === true,
      origin: typeof origin === 'string' ? origin : null,
      fsType,
      fsUuid: v['fsUuid'],
    };
  }
  const threshold = raw['autoextendThreshold'];
  return {
    version: 1,
    vgTags: strings(raw['vgTags'], 'vgTags'),
    poolTags: strings(raw['poolTags'], 'poolTags'),
    autoextendThreshold: typeof threshold === 'number' ? threshold : null,
    volumes,
  };
}

export interface DirBackendOptions {
  /** The pool directory (created if missing). */
  poolDir: string;
  /** Name used as the VG in boot entries (default "onn", as oVirt Node installs name it). */
  vgName?: string;
}

export class DirBackend implements StorageBackend {
  readonly kind = 'dir' as const;
  readonly vgName: string;
  private readonly poolDir: string;

  constructor(opts: DirBackendOptions) {
    this.poolDir = path.resolve(opts.poolDir);
    this.vgName = opts.vgName ?? 'onn';
  }

  private get stateFile(): string {
    return path.join(this.poolDir, STATE_FILE);
  }

  /** Where a volume's tree lives. */
  volumePath(name: string): string {
    assertLvName(name);
    return path.join(this.poolDir, 'volumes', name);
  }

  private async load(): Promise<PoolState> {
    try {
      return parseState(await fs.readFile(this.stateFile, 'utf8'), this.stateFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw e;
    }
  }

  private async save(state: PoolState): Promise<void> {
    await fs.mkdir(this.poolDir, { recursive: true });
    await writeFileDurable(this.stateFile, JSON.stringify(state, null, 1) + '\n');
  }

  private async update<T>(fn: (state: PoolState) => T | Promise<T>): Promise<T> {
    const state = await this.load();
    const result = await fn(state);
    await this.save(state);
    return result;
  }

  private static need(state: PoolState, name: string): VolumeRecord {
    const v = state.volumes[name];
    if (!v) throw new NotFoundError(`no volume named "${name}"`);
    return v;
  }

  private static info(name: string, v: VolumeRecord): VolumeInfo {
    return {
      name,
      tags: [...v.tags],
      sizeBytes: v.sizeBytes,
      readOnly: v.readOnly,
      activationSkip: v.activationSkip,
      active: v.active,
      origin: v.origin,
      thin: true,
    };
  }

  async list(): Promise<VolumeInfo[]> {
    const state = await this.load();
    return Object.entries(state.volumes)
      .map(([name, v]) => DirBackend.info(name, v))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<VolumeInfo | null> {
    const v = (await this.load()).volumes[name];
    return v ? DirBackend.info(name, v) : null;
  }

  async markLayout(): Promise<void> {
    await this.update((s) => {
      if (!s.vgTags.includes(TAG.vg)) s.vgTags.push(TAG.vg);
      if (!s.poolTags.includes(TAG.pool)) s.poolTags.push(TAG.pool);
      s.autoextendThreshold = 70;
    });
  }

  async layoutTags(): Promise<{ vg: readonly string[]; pool: readonly string[] }> {
    const s = await this.load();
    return { vg: s.vgTags, pool: s.poolTags };
  }

  async createThin(name: string, opts: CreateVolumeOptions): Promise<void> {
    assertLvName(name);
    if (!(opts.sizeBytes > 0)) throw new InvalidArgumentError(`volume size must be positive, got ${opts.sizeBytes}`);
    await this.update(async (s) => {
      if (s.volumes[name]) throw new InvalidArgumentError(`volume "${name}" already exists`);
      await fs.rm(this.volumePath(name), { recursive: true, force: true });
      await fs.mkdir(this.volumePath(name), { recursive: true, mode: 0o755 });
      s.volumes[name] = {
        tags: [...(opts.tags ?? [])],
        sizeBytes: opts.sizeBytes,
        readOnly: false,
        activationSkip: false,
        active: true,
        origin: null,
        fsType: opts.fsType ?? null,
        fsUuid: randomUUID(),
      };
    });
  }

  async snapshot(origin: string, name: string, opts: { tags?: readonly string[] } = {}): Promise<void> {
    assertLvName(name);
    const s = await this.load();
    const src = DirBackend.need(s, origin);
    if (s.volumes[name]) throw new InvalidArgumentError(`volume "${name}" already exists`);
    const dst = this.volumePath(name);
    await fs.rm(dst, { recursive: true, force: true });
    // The copy happens before the state records the volume: a crash leaves an unreferenced directory that the
    // next create/snapshot of that name replaces, never a recorded volume with half a tree.
    await run(['cp', '-a', '--reflink=auto', '--', this.volumePath(origin), dst], { dieWithParent: true });
    s.volumes[name] = {
      tags: [...(opts.tags ?? [])],
      sizeBytes: src.sizeBytes,
      readOnly: false,
      activationSkip: true,
      active: false,
      origin,
      fsType: src.fsType,
      fsUuid: src.fsUuid, // a snapshot shares its origin's fs UUID until newFsUuid()
    };
    await this.save(s);
  }

  async remove(name: string): Promise<void> {
    await this.update((s) => {
      DirBackend.need(s, name);
      delete s.volumes[name];
    });
    await fs.rm(this.volumePath(name), { recursive: true, force: true });
  }

  async removeIfExists(name: string): Promise<boolean> {
    if (!(await this.get(name))) {
      await fs.rm(this.volumePath(name), { recursive: true, force: true });
      return false;
    }
    await this.remove(name);
    return true;
  }

  private async modify(name: string, fn: (v: VolumeRecord) => void): Promise<void> {
    await this.update((s) => fn(DirBackend.need(s, name)));
  }

  async addTags(name: string, tags: readonly string[]): Promise<void> {
    await this.modify(name, (v) => {
      for (const t of tags) if (!v.tags.includes(t)) v.tags.push(t);
    });
  }

  async removeTags(name: string, tags: readonly string[]): Promise<void> {
    await this.modify(name, (v) => {
      v.tags = v.tags.filter((t) => !tags.includes(t));
    });
  }

  async setReadOnly(name: string, readOnly: boolean): Promise<void> {
    await this.modify(name, (v) => {
      v.readOnly = readOnly;
    });
  }

  async setActivationSkip(name: string, skip: boolean): Promise<void> {
    await this.modify(name, (v) => {
      v.activationSkip = skip;
    });
  }

  async activate(name: string): Promise<void> {
    await this.modify(name, (v) => {
      v.active = true;
    });
  }

  async deactivate(name: string): Promise<void> {
    await this.modify(name, (v) => {
      v.active = false;
    });
  }

  async protect(name: string): Promise<void> {
    await this.modify(name, (v) => {
      v.readOnly = true;
      v.activationSkip = true;
      v.active = false;
    });
  }

  async unprotect(name: string): Promise<void> {
    await this.modify(name, (v) => {
      v.readOnly = false;
      v.activationSkip = false;
      v.active = true;
    });
  }

  async fsType(name: string): Promise<FsType | null> {
    return DirBackend.need(await this.load(), name).fsType;
  }

  async fsUuid(name: string): Promise<string> {
    return DirBackend.need(await this.load(), name).fsUuid;
  }

  async newFsUuid(name: string): Promise<string> {
    const uuid = randomUUID();
    await this.modify(name, (v) => {
      if (v.readOnly) throw new InvalidArgumentError(`volume "${name}" is read-only`);
      v.fsUuid = uuid;
    });
    return uuid;
  }

  async grow(name: string, sizeBytes: number): Promise<void> {
    await this.modify(name, (v) => {
      v.sizeBytes = Math.max(v.sizeBytes, sizeBytes);
    });
  }

  async mount(name: string, opts: MountOptions = {}): Promise<string> {
    await this.modify(name, (v) => {
      if (v.readOnly && opts.readOnly !== true) {
        throw new InvalidArgumentError(`volume "${name}" is read-only and cannot be mounted read-write`);
      }
      v.active = true;
    });
    return this.volumePath(name);
  }

  async unmount(name: string): Promise<void> {
    DirBackend.need(await this.load(), name);
  }

  blockDevice(): null {
    return null;
  }

  async poolUsage(): Promise<PoolUsage> {
    await fs.mkdir(this.poolDir, { recursive: true });
    const st = await fs.statfs(this.poolDir);
    const size = st.blocks * st.bsize;
    const used = (st.blocks - st.bfree) * st.bsize;
    const inodesUsed = st.files > 0 ? ((st.files - st.ffree) / st.files) * 100 : 0;
    return {
      sizeBytes: size,
      freeBytes: st.bavail * st.bsize,
      dataPercent: size > 0 ? (used / size) * 100 : 0,
      metadataPercent: inodesUsed,
      autoextendThreshold: (await this.load()).autoextendThreshold,
    };
  }
}
