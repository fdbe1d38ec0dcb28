/**
 * Benchmark: writing a base volume from a delivered image, on this host with loop devices (run as root):
 *   npx tsc -p tsconfig.build.json && node dist/bench/base-write.js [--rounds N] [--small N] [--large N] [--large-mb N]
 *
 * Builds a realistic image (many small files + some large ones), then times, per round, into fresh targets:
 *   baseline   unsquashfs LiveOS/rootfs.img to disk + plain cp onto a loop device + e2fsck/resize2fs/tune2fs -U
 *   copyTree   mkfs.ext4 + mount + copyTree (cp -a) + umount
 *   rsync      mkfs.ext4 + mount + rsync -aHAX --numeric-ids (the way real imgbased copies) + umount
 *   copyBlocks copyBlocks (sparse) onto a loop device + e2fsck -f + resize2fs + tune2fs -U random, with one chunk in
 *              flight and with the default (defaultCopyConcurrency())
 *   … + manifest  the same while the image's manifest is built alongside (what write-base does since it stores it)
 * and checks each result's tree against the image's (manifest: types, modes, owners, mtimes, contents, xattrs, links).
 * Prints the best of the rounds and the ratio vs the baseline. Not a test: numbers vary with the host's load.
 */
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openImage } from '../src/image/inspect';
import { unmountIfMounted } from '../src/image/mount';
import { buildTestImage, type TestFileSpec } from '../src/image/test-image-builder';
import { alongsideImageManifest } from '../src/image/image-manifest';
import { buildManifest, compareManifests, summarizeDiff, type Manifest } from '../src/image/manifest';
import { copyBlocks, copyTree, defaultCopyConcurrency } from '../src/image/write-base';
import { run } from '../src/system/run';
import { arg, withLoop } from './common';

const MiB = 1024 * 1024;
const TARGET_BYTES = 2048 * MiB;

async function sparseFile(path: string, bytes: number): Promise<void> {
  await writeFile(path, '');
  await truncate(path, bytes);
}

async function growAndNewUuid(dev: string): Promise<void> {
  await run(['e2fsck', '-f', '-p', dev]);
  await run(['resize2fs', dev]);
  await run(['tune2fs', '-U', 'random', dev]);
}

/** Mount `dev` read-only at `mnt`, compare with the image tree, unmount. */
async function checkTree(dev: string, mnt: string, expected: Manifest): Promise<string[]> {
  await run(['mount', '-t', 'ext4', '-o', 'ro', dev, mnt]);
  try {
    const diff = compareManifests(expected, await buildManifest(mnt));
    return diff.equal ? [] : [summarizeDiff(diff, 5)];
  } finally {
    await unmountIfMounted(mnt);
  }
}

interface Sample {
  seconds: number;
  diff: string[];
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (loop devices, mounts)');
  const rounds = arg('rounds', 2);
  const small = arg('small', 20000);
  const large = arg('large', 6);
  const largeMb = arg('large-mb', 40);
  const work = await mkdtemp('/var/tmp/imgbased-bench-');
  const workDir = join(work, 'mnt');
  await mkdir(workDir);
  try {
    const files: Record<string, TestFileSpec> = {};
    for (let i = 0; i < small; i++) {
      files[`usr/share/bench/d${i % 250}/f${i}.txt`] = { kind: 'generated', sizeBytes: 512 + ((i * 7919) % 16384), compressibility: 0.7 };
    }
    for (let i = 0; i < large; i++) files[`usr/lib64/bench/large${i}.so`] = { kind: 'generated', sizeBytes: largeMb * MiB, compressibility: 0.5 };
    const scratchDir = '/dev/shm';
    const t0 = process.hrtime.bigint();
    const { imagePath } = await buildTestImage({ outDir: work, scratchDir, nvr: 'ovirt-node-ng-4.5.6-0.20250101.0', files });
    const buildSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const img = await openImage({ imagePath, workDir });
    try {
      console.log(
        `image: ${small} small + ${large}×${largeMb} MiB files; ${(img.usedBytes / MiB).toFixed(0)} MiB used in a ` +
          `${(img.imageSizeBytes / MiB).toFixed(0)} MiB ${img.fsType} rootfs.img; built in ${buildSeconds.toFixed(1)} s`,
      );
      const expected = await buildManifest(img.root);
      const mnt = join(work, 'check');
      await mkdir(mnt);

      /** copyBlocks (+ grow + new UUID) onto a fresh sparse loop device; `copy` gets the device. */
      const blocksMethod = async (round: number, tag: string, copy: (dev: string) => Promise<unknown>): Promise<Sample> => {
        const backing = join(work, `${tag}-${round}.img`);
        await sparseFile(backing, TARGET_BYTES);
        try {
          return await withLoop(backing, async (dev) => {
            const seconds = await timed(async () => {
              await copy(dev);
              await growAndNewUuid(dev);
            });
            return { seconds, diff: await checkTree(dev, mnt, expected) };
          });
        } finally {
          await rm(backing, { force: true });
        }
      };
      const methods: Record<string, (round: number) => Promise<Sample>> = {
        'baseline (unsquashfs + cp)': async (round) => {
          const backing = join(work, `base-${round}.img`);
          const extract = join(work, `extract-${round}`);
          await sparseFile(backing, TARGET_BYTES);
          try {
            return await withLoop(backing, async (dev) => {
              const seconds = await timed(async () => {
                await run(['unsquashfs', '-q', '-n', '-f', '-d', extract, imagePath, 'LiveOS/rootfs.img']);
                await run(['cp', '--sparse=never', join(extract, 'LiveOS/rootfs.img'), dev]);
                await run(['sync', dev]);
                await growAndNewUuid(dev);
              });
              return { seconds, diff: await checkTree(dev, mnt, expected) };
            });
          } finally {
            await rm(extract, { recursive: true, force: true });
            await rm(backing, { force: true });
          }
        },
        'copyTree (cp -a)': async (round) => treeMethod(work, round, 'tree', expected, async (dst) => {
          await copyTree({ srcRoot: img.root, dstRoot: dst, onProgress: () => undefined });
        }),
        'copyTree + manifest': async (round) => treeMethod(work, round, 'treem', expected, async (dst) => {
          await alongsideImageManifest({ root: img.root }, new AbortController().signal, () =>
            copyTree({ srcRoot: img.root, dstRoot: dst, onProgress: () => undefined }));
        }),
        'rsync -aHAX (imgbased way)': async (round) => treeMethod(work, round, 'rsync', expected, async (dst) => {
          await run(['rsync', '-aHAX', '--numeric-ids', '--sparse', `${img.root}/`, `${dst}/`]);
        }),
        'copyBlocks, 1 in flight': (round) => blocksMethod(round, 'blocks1', (dev) =>
          copyBlocks({ rootfsImage: img.rootfsImage, device: dev, concurrency: 1 })),
        [`copyBlocks, ${defaultCopyConcurrency()} in flight`]: (round) => blocksMethod(round, 'blocksn', (dev) =>
          copyBlocks({ rootfsImage: img.rootfsImage, device: dev })),
        [`copyBlocks, ${defaultCopyConcurrency()} + manifest`]: (round) => blocksMethod(round, 'blocksm', (dev) =>
          alongsideImageManifest({ root: img.root }, new AbortController().signal, () =>
            copyBlocks({ rootfsImage: img.rootfsImage, device: dev }))),
      };

      const best = new Map<string, Sample>();
      for (let round = 0; round < rounds; round++) {
        for (const [name, fn] of Object.entries(methods)) {
          const s = await fn(round);
          const prev = best.get(name);
          if (prev === undefined || s.seconds < prev.seconds) best.set(name, { seconds: s.seconds, diff: prev?.diff.length ? prev.diff : s.diff });
          else if (s.diff.length) prev.diff = s.diff;
        }
      }
      const base = best.get('baseline (unsquashfs + cp)')?.seconds ?? NaN;
      console.log(`\nbest of ${rounds} rounds (target ${TARGET_BYTES / MiB} MiB, page cache warm, host load ${(await loadavg()).trim()})`);
      console.log(`${'method'.padEnd(32)} ${'seconds'.padStart(8)} ${'ratio'.padStart(7)}  tree matches image`);
      for (const [name, s] of best) {
        console.log(
          `${name.padEnd(32)} ${s.seconds.toFixed(2).padStart(8)} ${(s.seconds / base).toFixed(2).padStart(7)}  ${s.diff.length === 0 ? 'yes' : `NO: ${s.diff.join('; ')}`}`,
        );
      }
    } finally {
      await img.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function loadavg(): Promise<string> {
  return (await run(['cat', '/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ');
}

/** Fresh ext4 on a loop file, mounted; the timed part is mkfs + mount + copy + umount. */
async function treeMethod(
  work: string,
  round: number,
  tag: string,
  expected: Manifest,
  copy: (dst: string) => Promise<void>,
): Promise<Sample> {
  const backing = join(work, `${tag}-${round}.img`);
  const dst = join(work, `${tag}-${round}`);
  await sparseFile(backing, TARGET_BYTES);
  await mkdir(dst);
  try {
    return await withLoop(backing, async (dev) => {
      const seconds = await timed(async () => {
        await run(['mkfs.ext4', '-q', '-F', '-E', 'discard', dev]);
        await run(['mount', '-t', 'ext4', dev, dst]);
        try {
          await copy(dst);
        } finally {
          await unmountIfMounted(dst);
        }
      });
      // manifests exclude lost+found's contents only by being equal; the fresh fs has its own, same attributes
      return { seconds, diff: await checkTree(dev, dst, expected) };
    });
  } finally {
    await unmountIfMounted(dst);
    await rm(dst, { recursive: true, force: true });
    await rm(backing, { force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
