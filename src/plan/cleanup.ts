/**
 * Garbage collection, remove-base and rollback planners. Pure. Removal steps are finalize steps: removing is not
 * undoable, so a crash half-way is rolled forward on recovery (the new state), never left half.
 */
import { InvalidArgumentError, NotFoundError } from '../errors';
import type { BaseInfo } from '../model/layout';
import { findBase, findLayer, previousLayer } from '../model/layout';
import { endTrials } from './boot';
import type { HostState } from './state';
import { savedDefaultOf, trialLayerOf } from './state';
import type { Step } from './steps';
import { step } from './steps';

/** Why a base must be kept, or null when it may go. */
export function keepReason(state: HostState, base: BaseInfo): string | null {
  for (const l of base.layers) {
    if (l.name === state.current) return `its layer ${l.name} is the running layer`;
    if (l.name === state.defaultLayer) return `its layer ${l.name} is the boot default`;
    if (l.name === savedDefaultOf(state)) return `its layer ${l.name} is the saved boot default (the fallback of a trial boot)`;
    if (state.bootStates?.get(l.name)?.state === 'trial') return `its layer ${l.name} is on trial`;
    if (state.pinned.has(l.name)) return `its layer ${l.name} is pinned`;
  }
  if (state.pinned.has(base.name)) return 'it is pinned';
  return null;
}

function removalSteps(base: BaseInfo): Step[] {
  return [
    ...base.layers.map((l) =>
      step('remove-layer', { name: l.name }, `Remove layer ${l.name}`, { id: `remove-layer:${l.name}`, phase: 'finalize' })),
    ...(base.volume
      ? [step('remove-base', { name: base.name }, `Remove base ${base.name}`, { id: `remove-base:${base.name}`, phase: 'finalize' })]
      : []),
  ];
}

/** Keep the newest `keep` bases plus every base that must be kept; remove the rest, oldest first. */
export function planCollect(state: HostState, keep: number): Step[] {
  if (!Number.isInteger(keep) || keep < 1) throw new InvalidArgumentError(`keep must be at least 1, got ${keep}`);
  const bases = state.layout.bases;
  const newest = new Set(bases.slice(Math.max(0, bases.length - keep)).map((b) => b.name));
  return bases.filter((b) => !newest.has(b.name) && keepReason(state, b) === null).flatMap(removalSteps);
}

export function planCleanup(state: HostState, keep: number): Step[] {
  return planCollect(state, keep);
}

export function planRemoveBase(state: HostState, name: string): Step[] {
  const base = findBase(state.layout, name);
  if (!base) throw new NotFoundError(`no base named ${name}`);
  const reason = keepReason(state, base);
  if (reason) throw new InvalidArgumentError(`base ${name} cannot be removed: ${reason}`);
  return removalSteps(base);
}

/**
 * Rollback: make an older layer the boot default. Without a target: the layer before the boot default (so a staged
 * upgrade is undone first); while a layer is on trial, its fallback (the trial is withdrawn, or marked bad when it
 * is the running layer). From the oldest layer it is an error, never a wrap-around.
 */
export function planRollback(state: HostState, target: string | null, at = new Date(0).toISOString()): Step[] {
  const trial = trialLayerOf(state);
  const saved = savedDefaultOf(state);
  let to: string;
  if (target !== null) {
    if (!findLayer(state.layout, target)) throw new NotFoundError(`no layer named ${target}`);
    if (state.bootStates?.get(target)?.state === 'trial') {
      throw new InvalidArgumentError(`${target} is on trial: its boot is confirmed by CompleteBoot, not made the default by rollback`, {
        hint: 'on its trial boot run `nodectl boot-complete` (imgbased-boot-complete.service does at every boot)',
      });
    }
    to = target;
  } else if (trial !== null && (state.bootStates?.get(trial)?.fallback ?? saved) !== null) {
    to = state.bootStates?.get(trial)?.fallback ?? saved ?? trial;
  } else {
    const from = state.defaultLayer ?? state.current;
    if (!from) throw new InvalidArgumentError('no boot default and no running layer: nothing to roll back from');
    const prev = previousLayer(state.layout, from);
    if (!prev) throw new InvalidArgumentError(`${from} is the oldest layer: there is nothing to roll back to`);
    to = prev.name;
  }
  const ending = endTrials(state, `rolled back to ${to} before its boot was confirmed`, at, 'bad', to);
  if (to === state.defaultLayer && ending.length === 0) throw new InvalidArgumentError(`${to} is already the boot default`);
  return [
    ...ending,
    step('set-default', { layer: to, previous: saved, next: null, previousNext: state.nextBoot ?? null }, `Boot ${to} by default`),
  ];
}
