import { InvalidArgumentError } from '../../src/errors';
import {
  argKey, argValue, dedupeArgs, expandGrubVars, extraArgs, isManagedArg, joinArgs, mergeArgs, quoteArg, splitArgs,
} from '../../src/boot/kernel-args';

const OLD = 'ovirt-node-ng-4.5.5-0.20240101.0+1';
const scope = { vg: 'onn', layer: OLD };

describe('splitArgs / joinArgs', () => {
  it('splits on any whitespace and keeps quoted values whole', () => {
    expect(splitArgs('  ro \t quiet\nfoo="a b  c" "bar=x y" rd.lvm.lv=onn/swap ')).toEqual([
      'ro', 'quiet', 'foo="a b  c"', '"bar=x y"', 'rd.lvm.lv=onn/swap',
    ]);
    expect(splitArgs('')).toEqual([]);
  });

  it('an unbalanced quote runs to the end', () => {
    expect(splitArgs('a b="c d e')).toEqual(['a', 'b="c d e']);
  });

  it('join(split(x)) only normalises whitespace', () => {
    const line = 'root=/dev/onn/x ro  foo="a b"   quiet';
    expect(joinArgs(splitArgs(line))).toBe('root=/dev/onn/x ro foo="a b" quiet');
  });

  it('quotes values holding whitespace, keeps already quoted ones', () => {
    expect(quoteArg('foo=a b')).toBe('foo="a b"');
    expect(quoteArg('a b')).toBe('"a b"');
    expect(quoteArg('foo="a b"')).toBe('foo="a b"');
    expect(joinArgs(['ro', 'foo=a b', ''])).toBe('ro foo="a b"');
    expect(() => joinArgs(['a\nb'])).toThrow(InvalidArgumentError);
  });

  it('argKey/argValue see through quotes', () => {
    expect(argKey('"rd.lvm.lv=onn/x"')).toBe('rd.lvm.lv');
    expect(argValue('foo="a b"')).toBe('a b');
    expect(argKey('ro')).toBe('ro');
    expect(argValue('ro')).toBeUndefined();
    expect(argValue('a=b=c')).toBe('b=c');
  });
});

describe('managed and extra arguments', () => {
  it.each([
    'root=/dev/onn/x', 'ro', 'rw', 'rootflags=discard', `img.bootid=${OLD}`, 'BOOT_IMAGE=(hd0,msdos1)//x/vmlinuz',
    `rd.lvm.lv=onn/${OLD}`, 'rd.lvm.lv=onn/ovirt-node-ng-4.5.4-0.20230101.0+1', `"rd.lvm.lv=onn/${OLD}"`,
  ])('%p is managed', (arg) => {
    expect(isManagedArg(arg, scope)).toBe(true);
  });

  it.each(['rd.lvm.lv=onn/swap', `rd.lvm.lv=other/${OLD}`, 'crashkernel=auto', 'quiet', 'boot=UUID=1234', 'rootwait'])(
    '%p is carried', (arg) => {
      expect(isManagedArg(arg, scope)).toBe(false);
    });

  it('extraArgs keeps the user arguments in order without duplicates', () => {
    const running =
      `BOOT_IMAGE=(hd0,msdos1)//${OLD}/vmlinuz-5.14.0-1.el9.x86_64 root=/dev/onn/${OLD} ro ` +
      `crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/onn-swap rd.lvm.lv=onn/${OLD} ` +
      `rd.lvm.lv=onn/swap rhgb quiet rootflags=discard img.bootid=${OLD} quiet console="ttyS0,115200n8" fips=1`;
    expect(extraArgs(running, scope)).toEqual([
      'crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M', 'resume=/dev/mapper/onn-swap', 'rd.lvm.lv=onn/swap', 'rhgb',
      'quiet', 'console="ttyS0,115200n8"', 'fips=1',
    ]);
  });

  it('mergeArgs appends only what is not already there', () => {
    expect(mergeArgs(['a', 'b=1'], ['b=1', 'c', 'a', 'b=2', 'c'])).toEqual(['a', 'b=1', 'c', 'b=2']);
    expect(dedupeArgs(['x', '', 'x', 'y'])).toEqual(['x', 'y']);
  });
});

describe('expandGrubVars', () => {
  it('expands whole-token $name and ${name} from the environment, keeps unknown ones', () => {
    const env = new Map([['kernelopts', `root=/dev/onn/${OLD} ro rd.lvm.lv=onn/swap quiet`], ['empty', '']]);
    const args = expandGrubVars(splitArgs('$kernelopts ${empty} $tuned_params foo=$x'), env);
    expect(args).toEqual([`root=/dev/onn/${OLD}`, 'ro', 'rd.lvm.lv=onn/swap', 'quiet', '$tuned_params', 'foo=$x']);
    expect(extraArgs(args, scope)).toEqual(['rd.lvm.lv=onn/swap', 'quiet', '$tuned_params', 'foo=$x']);
  });
});
