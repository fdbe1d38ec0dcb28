/**
 * Garbage collection, remove-base and rollback planners. Pure. Removal steps are finalize steps: removing is not
 * undoable, so a crash half-way is rolled forward on recovery (the new state), never left half.
 */
import { InvalidArgumentError, NotFoundError } from '../errors';
import type { BaseInfo } from '../model/layout';
import { findBase, findLayer, previousLayer } from '../model/layout';
import type { HostState } from './state';
import type { Step } from './steps';
import { step } from './steps';

/** Why a base must be kept, or null when it may go. */
export function keepReason(state: HostState, base: BaseInfo): string | null {
  for (const l of base.layers) {
    if (l.name === state.current) return `its layer ${l.name} is the running layer`;
    if (l.name === state.defaultLayer) return `its layer ${l.name} is the boot default`;
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
 * upgrade is undone first). From the oldest layer it is an error, never a wrap-around.
 */
export function planRollback(state: HostState, target: string | null): Step[] {
  const from = state.defaultLayer ?? state.current;
  let to: string;
  if (target !== null) {
    if (!findLayer(state.layout, target)) throw new NotFoundError(`no layer named ${target}`);
    to = target;
  } else {
    if (!from) throw new InvalidArgumentError('no boot default and no running layer: nothing to roll back from');
    const prev = previousLayer(state.layout, from);
    if (!prev) throw new InvalidArgumentError(`${from} is the oldest layer: there is nothing to roll back to`);
    to = prev.name;
  }
  if (to === state.defaultLayer) throw new InvalidArgumentError(`${to} is already the boot default`);
  return [step('set-default', { layer: to, previous: state.defaultLayer }, `Boot ${to} by default`)];
}
