import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidNameError, NotFoundError } from '../../src/errors';
import {
  type InstalledKernel, defaultGrubenvPath, entriesDir, findEntry, findKernel, getDefault, getNextBoot, installKernel,
  readEntries, removeEntry, removeForeignEntries, setDefault, setNextBoot, writeEntry,
} from '../../src/boot/boot-entries';
import { blsOptions } from '../../src/boot/bls';
import { readGrubenv, writeGrubenv } from '../../src/boot/grubenv';
import { extraArgs } from '../../src/boot/kernel-args';
import { run } from '../../src/system/run';

const OLD_NVR = 'ovirt-node-ng-4.5.5-0.20240101.0';
const OLD = `${OLD_NVR}+1`;
const NVR = 'ovirt-node-ng-4.5.6-0.20250101.0';
const LAYER = `${NVR}+1`;
const KVER = '5.14.0-427.13.1.el9_4.x86_64';

let tmp: string;
let bootDir: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-boot-'));
  bootDir = path.join(tmp, 'sysroot', 'boot');
  await fs.mkdir(bootDir, { recursive: true });
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function tree(root: string, files: Record<string, string>): Promise<string> {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    await fs.mkdir(path.dirname(p), { recursive: true });
    await fs.writeFile(p, content);
  }
  return root;
}

async function writeRaw(name: string, text: string): Promise<void> {
  await fs.mkdir(entriesDir(bootDir), { recursive: true });
  await fs.writeFile(path.join(entriesDir(bootDir), name), text);
}

const kernelOf = (layer: string, kver = KVER): InstalledKernel => ({
  kernelVersion: kver,
  linux: `/${layer}/vmlinuz-${kver}`,
  initrd: `/${layer}/initramfs-${kver}.img`,
});

const DISTRO_ENTRY = `title CentOS Stream (5.14.0-70.el9.x86_64) 9
version 5.14.0-70.el9.x86_64
linux /vmlinuz-5.14.0-70.el9.x86_64
initrd /initramfs-5.14.0-70.el9.x86_64.img $tuned_initrd
options root=/dev/mapper/onn-root ro rd.lvm.lv=onn/root rhgb quiet
grub_users $grub_users
grub_arg --unrestricted
grub_class kernel
`;

describe('installKernel', () => {
  it('copies the newest kernel (rpm order) and its initramfs into <bootDir>/<layer>/', async () => {
    const root = await tree(path.join(tmp, 'layer'), {
      'boot/vmlinuz-5.14.0-70.el9.x86_64': 'old kernel',
      'boot/initramfs-5.14.0-70.el9.x86_64.img': 'old initrd',
      [`boot/vmlinuz-${KVER}`]: 'new kernel',
      [`boot/initramfs-${KVER}.img`]: 'new initrd',
      [`boot/.vmlinuz-${KVER}.hmac`]: 'hmac',
      'boot/vmlinuz-0-rescue-0123456789abcdef': 'rescue',
      'boot/initramfs-0-rescue-0123456789abcdef.img': 'rescue initrd',
      'boot/vmlinuz-5.14.0-9.el9.x86_64': 'lexically larger but older, no initrd',
    });
    await fs.chmod(path.join(root, 'boot', `vmlinuz-${KVER}`), 0o755);
    const k = await installKernel({ bootDir, layer: LAYER, layerRoot: root });
    expect(k).toEqual({
      kernelVersion: KVER,
      linux: `/${LAYER}/vmlinuz-${KVER}`,
      initrd: `/${LAYER}/initramfs-${KVER}.img`,
    });
    const dest = path.join(bootDir, LAYER);
    expect((await fs.readdir(dest)).sort()).toEqual([`.vmlinuz-${KVER}.hmac`, `initramfs-${KVER}.img`, `vmlinuz-${KVER}`]);
    expect(await fs.readFile(path.join(dest, `vmlinuz-${KVER}`), 'utf8')).toBe('new kernel');
    expect(await fs.readFile(path.join(dest, `initramfs-${KVER}.img`), 'utf8')).toBe('new initrd');
    expect((await fs.stat(path.join(dest, `vmlinuz-${KVER}`))).mode & 0o777).toBe(0o755);
    // idempotent: a retry replaces the files
    await expect(installKernel({ bootDir, layer: LAYER, layerRoot: root })).resolves.toEqual(k);
    expect((await fs.readdir(dest)).length).toBe(3);
  });

  it("takes Debian's initrd.img-<kver> and names it initramfs-<kver>.img", async () => {
    const root = await tree(path.join(tmp, 'layer'), {
      'boot/vmlinuz-6.1.0-18-amd64': 'k18',
      'boot/initrd.img-6.1.0-18-amd64': 'i18',
      'boot/vmlinuz-6.1.0-9-amd64': 'k9',
      'boot/initrd.img-6.1.0-9-amd64': 'i9',
    });
    const k = await installKernel({ bootDir, layer: LAYER, layerRoot: root });
    expect(k.kernelVersion).toBe('6.1.0-18-amd64');
    expect(await fs.readFile(path.join(bootDir, LAYER, 'initramfs-6.1.0-18-amd64.img'), 'utf8')).toBe('i18');
  });

  it('no kernel → NotFoundError, copies nothing', async () => {
    const root = await tree(path.join(tmp, 'layer'), { 'boot/config-6.1.0-18-amd64': 'x' });
    await expect(installKernel({ bootDir, layer: LAYER, layerRoot: root })).rejects.toThrow(NotFoundError);
    await expect(installKernel({ bootDir, layer: LAYER, layerRoot: path.join(tmp, 'nothing') }))
      .rejects.toThrow(NotFoundError);
    await expect(fs.stat(path.join(bootDir, LAYER))).rejects.toThrow(/ENOENT/);
  });

  it('newest kernel without an initrd → NotFoundError naming it', async () => {
    const root = await tree(path.join(tmp, 'layer'), { [`boot/vmlinuz-${KVER}`]: 'k' });
    await expect(findKernel(root)).rejects.toThrow(NotFoundError);
    await expect(findKernel(root)).rejects.toThrow(`kernel ${KVER} in ${path.join(root, 'boot')} has no initramfs`);
  });

  it('refuses a layer name that is not NVR+N (no path tricks)', async () => {
    await expect(installKernel({ bootDir, layer: '../etc', layerRoot: tmp })).rejects.toThrow(InvalidNameError);
  });
});

describe('entries', () => {
  it('writeEntry writes loader/entries/<layer>.conf byte for byte; readEntries/findEntry find it', async () => {
    const e = await writeEntry({
      bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel: kernelOf(LAYER), extraArgs: ['rd.lvm.lv=onn/swap', 'quiet'],
      crashkernel: 'auto',
    });
    const text = await fs.readFile(path.join(bootDir, 'loader', 'entries', `${LAYER}.conf`), 'utf8');
    expect(text).toBe(
      'title ovirt-node-ng-4.5.6-0.20250101.0 (5.14.0-427.13.1.el9_4.x86_64)\n' +
      'version 5.14.0-427.13.1.el9_4.x86_64\n' +
      'linux /ovirt-node-ng-4.5.6-0.20250101.0+1/vmlinuz-5.14.0-427.13.1.el9_4.x86_64\n' +
      'initrd /ovirt-node-ng-4.5.6-0.20250101.0+1/initramfs-5.14.0-427.13.1.el9_4.x86_64.img\n' +
      'options root=/dev/onn/ovirt-node-ng-4.5.6-0.20250101.0+1 ro crashkernel=auto ' +
      'rd.lvm.lv=onn/ovirt-node-ng-4.5.6-0.20250101.0+1 rootflags=discard ' +
      'img.bootid=ovirt-node-ng-4.5.6-0.20250101.0+1 rd.lvm.lv=onn/swap quiet\n' +
      'grub_users $grub_users\n' +
      'grub_arg --unrestricted\n' +
      'grub_class kernel\n',
    );
    expect(e.id).toBe(LAYER);
    const all = await readEntries(bootDir);
    expect(all.map((x) => [x.file, x.id, x.bootId, x.title])).toEqual([
      [`${LAYER}.conf`, LAYER, LAYER, `${NVR} (${KVER})`],
    ]);
    expect((await findEntry(bootDir, LAYER))?.file).toBe(`${LAYER}.conf`);
    expect(await findEntry(bootDir, OLD)).toBeUndefined();
    expect(await fs.readdir(entriesDir(bootDir))).toEqual([`${LAYER}.conf`]);
  });

  it('with bootPrefix "/boot" the paths are relative to /', async () => {
    const e = await writeEntry({ bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel: kernelOf(LAYER), bootPrefix: '/boot' });
    const text = await fs.readFile(e.path, 'utf8');
    expect(text).toContain(`\nlinux /boot/${LAYER}/vmlinuz-${KVER}\n`);
    expect(text).toContain(`\ninitrd /boot/${LAYER}/initramfs-${KVER}.img\n`);
  });

  it('recognises entries by img.bootid, whatever grubby named the file; writeEntry replaces them', async () => {
    await writeRaw(`0123456789abcdef-${KVER}.conf`, `title ${LAYER}\nlinux /${LAYER}/vmlinuz-${KVER}\noptions ro img.bootid=${LAYER}\n`);
    expect((await findEntry(bootDir, LAYER))?.id).toBe(`0123456789abcdef-${KVER}`);
    await writeEntry({ bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel: kernelOf(LAYER) });
    expect((await readEntries(bootDir)).map((e) => e.file)).toEqual([`${LAYER}.conf`]);
  });

  it('carries the running entry\'s extra args into the new entry without duplicates', async () => {
    await writeEntry({
      bootDir, layer: OLD, nvr: OLD_NVR, vg: 'onn', kernel: kernelOf(OLD, '5.14.0-70.el9.x86_64'),
      extraArgs: ['crashkernel=1G-4G:192M', 'rd.lvm.lv=onn/swap', 'rhgb', 'quiet', 'console=ttyS0,115200n8'],
    });
    const running = await findEntry(bootDir, OLD);
    if (running === undefined) throw new Error('no running entry');
    const carried = extraArgs(blsOptions(running.entry), { vg: 'onn', layer: OLD });
    await writeEntry({
      bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel: kernelOf(LAYER), extraArgs: [...carried, 'quiet'], crashkernel: 'auto',
    });
    const next = await findEntry(bootDir, LAYER);
    expect(next === undefined ? [] : blsOptions(next.entry)).toEqual([
      `root=/dev/onn/${LAYER}`, 'ro', 'crashkernel=1G-4G:192M', `rd.lvm.lv=onn/${LAYER}`, 'rootflags=discard',
      `img.bootid=${LAYER}`, 'rd.lvm.lv=onn/swap', 'rhgb', 'quiet', 'console=ttyS0,115200n8',
    ]);
  });

  it('removeEntry removes the entry files and <bootDir>/<layer>/, and is idempotent', async () => {
    const root = await tree(path.join(tmp, 'layer'), { [`boot/vmlinuz-${KVER}`]: 'k', [`boot/initramfs-${KVER}.img`]: 'i' });
    const kernel = await installKernel({ bootDir, layer: LAYER, layerRoot: root });
    await writeEntry({ bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel });
    await writeRaw('grubby-named.conf', `title x\noptions img.bootid=${LAYER}\n`);
    await writeEntry({ bootDir, layer: OLD, nvr: OLD_NVR, vg: 'onn', kernel: kernelOf(OLD) });

    expect(await removeEntry(bootDir, LAYER)).toEqual({ files: ['grubby-named.conf', `${LAYER}.conf`], kernelDir: true });
    expect((await readEntries(bootDir)).map((e) => e.bootId)).toEqual([OLD]);
    await expect(fs.stat(path.join(bootDir, LAYER))).rejects.toThrow(/ENOENT/);
    expect(await removeEntry(bootDir, LAYER)).toEqual({ files: [], kernelDir: false });
    expect(await removeEntry(path.join(tmp, 'empty-boot'), LAYER)).toEqual({ files: [], kernelDir: false });
  });

  it('removeForeignEntries removes entries lacking both img.bootid and a node title', async () => {
    await writeRaw('abc-5.14.0-70.el9.x86_64.conf', DISTRO_ENTRY);
    await writeRaw('abc-0-rescue.conf', 'title CentOS Stream (0-rescue-abc) 9\nlinux /vmlinuz-0-rescue-abc\noptions ro\n');
    await writeRaw('old-imgbased.conf', `title ${OLD}\nlinux /${OLD}/vmlinuz\noptions ro\n`);
    await writeRaw('notes.txt', 'not an entry');
    await writeEntry({ bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel: kernelOf(LAYER) });

    expect(await removeForeignEntries(bootDir)).toEqual(['abc-0-rescue.conf', 'abc-5.14.0-70.el9.x86_64.conf']);
    expect((await fs.readdir(entriesDir(bootDir))).sort()).toEqual(['notes.txt', 'old-imgbased.conf', `${LAYER}.conf`]);
    expect(await removeForeignEntries(bootDir)).toEqual([]);
  });

  it('readEntries of a boot dir without entries is empty', async () => {
    expect(await readEntries(bootDir)).toEqual([]);
  });
});

describe('default and next boot (grubenv)', () => {
  beforeEach(async () => {
    await writeEntry({ bootDir, layer: OLD, nvr: OLD_NVR, vg: 'onn', kernel: kernelOf(OLD) });
    await writeEntry({ bootDir, layer: LAYER, nvr: NVR, vg: 'onn', kernel: kernelOf(LAYER) });
  });

  it('setDefault writes saved_entry in <bootDir>/grub2/grubenv (creating the dir); grub-editenv agrees', async () => {
    expect(await getDefault(bootDir)).toBeUndefined();
    await setDefault(bootDir, LAYER);
    const file = path.join(bootDir, 'grub2', 'grubenv');
    expect(defaultGrubenvPath(bootDir)).toBe(file);
    expect((await run(['grub-editenv', file, 'list'])).stdout).toBe(`saved_entry=${LAYER}\n`);
    expect(await getDefault(bootDir)).toBe(LAYER);
    await setDefault(bootDir, OLD);
    expect(await getDefault(bootDir)).toBe(OLD);
  });

  it('keeps the other grubenv variables written by grub-editenv', async () => {
    const file = defaultGrubenvPath(bootDir);
    await fs.mkdir(path.dirname(file));
    await run(['grub-editenv', file, 'create']);
    await run(['grub-editenv', file, 'set', 'saved_entry=distro', 'boot_success=1', 'menu_auto_hide=1']);
    await setDefault(bootDir, LAYER);
    expect((await run(['grub-editenv', file, 'list'])).stdout)
      .toBe(`saved_entry=${LAYER}\nboot_success=1\nmenu_auto_hide=1\n`);
  });

  it('uses the BLS id of a grubby-named entry and maps it back to the layer', async () => {
    await fs.rm(path.join(entriesDir(bootDir), `${OLD}.conf`));
    await writeRaw('0123abcd-5.14.0-70.el9.x86_64.conf', `title ${OLD_NVR}\noptions ro img.bootid=${OLD}\n`);
    await setDefault(bootDir, OLD);
    expect((await readGrubenv(defaultGrubenvPath(bootDir))).get('saved_entry')).toBe('0123abcd-5.14.0-70.el9.x86_64');
    expect(await getDefault(bootDir)).toBe(OLD);
  });

  it('a saved_entry naming a foreign entry or nothing is no default layer', async () => {
    await writeRaw('distro.conf', DISTRO_ENTRY);
    await fs.mkdir(path.join(bootDir, 'grub2'));
    await writeGrubenv(defaultGrubenvPath(bootDir), new Map([['saved_entry', 'distro']]));
    expect(await getDefault(bootDir)).toBeUndefined();
    await writeGrubenv(defaultGrubenvPath(bootDir), new Map([['saved_entry', 'gone']]));
    expect(await getDefault(bootDir)).toBeUndefined();
  });

  it('the grubenv path is an option', async () => {
    const file = path.join(bootDir, 'efi', 'EFI', 'debian', 'grubenv');
    await setDefault(bootDir, LAYER, { grubenvPath: file });
    expect((await readGrubenv(file)).get('saved_entry')).toBe(LAYER);
    expect(await getDefault(bootDir, { grubenvPath: file })).toBe(LAYER);
    await expect(fs.stat(path.join(bootDir, 'grub2'))).rejects.toThrow(/ENOENT/);
  });

  it('setDefault of a layer without entry → NotFoundError, grubenv untouched', async () => {
    await expect(setDefault(bootDir, 'img-1-1+1')).rejects.toThrow(NotFoundError);
    await expect(fs.stat(path.join(bootDir, 'grub2'))).rejects.toThrow(/ENOENT/);
  });

  it('setNextBoot sets and clears the one-shot next_entry without touching saved_entry', async () => {
    await setDefault(bootDir, OLD);
    await setNextBoot(bootDir, LAYER);
    const file = defaultGrubenvPath(bootDir);
    expect((await run(['grub-editenv', file, 'list'])).stdout).toBe(`saved_entry=${OLD}\nnext_entry=${LAYER}\n`);
    expect(await getNextBoot(bootDir)).toBe(LAYER);
    expect(await getDefault(bootDir)).toBe(OLD);
    await setNextBoot(bootDir, undefined);
    expect((await run(['grub-editenv', file, 'list'])).stdout).toBe(`saved_entry=${OLD}\n`);
    expect(await getNextBoot(bootDir)).toBeUndefined();
  });
});
