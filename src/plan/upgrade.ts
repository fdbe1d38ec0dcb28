/**
 * Upgrade planner: (host state, verified image facts, config) → steps. Pure.
 * create-base → write-base → protect-base → create-layer → carry-etc → migrate-var → install-boot → start-trial
 * (boot assessment: the layer boots once through next_entry) or set-default → collect garbage (finalize: remove the
 * oldest bases beyond the keep count; never the trial layer nor the layer a reset falls back to).
 */
import { NotNewerError, InvalidArgumentError } from '../errors';
import { findBase, newestLayer } from '../model/layout';
import type { Nvr } from '../model/names';
import { compareNvr, formatLayerName, formatNvr } from '../model/names';
import type { FsType } from '../storage/backend';
import { endTrials, startTrial } from './boot';
import { planCollect } from './cleanup';
import type { HostState } from './state';
import { savedDefaultOf } from './state';
import type { Step } from './steps';
import { step } from './steps';

export interface ImageFacts {
  readonly path: string;
  readonly nvr: Nvr;
  /** Bytes the tree occupies (what the base write will consume in the pool). */
  readonly usedBytes: number;
  readonly fsType: FsType;
}

/** How a new base is written: file copy, sparse block copy, or snapshot of the newest base + in-place sync. */
export type WriteWay = 'tree' | 'blocks' | 'delta';

export interface UpgradeRequest {
  readonly allowDowngrade: boolean;
  readonly keepBases: number;
  readonly method: WriteWay;
  /** delta: the newest base the new one is snapshotted from (same filesystem type). */
  readonly deltaFrom?: string;
  /** Virtual size of the new base (imgbased: the current layer's size), at least the image's own size. */
  readonly sizeBytes: number;
  /** Filesystem of the new base: the running layer's (tree writes) or the image's own (block writes). */
  readonly fsType: FsType;
  /** Boot assessment ([Boot] Assessment=): put the new layer on trial when there is a saved default to fall back to. */
  readonly assessment?: boolean;
  /** ISO time recorded in boot states. */
  readonly at?: string;
}

export function planUpgrade(state: HostState, image: ImageFacts, req: UpgradeRequest): Step[] {
  const baseName = formatNvr(image.nvr);
  const layerName = formatLayerName(image.nvr, 1);
  if (findBase(state.layout, baseName)) {
    throw new InvalidArgumentError(`base ${baseName} is already installed`, {
      hint: 'use rollback to boot it again, or remove-base first',
    });
  }
  const newest = state.layout.bases[state.layout.bases.length - 1];
  if (newest && compareNvr(image.nvr, newest.nvr) <= 0 && !req.allowDowngrade) {
    throw new NotNewerError(`image ${baseName} is not newer than the installed base ${newest.name}`, {
      hint: 'pass allow-downgrade to install it anyway',
    });
  }
  const from = state.current ?? state.defaultLayer ?? newestLayer(state.layout)?.name ?? null;
  if (!from) throw new InvalidArgumentError('no layer to upgrade from: the layout is not initialised (run imgbased init)');

  const write: Step[] = [];
  if (req.method === 'delta') {
    const from = req.deltaFrom;
    if (!from || !findBase(state.layout, from)) throw new InvalidArgumentError(`the delta write needs an existing base to start from, got "${from ?? ''}"`);
    write.push(
      step('snapshot-base', { from, name: baseName }, `Create base ${baseName} as a snapshot of ${from}`),
      step('sync-base', { name: baseName, from, sizeBytes: req.sizeBytes }, `Write the changes of the image into ${baseName}`, { weight: 10 }),
      step('verify-base', { name: baseName }, `Verify ${baseName} against the image's manifest`, { weight: 6 }),
    );
  } else {
    write.push(
      step('create-base', { name: baseName, sizeBytes: req.sizeBytes, fsType: req.fsType, format: req.method === 'tree' },
        `Create base ${baseName}`),
      step('write-base', { name: baseName, image: image.path, method: req.method }, `Write image into ${baseName}`, {
        weight: 20,
      }),
    );
  }
  const steps: Step[] = [
    ...write,
    step('protect-base', { name: baseName }, `Protect base ${baseName}`),
    step('create-layer', { base: baseName, name: layerName }, `Create layer ${layerName}`),
    step('carry-etc', { from, to: layerName }, `Carry /etc from ${from}`, { weight: 3 }),
    step('migrate-var', { layer: layerName }, 'Move /var forward', { weight: 2 }),
    step('install-boot', { layer: layerName, base: baseName, extraArgsFrom: from }, `Boot entry for ${layerName}`),
  ];
  const at = req.at ?? new Date(0).toISOString();
  const saved = savedDefaultOf(state);
  steps.push(...endTrials(state, `superseded by ${layerName}`, at, 'forget'));
  if (req.assessment && saved) {
    steps.push(startTrial(state, layerName, saved, at));
  } else {
    steps.push(step('set-default', {
      layer: layerName, previous: saved, next: null, previousNext: state.nextBoot ?? null,
    }, `Boot ${layerName} by default`));
  }
  const after: HostState = {
    ...state,
    defaultLayer: layerName,
    savedDefault: req.assessment && saved ? saved : layerName,
    layout: {
      ...state.layout,
      bases: [...state.layout.bases, { name: baseName, nvr: image.nvr, volume: null, layers: [] }],
    },
  };
  return [...steps, ...planCollect(after, req.keepBases)];
}
