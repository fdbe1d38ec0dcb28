import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, NoSpaceError } from '../../src/errors';
import { openImage, type OpenedImage } from '../../src/image/inspect';
import { buildTestImage } from '../../src/image/test-image-builder';
import { buildManifest, compareManifests, summarizeDiff } from '../../src/image/manifest';
import { copyBlocks, copyTree, nonZeroRuns } from '../../src/image/write-base';
import { loopMount, unmountIfMounted } from '../../src/image/mount';
import { run } from '../../src/system/run';
import { cleanupDir, leftovers, makeExt4Mount, makeLoopDevice, tempDir } from './helpers';

const NVR = 'ovirt-node-ng-4.5.6-0.20250101.0';
let dir: string;
let img: OpenedImage;

beforeAll(async () => {
  dir = await tempDir('writebase');
  const workDir = join(dir, 'work');
  await mkdir(workDir);
  const { imagePath } = await buildTestImage({
    outDir: dir,
    nvr: NVR,
    files: {
      'usr/lib/example/fifo-like': { content: 'acl and xattrs\n', mode: 0o600, uid: 107, gid: 107, acl: 'g:36:rw', xattrs: { 'user.a': '1', 'trusted.b': '2' } },
    },
  });
  img = await openImage({ imagePath, workDir });
});
afterAll(async () => {
  await img?.close();
  await cleanupDir(dir);
});

/** '' when the tree at `actual` is an exact copy of the one at `expected`, else what differs. */
async function differences(expected: string, actual: string): Promise<string> {
  const d = compareManifests(await buildManifest(expected), await buildManifest(actual));
  return d.equal ? '' : summarizeDiff(d);
}

function monotonic(samples: ReadonlyArray<readonly [number, number]>): boolean {
  return samples.every(([d], i) => i === 0 || d >= (samples[i - 1]?.[0] ?? 0));
}

describe('copyTree', () => {
  test('copies everything: owners, modes, times, xattrs, ACLs, selinux labels, links, devices, sparse files', async () => {
    const dst = await makeExt4Mount(dir, 'tree-dst', 128);
    try {
      const progress: Array<[number, number]> = [];
      await copyTree({ srcRoot: img.root, dstRoot: dst.mnt, onProgress: (d, t) => progress.push([d, t]), pollMs: 5 });
      expect(await differences(img.root, dst.mnt)).toBe('');

      // A few explicit checks, so a manifest bug cannot hide a copy bug.
      const tool = join(dst.mnt, 'usr/bin/example-tool');
      expect((await lstat(tool)).ino).toBe((await lstat(join(dst.mnt, 'usr/bin/example-hardlink'))).ino);
      expect(await readlink(join(dst.mnt, 'usr/bin/example-alias'))).toBe('example-tool');
      expect((await stat(join(dst.mnt, 'usr/bin/example-setuid'))).mode & 0o7777).toBe(0o4755);
      const data = await stat(join(dst.mnt, 'usr/lib/example/data.txt'));
      expect([data.uid, data.gid]).toEqual([36, 36]);
      const dev = await lstat(join(dst.mnt, 'dev/null'));
      expect(dev.isCharacterDevice()).toBe(true);
      const sparse = await stat(join(dst.mnt, 'usr/lib/example/sparse.img'));
      expect(sparse.blocks * 512).toBeLessThan(sparse.size);
      const attrs = (await run(['getfattr', '-d', '-m', '-', '--absolute-names', tool, join(dst.mnt, 'usr/lib/example/data.txt')])).stdout;
      expect(attrs).toContain('security.selinux="system_u:object_r:bin_t:s0"');
      expect(attrs).toContain('user.imgbased.test="hello"');
      expect((await run(['getfacl', '-cp', join(dst.mnt, 'usr/lib/example/fifo-like')])).stdout).toContain('group:36:rw-');

      const last = progress[progress.length - 1];
      expect(last?.[0]).toBe(last?.[1]);
      expect(last?.[1]).toBe(img.usedBytes);
      expect(monotonic(progress)).toBe(true);
    } finally {
      await dst.unmount();
    }
  });

  test('cancel during the copy → CancelledError, the copy process is gone', async () => {
    const src = join(dir, 'bigsrc');
    await mkdir(src);
    for (let i = 0; i < 6; i++) await writeFile(join(src, `blob${i}`), randomBytes(48 * 1024 * 1024));
    const dst = await makeExt4Mount(dir, 'cancel-dst', 512);
    try {
      const ac = new AbortController();
      let calls = 0;
      const p = copyTree({
        srcRoot: src,
        dstRoot: dst.mnt,
        signal: ac.signal,
        pollMs: 5,
        onProgress: (done) => {
          calls++;
          if (done > 0) ac.abort();
        },
      });
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      expect(calls).toBeGreaterThan(0);
      // no cp left writing into the destination: it unmounts cleanly
    } finally {
      await dst.unmount();
    }
    expect((await leftovers(join(dir, 'cancel-dst'))).mounts).toEqual([]);
  });

  test('already aborted → CancelledError before anything is copied', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(copyTree({ srcRoot: img.root, dstRoot: join(dir, 'unused'), signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('copyBlocks', () => {
  test('sparse block copy onto a loop device, then grow and new UUID: the tree matches', async () => {
    const loop = await makeLoopDevice(dir, 'blocks', 256);
    const mnt = join(dir, 'blocks-mnt');
    await mkdir(mnt);
    try {
      const progress: Array<[number, number]> = [];
      const res = await copyBlocks({ rootfsImage: img.rootfsImage, device: loop.device, onProgress: (d, t) => progress.push([d, t]) });
      expect(res.bytesTotal).toBe(img.imageSizeBytes);
      expect(res.bytesWritten).toBeLessThan(res.bytesTotal);
      expect(progress[progress.length - 1]).toEqual([res.bytesTotal, res.bytesTotal]);
      expect(monotonic(progress)).toBe(true);
      // the backing file stayed thin
      expect((await stat(loop.backingFile)).blocks * 512).toBeLessThan(res.bytesTotal);

      // what the storage backend does next: grow, new UUID
      await run(['e2fsck', '-f', '-p', loop.device]);
      await run(['resize2fs', loop.device]);
      const before = (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', loop.device])).stdout.trim();
      await run(['tune2fs', '-U', 'random', loop.device]);
      const after = (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', loop.device])).stdout.trim();
      expect(after).not.toBe(before);

      await run(['mount', '-t', 'ext4', '-o', 'ro', loop.device, mnt]);
      expect(await differences(img.root, mnt)).toBe('');
      const fsBytes = Number((await run(['blockdev', '--getsize64', loop.device])).stdout.trim());
      expect(fsBytes).toBe(256 * 1024 * 1024);
    } finally {
      await unmountIfMounted(mnt);
      await loop.detach();
    }
  });

  test('a device smaller than the image → NoSpaceError', async () => {
    const loop = await makeLoopDevice(dir, 'small', 4);
    try {
      await expect(copyBlocks({ rootfsImage: img.rootfsImage, device: loop.device })).rejects.toBeInstanceOf(NoSpaceError);
    } finally {
      await loop.detach();
    }
  });

  test('cancel during the copy → CancelledError', async () => {
    const loop = await makeLoopDevice(dir, 'cancel', 256);
    try {
      const ac = new AbortController();
      const seen: number[] = [];
      const p = copyBlocks({
        rootfsImage: img.rootfsImage,
        device: loop.device,
        signal: ac.signal,
        onProgress: (d) => {
          seen.push(d);
          if (d > 0) ac.abort();
        },
      });
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      expect(seen[seen.length - 1]).toBeLessThan(img.imageSizeBytes);
    } finally {
      await loop.detach();
    }
  });

  test('a regular file target gets the full apparent size', async () => {
    const target = join(dir, 'target.raw');
    await writeFile(target, '');
    const res = await copyBlocks({ rootfsImage: img.rootfsImage, device: target });
    expect((await stat(target)).size).toBe(res.bytesTotal);
    const mnt = join(dir, 'raw-mnt');
    await mkdir(mnt);
    await loopMount({ source: target, target: mnt, fsType: 'ext4' });
    try {
      expect(await readlink(join(mnt, 'usr/bin/example-alias'))).toBe('example-tool');
    } finally {
      await unmountIfMounted(mnt);
    }
  });

  test('one chunk in flight or many: the same bytes, the same bytes written', async () => {
    const sums: string[] = [];
    const written: number[] = [];
    for (const concurrency of [1, 4]) {
      const target = join(dir, `target-${concurrency}.raw`);
      await writeFile(target, '');
      const progress: Array<[number, number]> = [];
      const res = await copyBlocks({ rootfsImage: img.rootfsImage, device: target, concurrency, onProgress: (d, t) => progress.push([d, t]) });
      expect(monotonic(progress)).toBe(true);
      expect(progress[progress.length - 1]).toEqual([res.bytesTotal, res.bytesTotal]);
      sums.push(createHash('sha256').update(await readFile(target)).digest('hex'));
      written.push(res.bytesWritten);
    }
    expect(sums[1]).toBe(sums[0]);
    expect(written[1]).toBe(written[0]);
    expect(sums[0]).toBe(createHash('sha256').update(await readFile(img.rootfsImage)).digest('hex'));
  });
});

describe('nonZeroRuns', () => {
  const G = 64 * 1024;
  test('maximal runs of non-zero 64 KiB grains, a short last grain included', () => {
    const buf = Buffer.alloc(5 * G + 100);
    buf[G + 5] = 1; // grain 1
    buf[2 * G] = 1; // grain 2 (joins 1)
    buf[4 * G + 7] = 1; // grain 4
    buf[5 * G + 99] = 1; // short grain 5 (joins 4)
    expect(nonZeroRuns(buf, buf.length)).toEqual([[G, 2 * G], [4 * G, G + 100]]);
  });
  test('all zeros → no runs; only the first `length` bytes count', () => {
    const buf = Buffer.alloc(3 * G);
    expect(nonZeroRuns(buf, buf.length)).toEqual([]);
    buf[2 * G + 1] = 9;
    expect(nonZeroRuns(buf, 2 * G)).toEqual([]);
    expect(nonZeroRuns(buf, 3 * G)).toEqual([[2 * G, G]]);
  });
});
