import { mkdir, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidNameError, VerificationFailedError } from '../../src/errors';
import { openImage, withOpenedImage } from '../../src/image/inspect';
import { buildTestImage, type TestImageCorruption } from '../../src/image/test-image-builder';
import { cleanupDir, leftovers, tempDir } from './helpers';

const NVR = 'ovirt-node-ng-4.5.6-0.20250101.0';
let dir: string;
let workDir: string;

beforeAll(async () => {
  dir = await tempDir('inspect');
  workDir = join(dir, 'work');
  await mkdir(workDir);
});
afterAll(async () => {
  await cleanupDir(dir);
});

async function expectClean(imagePath: string): Promise<void> {
  expect(await leftovers(workDir)).toEqual({ mounts: [], loops: [] });
  const { loops } = await leftovers(imagePath);
  expect(loops).toEqual([]);
  expect(await readdir(workDir)).toEqual([]);
}

describe('openImage', () => {
  test('opens a good ext4 image: nvr, fs type, sizes, tree; close twice is fine', async () => {
    const { imagePath } = await buildTestImage({ outDir: dir, nvr: NVR });
    const img = await openImage({ imagePath, workDir });
    try {
      expect(img.nvr).toBe(NVR);
      expect(img.parsedNvr).toEqual({ name: 'ovirt-node-ng', version: '4.5.6', release: '0.20250101.0' });
      expect(img.fsType).toBe('ext4');
      expect(img.imageSizeBytes).toBe((await stat(img.rootfsImage)).size);
      expect(img.imageSizeBytes).toBeGreaterThan(img.usedBytes);
      expect(img.usedBytes).toBeGreaterThan(0);
      expect(await readFile(join(img.root, 'etc/os-release'), 'utf8')).toContain('oVirt Node');
      expect(await readlink(join(img.root, 'usr/bin/example-alias'))).toBe('example-tool');
      expect((await leftovers(workDir)).mounts).toHaveLength(2);
    } finally {
      await img.close();
    }
    await img.close();
    await expectClean(imagePath);
  });

  test('opens an xfs image', async () => {
    const { imagePath } = await buildTestImage({ outDir: dir, nvr: NVR, fsType: 'xfs', fileName: 'xfs.img' });
    const fsType = await withOpenedImage({ imagePath, workDir }, async (img) => {
      expect(img.nvr).toBe(NVR);
      return img.fsType;
    });
    expect(fsType).toBe('xfs');
    await expectClean(imagePath);
  });

  test('missing nvr file → VerificationFailedError, nothing left mounted', async () => {
    const { imagePath } = await buildTestImage({
      outDir: dir,
      nvr: NVR,
      fileName: 'nonvr.img',
      files: { 'usr/share/imgbase/build/meta/nvr': null },
    });
    const err: unknown = await openImage({ imagePath, workDir }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(VerificationFailedError);
    expect((err as Error).message).toBe('image has no /usr/share/imgbase/build/meta/nvr');
    await expectClean(imagePath);
  });

  test('invalid nvr → InvalidNameError, nothing left mounted', async () => {
    const { imagePath } = await buildTestImage({ outDir: dir, nvr: 'not an nvr', fileName: 'badnvr.img' });
    await expect(openImage({ imagePath, workDir })).rejects.toBeInstanceOf(InvalidNameError);
    await expectClean(imagePath);
  });

  test('nvr file that links out of the image → VerificationFailedError', async () => {
    const { imagePath } = await buildTestImage({
      outDir: dir,
      nvr: NVR,
      fileName: 'linknvr.img',
      files: { 'usr/share/imgbase/build/meta/nvr': { kind: 'symlink', target: '/etc/hostname' } },
    });
    await expect(openImage({ imagePath, workDir })).rejects.toThrow(/points outside the image/);
    await expectClean(imagePath);
  });

  test.each<[TestImageCorruption, RegExp]>([
    ['not-squashfs', /is not a squashfs image/],
    ['squashfs-truncated', /squashfs is corrupt/],
    ['no-rootfs', /image has no LiveOS\/rootfs\.img/],
    ['rootfs-garbage', /not an ext4 or xfs filesystem/],
  ])('%s → VerificationFailedError, nothing left mounted', async (corrupt, re) => {
    const { imagePath } = await buildTestImage({ outDir: dir, nvr: NVR, fileName: `${corrupt}.img`, corrupt });
    const err: unknown = await openImage({ imagePath, workDir }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(VerificationFailedError);
    expect((err as Error).message).toMatch(re);
    await expectClean(imagePath);
  });

  test('a missing image file → VerificationFailedError', async () => {
    await expect(openImage({ imagePath: join(dir, 'nope.img'), workDir })).rejects.toBeInstanceOf(VerificationFailedError);
    expect(await readdir(workDir)).toEqual([]);
  });
});
