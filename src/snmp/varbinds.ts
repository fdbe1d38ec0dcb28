/**
 * The daemon view → the MIB's instances, as AgentX varbinds in OID order. Pure: no I/O, no clock.
 *
 * Encodings (see the MIB's DESCRIPTIONs): names and ids are DisplayString (≤ 255 bytes); free text (error messages,
 * step titles) is OvnUtf8String, cut at a character boundary to ≤ 255 bytes; sizes are Gauge32 MiB (2^32 MiB is
 * 4 PiB, so nothing saturates); percentages are hundredths of a percent (display hint "d-2"); booleans TruthValue.
 */
import type { Varbind, VarbindValue } from './agentx-pdu';
import { ValueType } from './agentx-pdu';
import type { DaemonView, HealthStatus, LastTransactionView } from './daemon-view';
import type { LayerColumnName, ScalarName } from './mib-tree';
import { BOOT_STATE, HEALTH, LAYER_COLUMNS, LAYER_ENTRY, SCALARS, TRUTH, TX_RESULT, UPDATE_POLICY } from './mib-tree';
import type { Oid } from './oid';
import { compareOids } from './oid';

/** Settings of the subagent that are visible in the MIB. */
export interface AgentSettings {
  /** ovnPoolUsageThreshold: data or metadata usage (percent) at or above which ovnPoolUsageHigh is sent. */
  poolUsageThreshold: number;
}

type ValueOf = VarbindValue;

const MAX_OCTETS = 255;
const UINT32_MAX = 0xffff_ffff;
const MIB = 1024n * 1024n;

/** A DisplayString value: the text's bytes, at most 255. */
export function displayString(text: string): ValueOf {
  return { type: ValueType.OctetString, value: Buffer.from(text, 'utf8').subarray(0, MAX_OCTETS) };
}

/** An OvnUtf8String value: UTF-8, at most 255 bytes, never cut inside a character. */
export function utf8String(text: string): ValueOf {
  let b = Buffer.from(text, 'utf8');
  if (b.length > MAX_OCTETS) {
    let end = MAX_OCTETS;
    // back up over continuation bytes (10xxxxxx) so the cut lands before a character's first byte
    while (end > 0 && ((b[end] ?? 0) & 0xc0) === 0x80) end--;
    b = b.subarray(0, end);
  }
  return { type: ValueType.OctetString, value: Buffer.from(b) };
}

export function integer(n: number): ValueOf {
  return { type: ValueType.Integer, value: Math.max(-0x8000_0000, Math.min(0x7fff_ffff, Math.trunc(n))) };
}

export function gauge(n: number): ValueOf {
  return { type: ValueType.Gauge32, value: Math.max(0, Math.min(UINT32_MAX, Math.trunc(n))) };
}

export function truth(b: boolean): ValueOf {
  return integer(b ? TRUTH.true : TRUTH.false);
}

export function mebibytes(bytes: bigint): ValueOf {
  const mib = bytes / MIB;
  return gauge(mib > BigInt(UINT32_MAX) ? UINT32_MAX : Number(mib));
}

/** Hundredths of a percent, 0..10000. */
export function percentHundredths(p: number): ValueOf {
  return gauge(Math.max(0, Math.min(10000, Math.round((Number.isFinite(p) ? p : 0) * 100))));
}

/** SNMPv2-TC DateAndTime (11 octets, UTC) of microseconds since the epoch; 0 → "0-1-1,0:0:0.0,+0:0" (never). */
export function dateAndTime(us: bigint): ValueOf {
  const b = Buffer.alloc(11);
  if (us <= 0n) {
    b.writeUInt16BE(0, 0);
    b[2] = 1;
    b[3] = 1;
  } else {
    const d = new Date(Number(us / 1000n));
    b.writeUInt16BE(d.getUTCFullYear(), 0);
    b[2] = d.getUTCMonth() + 1;
    b[3] = d.getUTCDate();
    b[4] = d.getUTCHours();
    b[5] = d.getUTCMinutes();
    b[6] = d.getUTCSeconds();
    b[7] = Math.floor(d.getUTCMilliseconds() / 100);
  }
  b[8] = 0x2b; // '+'
  return { type: ValueType.OctetString, value: b };
}

export function healthNumber(h: HealthStatus): number {
  return HEALTH[h];
}

export function policyNumber(p: string): number {
  return p === 'none' || p === 'check' || p === 'stage' || p === 'apply' ? UPDATE_POLICY[p] : UPDATE_POLICY.unknown;
}

/** OvnBootState of the D-Bus "boot-state": "" notAssessed(1), trial(2), good(3), bad(4), anything else other(5). */
export function bootStateNumber(state: string): number {
  switch (state) {
    case '':
      return BOOT_STATE.notAssessed;
    case 'trial':
      return BOOT_STATE.trial;
    case 'good':
      return BOOT_STATE.good;
    case 'bad':
      return BOOT_STATE.bad;
    default:
      return BOOT_STATE.other;
  }
}

export function resultNumber(last: LastTransactionView | null): number {
  if (last === null) return TX_RESULT.none;
  switch (last.state) {
    case 'succeeded':
      return TX_RESULT.succeeded;
    case 'failed':
      return TX_RESULT.failed;
    case 'cancelled':
      return TX_RESULT.cancelled;
    default:
      return TX_RESULT.other;
  }
}

/** Every scalar's value. A Record over ScalarName: a scalar the MIB gains without a value here does not compile. */
export function scalarValues(view: DaemonView, settings: AgentSettings): Record<ScalarName, ValueOf> {
  const last = view.last;
  const finishedUs = last?.finishedAtUs ?? 0n;
  const epoch = finishedUs / 1_000_000n;
  return {
    ovnDaemonReachable: truth(view.reachable),
    ovnDaemonVersion: displayString(view.version),
    ovnCurrentLayer: displayString(view.currentLayer),
    ovnDefaultLayer: displayString(view.defaultLayer),
    ovnHealthStatus: integer(healthNumber(view.health)),
    ovnLayerCount: gauge(view.layers.length),
    ovnAutomaticUpdatePolicy: integer(policyNumber(view.policy)),
    ovnTrialLayer: displayString(view.trialLayer),

    ovnPoolSize: mebibytes(view.pool.sizeBytes),
    ovnPoolFree: mebibytes(view.pool.freeBytes),
    ovnPoolDataPercent: percentHundredths(view.pool.dataPercent),
    ovnPoolMetadataPercent: percentHundredths(view.pool.metadataPercent),
    ovnPoolAutoextendThreshold: integer(Math.max(-1, Math.min(100, view.pool.autoextendThreshold))),
    ovnPoolUsageThreshold: gauge(settings.poolUsageThreshold),

    ovnUpdateAvailable: truth(view.updateAvailable),
    ovnUpdateAvailableVersion: displayString(view.availableVersion),

    ovnActiveTxId: displayString(view.active?.id ?? ''),
    ovnActiveTxKind: displayString(view.active?.kind ?? ''),
    ovnActiveTxPercent: gauge(Math.max(0, Math.min(100, view.active?.percent ?? 0))),
    ovnActiveTxStep: utf8String(view.active?.step ?? ''),

    ovnLastTxId: displayString(last?.id ?? ''),
    ovnLastTxKind: displayString(last?.kind ?? ''),
    ovnLastTxResult: integer(resultNumber(last)),
    ovnLastTxFinishedAt: dateAndTime(finishedUs),
    ovnLastTxFinishedEpoch: gauge(epoch > BigInt(UINT32_MAX) ? UINT32_MAX : Number(epoch)),
    ovnLastTxErrorName: displayString(last?.errorName ?? ''),
    ovnLastTxErrorMessage: utf8String(last?.errorMessage ?? ''),
  };
}

/** The instance OID of a scalar (OID.0). */
export function scalarInstance(name: ScalarName): Oid {
  return [...SCALARS[name], 0];
}

/** The instance OID of a layer table cell: ovnLayerEntry.<column>.<ovnLayerIndex> (index = position + 1). */
export function layerInstance(name: LayerColumnName, index: number): Oid {
  return [...LAYER_ENTRY, LAYER_COLUMNS[name], index];
}

/** ovnLayerIndex: position, oldest first, from 1 (rows renumber when old layers are removed). At most 65535 rows. */
export const MAX_LAYER_ROWS = 65535;

/** Every column's value for the layer at position i (0-based). A Record: a column without a value does not compile. */
export function layerValues(view: DaemonView, i: number): Record<LayerColumnName, ValueOf> {
  const l = view.layers[i];
  return {
    ovnLayerName: displayString(l?.name ?? ''),
    ovnLayerKind: displayString(l?.kind ?? ''),
    ovnLayerBase: displayString(l?.base ?? ''),
    ovnLayerCurrent: truth(l?.current ?? false),
    ovnLayerDefault: truth(l?.default ?? false),
    ovnLayerPinned: truth(l?.pinned ?? false),
    ovnLayerSize: mebibytes(l?.sizeBytes ?? 0n),
    ovnLayerBootState: integer(bootStateNumber(l?.bootState ?? '')),
    ovnLayerBootStateReason: utf8String(l?.bootStateReason ?? ''),
  };
}

/** Every instance of the MIB for this view, sorted by OID (what GET/GETNEXT/GETBULK answer from). */
export function buildVarbinds(view: DaemonView, settings: AgentSettings): Varbind[] {
  const out: Varbind[] = [];
  const scalars = scalarValues(view, settings);
  for (const name of Object.keys(SCALARS) as ScalarName[]) out.push({ oid: scalarInstance(name), ...scalars[name] });
  const rows = Math.min(view.layers.length, MAX_LAYER_ROWS);
  for (let i = 0; i < rows; i++) {
    const values = layerValues(view, i);
    for (const name of Object.keys(LAYER_COLUMNS) as LayerColumnName[]) out.push({ oid: layerInstance(name, i + 1), ...values[name] });
  }
  return out.sort((a, b) => compareOids(a.oid, b.oid));
}
