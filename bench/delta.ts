/**
 * Benchmark (issue 10): delta bases vs full base writes on REAL dm-thin. Runs as root INSIDE the VM guest, on its
 * blank disk (it wipes it):
 *   scripts/bench-vm.sh [--quick] [--files N] [--rounds N] [--seed N]     the usual way, from the host, as root: builds
 *       the images on the host (--build-only, reused while the options match), boots the guest, runs this in it
 *   node dist/bench/delta.js [--quick] [--files N] [--rounds N] [--seed N] [--pool-gib N] [--methods M,…]
 *       [--large-methods M,…] [--images DIR] [--out PATH.json]          in the guest (without --images: built there, slow)
 *   node dist/bench/delta.js --build-only --images DIR [--quick] [--files N] [--seed N]    only the image set, anywhere
 *   node dist/bench/delta.js --report PATH.json                        the table of a results file again
 *   node dist/bench/delta.js --plan-only [--files N]                   statistics of the generated trees, nothing built
 * Prints a markdown table; writes the raw numbers to --out (JSON, default /var/tmp/imgbased-bench-delta-<time>.json)
 * and the table next to it (.md). Not a test: times depend on the machine (under TCG every lvm2 command costs seconds).
 * Defaults: 20000 files, 1 round, methods blocks,tree,delta for the small pair and blocks,delta for the large one;
 * --quick = 2000 files (smaller multi-MiB files), for a smoke run (≈ 25 min of guest time incl. building in the guest).
 *
 * Method
 *  - Images: three signed squashfs images made by src/image/test-image-builder.ts from a seeded (deterministic) tree:
 *    v1 = `--files` entries grouped in packages of ~50 files under usr/…: sizes log-uniform 64 B–64 KiB, ~0.12 % of
 *    multi-MiB files (1–8 MiB), 3 % symlinks, 1 % hard links, a few security.selinux/user xattrs and ACLs, text-like
 *    and binary-like contents. v2-small updates whole packages until ≥ 3 % of the regular files changed (90 % of a
 *    package's files rewritten, ±10 % size), adds 2 files and removes 1 per updated package, plus one new package;
 *    v2-large does the same until ≥ 55 % changed. The builder stamps every file with the build time (rpm-built images
 *    keep an unchanged file's mtime), so each image is re-stamped afterwards (rootfs.img loop-mounted, mtimes set:
 *    unchanged files keep v1's, changed/new files get v2's; squashfs, .sha256 and .sig made again). Without that rsync's
 *    quick check (size + mtime) would rewrite every file and a delta would cost a full write.
 *  - Host: the guest's blank disk holds VG `onn` (PV limited to 8 GiB) with thin `pool00` (--pool-gib, default 4 GiB,
 *    default chunk size, --errorwhenfull y), a thin root LV (1 GiB virtual) holding v1's tree as the installer leaves
 *    it (like test/vm/ovirt-host.ts, with room for a bigger image), a sysroot in a temp dir; `imgbased init` makes base
 *    v1 + layer v1+1, which is "booted". The rest of the disk (behind the PV) is an ext4 scratch area for the images.
 *  - Measurements (each after `sync; echo 3 > drop_caches`; rounds repeat all, the table shows the fastest round):
 *    plain copies of the v2 image onto a fresh thin LV, two ways: `blocks` = loop-mount the squashfs, `dd bs=64K
 *    conv=sparse,fsync` of LiveOS/rootfs.img (the same zero skipping as copyBlocks); `tree` = loop-mount squashfs and
 *    rootfs.img, `mkfs.ext4 -E discard`, mount, `cp -a --preserve=xattr --sparse=auto` (copyTree's command), umount.
 *    Creating the LV is not timed. Then the Engine (in-process) upgrades v1 → v2 with method blocks, tree and delta.
 *    Upgrade time = the whole engine.upgrade() call (image verification included). Write time = the base-writing steps
 *    (create-base + write-base, or snapshot-base + sync-base + verify-base), from hrtime stamps taken by a Failpoints
 *    subclass at every step boundary (the journal's own startedAt/finishedAt agree, to the ms). Pool bytes added by the
 *    new base = used data blocks of the `-tpool` device (`dmsetup status`) after the last writing step minus before
 *    the first, times the pool chunk size (`lvs -o chunk_size`). After each upgrade: rollback to v1+1 and remove-base v2
 *    through the engine, back to the starting state.
 *  - Changed bytes of a pair: st_size of every regular file (hard links once) of v2 that is new or whose content
 *    differs from v1's — what the re-stamping gave v2's mtime, i.e. exactly what rsync rewrites.
 *  - Bases per pool (computed from the measured bytes, not by filling a pool): how many bases a pool of the bench's
 *    size holds, layers and /etc ignored: full = pool ÷ full-write bytes; delta = 1 + (pool − full-write bytes) ÷ delta
 *    bytes (the first base is always a full one).
 *  - Where a small delta's time and bytes go: the step timings are split at the first and last progress tick inside a
 *    step (sync-base: new UUID + grow + mount | rsync | fstrim + umount; write-base: copy | grow + new UUID), and
 *    verify-base where its file counter restarts (the image's tree, then the base's). A diagnosis then runs
 *    sync-base's commands one by one on fresh thin snapshots of base v1 with the pool bytes each adds: e2fsck -f,
 *    `tune2fs -U random` (what the engine does) vs `tune2fs -O metadata_csum_seed -U random`, rsync, fstrim, umount.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Engine } from '../src/engine';
import { openImage, type OpenedImage } from '../src/image/inspect';
import { unmountIfMounted } from '../src/image/mount';
import {
  buildTestImage, createTestSigningKey, signDetached, type TestFileSpec, type TestSigningKey,
} from '../src/image/test-image-builder';
import { bootSandbox } from '../src/sandbox/sysroot';
import { run } from '../src/system/run';
import { Failpoints } from '../src/transaction/failpoints';
import type { JournalRecord, ProgressEvent } from '../src/transaction/types';
import { DISK, GiB, MiB, makeVg, sh, type VgFixture } from '../test/vm/lvm-fixture';
import { CMDLINE, OVIRT_CONFIG, POOL, VG } from '../test/vm/ovirt-host';
import { runMain } from './common';
import { prng } from '../test/helpers/prng';

const KiB = 1024;
const NVR_V1 = 'ovirt-node-ng-4.5.4-0.20250101.0';
const NVR_V2 = 'ovirt-node-ng-4.5.5-0.20250301.0';
/** The builder's fixed time (directories, symlinks) = the time of v1's files. */
const T_V1 = new Date('2025-01-01T00:00:00Z');
const T_V2 = new Date('2025-03-01T00:00:00Z');
const ROOT_BYTES = GiB;
const PV_BYTES = 8 * GiB;
const BASELINE_LV = 'benchcopy';

// ---- options ------------------------------------------------------------------------------------------------------

interface Options {
  readonly files: number;
  readonly rounds: number;
  readonly quick: boolean;
  readonly seed: number;
  readonly poolGiB: number;
  readonly out: string;
  readonly methods: readonly Method[];
  /** Methods for the large pair (default blocks,delta: its tree write adds guest time and no goal). */
  readonly largeMethods: readonly Method[];
  /** Where the image set is (re)used or built; null: built on the guest's scratch disk. */
  readonly images: string | null;
  readonly buildOnly: boolean;
}

type Method = 'blocks' | 'tree' | 'delta';

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.lastIndexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, def: number): number => {
    const v = value(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} wants a positive integer, got "${v}"`);
    return n;
  };
  const quick = argv.includes('--quick');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const methodList = (name: string, def: string): Method[] => (value(name) ?? def).split(',').map((m) => {
    if (m !== 'blocks' && m !== 'tree' && m !== 'delta') throw new Error(`--${name}: unknown method "${m}"`);
    return m;
  });
  const methods = methodList('methods', 'blocks,tree,delta');
  return {
    files: num('files', quick ? 2000 : 20000),
    rounds: num('rounds', 1),
    quick,
    seed: num('seed', 20261126),
    poolGiB: num('pool-gib', 4),
    out: path.resolve(value('out') ?? `/var/tmp/imgbased-bench-delta-${stamp}.json`),
    methods,
    largeMethods: methodList('large-methods', 'blocks,delta'),
    images: value('images') === undefined ? null : path.resolve(value('images') ?? ''),
    buildOnly: argv.includes('--build-only'),
  };
}

// ---- a deterministic tree -----------------------------------------------------------------------------------------


function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

function logUniform(r: () => number, lo: number, hi: number): number {
  return Math.round(Math.exp(Math.log(lo) + r() * (Math.log(hi) - Math.log(lo))));
}

const TEXT = Buffer.from('Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor 0123456789\n');

/** `size` bytes derived from `id` only: a keystream part (incompressible) then text (compressible). */
function contentOf(id: string, size: number, compressibility: number): Buffer {
  const buf = Buffer.alloc(size);
  const randomPart = Math.round(size * (1 - compressibility));
  const key = createHash('sha256').update(id).digest();
  if (randomPart > 0) {
    const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
    c.update(Buffer.alloc(randomPart)).copy(buf, 0);
  }
  const head = Buffer.from(`${id}\n`);
  let off = randomPart;
  off += head.copy(buf, off);
  while (off < size) off += TEXT.copy(buf, off, 0, Math.min(TEXT.length, size - off));
  return buf;
}

interface FileEnt {
  readonly kind: 'file';
  readonly pkg: number;
  readonly size: number;
  readonly comp: number;
  readonly ver: number;
  readonly mode: number;
  readonly xattrs?: Readonly<Record<string, string>>;
  readonly acl?: string;
}
interface SymlinkEnt { readonly kind: 'symlink'; readonly pkg: number; readonly target: string }
interface HardlinkEnt { readonly kind: 'hardlink'; readonly pkg: number; readonly target: string }
type Ent = FileEnt | SymlinkEnt | HardlinkEnt;

interface Tree {
  readonly label: string;
  readonly entries: Map<string, Ent>;
  readonly pkgs: number;
}

const AREAS = ['usr/lib64', 'usr/share', 'usr/lib/python3.9/site-packages', 'usr/libexec', 'usr/share/doc', 'usr/bin'];

function pkgDir(p: number): string {
  return `${AREAS[p % AREAS.length] ?? 'usr/lib'}/pkg${String(p).padStart(4, '0')}`;
}

function newFile(r: () => number, p: number, large: boolean, quick: boolean): FileEnt {
  const area = AREAS[p % AREAS.length] ?? '';
  const text = area.includes('share') || area.includes('python');
  return {
    kind: 'file',
    pkg: p,
    size: large ? logUniform(r, MiB, (quick ? 3 : 8) * MiB) : logUniform(r, 64, 64 * KiB),
    comp: text ? 0.6 + 0.3 * r() : 0.2 + 0.3 * r(),
    ver: 1,
    mode: area === 'usr/bin' || area === 'usr/libexec' ? 0o755 : 0o644,
  };
}

function generateV1(o: Options): Tree {
  const r = prng(o.seed);
  const pkgs = Math.max(10, Math.round(o.files / 50));
  const entries = new Map<string, Ent>();
  const lastFile = new Map<number, string>();
  let fileNo = 0;
  for (let i = 0; i < o.files; i++) {
    const p = Math.floor(r() * pkgs);
    const dir = r() < 0.5 ? pkgDir(p) : `${pkgDir(p)}/sub${Math.floor(r() * 4)}`;
    const rel = `${dir}/f${i}.dat`;
    const x = r();
    const target = lastFile.get(p);
    if (x < 0.03 && target !== undefined) {
      entries.set(rel, { kind: 'symlink', pkg: p, target: path.posix.relative(path.posix.dirname(rel), target) });
      continue;
    }
    if (x < 0.04 && target !== undefined) {
      entries.set(rel, { kind: 'hardlink', pkg: p, target });
      continue;
    }
    let f = newFile(r, p, false, o.quick);
    fileNo++;
    if (fileNo % 997 === 0) f = { ...f, xattrs: { 'security.selinux': 'system_u:object_r:lib_t:s0' } };
    if (fileNo % 1999 === 0) f = { ...f, xattrs: { ...f.xattrs, 'user.bench.origin': `pkg${p}` } };
    if (fileNo % 4999 === 0) f = { ...f, acl: 'u:107:r' };
    entries.set(rel, f);
    lastFile.set(p, rel);
  }
  const large = Math.max(3, Math.round(o.files * 0.0012));
  for (let j = 0; j < large; j++) {
    const p = Math.floor(r() * pkgs);
    entries.set(`${pkgDir(p)}/libbig${j}.so`, newFile(r, p, true, o.quick));
  }
  return { label: 'v1', entries, pkgs };
}

interface ChangePlan {
  readonly label: string;
  /** Share of v1's regular files to change (whole packages are updated until it is reached). */
  readonly fraction: number;
}

function deriveV2(v1: Tree, plan: ChangePlan, o: Options): Tree {
  const r = prng(seedOf(`${o.seed}:${plan.label}`));
  const entries = new Map(v1.entries);
  const byPkg = new Map<number, string[]>();
  const linked = new Set<string>();
  for (const [rel, e] of v1.entries) {
    byPkg.set(e.pkg, [...(byPkg.get(e.pkg) ?? []), rel]);
    if (e.kind === 'hardlink') linked.add(e.target);
    if (e.kind === 'symlink') linked.add(path.posix.join(path.posix.dirname(rel), e.target));
  }
  const regular = [...v1.entries.values()].filter((e) => e.kind === 'file').length;
  const order = [...byPkg.keys()].sort((a, b) => a - b);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0];
  }
  let changed = 0;
  for (const p of order) {
    if (changed >= plan.fraction * regular) break;
    const files = (byPkg.get(p) ?? []).filter((rel) => v1.entries.get(rel)?.kind === 'file');
    for (const rel of files) {
      const e = entries.get(rel);
      if (e?.kind !== 'file' || r() >= 0.9) continue;
      entries.set(rel, { ...e, ver: e.ver + 1, size: Math.max(1, Math.round(e.size * (0.9 + 0.2 * r()))) });
      changed++;
    }
    const removable = files.find((rel) => !linked.has(rel));
    if (removable !== undefined) entries.delete(removable);
    for (let k = 0; k < 2; k++) entries.set(`${pkgDir(p)}/new-${plan.label}-${k}.dat`, newFile(r, p, false, o.quick));
  }
  const newPkg = v1.pkgs;
  const n = Math.max(5, Math.round(o.files * 0.001));
  for (let k = 0; k < n; k++) entries.set(`${pkgDir(newPkg)}-${plan.label}/f${k}.dat`, newFile(r, newPkg, false, o.quick));
  return { label: plan.label, entries, pkgs: v1.pkgs + 1 };
}

function specOf(tree: Tree): Record<string, TestFileSpec> {
  const out: Record<string, TestFileSpec> = {};
  for (const [rel, e] of tree.entries) {
    switch (e.kind) {
      case 'file':
        out[rel] = {
          content: contentOf(`${rel}#${e.ver}`, e.size, e.comp),
          mode: e.mode,
          ...(e.xattrs ? { xattrs: e.xattrs } : {}),
          ...(e.acl ? { acl: e.acl } : {}),
        };
        break;
      case 'symlink':
        out[rel] = { kind: 'symlink', target: e.target };
        break;
      case 'hardlink':
        out[rel] = { kind: 'hardlink', target: e.target };
        break;
    }
  }
  return out;
}

// ---- images -------------------------------------------------------------------------------------------------------

interface BuiltImage {
  readonly label: string;
  readonly nvr: string;
  readonly imagePath: string;
  readonly imageBytes: number;
  readonly buildSeconds: number;
  readonly restampSeconds: number;
  readonly entries: number;
  readonly regularFiles: number;
  readonly treeBytes: number;
}

interface PairChange {
  /** Regular files (inodes) of v2 that are new or differ from v1. */
  readonly changedFiles: number;
  readonly newFiles: number;
  readonly removedEntries: number;
  /** st_size sum of those files. */
  readonly changedBytes: number;
  /** st_size sum of every regular file of v2 (inodes once). */
  readonly totalBytes: number;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/** Every non-directory below root (relative paths), lost+found excluded. */
async function listTree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    if (r === 'lost+found') continue;
    if (d.isDirectory()) out.push(...(await listTree(root, r)));
    else out.push(r);
  }
  return out;
}

/**
 * Give the image's regular files rpm-like mtimes: v1's time unless the file is new or its content changed since v1
 * (generated files: by their spec; the builder's own files: by content hash against v1's). Rebuilds the squashfs and
 * its sidecars. Returns what changed against v1 (zeros for v1 itself).
 */
async function restamp(opts: {
  imagePath: string; key: TestSigningKey; work: string; tree: Tree; v1: Tree; builderHashes: Map<string, string>; isV1: boolean;
}): Promise<PairChange> {
  const tmp = await fs.mkdtemp(path.join(opts.work, '.restamp-'));
  const mnt = path.join(tmp, 'mnt');
  await fs.mkdir(mnt);
  try {
    await run(['unsquashfs', '-q', '-n', '-d', path.join(tmp, 'iso'), opts.imagePath]);
    await run(['mount', '-o', 'loop', path.join(tmp, 'iso/LiveOS/rootfs.img'), mnt]);
    const seen = new Set<number>();
    let changedFiles = 0;
    let newFiles = 0;
    let changedBytes = 0;
    let totalBytes = 0;
    try {
      for (const rel of await listTree(mnt)) {
        const p = path.join(mnt, rel);
        const st = await fs.lstat(p);
        if (!st.isFile()) continue;
        let changed: boolean;
        let isNew: boolean;
        const spec = opts.tree.entries.get(rel);
        if (spec !== undefined) {
          const target = spec.kind === 'hardlink' ? spec.target : rel;
          const cur = opts.tree.entries.get(target);
          const old = opts.v1.entries.get(target);
          isNew = !opts.v1.entries.has(rel);
          changed = opts.isV1 ? false : cur?.kind !== 'file' || old?.kind !== 'file' || cur.ver !== old.ver || cur.size !== old.size;
        } else {
          const hash = await sha256File(p);
          if (opts.isV1) opts.builderHashes.set(rel, hash);
          const before = opts.builderHashes.get(rel);
          isNew = before === undefined;
          changed = !opts.isV1 && before !== hash;
        }
        const t = changed ? T_V2 : T_V1;
        await fs.lutimes(p, t, t);
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
        totalBytes += st.size;
        if (changed) {
          changedFiles++;
          changedBytes += st.size;
          if (isNew) newFiles++;
        }
      }
    } finally {
      await unmountIfMounted(mnt);
    }
    await run(['mksquashfs', path.join(tmp, 'iso'), opts.imagePath, '-noappend', '-comp', 'lz4', '-quiet', '-no-progress']);
    await fs.writeFile(`${opts.imagePath}.sha256`, `${await sha256File(opts.imagePath)}  ${path.basename(opts.imagePath)}\n`);
    await signDetached({ data: await fs.readFile(opts.imagePath), key: opts.key, sigPath: `${opts.imagePath}.sig`, format: 'binary' });
    const removedEntries = opts.isV1 ? 0 : [...opts.v1.entries.keys()].filter((rel) => !opts.tree.entries.has(rel)).length;
    return { changedFiles, newFiles, removedEntries, changedBytes, totalBytes };
  } finally {
    await unmountIfMounted(mnt);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function buildImage(opts: {
  tree: Tree; v1: Tree; nvr: string; key: TestSigningKey; work: string; builderHashes: Map<string, string>;
}): Promise<{ image: BuiltImage; change: PairChange }> {
  const outDir = path.join(opts.work, 'images', opts.tree.label);
  const t0 = performance.now();
  const built = await buildTestImage({
    outDir, nvr: opts.nvr, sign: opts.key, files: specOf(opts.tree), scratchDir: opts.work,
    fileName: `${opts.nvr}-${opts.tree.label}.squashfs.img`,
  });
  const t1 = performance.now();
  const change = await restamp({
    imagePath: built.imagePath, key: opts.key, work: opts.work, tree: opts.tree, v1: opts.v1,
    builderHashes: opts.builderHashes, isV1: opts.tree === opts.v1,
  });
  const t2 = performance.now();
  const entries = [...opts.tree.entries.values()];
  return {
    image: {
      label: opts.tree.label,
      nvr: opts.nvr,
      imagePath: built.imagePath,
      imageBytes: (await fs.stat(built.imagePath)).size,
      buildSeconds: (t1 - t0) / 1000,
      restampSeconds: (t2 - t1) / 1000,
      entries: entries.length,
      regularFiles: entries.filter((e) => e.kind === 'file').length,
      treeBytes: change.totalBytes,
    },
    change,
  };
}

// ---- pool accounting ----------------------------------------------------------------------------------------------

/** dm name of the pool's -tpool device (dashes in VG/LV names are doubled). */
const TPOOL = `${VG.replace(/-/g, '--')}-${POOL.replace(/-/g, '--')}-tpool`;

/** Used data blocks of the thin pool, straight from the kernel (synchronous: called from Failpoints.hit). */
function poolUsedBlocksSync(): number {
  const out = execFileSync('dmsetup', ['status', TPOOL], { encoding: 'utf8' });
  const m = /thin-pool \d+ \d+\/\d+ (\d+)\/(\d+)/.exec(out);
  if (!m?.[1]) throw new Error(`dmsetup status ${TPOOL}: unexpected output "${out.trim()}"`);
  return Number(m[1]);
}

async function poolInfo(): Promise<{ chunkBytes: number; dataBytes: number }> {
  const out = await sh('lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'chunk_size,lv_size', `${VG}/${POOL}`);
  const [chunk, size] = out.trim().split(/\s+/).map(Number);
  if (!chunk || !size) throw new Error(`lvs chunk_size,lv_size of ${VG}/${POOL}: "${out.trim()}"`);
  return { chunkBytes: chunk, dataBytes: size };
}

/**
 * The engine's failpoint hook used as a probe: hrtime at every step boundary and at the first/last progress tick
 * inside a step ("during"), and the pool's used blocks around the steps that write a base.
 */
class Probe extends Failpoints {
  readonly marks = new Map<string, number>();
  readonly used = new Map<string, number>();
  private static readonly SAMPLED = new Set([
    'before:create-base', 'after:write-base', 'before:snapshot-base', 'after:sync-base', 'after:verify-base',
  ]);

  constructor() {
    super(undefined);
  }

  reset(): void {
    this.marks.clear();
    this.used.clear();
  }

  override hit(name: string): void {
    const now = performance.now();
    if (name.startsWith('during:')) {
      const first = `first-${name}`;
      if (!this.marks.has(first)) this.marks.set(first, now);
      this.marks.set(`last-${name}`, now);
      return;
    }
    this.marks.set(name, now);
    if (Probe.SAMPLED.has(name)) this.used.set(name, poolUsedBlocksSync());
  }
}

// ---- host ---------------------------------------------------------------------------------------------------------

interface Host {
  readonly fx: VgFixture;
  readonly sysroot: string;
  readonly scratchLoop: string;
  readonly scratchMount: string;
}

/**
 * The blank disk: VG onn on the first PV_BYTES (makeVg: pool00 of poolGiB, 16 MiB metadata), pool --errorwhenfull y;
 * the rest of the disk, behind the PV, as an ext4 scratch filesystem for the images (the guest's root has ~1 GiB free).
 */
async function prepareDisk(o: Options): Promise<Host> {
  const fx = await makeVg({ vg: VG, pool: POOL, poolBytes: o.poolGiB * GiB, poolMetadataBytes: 16 * MiB, pvBytes: PV_BYTES });
  await sh('lvchange', '-q', '--errorwhenfull', 'y', `${VG}/${POOL}`);
  const scratchLoop = (await sh('losetup', '--find', '--show', '--offset', String(PV_BYTES + GiB), DISK)).trim();
  await sh('mkfs.ext4', '-q', '-F', '-E', 'nodiscard', scratchLoop);
  const scratchMount = path.join(fx.mountRoot, 'scratch');
  await fs.mkdir(scratchMount);
  await sh('mount', scratchLoop, scratchMount);
  return { fx, sysroot: path.join(fx.mountRoot, 'sysroot'), scratchLoop, scratchMount };
}

/** What the installer leaves (as test/vm/ovirt-host.ts installOvirtHost, with a 1 GiB root for a bigger image). */
async function installHost(host: Host, v1: BuiltImage, trustedKey: string): Promise<void> {
  const { sysroot } = host;
  const mnt = path.join(host.fx.mountRoot, 'running');
  await fs.mkdir(mnt);
  await sh('lvcreate', '-qy', '--thin', '--virtualsize', `${ROOT_BYTES}b`, '-n', 'root', `${VG}/${POOL}`);
  await sh('mkfs.ext4', '-q', '-E', 'discard', `/dev/${VG}/root`);
  for (const d of ['boot', 'etc/imgbased/trusted.d', 'var/lib/imgbased', 'run/imgbased', 'proc']) {
    await fs.mkdir(path.join(sysroot, d), { recursive: true });
  }
  const image = await openImage({ imagePath: v1.imagePath, workDir: path.join(sysroot, 'run/imgbased') });
  try {
    await sh('mount', `/dev/${VG}/root`, mnt);
    await sh('cp', '-a', '--', `${image.root}/.`, mnt);
    await sh('cp', '-a', '--', `${image.root}/var/.`, path.join(sysroot, 'var'));
    await sh('umount', mnt);
  } finally {
    await image.close();
  }
  await fs.writeFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), `${OVIRT_CONFIG}[Boot]\nAssessment=no\n`);
  await fs.copyFile(trustedKey, path.join(sysroot, 'etc/imgbased/trusted.d/test.asc'));
  await fs.writeFile(path.join(sysroot, 'proc/cmdline'), CMDLINE);
}

async function teardown(host: Host): Promise<void> {
  await unmountIfMounted(host.scratchMount).catch(() => undefined);
  await run(['losetup', '--detach', host.scratchLoop], { okCodes: [0, 1] });
  await host.fx.cleanup();
}

async function dropCaches(): Promise<void> {
  await run(['sync']);
  await fs.writeFile('/proc/sys/vm/drop_caches', '3\n');
}

// ---- measurements -------------------------------------------------------------------------------------------------

interface BaselineSample {
  readonly kind: 'blocks' | 'tree';
  readonly round: number;
  readonly seconds: number;
  readonly poolBytes: number;
}

interface StepTiming {
  readonly id: string;
  readonly seconds: number;
  /** From the step's start to its first progress tick, between first and last tick, from the last tick to its end. */
  readonly phases: { readonly beforeFirstTick: number; readonly ticking: number; readonly afterLastTick: number } | null;
  readonly result: unknown;
}

interface UpgradeSample {
  readonly method: Method;
  readonly round: number;
  readonly upgradeSeconds: number;
  /** verify-image + open + planning: from the call to the first step. */
  readonly preflightSeconds: number;
  readonly writeSeconds: number;
  readonly poolBytesBase: number;
  readonly poolBytesUpgrade: number;
  readonly steps: readonly StepTiming[];
  readonly verifyBaseSplit: { readonly imageTreeSeconds: number; readonly baseTreeSeconds: number } | null;
  readonly resetSeconds: number;
  readonly poolBytesLeftAfterReset: number;
}

const WRITE_STEPS: Record<Method, readonly string[]> = {
  blocks: ['create-base', 'write-base'],
  tree: ['create-base', 'write-base'],
  delta: ['snapshot-base', 'sync-base', 'verify-base'],
};

async function baseline(kind: 'blocks' | 'tree', image: BuiltImage, ctx: RunContext, round: number): Promise<BaselineSample> {
  const dev = `/dev/${VG}/${BASELINE_LV}`;
  await sh('lvcreate', '-qy', '--thin', '--virtualsize', `${ROOT_BYTES}b`, '-n', BASELINE_LV, `${VG}/${POOL}`);
  const mnt = path.join(ctx.work, 'baseline-mnt');
  await fs.mkdir(mnt, { recursive: true });
  try {
    await dropCaches();
    const used0 = poolUsedBlocksSync();
    const t0 = performance.now();
    let opened: OpenedImage | null = null;
    try {
      opened = await openImage({ imagePath: image.imagePath, workDir: ctx.work });
      if (kind === 'blocks') {
        await run(['dd', `if=${opened.rootfsImage}`, `of=${dev}`, 'bs=64K', 'conv=sparse,fsync', 'status=none']);
      } else {
        await run(['mkfs.ext4', '-q', '-E', 'discard', dev]);
        await run(['mount', dev, mnt]);
        try {
          await run(['cp', '-a', '--preserve=xattr', '--sparse=auto', '--no-target-directory', `${opened.root}/.`, mnt]);
        } finally {
          await unmountIfMounted(mnt);
        }
      }
    } finally {
      await opened?.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    const poolBytes = (poolUsedBlocksSync() - used0) * ctx.chunkBytes;
    return { kind, round, seconds, poolBytes };
  } finally {
    await unmountIfMounted(mnt);
    await sh('lvremove', '-qy', `${VG}/${BASELINE_LV}`);
  }
}

interface RunContext {
  readonly work: string;
  readonly engine: Engine;
  readonly probe: Probe;
  readonly chunkBytes: number;
  readonly v1Layer: string;
}

function stepTimings(record: JournalRecord, probe: Probe): StepTiming[] {
  return record.steps.filter((s) => s.status === 'done').map((s) => {
    const start = probe.marks.get(`before:${s.id}`);
    const end = probe.marks.get(`after:${s.id}`);
    const first = probe.marks.get(`first-during:${s.id}`);
    const last = probe.marks.get(`last-during:${s.id}`);
    const seconds = start !== undefined && end !== undefined
      ? (end - start) / 1000
      : (Date.parse(s.finishedAt ?? '') - Date.parse(s.startedAt ?? '')) / 1000;
    const phases = start !== undefined && end !== undefined && first !== undefined && last !== undefined
      ? { beforeFirstTick: (first - start) / 1000, ticking: (last - first) / 1000, afterLastTick: (end - last) / 1000 }
      : null;
    return { id: s.id, seconds, phases, result: s.result ?? null };
  });
}

/** verify-base hashes the image's tree, then the base's: the "N files hashed" counter starts again at the second. */
function splitVerify(events: ReadonlyArray<{ t: number; e: ProgressEvent }>, probe: Probe): UpgradeSample['verifyBaseSplit'] {
  const start = probe.marks.get('before:verify-base');
  const end = probe.marks.get('after:verify-base');
  if (start === undefined || end === undefined) return null;
  let prev = -1;
  for (const { t, e } of events) {
    if (e.step !== 'verify-base') continue;
    const n = Number(/^(\d+) files hashed/.exec(e.message)?.[1] ?? NaN);
    if (Number.isNaN(n)) continue;
    if (n < prev) return { imageTreeSeconds: (t - start) / 1000, baseTreeSeconds: (end - t) / 1000 };
    prev = n;
  }
  return null;
}

async function upgrade(method: Method, image: BuiltImage, ctx: RunContext, round: number): Promise<UpgradeSample> {
  const { engine, probe } = ctx;
  await dropCaches();
  probe.reset();
  const used0 = poolUsedBlocksSync();
  const events: Array<{ t: number; e: ProgressEvent }> = [];
  const t0 = performance.now();
  let lastStep = '';
  const out = await engine.upgrade(image.imagePath, {
    method,
    onProgress: (e) => {
      events.push({ t: performance.now(), e });
      if (e.step !== lastStep) log(`  ${method}: ${e.step} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      lastStep = e.step;
    },
  });
  const t1 = performance.now();
  if (out.error) throw new Error(`upgrade ${image.label} (${method}) failed: ${out.error.message}`);
  const used1 = poolUsedBlocksSync();
  const steps = WRITE_STEPS[method];
  const first = steps[0] ?? '';
  const last = steps[steps.length - 1] ?? '';
  const wStart = probe.marks.get(`before:${first}`);
  const wEnd = probe.marks.get(`after:${last}`);
  const uStart = probe.used.get(`before:${first}`);
  const uEnd = probe.used.get(`after:${last}`);
  if (wStart === undefined || wEnd === undefined || uStart === undefined || uEnd === undefined) {
    throw new Error(`upgrade ${image.label} (${method}): the probe missed the write steps (${[...probe.marks.keys()].join(' ')})`);
  }
  const sample = {
    method,
    round,
    upgradeSeconds: (t1 - t0) / 1000,
    preflightSeconds: ((probe.marks.get(`before:${first}`) ?? t0) - t0) / 1000,
    writeSeconds: (wEnd - wStart) / 1000,
    poolBytesBase: (uEnd - uStart) * ctx.chunkBytes,
    poolBytesUpgrade: (used1 - used0) * ctx.chunkBytes,
    steps: stepTimings(out.record, probe),
    verifyBaseSplit: splitVerify(events, probe),
  };
  const r0 = performance.now();
  const back = await engine.rollback(ctx.v1Layer);
  if (back.error) throw new Error(`reset: rollback to ${ctx.v1Layer} failed: ${back.error.message}`);
  const rm = await engine.removeBase(image.nvr);
  if (rm.error) throw new Error(`reset: remove-base ${image.nvr} failed: ${rm.error.message}`);
  const resetSeconds = (performance.now() - r0) / 1000;
  return { ...sample, resetSeconds, poolBytesLeftAfterReset: (poolUsedBlocksSync() - used0) * ctx.chunkBytes };
}

// ---- where a delta's pool bytes and time go (outside the engine, same commands) ----------------------------------

interface Measured {
  readonly seconds: number;
  readonly poolBytes: number;
}

interface Diagnosis {
  /** e2fsck -f -y and tune2fs -U random on a fresh snapshot of base v1 (what sync-base does first). */
  readonly e2fsck: Measured;
  readonly newUuid: Measured;
  /** The same with `tune2fs -O metadata_csum_seed -U random` on another fresh snapshot. */
  readonly newUuidCsumSeed: Measured;
  /** Then, on that snapshot: syncTree's rsync (+ sync), fstrim, umount. */
  readonly rsync: Measured;
  readonly fstrim: Measured;
  readonly umount: Measured;
  readonly journalBytes: number;
  readonly rootFeatures: string;
}

/**
 * The steps of sync-base one by one, on thin snapshots of base v1, with pool bytes and time each: is the cost in the
 * changed files or in the filesystem UUID change (metadata_csum: tune2fs -U rewrites every metadata checksum)?
 */
async function diagnoseDelta(image: BuiltImage, ctx: RunContext): Promise<Diagnosis> {
  const lv = 'benchdiag';
  const dev = `/dev/${VG}/${lv}`;
  const mnt = path.join(ctx.work, 'diag-mnt');
  await fs.mkdir(mnt, { recursive: true });
  const measure = async (fn: () => Promise<unknown>): Promise<Measured> => {
    await run(['sync']);
    const u0 = poolUsedBlocksSync();
    const t0 = performance.now();
    await fn();
    await run(['sync']);
    return { seconds: (performance.now() - t0) / 1000, poolBytes: (poolUsedBlocksSync() - u0) * ctx.chunkBytes };
  };
  const snapshot = async (): Promise<void> => {
    await sh('lvcreate', '-qy', '--snapshot', '--setactivationskip', 'n', '--permission', 'rw', '-n', lv, `${VG}/${NVR_V1}`);
    await sh('lvchange', '-qy', '--activate', 'y', `${VG}/${lv}`);
    await run(['udevadm', 'settle']);
  };
  const e2fsck = (): Promise<unknown> => run(['e2fsck', '-f', '-y', dev], { okCodes: [0, 1] });
  try {
    await snapshot();
    const dump = await sh('dumpe2fs', '-h', dev);
    const rootFeatures = /^Filesystem features:\s+(.*)$/m.exec(dump)?.[1] ?? '?';
    const journal = /^(?:Total )?[Jj]ournal size:\s+(\d+)([kM])/m.exec(dump);
    const journalBytes = journal ? Number(journal[1]) * (journal[2] === 'M' ? MiB : KiB) : 0;
    const fsck = await measure(e2fsck);
    const newUuid = await measure(() => run(['tune2fs', '-U', 'random', dev]));
    await sh('lvremove', '-qy', `${VG}/${lv}`);
    await snapshot();
    await e2fsck();
    const newUuidCsumSeed = await measure(() => run(['tune2fs', '-O', 'metadata_csum_seed', '-U', 'random', dev]));
    await dropCaches();
    const opened = await openImage({ imagePath: image.imagePath, workDir: ctx.work });
    try {
      await run(['mount', dev, mnt]);
      const rsync = await measure(() => run(['rsync', '-aHAXS', '--numeric-ids', '--delete', '--modify-window=-1', '--stats', '--no-inc-recursive', '--',
        `${opened.root}/`, `${mnt}/`]));
      const fstrim = await measure(() => run(['fstrim', mnt]));
      const umount = await measure(() => run(['umount', mnt]));
      return { e2fsck: fsck, newUuid, newUuidCsumSeed, rsync, fstrim, umount, journalBytes, rootFeatures };
    } finally {
      await unmountIfMounted(mnt);
      await opened.close();
    }
  } finally {
    await unmountIfMounted(mnt);
    await run(['lvremove', '-qy', `${VG}/${lv}`], { okCodes: [0, 5] });
  }
}

// ---- report -------------------------------------------------------------------------------------------------------

interface PairResult {
  readonly pair: string;
  readonly image: BuiltImage;
  readonly change: PairChange;
  readonly baselines: BaselineSample[];
  readonly upgrades: UpgradeSample[];
  diagnosis?: Diagnosis;
}

interface Results {
  readonly options: Options;
  readonly startedAt: string;
  finishedAt?: string;
  readonly machine: { kernel: string; cpus: number; memBytes: number; accel: string; lvm: string };
  pool?: { chunkBytes: number; dataBytes: number; usedAfterInitBytes: number };
  setup: Record<string, number>;
  imageSet?: { builtAt: string; builtOn: string; buildSeconds: Readonly<Record<string, number>> };
  v1?: BuiltImage;
  pairs: PairResult[];
}

function best<T extends { seconds?: number; upgradeSeconds?: number }>(xs: readonly T[]): T | undefined {
  const key = (x: T): number => x.upgradeSeconds ?? x.seconds ?? Infinity;
  return [...xs].sort((a, b) => key(a) - key(b))[0];
}

const mib = (n: number): string => (n / MiB).toFixed(1);
const sec = (n: number): string => n.toFixed(1);
const ratio = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const mark = (ok: boolean): string => (ok ? 'met' : '**missed**');

function report(res: Results): string {
  const pool = res.pool;
  const lines: string[] = [];
  const v1 = res.v1;
  lines.push(`## Delta bases vs full writes on dm-thin (bench/delta.ts)`);
  lines.push('');
  lines.push(`Guest: ${res.machine.kernel}, ${res.machine.cpus} CPU, ${mib(res.machine.memBytes)} MiB, ${res.machine.accel}, ${res.machine.lvm}. ` +
    `Pool ${pool ? mib(pool.dataBytes) : '?'} MiB, chunk ${pool ? pool.chunkBytes / KiB : '?'} KiB. ` +
    `Rounds ${res.options.rounds} (fastest shown), seed ${res.options.seed}${res.options.quick ? ', QUICK mode' : ''}.`);
  if (v1) {
    lines.push(`v1: ${v1.entries} entries (${v1.regularFiles} regular files), ${mib(v1.treeBytes)} MiB of file data, ` +
      `squashfs ${mib(v1.imageBytes)} MiB.`);
  }
  lines.push('');
  lines.push('| pair | files changed (new) / entries removed | changed bytes MiB | v2 file data MiB |');
  lines.push('|---|---|---|---|');
  for (const p of res.pairs) {
    lines.push(`| ${p.pair} | ${p.change.changedFiles} (${p.change.newFiles}) / ${p.change.removedEntries} ` +
      `= ${(100 * p.change.changedFiles / Math.max(1, p.image.regularFiles)).toFixed(1)} % | ${mib(p.change.changedBytes)} | ${mib(p.change.totalBytes)} |`);
  }
  lines.push('');
  lines.push('| pair | how | pool MiB added by the base | ÷ changed bytes | write s | upgrade s | ÷ same-pair full (blocks / tree) | ÷ plain copy (write / upgrade) |');
  lines.push('|---|---|---|---|---|---|---|---|');
  const goals: string[] = [];
  for (const p of res.pairs) {
    const bl = { blocks: best(p.baselines.filter((b) => b.kind === 'blocks')), tree: best(p.baselines.filter((b) => b.kind === 'tree')) };
    const up = {
      blocks: best(p.upgrades.filter((u) => u.method === 'blocks')),
      tree: best(p.upgrades.filter((u) => u.method === 'tree')),
      delta: best(p.upgrades.filter((u) => u.method === 'delta')),
    };
    const cb = p.change.changedBytes;
    for (const k of ['blocks', 'tree'] as const) {
      const b = bl[k];
      if (b) lines.push(`| ${p.pair} | plain copy, ${k === 'blocks' ? 'dd of rootfs.img' : 'mkfs + cp -a'} | ${mib(b.poolBytes)} | ${ratio(b.poolBytes / cb)} | ${sec(b.seconds)} | — | — | 1.00 |`);
    }
    for (const k of ['blocks', 'tree', 'delta'] as const) {
      const u = up[k];
      if (!u) continue;
      const vsFull = k === 'delta'
        ? `${ratio(u.upgradeSeconds / (up.blocks?.upgradeSeconds ?? NaN))} / ${ratio(u.upgradeSeconds / (up.tree?.upgradeSeconds ?? NaN))}`
        : '—';
      const plain = k === 'delta' ? undefined : bl[k];
      const vsPlain = plain ? `${ratio(u.writeSeconds / plain.seconds)} / ${ratio(u.upgradeSeconds / plain.seconds)}` : '—';
      lines.push(`| ${p.pair} | upgrade, ${k} | ${mib(u.poolBytesBase)} | ${ratio(u.poolBytesBase / cb)} | ${sec(u.writeSeconds)} | ${sec(u.upgradeSeconds)} | ${vsFull} | ${vsPlain} |`);
    }
    const d = up.delta;
    const small = p.pair.startsWith('small');
    if (d && small) {
      const r1 = d.poolBytesBase / cb;
      goals.push(`| ${p.pair} | delta pool bytes ÷ changed bytes ≤ 1.2 | ${ratio(r1)} | ${mark(r1 <= 1.2)} |`);
      for (const k of ['blocks', 'tree'] as const) {
        const f = up[k];
        if (f) {
          const r2 = d.upgradeSeconds / f.upgradeSeconds;
          goals.push(`| ${p.pair} | delta upgrade time ÷ full (${k}) upgrade time ≤ 0.3 | ${ratio(r2)} | ${mark(r2 <= 0.3)} |`);
        }
      }
    } else if (d) {
      goals.push(`| ${p.pair} | (no goal) delta pool bytes ÷ changed bytes; delta ÷ full (blocks) time | ${ratio(d.poolBytesBase / cb)}; ${ratio(d.upgradeSeconds / (up.blocks?.upgradeSeconds ?? NaN))} | — |`);
    }
    for (const k of ['blocks', 'tree'] as const) {
      const f = up[k];
      const b = bl[k];
      if (f && b) {
        const r3 = f.upgradeSeconds / b.seconds;
        goals.push(`| ${p.pair} | full (${k}) upgrade time ÷ plain ${k} copy ≤ 1.15 | ${ratio(r3)} (write step alone: ${ratio(f.writeSeconds / b.seconds)}) | ${mark(r3 <= 1.15)} |`);
      }
    }
    if (pool && up.blocks && d) {
      const P = pool.dataBytes;
      const full = up.blocks.poolBytesBase;
      goals.push(`| ${p.pair} | bases in a ${mib(P)} MiB pool (computed from the measured bytes; layers ignored): full / delta | ` +
        `${Math.floor(P / full)} / ${1 + Math.floor((P - full) / d.poolBytesBase)} | — |`);
    }
  }
  lines.push('');
  lines.push('| pair | goal (issue 10) | measured | |');
  lines.push('|---|---|---|---|');
  lines.push(...goals);
  lines.push('');
  lines.push('Where the time goes (fastest round; s; sync-base = new UUID/grow/mount | rsync | fstrim+umount; write-base = copy | grow+new UUID):');
  lines.push('');
  lines.push('| pair | how | preflight (verify+open) | write steps | other steps | step details |');
  lines.push('|---|---|---|---|---|---|');
  for (const p of res.pairs) {
    for (const k of ['blocks', 'tree', 'delta'] as const) {
      const u = best(p.upgrades.filter((x) => x.method === k));
      if (!u) continue;
      const details = u.steps.filter((s) => WRITE_STEPS[k].includes(s.id)).map((s) => {
        const ph = s.phases ? ` (${sec(s.phases.beforeFirstTick)} \\| ${sec(s.phases.ticking)} \\| ${sec(s.phases.afterLastTick)})` : '';
        const vs = s.id === 'verify-base' && u.verifyBaseSplit
          ? ` (image tree ${sec(u.verifyBaseSplit.imageTreeSeconds)} + base ${sec(u.verifyBaseSplit.baseTreeSeconds)})`
          : '';
        return `${s.id} ${sec(s.seconds)}${ph}${vs}`;
      }).join('; ');
      const other = u.upgradeSeconds - u.preflightSeconds - u.writeSeconds;
      lines.push(`| ${p.pair} | ${k} | ${sec(u.preflightSeconds)} | ${sec(u.writeSeconds)} | ${sec(other)} | ${details} |`);
    }
  }
  for (const p of res.pairs) {
    const d = p.diagnosis;
    if (!d) continue;
    const m = (x: Measured): string => `${sec(x.seconds)} s, ${mib(x.poolBytes)} MiB`;
    lines.push('');
    lines.push(`Diagnosis, ${p.pair}: sync-base's commands one by one on fresh thin snapshots of base v1 ` +
      `(root fs features: ${d.rootFeatures}; journal ${mib(d.journalBytes)} MiB):`);
    lines.push('');
    lines.push('| command | time, pool bytes added |');
    lines.push('|---|---|');
    lines.push(`| e2fsck -f -y | ${m(d.e2fsck)} |`);
    lines.push(`| tune2fs -U random (what the engine does) | ${m(d.newUuid)} |`);
    lines.push(`| tune2fs -O metadata_csum_seed -U random (instead) | ${m(d.newUuidCsumSeed)} |`);
    lines.push(`| rsync -aHAXS --delete … (+ sync) | ${m(d.rsync)} |`);
    lines.push(`| fstrim | ${m(d.fstrim)} |`);
    lines.push(`| umount | ${m(d.umount)} |`);
    const csumTotal = d.newUuidCsumSeed.poolBytes + d.rsync.poolBytes + d.fstrim.poolBytes + d.umount.poolBytes;
    lines.push(`| **delta with metadata_csum_seed** (UUID + rsync + fstrim + umount) | ${mib(csumTotal)} MiB = ${ratio(csumTotal / p.change.changedBytes)} × changed bytes |`);
  }
  return lines.join('\n') + '\n';
}

// ---- main ---------------------------------------------------------------------------------------------------------

function log(msg: string): void {
  process.stderr.write(`[bench-delta ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function timedStep<T>(res: Results, name: string, fn: () => Promise<T>): Promise<T> {
  log(`${name}…`);
  const t0 = performance.now();
  const v = await fn();
  res.setup[name] = (performance.now() - t0) / 1000;
  log(`${name}: ${sec(res.setup[name] ?? 0)} s`);
  return v;
}

async function save(res: Results, out: string): Promise<void> {
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(out, JSON.stringify(res, null, 2) + '\n');
}

/** --plan-only: the generated trees' statistics (no root, no disk, no images). */
function planOnly(o: Options): void {
  const v1 = generateV1(o);
  const stats = (t: Tree): string => {
    const files = [...t.entries.values()].filter((e): e is FileEnt => e.kind === 'file');
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const sorted = files.map((f) => f.size).sort((a, b) => a - b);
    return `${t.label}: ${t.entries.size} entries, ${files.length} files, ${mib(bytes)} MiB, median ${sorted[sorted.length >> 1] ?? 0} B, ` +
      `≥ 1 MiB: ${files.filter((f) => f.size >= MiB).length}, symlinks ${[...t.entries.values()].filter((e) => e.kind === 'symlink').length}, ` +
      `hard links ${[...t.entries.values()].filter((e) => e.kind === 'hardlink').length}, xattrs ${files.filter((f) => f.xattrs).length}, acls ${files.filter((f) => f.acl).length}`;
  };
  process.stdout.write(`${stats(v1)}\n`);
  for (const plan of [{ label: 'v2small', fraction: 0.03 }, { label: 'v2large', fraction: 0.55 }]) {
    const v2 = deriveV2(v1, plan, o);
    let changed = 0;
    let added = 0;
    let bytes = 0;
    for (const [rel, e] of v2.entries) {
      const old = v1.entries.get(rel);
      if (e.kind !== 'file') continue;
      if (old === undefined) added++;
      if (old?.kind !== 'file' || old.ver !== e.ver) {
        changed++;
        bytes += e.size;
      }
    }
    const removed = [...v1.entries.keys()].filter((k) => !v2.entries.has(k)).length;
    process.stdout.write(`${stats(v2)}; changed ${changed} (${added} new, ${(100 * changed / v1.entries.size).toFixed(1)} %), removed ${removed}, changed ${mib(bytes)} MiB\n`);
  }
}

/** Bump when the generated trees change, so stored image sets are rebuilt. */
const GENERATOR_VERSION = 1;

interface ImageSetFile {
  readonly generator: number;
  readonly files: number;
  readonly seed: number;
  readonly quick: boolean;
  readonly builtAt: string;
  readonly builtOn: string;
  /** Paths relative to the set's directory. */
  readonly trustedKey: string;
  readonly v1: BuiltImage;
  readonly pairs: ReadonlyArray<{ readonly pair: string; readonly image: BuiltImage; readonly change: PairChange }>;
  readonly buildSeconds: Readonly<Record<string, number>>;
}

function relocate(img: BuiltImage, from: string, to: string): BuiltImage {
  return { ...img, imagePath: path.join(to, path.relative(from, img.imagePath)) };
}

/** The image set in `dir`: reused when images.json says it was made with the same generator, files, seed and mode. */
async function imageSetIn(dir: string, o: Options): Promise<ImageSetFile> {
  try {
    const set = JSON.parse(await fs.readFile(path.join(dir, 'images.json'), 'utf8')) as ImageSetFile;
    if (set.generator === GENERATOR_VERSION && set.files === o.files && set.seed === o.seed && set.quick === o.quick) {
      log(`reusing the image set in ${dir} (built ${set.builtAt} on ${set.builtOn})`);
      return {
        ...set,
        trustedKey: path.join(dir, set.trustedKey),
        v1: relocate(set.v1, '.', dir),
        pairs: set.pairs.map((p) => ({ ...p, image: relocate(p.image, '.', dir) })),
      };
    }
    log(`the image set in ${dir} was made with other options: building it again`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return buildImageSet(dir, o);
}

async function buildImageSet(dir: string, o: Options): Promise<ImageSetFile> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const times: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    log(`${name}…`);
    const t0 = performance.now();
    const v = await fn();
    times[name] = (performance.now() - t0) / 1000;
    log(`${name}: ${sec(times[name] ?? 0)} s`);
    return v;
  };
  const key = await createTestSigningKey(path.join(dir, 'key'));
  const v1Tree = generateV1(o);
  const builderHashes = new Map<string, string>();
  const v1 = await timed('build v1', () => buildImage({ tree: v1Tree, v1: v1Tree, nvr: NVR_V1, key, work: dir, builderHashes }));
  const pairs: Array<{ pair: string; image: BuiltImage; change: PairChange }> = [];
  for (const [pair, plan] of [['small (≥ 3 %)', { label: 'v2small', fraction: 0.03 }], ['large (≥ 55 %)', { label: 'v2large', fraction: 0.55 }]] as const) {
    const tree = deriveV2(v1Tree, plan, o);
    const b = await timed(`build ${plan.label}`, () => buildImage({ tree, v1: v1Tree, nvr: NVR_V2, key, work: dir, builderHashes }));
    pairs.push({ pair, ...b });
    log(`${plan.label}: ${b.change.changedFiles} files changed (${b.change.newFiles} new), ${b.change.removedEntries} removed, ` +
      `${mib(b.change.changedBytes)} MiB changed of ${mib(b.change.totalBytes)}`);
  }
  const set: ImageSetFile = {
    generator: GENERATOR_VERSION, files: o.files, seed: o.seed, quick: o.quick, builtAt: new Date().toISOString(), builtOn: os.hostname(),
    trustedKey: path.join(key.trustedKeysDir, 'test.asc'), v1: v1.image, pairs, buildSeconds: times,
  };
  const stored: ImageSetFile = {
    ...set,
    trustedKey: path.relative(dir, set.trustedKey),
    v1: relocate(set.v1, dir, '.'),
    pairs: set.pairs.map((p) => ({ ...p, image: relocate(p.image, dir, '.') })),
  };
  await fs.writeFile(path.join(dir, 'images.json'), JSON.stringify(stored, null, 2) + '\n');
  return set;
}

/** Copy an image and its sidecars to the local scratch disk (the set may sit on the 9p share). */
async function localCopy(img: BuiltImage, dir: string): Promise<BuiltImage> {
  await fs.mkdir(dir, { recursive: true });
  for (const suffix of ['', '.sha256', '.sig']) {
    await fs.copyFile(`${img.imagePath}${suffix}`, path.join(dir, `${path.basename(img.imagePath)}${suffix}`));
  }
  return { ...img, imagePath: path.join(dir, path.basename(img.imagePath)) };
}

async function main(): Promise<void> {
  if (process.argv.includes('--plan-only')) {
    planOnly(parseOptions(process.argv.slice(2)));
    return;
  }
  const o = parseOptions(process.argv.slice(2));
  const again = process.argv.indexOf('--report');
  if (again >= 0) {
    // re-render the table of a results file (e.g. of a run that stopped early)
    const file = path.resolve(process.argv[again + 1] ?? '');
    process.stdout.write(report(JSON.parse(await fs.readFile(file, 'utf8')) as Results));
    return;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(o.buildOnly ? 'run as root (the image builder sets owners and xattrs, loop mounts)'
      : 'run as root, inside the VM guest (scripts/bench-vm.sh): it wipes the blank test disk');
  }
  if (o.buildOnly) {
    if (o.images === null) throw new Error('--build-only needs --images DIR');
    await imageSetIn(o.images, o);
    return;
  }
  const accel = (await run(['systemd-detect-virt'], { okCodes: [0, 1] })).stdout.trim();
  const res: Results = {
    options: o,
    startedAt: new Date().toISOString(),
    machine: {
      kernel: `${os.type()} ${os.release()}`, cpus: os.cpus().length, memBytes: os.totalmem(),
      accel: `virt=${accel || 'none'}, cpu "${os.cpus()[0]?.model ?? '?'}"`,
      lvm: (await run(['lvm', 'version'])).stdout.split('\n')[0]?.trim() ?? 'lvm',
    },
    setup: {},
    pairs: [],
  };
  log(`options ${JSON.stringify(o)}; results → ${o.out}`);
  const host = await timedStep(res, 'disk', () => prepareDisk(o));
  try {
    const work = host.scratchMount;
    const set = await timedStep(res, 'image set', async () => {
      const s = await imageSetIn(o.images ?? path.join(work, 'image-set'), o);
      const local = path.join(work, 'images');
      return { ...s, v1: await localCopy(s.v1, local), pairs: await Promise.all(s.pairs.map(async (p) => ({ ...p, image: await localCopy(p.image, local) }))) };
    });
    res.imageSet = { builtAt: set.builtAt, builtOn: set.builtOn, buildSeconds: set.buildSeconds };
    res.v1 = set.v1;
    const built = set.pairs;
    await timedStep(res, 'install', () => installHost(host, set.v1, set.trustedKey));
    const probe = new Probe();
    const engine = await Engine.open({ sysroot: host.sysroot, failpoints: probe });
    await timedStep(res, 'init', async () => {
      const init = await engine.init('root', null, { initiator: 'bench' });
      if (init.error) throw new Error(`init failed: ${init.error.message}`);
    });
    const v1Layer = await bootSandbox(engine);
    const info = await poolInfo();
    res.pool = { ...info, usedAfterInitBytes: poolUsedBlocksSync() * info.chunkBytes };
    const ctx: RunContext = { work, engine, probe, chunkBytes: info.chunkBytes, v1Layer };
    for (const b of built) {
      const methods = b === built[0] ? o.methods : o.largeMethods;
      const pr: PairResult = { pair: b.pair, image: b.image, change: b.change, baselines: [], upgrades: [] };
      res.pairs.push(pr);
      for (let round = 1; round <= o.rounds; round++) {
        for (const kind of ['blocks', 'tree'] as const) {
          if (!methods.includes(kind)) continue;
          const s = await baseline(kind, b.image, ctx, round);
          pr.baselines.push(s);
          log(`${b.pair} round ${round}: plain ${kind} copy ${sec(s.seconds)} s, ${mib(s.poolBytes)} MiB`);
          await save(res, o.out);
        }
        for (const method of methods) {
          const u = await upgrade(method, b.image, ctx, round);
          pr.upgrades.push(u);
          log(`${b.pair} round ${round}: upgrade ${method} ${sec(u.upgradeSeconds)} s (write ${sec(u.writeSeconds)} s), ` +
            `base ${mib(u.poolBytesBase)} MiB, reset ${sec(u.resetSeconds)} s`);
          await save(res, o.out);
        }
      }
      if (methods.includes('delta') && pr === res.pairs[0]) {
        try {
          pr.diagnosis = await timedStep(res, `diagnosis ${b.pair}`, () => diagnoseDelta(b.image, ctx));
        } catch (e) {
          log(`diagnosis failed (the measurements go on): ${e instanceof Error ? e.message : String(e)}`);
        }
        await save(res, o.out);
      }
    }
  } finally {
    res.finishedAt = new Date().toISOString();
    await save(res, o.out);
    await teardown(host).catch((e: unknown) => log(`teardown: ${String(e)}`));
  }
  const table = report(res);
  await fs.writeFile(o.out.replace(/\.json$/, '') + '.md', table);
  process.stdout.write(`\n${table}\nraw results: ${o.out}\n`);
}

runMain(main);
