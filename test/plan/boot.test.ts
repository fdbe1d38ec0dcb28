import type { BootState } from '../../src/boot/boot-state';
import { discoverLayout } from '../../src/model/layout';
import { parseNvr } from '../../src/model/names';
import { abandonedTrials, assessmentTarget, planCompleteBoot } from '../../src/plan/boot';
import { planCollect, planRollback } from '../../src/plan/cleanup';
import type { HostState } from '../../src/plan/state';
import { trialLayerOf } from '../../src/plan/state';
import { planUpgrade } from '../../src/plan/upgrade';
import type { VolumeInfo } from '../../src/storage/backend';
import { TAG } from '../../src/storage/backend';

const vol = (name: string, tags: string[]): VolumeInfo => ({
  name, tags, sizeBytes: 1 << 30, readOnly: false, activationSkip: false, active: true, origin: null, thin: true,
});
const A = 'ovirt-node-ng-4.5.4-0.1+1';
const B = 'ovirt-node-ng-4.5.5-0.1+1';
const C = 'ovirt-node-ng-4.5.6-0.1+1';
const AT = '2026-11-26T00:00:00.000Z';
const good: BootState = { state: 'good', reason: 'installed', changedAt: AT };
const trial = (fallback: string): BootState => ({ state: 'trial', reason: 'waiting for its first boot', changedAt: AT, fallback });

function host(over: Partial<HostState> = {}): HostState {
  const layout = discoverLayout([
    vol('ovirt-node-ng-4.5.4-0.1', [TAG.base]), vol(A, [TAG.layer]),
    vol('ovirt-node-ng-4.5.5-0.1', [TAG.base]), vol(B, [TAG.layer]),
  ]);
  return {
    layout, current: A, defaultLayer: A, savedDefault: A, nextBoot: null, pinned: new Set(),
    bootStates: new Map([[A, good]]), ...over,
  };
}
/** After the upgrade to B: B waits for its trial boot. */
const staged = (): HostState => host({ defaultLayer: B, nextBoot: B, bootStates: new Map([[A, good], [B, trial(A)]]) });
/** Booted into B on trial (grub used next_entry up). */
const onTrial = (): HostState => host({ current: B, defaultLayer: A, nextBoot: null, bootStates: new Map([[A, good], [B, trial(A)]]) });

const image = (nvr: string) => ({ path: '/i', nvr: parseNvr(nvr), usedBytes: 1e9, fsType: 'ext4' as const });
const req = { allowDowngrade: false, keepBases: 5, method: 'tree' as const, sizeBytes: 4e9, fsType: 'ext4' as const, at: AT };

describe('upgrade with boot assessment', () => {
  it('ends with start-trial (fallback = the saved default) instead of set-default', () => {
    const steps = planUpgrade(host(), image('ovirt-node-ng-4.5.6-0.1'), { ...req, assessment: true });
    const last = steps[steps.length - 1];
    expect(last?.action).toBe('start-trial');
    expect(last?.args).toEqual({ layer: C, fallback: A, reason: 'waiting for its first boot', at: AT, previousNext: null, previousState: null });
    expect(steps.some((s) => s.action === 'set-default')).toBe(false);
  });

  it('without a saved default, or with Assessment=no, sets the default and clears next_entry', () => {
    for (const [state, assessment] of [[host({ savedDefault: null, defaultLayer: null }), true], [host(), false]] as const) {
      const steps = planUpgrade(state, image('ovirt-node-ng-4.5.6-0.1'), { ...req, assessment });
      expect(steps.find((s) => s.action === 'set-default')?.args).toEqual({
        layer: C, previous: state.savedDefault, next: null, previousNext: null,
      });
    }
  });

  it('supersedes a pending trial (forgotten, not bad) and keeps its fallback', () => {
    const steps = planUpgrade(staged(), image('ovirt-node-ng-4.5.6-0.1'), { ...req, assessment: true });
    expect(steps.find((s) => s.action === 'set-boot-state')?.args).toEqual({ layer: B, value: null, previous: trial(A) });
    expect(steps.find((s) => s.action === 'start-trial')?.args).toMatchObject({ layer: C, fallback: A, previousNext: B });
  });
});

describe('trials and CompleteBoot', () => {
  it('the running trial layer is the assessment target; a staged one is not; an unconfirmed one is abandoned', () => {
    expect([assessmentTarget(staged()), trialLayerOf(staged()), abandonedTrials(staged())]).toEqual([null, B, []]);
    expect([assessmentTarget(onTrial()), abandonedTrials(onTrial())]).toEqual([B, []]);
    const reset = host({ bootStates: new Map([[A, good], [B, trial(A)]]) }); // back on A, next_entry used up
    expect(abandonedTrials(reset)).toEqual([B]);
    expect(planCompleteBoot(reset, null, AT)).toEqual({
      layer: '', verdict: 'none', reason: `${A} is not on trial (good)`,
      steps: [expect.objectContaining({ action: 'set-boot-state', args: {
        layer: B, previous: trial(A),
        value: { state: 'bad', reason: `the host came back on ${A} before the boot of ${B} was confirmed`, changedAt: AT },
      } })],
    });
  });

  it('good: mark good and make it the saved default', () => {
    const p = planCompleteBoot(onTrial(), { verdict: 'good', reason: 'gates passed' }, AT);
    expect(p.steps.map((s) => [s.action, s.args])).toEqual([
      ['set-boot-state', { layer: B, value: { state: 'good', reason: 'gates passed', changedAt: AT }, previous: trial(A) }],
      ['set-default', { layer: B, previous: A }],
    ]);
  });

  it('bad: mark bad; the saved default already is the fallback, so grubenv is left alone', () => {
    const p = planCompleteBoot(onTrial(), { verdict: 'bad', reason: 'vdsmd failed' }, AT);
    expect(p.steps.map((s) => s.action)).toEqual(['set-boot-state']);
    expect(p).toMatchObject({ layer: B, verdict: 'bad', reason: 'vdsmd failed' });
  });

  it('bad while the saved default moved elsewhere: the fallback is put back', () => {
    const p = planCompleteBoot(host({ current: B, defaultLayer: B, savedDefault: B, bootStates: new Map([[B, trial(A)]]) }),
      { verdict: 'bad', reason: 'x' }, AT);
    expect(p.steps.map((s) => [s.action, s.args])).toEqual([
      ['set-boot-state', expect.objectContaining({ layer: B })],
      ['set-default', { layer: A, previous: B }],
    ]);
  });
});

describe('rollback and collection around a trial', () => {
  it('rollback without a target while B runs on trial: B bad, default back to its fallback', () => {
    const steps = planRollback(onTrial(), null, AT);
    expect(steps.map((s) => [s.action, s.args])).toEqual([
      ['set-boot-state', { layer: B, previous: trial(A), value: { state: 'bad', reason: `rolled back to ${A} before its boot was confirmed`, changedAt: AT } }],
      ['set-default', { layer: A, previous: A, next: null, previousNext: null }],
    ]);
  });

  it('rollback of a staged trial withdraws it (forgotten) and clears next_entry', () => {
    const steps = planRollback(staged(), null, AT);
    expect(steps.map((s) => [s.action, s.args])).toEqual([
      ['set-boot-state', { layer: B, previous: trial(A), value: null }],
      ['set-default', { layer: A, previous: A, next: null, previousNext: B }],
    ]);
  });

  it('rollback to the trial layer itself is refused: only CompleteBoot confirms a trial', () => {
    expect(() => planRollback(onTrial(), B, AT)).toThrow(/is on trial: its boot is confirmed by CompleteBoot/);
  });

  it('cleanup keeps the trial layer and the saved default it falls back to', () => {
    const s = host({ current: null, defaultLayer: B, savedDefault: A, nextBoot: B, bootStates: new Map([[B, trial(A)]]) });
    expect(planCollect(s, 1)).toEqual([]);
  });
});
