import { InvalidArgumentError, NotFoundError, NotNewerError } from '../../src/errors';
import { discoverLayout } from '../../src/model/layout';
import { parseNvr } from '../../src/model/names';
import { planCleanup, planRemoveBase, planRollback } from '../../src/plan/cleanup';
import { planInit } from '../../src/plan/init';
import type { HostState } from '../../src/plan/state';
import { planUpgrade } from '../../src/plan/upgrade';
import type { VolumeInfo } from '../../src/storage/backend';
import { TAG } from '../../src/storage/backend';

const vol = (name: string, tags: string[]): VolumeInfo => ({
  name, tags, sizeBytes: 1 << 30, readOnly: false, activationSkip: false, active: true, origin: null, thin: true,
});

/** Three bases, as a host upgraded twice from an imgbased init (first base tagged imgbased:layer, as imgbased does). */
function host(over: Partial<HostState> = {}): HostState {
  const layout = discoverLayout([
    vol('root', [TAG.init]),
    vol('var', [TAG.volume]),
    vol('ovirt-node-ng-4.5.4-0.1', [TAG.layer]),
    vol('ovirt-node-ng-4.5.4-0.1+1', [TAG.layer]),
    vol('ovirt-node-ng-4.5.5-0.1', [TAG.base]),
    vol('ovirt-node-ng-4.5.5-0.1+1', [TAG.layer]),
    vol('ovirt-node-ng-4.5.10-0.1', [TAG.base]),
    vol('ovirt-node-ng-4.5.10-0.1+1', [TAG.layer]),
    vol('unrelated', []),
  ]);
  return { layout, current: 'ovirt-node-ng-4.5.10-0.1+1', defaultLayer: 'ovirt-node-ng-4.5.10-0.1+1', pinned: new Set(), ...over };
}

const image = (nvr: string) => ({ path: '/images/x.squashfs', nvr: parseNvr(nvr), usedBytes: 1e9, fsType: 'ext4' as const });
const req = { allowDowngrade: false, keepBases: 2, method: 'tree' as const, sizeBytes: 4e9, fsType: 'ext4' as const };

describe('layout discovery', () => {
  it('tells bases from layers by name, orders by rpm version, finds init and volumes', () => {
    const l = host().layout;
    expect(l.bases.map((b) => b.name)).toEqual(['ovirt-node-ng-4.5.4-0.1', 'ovirt-node-ng-4.5.5-0.1', 'ovirt-node-ng-4.5.10-0.1']);
    expect(l.bases[0]?.layers.map((x) => x.name)).toEqual(['ovirt-node-ng-4.5.4-0.1+1']);
    expect(l.init?.name).toBe('root');
    expect(l.volumes.map((v) => v.name)).toEqual(['var']);
  });
});

describe('planUpgrade', () => {
  it('plans the whole step list and collects the oldest base beyond keep=2, keeping current and default', () => {
    const steps = planUpgrade(host(), image('ovirt-node-ng-4.5.11-0.1'), req);
    expect(steps.map((s) => s.id)).toEqual([
      'create-base', 'write-base', 'protect-base', 'create-layer', 'carry-etc', 'migrate-var', 'install-boot',
      'set-default', 'remove-layer:ovirt-node-ng-4.5.4-0.1+1', 'remove-base:ovirt-node-ng-4.5.4-0.1',
      'remove-layer:ovirt-node-ng-4.5.5-0.1+1', 'remove-base:ovirt-node-ng-4.5.5-0.1',
    ]);
    expect(steps.filter((s) => s.phase === 'finalize')).toHaveLength(4);
    expect(steps.find((s) => s.action === 'set-default')?.args).toEqual({
      layer: 'ovirt-node-ng-4.5.11-0.1+1', previous: 'ovirt-node-ng-4.5.10-0.1+1', next: null, previousNext: null,
    });
  });

  it('never collects a pinned base', () => {
    const steps = planUpgrade(host({ pinned: new Set(['ovirt-node-ng-4.5.4-0.1+1']) }), image('ovirt-node-ng-4.5.11-0.1'), req);
    expect(steps.map((s) => s.id)).not.toContain('remove-base:ovirt-node-ng-4.5.4-0.1');
  });

  it('refuses an NVR that is not newer, unless allow-downgrade', () => {
    expect(() => planUpgrade(host(), image('ovirt-node-ng-4.5.9-0.1'), req)).toThrow(NotNewerError);
    expect(() => planUpgrade(host(), image('ovirt-node-ng-4.5.9-0.1'), { ...req, allowDowngrade: true })).not.toThrow();
    expect(() => planUpgrade(host(), image('ovirt-node-ng-4.5.10-0.1'), { ...req, allowDowngrade: true }))
      .toThrow(InvalidArgumentError);
  });
});

describe('planRollback', () => {
  it('goes to the layer before the default, and refuses to wrap from the oldest', () => {
    expect(planRollback(host(), null)[0]?.args).toEqual({
      layer: 'ovirt-node-ng-4.5.5-0.1+1', previous: 'ovirt-node-ng-4.5.10-0.1+1', next: null, previousNext: null,
    });
    const oldest = host({ defaultLayer: 'ovirt-node-ng-4.5.4-0.1+1', current: 'ovirt-node-ng-4.5.4-0.1+1' });
    expect(() => planRollback(oldest, null)).toThrow(/oldest layer/);
    expect(() => planRollback(host(), 'nope-1-1+1')).toThrow(NotFoundError);
    expect(() => planRollback(host(), 'ovirt-node-ng-4.5.10-0.1+1')).toThrow(/already the boot default/);
  });
});

describe('planCleanup / planRemoveBase', () => {
  it('keeps N bases', () => {
    expect(planCleanup(host(), 3)).toEqual([]);
    expect(planCleanup(host(), 1).map((s) => s.id)).toEqual([
      'remove-layer:ovirt-node-ng-4.5.4-0.1+1', 'remove-base:ovirt-node-ng-4.5.4-0.1',
      'remove-layer:ovirt-node-ng-4.5.5-0.1+1', 'remove-base:ovirt-node-ng-4.5.5-0.1',
    ]);
    expect(() => planCleanup(host(), 0)).toThrow(InvalidArgumentError);
  });

  it('refuses to remove the running, default or a pinned base', () => {
    expect(() => planRemoveBase(host(), 'ovirt-node-ng-4.5.10-0.1')).toThrow(/running layer/);
    expect(() => planRemoveBase(host({ current: null }), 'ovirt-node-ng-4.5.10-0.1')).toThrow(/boot default/);
    expect(() => planRemoveBase(host({ pinned: new Set(['ovirt-node-ng-4.5.5-0.1+1']) }), 'ovirt-node-ng-4.5.5-0.1'))
      .toThrow(/pinned/);
    expect(() => planRemoveBase(host(), 'x-1-1')).toThrow(NotFoundError);
    expect(planRemoveBase(host(), 'ovirt-node-ng-4.5.5-0.1')).toHaveLength(2);
  });
});

describe('planInit', () => {
  it('plans init on an empty layout and refuses a second init', () => {
    const empty: HostState = { layout: discoverLayout([vol('root', [])]), current: null, defaultLayer: null, pinned: new Set() };
    expect(planInit(empty, 'root', parseNvr('ovirt-node-ng-4.5.4-0.1')).map((s) => s.action)).toEqual([
      'mark-layout', 'tag-init', 'snapshot-base', 'protect-base', 'create-layer', 'install-boot', 'set-default', 'set-boot-state',
    ]);
    expect(() => planInit(host(), 'root', parseNvr('ovirt-node-ng-4.5.4-0.1'))).toThrow(/already initialised/);
  });
});
