/**
 * Benchmark (issue 10), the native counterpart of bench/delta.ts: the same image set (built by
 * `scripts/bench-vm.sh` / `node dist/bench/delta.js --build-only --images DIR`), the same base-writing work, but on
 * this host's own CPU with loop devices instead of dm-thin under TCG. It answers one question the VM bench cannot:
 * how delta and full writes compare when hashing is not emulated (under TCG sha256 runs ~50x slower than natively,
 * while I/O to the RAM-backed virtual disk is only a few times slower, which skews every ratio towards the copy).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/delta-native.js --images DIR [--rounds N]      (root)
 *
 * Per pair (small, large) and round, each after `sync; echo 3 > drop_caches`, into a fresh sparse file on a loop
 * device (no pool: bytes are not measured here, bench/delta.ts does that on dm-thin):
 *   plain dd        dd bs=64K conv=sparse,fsync of v2's LiveOS/rootfs.img (the VM bench's baseline)
 *   blocks          what write-base does: copyBlocks with the image's manifest alongside, then e2fsck -f,
 *                   tune2fs -U (with metadata_csum_seed), resize2fs
 *   delta           what snapshot-base + sync-base + verify-base do, on a copy of base v1 (the copy stands in for the
 *                   thin snapshot and is not timed): new UUID, mount, rsync with the image's manifest alongside, the
 *                   quick-check-blind resend, fstrim, umount, then mount read-only, the base's manifest, compare
 * Prints the fastest round of each and the ratios delta ÷ blocks and blocks ÷ dd.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { alongsideImageManifest, imageManifest } from '../src/image/image-manifest';
import { openImage, type OpenedImage } from '../src/image/inspect';
import { buildManifest, compareManifests, summarizeDiff, type Manifest } from '../src/image/manifest';
import { quickCheckBlind, resyncFiles, syncTree } from '../src/image/sync-base';
import { copyBlocks } from '../src/image/write-base';
import { ext4Features, uuidChangeArgs } from '../src/storage/lvm';
import { run } from '../src/system/run';
import { arg, runMain, withLoop } from './common';

const BASE_BYTES = 1024 * 1024 * 1024;

interface ImageRef { nvr: string; imagePath: string }
interface ImageSet { v1: ImageRef; pairs: Array<{ pair: string; image: ImageRef }> }

function parseSet(raw: unknown): ImageSet {
  const ref = (x: unknown): ImageRef => {
    const o = x as { nvr?: unknown; imagePath?: unknown } | null;
    if (typeof o?.nvr !== 'string' || typeof o.imagePath !== 'string') throw new Error('images.json: an image without nvr/imagePath');
    return { nvr: o.nvr, imagePath: o.imagePath };
  };
  const o = raw as { v1?: unknown; pairs?: unknown } | null;
  if (!Array.isArray(o?.pairs)) throw new Error('images.json: no pairs');
  return {
    v1: ref(o?.v1),
    pairs: o.pairs.map((p: unknown) => {
      const q = p as { pair?: unknown; image?: unknown } | null;
      if (typeof q?.pair !== 'string') throw new Error('images.json: a pair without a name');
      return { pair: q.pair, image: ref(q.image) };
    }),
  };
}

async function dropCaches(): Promise<void> {
  await run(['sync']);
  await fs.writeFile('/proc/sys/vm/drop_caches', '3\n');
}

async function timed(fn: () => Promise<void>): Promise<number> {
  await dropCaches();
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function freshFile(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fs.writeFile(file, '');
  await fs.truncate(file, BASE_BYTES);
}

async function newUuidAndGrow(dev: string): Promise<void> {
  await run(['e2fsck', '-f', '-y', dev], { okCodes: [0, 1] });
  await run(['tune2fs', ...uuidChangeArgs(ext4Features((await run(['tune2fs', '-l', dev])).stdout)), dev]);
  await run(['resize2fs', dev]);
}

const never = new AbortController().signal;

async function writeBlocks(image: OpenedImage, file: string): Promise<void> {
  await freshFile(file);
  await withLoop(file, async (dev) => {
    await alongsideImageManifest(image, never, () => copyBlocks({ rootfsImage: image.rootfsImage, device: dev }));
    await newUuidAndGrow(dev);
  });
}

async function deltaWrite(image: OpenedImage, origin: string, file: string, mnt: string, originManifest: Manifest): Promise<void> {
  await withLoop(file, async (dev) => {
    await run(['e2fsck', '-f', '-y', dev], { okCodes: [0, 1] });
    await run(['tune2fs', ...uuidChangeArgs(ext4Features((await run(['tune2fs', '-l', dev])).stdout)), dev]);
    await run(['mount', '-t', 'ext4', dev, mnt]);
    try {
      const { manifest } = await alongsideImageManifest(image, never, () => syncTree({ srcRoot: image.root, dstRoot: mnt }));
      const blind = quickCheckBlind(originManifest, manifest);
      if (blind.length > 0) await resyncFiles({ srcRoot: image.root, dstRoot: mnt, paths: blind });
      await run(['fstrim', mnt]);
    } finally {
      await run(['umount', mnt]);
    }
    await run(['mount', '-t', 'ext4', '-o', 'ro', dev, mnt]);
    try {
      const diff = compareManifests(await imageManifest(image), await buildManifest(mnt));
      if (!diff.equal) throw new Error(`delta base differs from ${origin}: ${summarizeDiff(diff)}`);
    } finally {
      await run(['umount', mnt]);
    }
  });
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--images');
  const dir = i >= 0 ? process.argv[i + 1] : undefined;
  if (dir === undefined) throw new Error('usage: delta-native --images DIR [--rounds N]');
  const rounds = arg('rounds', 2);
  const set = parseSet(JSON.parse(await fs.readFile(path.join(dir, 'images.json'), 'utf8')));
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-delta-native-'));
  const mnt = path.join(work, 'mnt');
  await fs.mkdir(mnt);
  const open = (ref: ImageRef): Promise<OpenedImage> => openImage({ imagePath: path.join(dir, ref.imagePath), workDir: work });
  const rows: string[] = [];
  try {
    // base v1 as a block write leaves it (no timing), and the manifest stored with it
    const v1 = await open(set.v1);
    const base = path.join(work, 'base-v1.img');
    let originManifest: Manifest;
    try {
      await writeBlocks(v1, base);
      originManifest = await imageManifest(v1);
    } finally {
      await v1.close();
    }
    for (const { pair, image: ref } of set.pairs) {
      const best = { dd: Infinity, blocks: Infinity, delta: Infinity };
      for (let r = 0; r < rounds; r++) {
        const target = path.join(work, 'target.img');
        await freshFile(target);
        const v2 = await open(ref); // a fresh open each time: the manifest memo must not carry over
        try {
          best.dd = Math.min(best.dd, await timed(() => withLoop(target, async (dev) => {
            await run(['dd', `if=${v2.rootfsImage}`, `of=${dev}`, 'bs=64K', 'conv=sparse,fsync', 'status=none']);
          })));
        } finally {
          await v2.close();
        }
        const v2b = await open(ref);
        try {
          best.blocks = Math.min(best.blocks, await timed(() => writeBlocks(v2b, target)));
        } finally {
          await v2b.close();
        }
        await fs.rm(target, { force: true });
        await run(['cp', '--sparse=always', base, target]);
        const v2d = await open(ref);
        try {
          best.delta = Math.min(best.delta, await timed(() => deltaWrite(v2d, set.v1.nvr, target, mnt, originManifest)));
        } finally {
          await v2d.close();
        }
        process.stderr.write(`[delta-native] ${pair} round ${r + 1}: dd ${best.dd.toFixed(2)} s, blocks ${best.blocks.toFixed(2)} s, delta ${best.delta.toFixed(2)} s (best so far)\n`);
      }
      rows.push(`| ${pair} | ${best.dd.toFixed(2)} | ${best.blocks.toFixed(2)} | ${best.delta.toFixed(2)} | ${(best.blocks / best.dd).toFixed(2)} | ${(best.delta / best.blocks).toFixed(2)} |`);
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  const load = (await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  process.stdout.write(
    `## Delta vs full base writes, native (bench/delta-native.ts; loop devices, ${os.cpus().length} CPU, load ${load}, best of ${rounds})\n\n` +
    '| pair | plain dd s | blocks (+ manifest) s | delta (sync + verify) s | blocks ÷ dd | delta ÷ blocks |\n|---|---|---|---|---|---|\n' +
    rows.join('\n') + '\n',
  );
}

runMain(main);
