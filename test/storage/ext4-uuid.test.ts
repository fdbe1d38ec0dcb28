/**
 * A new ext4 UUID on a thin snapshot must not rewrite the filesystem's metadata (it would unshare it from the base):
 * uuidChangeArgs turns on metadata_csum_seed first. Checked with the real mkfs.ext4/tune2fs/e2fsck on image files.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ext4Features, needsCheckBeforeResize, uuidChangeArgs } from '../../src/storage/lvm';
import { run } from '../../src/system/run';
import { tempDir } from '../helpers/host';

const CHUNK = 64 * 1024;

/** 64 KiB chunks in which two equally long files differ (what a thin snapshot would have to unshare). */
async function changedChunks(a: string, b: string): Promise<number> {
  const [x, y] = await Promise.all([fs.readFile(a), fs.readFile(b)]);
  let n = 0;
  for (let off = 0; off < x.length; off += CHUNK) if (!x.subarray(off, off + CHUNK).equals(y.subarray(off, off + CHUNK))) n++;
  return n;
}

describe('ext4 UUID changes', () => {
  it('reads the features of tune2fs -l output', () => {
    expect([...ext4Features('Filesystem volume name:   <none>\nFilesystem features:      has_journal ext_attr metadata_csum\nInode count: 1\n')])
      .toEqual(['has_journal', 'ext_attr', 'metadata_csum']);
    expect(ext4Features('Filesystem features:      (none)\n').size).toBe(0);
    expect(ext4Features('garbage').size).toBe(0);
  });

  it('turns on metadata_csum_seed only where metadata_csum is on and the seed is not', () => {
    expect(uuidChangeArgs(new Set(['metadata_csum']))).toEqual(['-O', 'metadata_csum_seed', '-U', 'random']);
    expect(uuidChangeArgs(new Set(['metadata_csum', 'metadata_csum_seed']))).toEqual(['-U', 'random']);
    expect(uuidChangeArgs(new Set(['has_journal']))).toEqual(['-U', 'random']);
  });

  it.each([['metadata_csum'], ['^metadata_csum']])('mkfs -O %s: a new UUID changes a handful of chunks, and e2fsck is happy', async (opt) => {
    const dir = await tempDir('ext4-uuid');
    try {
      const img = path.join(dir, 'fs.img');
      // a populated filesystem with initialised inode tables, as a base is
      const tree = path.join(dir, 'tree');
      await fs.mkdir(tree);
      for (let i = 0; i < 3000; i++) await fs.writeFile(path.join(tree, `f${i}`), `${i}\n`);
      await run(['truncate', '-s', '256M', img]);
      await run(['mkfs.ext4', '-q', '-F', '-O', opt, '-E', 'lazy_itable_init=0', '-d', tree, img]);
      await run(['cp', '--sparse=always', img, `${img}.before`]);
      const before = (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', img])).stdout.trim();
      await run(['tune2fs', ...uuidChangeArgs(ext4Features((await run(['tune2fs', '-l', img])).stdout)), img]);
      expect((await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', img])).stdout.trim()).not.toBe(before);
      await run(['e2fsck', '-f', '-n', img]);
      // without the seed, every block group's metadata is rewritten: 65 chunks of this 256 MiB filesystem, 8 with it
      const changed = await changedChunks(img, `${img}.before`);
      expect(changed).toBeLessThan(16);
      // and a second change needs no feature change
      if (opt === 'metadata_csum') expect(uuidChangeArgs(ext4Features((await run(['tune2fs', '-l', img])).stdout))).toEqual(['-U', 'random']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('needs e2fsck before an offline resize only when resize2fs would ask for it', () => {
    const list = (state: string, mount: string, checked: string, features = 'has_journal extent'): string =>
      `Filesystem features:      ${features}\nFilesystem state:         ${state}\nLast mount time:          ${mount}\n` +
      `Last write time:          Thu Nov 26 11:40:00 2026\nLast checked:             ${checked}\n`;
    expect(needsCheckBeforeResize(list('clean', 'n/a', 'Thu Nov 26 11:35:30 2026'))).toBe(false);
    expect(needsCheckBeforeResize(list('clean', 'Thu Nov 26 11:35:30 2026', 'Thu Nov 26 11:35:30 2026'))).toBe(false);
    expect(needsCheckBeforeResize(list('clean', 'Thu Nov 26 11:35:31 2026', 'Thu Nov 26 11:35:30 2026'))).toBe(true);
    expect(needsCheckBeforeResize(list('not clean', 'n/a', 'Thu Nov 26 11:35:30 2026'))).toBe(true);
    expect(needsCheckBeforeResize(list('clean with errors', 'n/a', 'Thu Nov 26 11:35:30 2026'))).toBe(true);
    expect(needsCheckBeforeResize(list('clean', 'n/a', 'Thu Nov 26 11:35:30 2026', 'has_journal needs_recovery'))).toBe(true);
    expect(needsCheckBeforeResize(list('clean', 'n/a', 'whenever'))).toBe(true);
    expect(needsCheckBeforeResize('garbage')).toBe(true);
  });

  it('agrees with the real resize2fs: checked + new UUID resizes as is, mounted since the check is refused', async () => {
    const dir = await tempDir('ext4-resize');
    try {
      const img = path.join(dir, 'fs.img');
      await run(['truncate', '-s', '64M', img]);
      await run(['mkfs.ext4', '-q', '-F', img]);
      await run(['e2fsck', '-f', '-y', img]);
      await run(['tune2fs', ...uuidChangeArgs(ext4Features((await run(['tune2fs', '-l', img])).stdout)), img]);
      expect(needsCheckBeforeResize((await run(['tune2fs', '-l', img])).stdout)).toBe(false);
      await run(['truncate', '-s', '96M', img]);
      await run(['resize2fs', img]);
      await run(['e2fsck', '-f', '-n', img]);
      // a mount after the check: resize2fs wants a new check, and so do we
      const mnt = path.join(dir, 'mnt');
      await fs.mkdir(mnt);
      await new Promise((r) => setTimeout(r, 1100)); // the times have whole seconds
      await run(['mount', '-o', 'loop', img, mnt]);
      await run(['umount', mnt]);
      expect(needsCheckBeforeResize((await run(['tune2fs', '-l', img])).stdout)).toBe(true);
      await run(['truncate', '-s', '128M', img]);
      const refused = await run(['resize2fs', img], { okCodes: [0, 1] });
      expect(refused.code).toBe(1);
      expect(refused.stderr + refused.stdout).toMatch(/e2fsck -f/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
