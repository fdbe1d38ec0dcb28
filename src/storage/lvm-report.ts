/**
 * Pure parsing of lvm2 reports: `lvs|vgs --reportformat json --units b --nosuffix -o <FIELDS>`.
 *
 * Tool output is `unknown` until validated here. Both JSON flavours of lvm2 are accepted: `json` (every value is a
 * string, "" when unset — what Debian 12 / EL8 / EL9 print) and `json_std` (numbers as numbers, null when unset,
 * string lists as arrays). Nothing in this file runs a tool.
 */
import { FailedError } from '../errors';
import { isLayerName } from '../model/names';
import { TAG, type VolumeInfo } from './backend';

/** Fields the lvm backend asks `lvs` for; parseLvsReport requires exactly these. */
export const LV_FIELDS = [
  'lv_name',
  'vg_name',
  'lv_attr',
  'lv_size',
  'lv_tags',
  'pool_lv',
  'origin',
  'data_percent',
  'metadata_percent',
  'lv_metadata_size',
  'lv_profile',
] as const;

/** Fields the lvm backend asks `vgs` for. */
export const VG_FIELDS = ['vg_name', 'vg_tags', 'vg_size', 'vg_free', 'vg_extent_size', 'vg_profile'] as const;

/** Arguments shared by every report command: machine-readable, bytes without a unit suffix. */
export const REPORT_ARGS = ['--reportformat', 'json', '--units', 'b', '--nosuffix'] as const;

/** The 10 characters of lv_attr, decoded (see lvs(8), "lv_attr bits"). */
export interface LvAttr {
  /** Bit 1, e.g. 'V' thin volume, 't' thin pool, '-' plain linear, 's' old-style snapshot, 'e' pool metadata spare. */
  readonly volumeType: string;
  readonly thinVolume: boolean;
  readonly thinPool: boolean;
  /** Bit 2: 'w' writeable, 'r' read-only (`--permission r`), 'R' read-only activation of a writeable volume. */
  readonly permission: 'w' | 'r' | 'R';
  /** True only for `--permission r` (bit 2 = 'r'); 'R' is a writeable volume that happens to be active read-only. */
  readonly readOnly: boolean;
  /** Bit 5 = 'a'. */
  readonly active: boolean;
  /** Bit 5 as printed: 'a' active, '-' inactive, 's' suspended, 'c'/'C' thin pool check needed, … */
  readonly state: string;
  /** Bit 6 = 'o' (mounted or otherwise held open). */
  readonly open: boolean;
  /** Bit 7: 't' thin, 'v' virtual, '-' none, … */
  readonly targetType: string;
  /** Bit 8 = 'z': new blocks are zeroed. */
  readonly zeroing: boolean;
  /** Bit 9: '-' healthy, 'D' out of data space, 'M' metadata read only, 'F' failed, 'p' partial, … */
  readonly health: string;
  /** Bit 10 = 'k': activation skip (imgbased bases and fresh snapshots). */
  readonly activationSkip: boolean;
}

export interface LvRecord {
  readonly name: string;
  readonly vg: string;
  readonly attrString: string;
  readonly attr: LvAttr;
  readonly sizeBytes: number;
  readonly tags: readonly string[];
  /** Thin pool the volume lives in, null for non-thin volumes. */
  readonly pool: string | null;
  readonly origin: string | null;
  /** Thin volumes and pools only. */
  readonly dataPercent: number | null;
  /** Thin pools only. */
  readonly metadataPercent: number | null;
  /** Thin pools only: size of the metadata LV. */
  readonly metadataSizeBytes: number | null;
  /** Metadata profile attached to the LV (`lvchange --metadataprofile`), null when none. */
  readonly profile: string | null;
}

export interface VgRecord {
  readonly name: string;
  readonly tags: readonly string[];
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentSizeBytes: number;
  readonly profile: string | null;
}

function bad(what: string, detail: string): FailedError {
  return new FailedError(`unexpected ${what} report from lvm2: ${detail}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decode lv_attr (exactly 10 characters, as lvm2 ≥ 2.02.x prints it). */
export function decodeLvAttr(attr: string): LvAttr {
  if (attr.length !== 10) throw bad('lvs', `lv_attr "${attr}" is not 10 characters long`);
  const c = (i: number): string => attr.charAt(i);
  const perm = c(1);
  if (perm !== 'w' && perm !== 'r' && perm !== 'R') {
    throw bad('lvs', `lv_attr "${attr}" has unknown permission "${perm}"`);
  }
  return {
    volumeType: c(0),
    thinVolume: c(0) === 'V',
    thinPool: c(0) === 't',
    permission: perm,
    readOnly: perm === 'r',
    active: c(4) === 'a',
    state: c(4),
    open: c(5) === 'o',
    targetType: c(6),
    zeroing: c(7) === 'z',
    health: c(8),
    activationSkip: c(9) === 'k',
  };
}

/** lv_tags / vg_tags: "a,b" in the `json` format, ["a","b"] in `json_std`; "" or null = none. */
export function splitTags(value: unknown, what = 'tags'): string[] {
  if (value === null || value === undefined || value === '') return [];
  if (typeof value === 'string') return value.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (Array.isArray(value) && value.every((t): t is string => typeof t === 'string')) {
    return value.filter((t) => t.length > 0);
  }
  throw bad('lvm', `${what} is neither a string nor a list of strings: ${JSON.stringify(value)}`);
}

function str(row: Record<string, unknown>, key: string, what: string): string {
  const v = row[key];
  if (typeof v !== 'string') throw bad(what, `field ${key} missing or not a string in ${JSON.stringify(row)}`);
  return v;
}

function optStr(row: Record<string, unknown>, key: string, what: string): string | null {
  if (!(key in row)) throw bad(what, `field ${key} missing in ${JSON.stringify(row)}`);
  const v = row[key];
  if (v === null || v === '') return null;
  if (typeof v !== 'string') throw bad(what, `field ${key} is not a string in ${JSON.stringify(row)}`);
  return v;
}

/** A report value as a number: null when unset ("" or null), NaN when it is not a plain number. */
function numberOf(v: unknown): number | null {
  if (v === null || v === '') return null;
  if (typeof v === 'number') return v;
  return typeof v === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(v.trim()) ? Number(v) : NaN;
}

function optNum(row: Record<string, unknown>, key: string, what: string): number | null {
  if (!(key in row)) throw bad(what, `field ${key} missing in ${JSON.stringify(row)}`);
  const n = numberOf(row[key]);
  if (n !== null && !Number.isFinite(n)) throw bad(what, `field ${key} is not a number: ${JSON.stringify(row[key])}`);
  return n;
}

function bytes(row: Record<string, unknown>, key: string, what: string): number {
  if (!(key in row)) throw bad(what, `field ${key} missing in ${JSON.stringify(row)}`);
  const n = numberOf(row[key]);
  if (n === null || !Number.isSafeInteger(n) || n < 0) {
    throw bad(what, `field ${key} is not a byte count (use --units b --nosuffix): ${JSON.stringify(row[key])}`);
  }
  return n;
}

/** The rows of every `report[i][section]` (lvm2 prints one report object per command; accept several). */
function reportRows(json: unknown, section: 'lv' | 'vg'): Record<string, unknown>[] {
  const what = section === 'lv' ? 'lvs' : 'vgs';
  if (!isRecord(json) || !Array.isArray(json['report'])) throw bad(what, 'no "report" array');
  const rows: Record<string, unknown>[] = [];
  for (const rep of json['report']) {
    if (!isRecord(rep)) throw bad(what, 'a report entry is not an object');
    const list = rep[section];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw bad(what, `"${section}" is not an array`);
    for (const row of list) {
      if (!isRecord(row)) throw bad(what, `a "${section}" row is not an object`);
      rows.push(row);
    }
  }
  return rows;
}

/** Parse the text lvm2 printed; a tool that printed no JSON at all is reported with its first line. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw bad(what, `not JSON: ${text.trim().split('\n')[0] ?? ''}`);
  }
}

export function parseLvRow(row: Record<string, unknown>): LvRecord {
  const what = 'lvs';
  const attrString = str(row, 'lv_attr', what);
  return {
    name: str(row, 'lv_name', what),
    vg: str(row, 'vg_name', what),
    attrString,
    attr: decodeLvAttr(attrString),
    sizeBytes: bytes(row, 'lv_size', what),
    tags: splitTags(row['lv_tags'], 'lv_tags'),
    pool: optStr(row, 'pool_lv', what),
    origin: optStr(row, 'origin', what),
    dataPercent: optNum(row, 'data_percent', what),
    metadataPercent: optNum(row, 'metadata_percent', what),
    metadataSizeBytes: optNum(row, 'lv_metadata_size', what),
    profile: optStr(row, 'lv_profile', what),
  };
}

/** `lvs --reportformat json --units b --nosuffix -o LV_FIELDS` output (parsed JSON or raw text). */
export function parseLvsReport(json: unknown): LvRecord[] {
  const value = typeof json === 'string' ? parseJsonText(json, 'lvs') : json;
  return reportRows(value, 'lv').map(parseLvRow);
}

export function parseVgRow(row: Record<string, unknown>): VgRecord {
  const what = 'vgs';
  return {
    name: str(row, 'vg_name', what),
    tags: splitTags(row['vg_tags'], 'vg_tags'),
    sizeBytes: bytes(row, 'vg_size', what),
    freeBytes: bytes(row, 'vg_free', what),
    extentSizeBytes: bytes(row, 'vg_extent_size', what),
    profile: optStr(row, 'vg_profile', what),
  };
}

/** `vgs --reportformat json --units b --nosuffix -o VG_FIELDS` output (parsed JSON or raw text). */
export function parseVgsReport(json: unknown): VgRecord[] {
  const value = typeof json === 'string' ? parseJsonText(json, 'vgs') : json;
  return reportRows(value, 'vg').map(parseVgRow);
}

/**
 * LVs that are not volumes of their own: the thin pool, its hidden data/metadata (`[pool_tdata]`), the metadata spare
 * (`[lvol0_pmspare]`), mirror/raid legs and logs. `lvs` without `-a` hides the bracketed ones already; this also
 * catches them when a caller used `-a`.
 */
export function isInternalLv(lv: LvRecord): boolean {
  return lv.name.startsWith('[') || lv.attr.thinPool || 'TeiIlc'.includes(lv.attr.volumeType);
}

/**
 * How real imgbased sees an LV. Tags only mark membership; bases and layers are told apart by NAME (a base is an NVR,
 * a layer `NVR+N`), because `layout --init` tags the first base `imgbased:layer`, not `imgbased:base`.
 */
export type ImgbasedRole = 'init' | 'base' | 'layer' | 'volume' | 'pool';

export function imgbasedRole(lv: LvRecord): ImgbasedRole | null {
  const has = (t: string): boolean => lv.tags.includes(t);
  if (has(TAG.pool) && lv.attr.thinPool) return 'pool';
  if (has(TAG.volume)) return 'volume';
  if (has(TAG.base) || has(TAG.layer)) return isLayerName(lv.name) ? 'layer' : 'base';
  if (has(TAG.init)) return 'init';
  return null;
}

/**
 * The backend's view of an LV of the VG (what discovery and the planners get). `origin` is passed through as
 * information only: it is the previous base for a delta base (a thin snapshot of it), the init LV for the first
 * base, empty once the origin was removed, or `-NAME` (a historical LV) with lvm.conf record_lvs_history=1 — nothing
 * may depend on it: thin snapshots are independent volumes, and bases and layers are told apart by tag and name.
 */
export function volumeInfo(lv: LvRecord, poolName: string): VolumeInfo {
  return {
    name: lv.name,
    tags: lv.tags,
    sizeBytes: lv.sizeBytes,
    readOnly: lv.attr.readOnly,
    activationSkip: lv.attr.activationSkip,
    active: lv.attr.active,
    origin: lv.origin,
    thin: lv.attr.thinVolume && lv.pool === poolName,
  };
}

/** Pool space in bytes as lvm2 reports it (data_percent of lv_size), rounded down to whole bytes free. */
export function poolFreeBytes(pool: LvRecord): number {
  const used = Math.ceil((pool.sizeBytes * (pool.dataPercent ?? 0)) / 100);
  return Math.max(0, pool.sizeBytes - used);
}

/**
 * `lvmconfig` prints `key=value` lines (`thin_pool_autoextend_threshold=70`); returns the integer value of `key`, or
 * null when absent or not an integer.
 */
export function parseLvmconfigInt(text: string, key: string): number | null {
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*(-?[0-9]+)\s*$/.exec(line);
    if (m && m[1] === key && m[2] !== undefined) return Number(m[2]);
  }
  return null;
}
