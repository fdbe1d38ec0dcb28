/**
 * Names as real imgbased uses them: a base is named by its image NVR, a layer is `NVR+N`.
 * Names double as LV names, so they must be valid LV names.
 */
import { InvalidNameError } from '../errors';
import { rpmvercmp } from './rpmvercmp';

export interface Nvr {
  readonly name: string;
  readonly version: string;
  readonly release: string;
}

export interface LayerName {
  readonly base: Nvr;
  readonly index: number;
}

/** imgbased's own NVR pattern (naming.py): greedy name, then version and release without dashes. */
const NVR_RE = /^(.*)-([^-]*)-([^-]*)$/;
const LAYER_RE = /^(.*)\+([0-9]+)$/;
const LV_NAME_RE = /^[a-zA-Z0-9+_.-]+$/;
export const MAX_LV_NAME = 55;

export function assertLvName(name: string): void {
  if (name.length === 0) throw new InvalidNameError('empty volume name');
  if (name.length > MAX_LV_NAME) {
    throw new InvalidNameError(`volume name "${name}" is ${name.length} characters long; the limit is ${MAX_LV_NAME}`);
  }
  if (!LV_NAME_RE.test(name)) {
    throw new InvalidNameError(`volume name "${name}" may only contain letters, digits and "+_.-"`);
  }
  if (name === '.' || name === '..' || name.startsWith('-')) {
    throw new InvalidNameError(`volume name "${name}" is reserved by LVM`);
  }
}

export function parseNvr(text: string): Nvr {
  const m = NVR_RE.exec(text);
  if (!m || !m[1] || !m[2] || !m[3] || text.includes('+')) {
    throw new InvalidNameError(`"${text}" is not a name-version-release (expected e.g. ovirt-node-ng-4.5.6-0.20250101.0)`);
  }
  return { name: m[1], version: m[2], release: m[3] };
}

export function formatNvr(nvr: Nvr): string {
  return `${nvr.name}-${nvr.version}-${nvr.release}`;
}

/** Parse and check that the NVR is also usable as a base LV name (with room for a `+N` layer suffix). */
export function parseBaseName(text: string): Nvr {
  const nvr = parseNvr(text);
  assertLvName(text);
  assertLvName(`${text}+1`);
  return nvr;
}

export function parseLayerName(text: string): LayerName {
  const m = LAYER_RE.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) {
    throw new InvalidNameError(`"${text}" is not a layer name (expected NVR+N, e.g. ovirt-node-ng-4.5.6-0.20250101.0+1)`);
  }
  assertLvName(text);
  const index = Number(m[2]);
  if (!Number.isSafeInteger(index) || index < 1 || m[2].startsWith('0')) {
    throw new InvalidNameError(`layer "${text}" must end in +N with N >= 1`);
  }
  return { base: parseNvr(m[1]), index };
}

export function formatLayerName(base: Nvr | string, index = 1): string {
  const nvr = typeof base === 'string' ? base : formatNvr(base);
  const name = `${nvr}+${index}`;
  assertLvName(name);
  return name;
}

export function isLayerName(text: string): boolean {
  return LAYER_RE.test(text);
}

/** Compare two NVRs as rpm compares labels: version, then release; the name only breaks exact ties. */
export function compareNvr(a: Nvr, b: Nvr): -1 | 0 | 1 {
  const v = rpmvercmp(a.version, b.version);
  if (v !== 0) return v;
  const r = rpmvercmp(a.release, b.release);
  if (r !== 0) return r;
  return a.name === b.name ? 0 : a.name < b.name ? -1 : 1;
}

export function compareLayerNames(a: LayerName, b: LayerName): number {
  return compareNvr(a.base, b.base) || a.index - b.index;
}
