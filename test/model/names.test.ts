import { InvalidNameError } from '../../src/errors';
import {
  assertLvName, compareLayerNames, compareNvr, formatLayerName, formatNvr, isLayerName, parseBaseName, parseLayerName,
  parseNvr,
} from '../../src/model/names';

describe('NVR parsing (imgbased naming.py pattern)', () => {
  it('splits name-version-release with a greedy name', () => {
    expect(parseNvr('ovirt-node-ng-4.5.6-0.20250101.0')).toEqual({
      name: 'ovirt-node-ng', version: '4.5.6', release: '0.20250101.0',
    });
    expect(formatNvr(parseNvr('a-b-c-1.0-1.el9'))).toBe('a-b-c-1.0-1.el9');
  });

  it.each(['', 'noversion', 'name-1.0', '-1.0-1', 'x-1.0-', 'x--1', 'ovirt-node-ng-4.5-1+1'])(
    'rejects %p with InvalidNameError', (bad) => {
      expect(() => parseNvr(bad)).toThrow(InvalidNameError);
    });

  it('base names must also be valid LV names with room for +N', () => {
    expect(() => parseBaseName('image-1.0-1 x')).toThrow(/may only contain/);
    expect(() => parseBaseName(`${'n'.repeat(48)}-1.0-1`)).toThrow(/limit is 55/);
    expect(parseBaseName('ovirt-node-ng-4.5.6-0.20250101.0').version).toBe('4.5.6');
  });
});

describe('layer names', () => {
  it('parses NVR+N', () => {
    const l = parseLayerName('ovirt-node-ng-4.5.6-0.20250101.0+2');
    expect(l.index).toBe(2);
    expect(formatNvr(l.base)).toBe('ovirt-node-ng-4.5.6-0.20250101.0');
    expect(formatLayerName(l.base, 3)).toBe('ovirt-node-ng-4.5.6-0.20250101.0+3');
    expect(isLayerName('ovirt-node-ng-4.5.6-0.20250101.0')).toBe(false);
  });

  it.each(['img-1-1', 'img-1-1+0', 'img-1-1+01', 'img-1-1+x', 'img 1-1+1', `${'n'.repeat(60)}-1-1+1`])(
    'rejects %p', (bad) => {
      expect(() => parseLayerName(bad)).toThrow(InvalidNameError);
    });
});

describe('LV names', () => {
  it.each(['ok-name+1', 'a_b.c', 'A9'])('accepts %p', (n) => expect(() => assertLvName(n)).not.toThrow());
  it.each(['', '.', '..', '-x', 'a/b', 'a b', 'ä', 'x'.repeat(56)])('rejects %p', (n) => {
    expect(() => assertLvName(n)).toThrow(InvalidNameError);
  });
});

describe('ordering', () => {
  it('orders NVRs by rpm version then release', () => {
    const sorted = ['n-4.5.10-1', 'n-4.5.9-1', 'n-4.5.9-2', 'n-4.5.9~rc1-9', 'n-4.5.9^post-0']
      .map(parseNvr).sort(compareNvr).map(formatNvr);
    expect(sorted).toEqual(['n-4.5.9~rc1-9', 'n-4.5.9-1', 'n-4.5.9-2', 'n-4.5.9^post-0', 'n-4.5.10-1']);
  });

  it('orders layers by base then index', () => {
    const sorted = ['n-2-1+1', 'n-1-1+2', 'n-1-1+10', 'n-1-1+1'].map(parseLayerName).sort(compareLayerNames)
      .map((l) => formatLayerName(l.base, l.index));
    expect(sorted).toEqual(['n-1-1+1', 'n-1-1+2', 'n-1-1+10', 'n-2-1+1']);
  });
});
