/**
 * The layout as imgbased sees it, derived (purely) from the storage volumes.
 *
 * Membership comes from tags (`imgbased:base`, `imgbased:layer`), but bases and layers are told apart by NAME
 * (NVR vs NVR+N): real imgbased 1.2.x tags the first base (from `layout --init`) `imgbased:layer`.
 */
import type { VolumeInfo } from '../storage/backend';
import { TAG } from '../storage/backend';
import type { LayerName, Nvr } from './names';
import { compareLayerNames, compareNvr, formatNvr, isLayerName, parseLayerName, parseNvr } from './names';
import { ImgbasedError } from '../errors';

export interface LayerInfo {
  readonly name: string;
  readonly parsed: LayerName;
  readonly volume: VolumeInfo;
}

export interface BaseInfo {
  readonly name: string;
  readonly nvr: Nvr;
  /** Null when the base volume is gone but layers of it remain (bases can be removed while a layer is kept). */
  readonly volume: VolumeInfo | null;
  /** Oldest first. */
  readonly layers: readonly LayerInfo[];
}

export interface Layout {
  /** Oldest first (rpm ordering of the NVR). */
  readonly bases: readonly BaseInfo[];
  /** Every layer, oldest first. */
  readonly layers: readonly LayerInfo[];
  /** The installed root LV (`imgbased:init`), if any. */
  readonly init: VolumeInfo | null;
  /** Extra volumes (`imgbased:volume`: /var, /home, …). */
  readonly volumes: readonly VolumeInfo[];
  /** Tagged volumes whose names are neither an NVR nor a layer name (reported by check, never touched). */
  readonly unknown: readonly VolumeInfo[];
}

const isMember = (v: VolumeInfo): boolean => v.tags.includes(TAG.base) || v.tags.includes(TAG.layer);

function tryParse<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ImgbasedError) return null;
    throw e;
  }
}

export function discoverLayout(volumes: readonly VolumeInfo[]): Layout {
  const bases = new Map<string, { nvr: Nvr; volume: VolumeInfo | null; layers: LayerInfo[] }>();
  const layers: LayerInfo[] = [];
  const unknown: VolumeInfo[] = [];
  const members = volumes.filter(isMember);

  for (const v of members) {
    if (isLayerName(v.name)) continue;
    const nvr = tryParse(() => parseNvr(v.name));
    if (nvr) bases.set(v.name, { nvr, volume: v, layers: [] });
    else unknown.push(v);
  }
  for (const v of members) {
    if (!isLayerName(v.name)) continue;
    const parsed = tryParse(() => parseLayerName(v.name));
    if (!parsed) {
      unknown.push(v);
      continue;
    }
    const layer: LayerInfo = { name: v.name, parsed, volume: v };
    const baseName = formatNvr(parsed.base);
    const base = bases.get(baseName) ?? { nvr: parsed.base, volume: null, layers: [] };
    bases.set(baseName, base);
    base.layers.push(layer);
    layers.push(layer);
  }

  const sortedBases: BaseInfo[] = [...bases.entries()]
    .map(([name, b]) => ({
      name,
      nvr: b.nvr,
      volume: b.volume,
      layers: [...b.layers].sort((x, y) => compareLayerNames(x.parsed, y.parsed)),
    }))
    .sort((x, y) => compareNvr(x.nvr, y.nvr));

  return {
    bases: sortedBases,
    layers: layers.sort((x, y) => compareLayerNames(x.parsed, y.parsed)),
    init: volumes.find((v) => v.tags.includes(TAG.init)) ?? null,
    volumes: volumes.filter((v) => v.tags.includes(TAG.volume)),
    unknown,
  };
}

export function findLayer(layout: Layout, name: string): LayerInfo | null {
  return layout.layers.find((l) => l.name === name) ?? null;
}

export function findBase(layout: Layout, name: string): BaseInfo | null {
  return layout.bases.find((b) => b.name === name) ?? null;
}

/** The newest layer (highest base, highest index), or null on an empty layout. */
export function newestLayer(layout: Layout): LayerInfo | null {
  return layout.layers[layout.layers.length - 1] ?? null;
}

/** The layer booted before `name` in layer order, or null when `name` is the oldest. */
export function previousLayer(layout: Layout, name: string): LayerInfo | null {
  const i = layout.layers.findIndex((l) => l.name === name);
  return i > 0 ? (layout.layers[i - 1] ?? null) : null;
}
