import { InvalidArgumentError } from '../../src/errors';
import {
  blsGet, blsGetAll, blsOptions, bootIdOf, formatBls, isNodeTitle, nodeEntry, nodeEntryArgs, parseBls,
} from '../../src/boot/bls';

const NVR = 'ovirt-node-ng-4.5.6-0.20250101.0';
const LAYER = `${NVR}+1`;
const KVER = '5.14.0-427.13.1.el9_4.x86_64';

const spec = {
  layer: LAYER,
  nvr: NVR,
  vg: 'onn',
  kernelVersion: KVER,
  linux: `/${LAYER}/vmlinuz-${KVER}`,
  initrd: `/${LAYER}/initramfs-${KVER}.img`,
};

/** An entry as grubby writes it on EL8 (the distribution's own, before init). */
const EL8_ENTRY = `title Red Hat Enterprise Linux (4.18.0-80.el8.x86_64) 8.0 (Ootpa)
version 4.18.0-80.el8.x86_64
linux /vmlinuz-4.18.0-80.el8.x86_64
initrd /initramfs-4.18.0-80.el8.x86_64.img $tuned_initrd
options $kernelopts $tuned_params
id rhel-20190313123447-4.18.0-80.el8.x86_64
grub_users $grub_users
grub_arg --unrestricted
grub_class kernel
`;

describe('nodeEntry', () => {
  it('formats the node entry byte for byte (/boot is its own partition)', () => {
    const text = formatBls(nodeEntry({
      ...spec,
      crashkernel: 'auto',
      extraArgs: ['rd.lvm.lv=onn/swap', 'rhgb', 'quiet'],
    }));
    expect(text).toBe(
      'title ovirt-node-ng-4.5.6-0.20250101.0 (5.14.0-427.13.1.el9_4.x86_64)\n' +
      'version 5.14.0-427.13.1.el9_4.x86_64\n' +
      'linux /ovirt-node-ng-4.5.6-0.20250101.0+1/vmlinuz-5.14.0-427.13.1.el9_4.x86_64\n' +
      'initrd /ovirt-node-ng-4.5.6-0.20250101.0+1/initramfs-5.14.0-427.13.1.el9_4.x86_64.img\n' +
      'options root=/dev/onn/ovirt-node-ng-4.5.6-0.20250101.0+1 ro crashkernel=auto ' +
      'rd.lvm.lv=onn/ovirt-node-ng-4.5.6-0.20250101.0+1 rootflags=discard ' +
      'img.bootid=ovirt-node-ng-4.5.6-0.20250101.0+1 rd.lvm.lv=onn/swap rhgb quiet\n' +
      'grub_users $grub_users\n' +
      'grub_arg --unrestricted\n' +
      'grub_class kernel\n',
    );
  });

  it('formats the node entry byte for byte (/boot on /: bootPrefix "/boot"), no crashkernel when none is given', () => {
    const text = formatBls(nodeEntry({ ...spec, bootPrefix: '/boot' }));
    expect(text).toBe(
      'title ovirt-node-ng-4.5.6-0.20250101.0 (5.14.0-427.13.1.el9_4.x86_64)\n' +
      'version 5.14.0-427.13.1.el9_4.x86_64\n' +
      'linux /boot/ovirt-node-ng-4.5.6-0.20250101.0+1/vmlinuz-5.14.0-427.13.1.el9_4.x86_64\n' +
      'initrd /boot/ovirt-node-ng-4.5.6-0.20250101.0+1/initramfs-5.14.0-427.13.1.el9_4.x86_64.img\n' +
      'options root=/dev/onn/ovirt-node-ng-4.5.6-0.20250101.0+1 ro ' +
      'rd.lvm.lv=onn/ovirt-node-ng-4.5.6-0.20250101.0+1 rootflags=discard ' +
      'img.bootid=ovirt-node-ng-4.5.6-0.20250101.0+1\n' +
      'grub_users $grub_users\n' +
      'grub_arg --unrestricted\n' +
      'grub_class kernel\n',
    );
  });

  it('a carried crashkernel= takes the managed slot and wins over the default; duplicates dropped', () => {
    expect(nodeEntryArgs({
      ...spec,
      crashkernel: 'auto',
      extraArgs: ['quiet', 'crashkernel=1G-4G:192M', 'quiet', 'rootflags=discard', 'ro', 'foo=a b'],
    })).toEqual([
      `root=/dev/onn/${LAYER}`, 'ro', 'crashkernel=1G-4G:192M', `rd.lvm.lv=onn/${LAYER}`, 'rootflags=discard',
      `img.bootid=${LAYER}`, 'quiet', 'foo=a b',
    ]);
    expect(blsGet(nodeEntry({ ...spec, extraArgs: ['foo=a b'] }), 'options')).toMatch(/ foo="a b"$/);
  });

  it('rejects bad boot prefixes and relative paths', () => {
    expect(() => nodeEntry({ ...spec, bootPrefix: 'boot' })).toThrow(InvalidArgumentError);
    expect(() => nodeEntry({ ...spec, bootPrefix: '/boot/' })).toThrow(InvalidArgumentError);
    expect(() => nodeEntry({ ...spec, linux: 'vmlinuz' })).toThrow(InvalidArgumentError);
  });

  it('its img.bootid is found again after a round trip', () => {
    const parsed = parseBls(formatBls(nodeEntry({ ...spec, extraArgs: ['quiet'] })));
    expect(bootIdOf(parsed)).toBe(LAYER);
    expect(blsGet(parsed, 'title')).toBe(`${NVR} (${KVER})`);
    expect(isNodeTitle(blsGet(parsed, 'title') ?? '')).toBe(true);
  });
});

describe('parseBls / formatBls', () => {
  it('parses an EL entry and writes it back byte for byte', () => {
    const e = parseBls(EL8_ENTRY);
    expect(blsGet(e, 'title')).toBe('Red Hat Enterprise Linux (4.18.0-80.el8.x86_64) 8.0 (Ootpa)');
    expect(blsGet(e, 'initrd')).toBe('/initramfs-4.18.0-80.el8.x86_64.img $tuned_initrd');
    expect(blsGet(e, 'id')).toBe('rhel-20190313123447-4.18.0-80.el8.x86_64');
    expect(bootIdOf(e)).toBeUndefined();
    expect(formatBls(e)).toBe(EL8_ENTRY);
  });

  it('tolerates comments, blank lines, tabs, CRLF and repeated keys', () => {
    const e = parseBls(
      '# comment\r\n\r\ntitle\tX (1)\r\n  options   ro quiet \r\noptions img.bootid=a-1-1+1\ninitrd /a\ninitrd /b\nflag\n',
    );
    expect(blsGet(e, 'title')).toBe('X (1)');
    expect(blsOptions(e)).toEqual(['ro', 'quiet', 'img.bootid=a-1-1+1']);
    expect(blsGetAll(e, 'initrd')).toEqual(['/a', '/b']);
    expect(bootIdOf(e)).toBe('a-1-1+1');
    expect(formatBls(e)).toBe('title X (1)\noptions ro quiet\noptions img.bootid=a-1-1+1\ninitrd /a\ninitrd /b\nflag\n');
  });

  it('an empty img.bootid is no bootid', () => {
    expect(bootIdOf(parseBls('options img.bootid= ro\n'))).toBeUndefined();
  });

  it('rejects values that would break the file', () => {
    expect(() => formatBls({ fields: [{ key: 'options', value: 'a\nlinux /evil' }] })).toThrow(InvalidArgumentError);
    expect(() => formatBls({ fields: [{ key: 'bad key', value: 'x' }] })).toThrow(InvalidArgumentError);
  });
});

describe('isNodeTitle', () => {
  it.each([
    `${NVR} (${KVER})`, NVR, LAYER, `${LAYER} (${KVER})`, 'ovirt-node-4.0+1',
  ])('%p is a node title', (t) => {
    expect(isNodeTitle(t)).toBe(true);
  });

  it.each([
    'Red Hat Enterprise Linux (4.18.0-80.el8.x86_64) 8.0 (Ootpa)',
    'CentOS Linux (3.10.0-1160.el7.x86_64) 7 (Core)',
    'CentOS Stream (0-rescue-1b2c3d4e5f) 9',
    'Debian GNU/Linux',
    '',
    `${NVR} (a b)`,
  ])('%p is not', (t) => {
    expect(isNodeTitle(t)).toBe(false);
  });
});
