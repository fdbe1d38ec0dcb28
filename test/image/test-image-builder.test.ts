import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { withOpenedImage } from '../../src/image/inspect';
import { buildTestImage, createTestSigningKey, DEFAULT_KERNEL_VERSION } from '../../src/image/test-image-builder';
import { run } from '../../src/system/run';
import { cleanupDir, leftovers, tempDir } from './helpers';

const NVR = 'ovirt-node-ng-4.5.7-0.20250301.0';
let dir: string;
let workDir: string;

beforeAll(async () => {
  dir = await tempDir('builder');
  workDir = join(dir, 'work');
  await mkdir(workDir);
});
afterAll(async () => {
  await cleanupDir(dir);
});

describe('buildTestImage', () => {
  test('builds a real oVirt Node image: squashfs → LiveOS/rootfs.img → tree with nvr, /etc + factory copy, boot, var', async () => {
    const key = await createTestSigningKey(dir);
    expect(await readdir(join(dir, 'trusted.d'))).toEqual(['test.asc']);
    const built = await buildTestImage({ outDir: dir, nvr: NVR, sign: key, etcFiles: { 'custom.conf': 'x = 1\n' } });
    expect(built).toEqual({
      imagePath: join(dir, `${NVR}.squashfs.img`),
      sha256Path: join(dir, `${NVR}.squashfs.img.sha256`),
      sigPath: join(dir, `${NVR}.squashfs.img.sig`),
      nvr: NVR,
    });
    expect(await readFile(built.sha256Path, 'utf8')).toMatch(new RegExp(`^[0-9a-f]{64}  ${basename(built.imagePath)}\\n$`));
    // nothing but the image, its sidecars and the key dir is left in outDir
    expect((await readdir(dir)).filter((n) => n !== 'work').sort()).toEqual(
      [basename(built.imagePath), basename(built.sha256Path), basename(built.sigPath ?? ''), 'trusted.d'].sort(),
    );

    await withOpenedImage({ imagePath: built.imagePath, workDir }, async (img) => {
      const r = img.root;
      expect(img.nvr).toBe(NVR);
      for (const f of ['os-release', 'passwd', 'group', 'shadow', 'hosts', 'custom.conf']) {
        expect(await readFile(join(r, 'usr/share/factory/etc', f))).toEqual(await readFile(join(r, 'etc', f)));
      }
      expect((await stat(join(r, 'etc/shadow'))).mode & 0o777).toBe(0);
      expect(await readFile(join(r, `boot/vmlinuz-${DEFAULT_KERNEL_VERSION}`), 'utf8')).toContain(DEFAULT_KERNEL_VERSION);
      expect((await stat(join(r, `boot/initramfs-${DEFAULT_KERNEL_VERSION}.img`))).isFile()).toBe(true);
      expect(await readFile(join(r, 'var/lib/example/config'), 'utf8')).toBe('state = fresh\n');
      expect((await stat(join(r, 'usr/bin/example-tool'))).nlink).toBe(2);
      const attrs = (await run(['getfattr', '-d', '-m', '-', '--absolute-names', join(r, 'usr/lib/example/data.txt')])).stdout;
      expect(attrs).toContain('user.imgbased.test="hello"');
    });
    expect((await leftovers(workDir)).mounts).toEqual([]);

    // the signature is a standard OpenPGP detached signature: gpgv accepts it
    const keyring = join(dir, 'keyring.gpg');
    await run(['gpg', '--batch', '--yes', '--dearmor', '--output', keyring, join(key.trustedKeysDir, 'test.asc')]);
    const gpgv = await run(['gpgv', '--keyring', keyring, built.sigPath ?? '', built.imagePath]);
    expect(gpgv.stderr).toContain('Good signature');
  });

  test('kernel version, factoryEtc off, removed entries, extra data', async () => {
    const built = await buildTestImage({
      outDir: dir,
      nvr: NVR,
      fileName: 'custom.img',
      kernelVersion: '6.1.0-1.el9.x86_64',
      factoryEtc: false,
      etcFiles: { hostname: null },
      files: { 'var/lib/example/config': 'state = changed\n' },
      extraMb: 2,
      checksumFormat: 'bare',
    });
    expect(built.sigPath).toBeNull();
    expect(await readFile(built.sha256Path, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    await withOpenedImage({ imagePath: built.imagePath, workDir }, async (img) => {
      const r = img.root;
      expect((await readdir(join(r, 'boot'))).sort()).toEqual(
        ['config-6.1.0-1.el9.x86_64', 'initramfs-6.1.0-1.el9.x86_64.img', 'vmlinuz-6.1.0-1.el9.x86_64'],
      );
      expect(await readdir(join(r, 'usr/share')).then((d) => d.includes('factory'))).toBe(false);
      expect(await readdir(join(r, 'etc')).then((d) => d.includes('hostname'))).toBe(false);
      expect(await readFile(join(r, 'var/lib/example/config'), 'utf8')).toBe('state = changed\n');
      expect((await stat(join(r, 'usr/lib/extra/blob.bin'))).size).toBe(2 * 1024 * 1024);
    });
  });
});
