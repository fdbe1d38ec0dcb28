/** The exact boot entry and grubenv block imgbased writes for a layer (expected values for byte-for-byte checks). */
import { GRUBENV_SIZE } from '../../src/boot/grubenv';

export const KVER = '5.14.0-503.el9.x86_64';

/** The 1024-byte grubenv with saved_entry (and, for a pending trial boot, next_entry). */
export function grubenvBlock(saved: string, next?: string): string {
  const head = `# GRUB Environment Block\nsaved_entry=${saved}\n${next === undefined ? '' : `next_entry=${next}\n`}`;
  return head + '#'.repeat(GRUBENV_SIZE - head.length);
}

export function entryText(nvr: string, vg = 'onn'): string {
  const layer = `${nvr}+1`;
  return [
    `title ${nvr} (${KVER})`,
    `version ${KVER}`,
    `linux /${layer}/vmlinuz-${KVER}`,
    `initrd /${layer}/initramfs-${KVER}.img`,
    `options root=/dev/${vg}/${layer} ro crashkernel=auto rd.lvm.lv=${vg}/${layer} rootflags=discard img.bootid=${layer} quiet`,
    'grub_users $grub_users',
    'grub_arg --unrestricted',
    'grub_class kernel',
    '',
  ].join('\n');
}
