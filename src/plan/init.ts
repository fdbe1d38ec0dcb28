/**
 * Layout init (offline, at install time): tag VG/pool and the installed root LV, snapshot the root into the first
 * base NVR, protect it, snapshot the base into layer NVR+1, write its boot entry and make it the default. Pure.
 */
import { InvalidArgumentError } from '../errors';
import type { Nvr } from '../model/names';
import { formatLayerName, formatNvr } from '../model/names';
import type { HostState } from './state';
import type { Step } from './steps';
import { step } from './steps';

export function planInit(state: HostState, initLv: string, nvr: Nvr, at = new Date(0).toISOString()): Step[] {
  if (state.layout.bases.length > 0) {
    throw new InvalidArgumentError(`the layout is already initialised (bases: ${state.layout.bases.map((b) => b.name).join(', ')})`);
  }
  const base = formatNvr(nvr);
  const layer = formatLayerName(nvr, 1);
  return [
    step('mark-layout', {}, 'Tag the volume group and thin pool'),
    step('tag-init', { name: initLv }, `Tag ${initLv} as the installed root`),
    step('snapshot-base', { from: initLv, name: base }, `Create base ${base} from ${initLv}`, { weight: 2 }),
    step('protect-base', { name: base }, `Protect base ${base}`),
    step('create-layer', { base, name: layer }, `Create layer ${layer}`),
    step('install-boot', { layer, base, extraArgsFrom: initLv }, `Boot entry for ${layer}`),
    step('set-default', { layer, previous: state.defaultLayer, next: null, previousNext: state.nextBoot ?? null }, `Boot ${layer} by default`),
    step('set-boot-state', {
      layer, value: { state: 'good', reason: 'installed', changedAt: at }, previous: state.bootStates?.get(layer) ?? null,
    }, `Mark ${layer} good (installed)`),
  ];
}
