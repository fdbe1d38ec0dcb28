/**
 * Boot assessment planners (pure). A new layer is put on trial by the upgrade (start-trial: grub boots it once
 * through next_entry while saved_entry keeps the last good layer); CompleteBoot then judges the running layer:
 * good → it becomes the saved default; bad → the last good layer stays (or is put back as) the default. A trial the
 * host left unconfirmed (it came back on another layer and next_entry no longer names the trial layer) is bad.
 */
import type { BootState } from '../boot/boot-state';
import type { HostState } from './state';
import { savedDefaultOf } from './state';
import type { Step } from './steps';
import { step } from './steps';

export type Verdict = 'good' | 'bad';

export interface BootVerdict {
  readonly verdict: Verdict;
  readonly reason: string;
}

const stateOf = (state: HostState, layer: string): BootState | null => state.bootStates?.get(layer) ?? null;

/** Layers on trial whose one-shot boot was used up without a confirmation: not running, not the pending next boot. */
export function abandonedTrials(state: HostState): string[] {
  return state.layout.layers
    .map((l) => l.name)
    .filter((l) => stateOf(state, l)?.state === 'trial' && l !== state.current && l !== (state.nextBoot ?? null));
}

/** The running layer when its boot is on trial (the one CompleteBoot's gates judge), else null. */
export function assessmentTarget(state: HostState): string | null {
  const cur = state.current;
  return cur !== null && stateOf(state, cur)?.state === 'trial' ? cur : null;
}

function setState(state: HostState, layer: string, value: BootState | null, title: string): Step {
  return step('set-boot-state', { layer, value, previous: stateOf(state, layer) }, title, { id: `set-boot-state:${layer}` });
}

export function bad(reason: string, at: string): BootState {
  return { state: 'bad', reason, changedAt: at };
}

/**
 * Trials that must end because another layer is being made the default: a trial that never booted is forgotten; a
 * running one is marked bad when it is rejected (rollback), forgotten when it is superseded (upgrade: it was
 * neither confirmed nor rejected, and the new trial falls back past it to the last good layer).
 */
export function endTrials(
  state: HostState, why: string, at: string, running: 'bad' | 'forget', except: string | null = null,
): Step[] {
  return state.layout.layers
    .map((l) => l.name)
    .filter((l) => l !== except && stateOf(state, l)?.state === 'trial')
    .map((l) => l === state.current && running === 'bad'
      ? setState(state, l, bad(why, at), `Mark ${l} bad: ${why}`)
      : setState(state, l, null, `End the trial of ${l}: ${why}`));
}

/** Make `layer` boot once next time while the saved default stays the last good layer. */
export function startTrial(state: HostState, layer: string, fallback: string, at: string): Step {
  return step('start-trial', {
    layer, fallback, reason: 'waiting for its first boot', at,
    previousNext: state.nextBoot ?? null, previousState: stateOf(state, layer),
  }, `Boot ${layer} once on trial (falls back to ${fallback})`);
}

export interface CompleteBootPlan {
  /** The judged layer ('' when nothing was on trial). */
  readonly layer: string;
  readonly verdict: Verdict | 'none';
  readonly reason: string;
  readonly steps: Step[];
}

/**
 * CompleteBoot: mark abandoned trials bad, then judge the running trial layer with `verdict` (null when nothing is
 * on trial, see assessmentTarget).
 */
export function planCompleteBoot(state: HostState, verdict: BootVerdict | null, at: string): CompleteBootPlan {
  const steps: Step[] = [];
  for (const l of abandonedTrials(state)) {
    const why = `the host came back on ${state.current ?? 'another layer'} before the boot of ${l} was confirmed`;
    steps.push(setState(state, l, bad(why, at), `Mark ${l} bad: ${why}`));
  }
  const target = assessmentTarget(state);
  const saved = savedDefaultOf(state);
  if (target === null || verdict === null) {
    const cur = state.current;
    const now = cur ? stateOf(state, cur) : null;
    const reason = !cur ? 'the running layer is unknown' : `${cur} is not on trial${now ? ` (${now.state})` : ''}`;
    return { layer: '', verdict: 'none', reason, steps };
  }
  const nextIsTarget = (state.nextBoot ?? null) === target;
  if (verdict.verdict === 'good') {
    steps.push(setState(state, target, { state: 'good', reason: verdict.reason, changedAt: at }, `Mark ${target} good`));
    if (saved !== target || nextIsTarget) {
      steps.push(step('set-default', {
        layer: target, previous: saved, ...(nextIsTarget ? { next: null, previousNext: target } : {}),
      }, `Boot ${target} by default`));
    }
  } else {
    steps.push(setState(state, target, bad(verdict.reason, at), `Mark ${target} bad: ${verdict.reason}`));
    const fallback = stateOf(state, target)?.fallback ?? saved;
    if (fallback && fallback !== target && (fallback !== saved || nextIsTarget)) {
      steps.push(step('set-default', {
        layer: fallback, previous: saved, ...(nextIsTarget ? { next: null, previousNext: target } : {}),
      }, `Boot ${fallback} by default again`));
    }
  }
  return { layer: target, verdict: verdict.verdict, reason: verdict.reason, steps };
}
