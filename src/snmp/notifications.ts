/**
 * Which notifications a change of the daemon view means. Pure: (previous view, next view, settings) → notifications.
 *
 * - ovnUpgradeFinished / ovnUpgradeFailed: LastTransaction names a new upgrade transaction (its id differs from
 *   the one before). The LastTransaction property is the single trigger: it covers upgrades started by anyone
 *   (nodectl, Cockpit, the automatic-update timer) and the rejections recorded before any step ran. Failed and
 *   cancelled both send ovnUpgradeFailed (ovnLastTxResult tells them apart).
 * - ovnHealthChanged: Health moved between two known values.
 * - ovnPoolUsageHigh: data or metadata usage rose to or above the threshold (edge: once per crossing).
 * - ovnLayerBootFailed: a layer's "boot-state" turned "bad" (its health gates failed, CompleteBoot was told "bad",
 *   or the host came back on another layer before its trial boot was confirmed): one per layer, carrying that
 *   layer's row (ovnLayerName.<i>, ovnLayerBootStateReason.<i>). A layer that was already "bad" before is not news.
 *
 * Nothing is sent for the first view after the subagent starts (there is no "before"), except ovnPoolUsageHigh
 * when the pool is already above the threshold — a condition, which a freshly started monitor should learn.
 * A daemon restart changes nothing by itself: the view before it is kept, so the same LastTransaction is not news.
 */
import type { Varbind } from './agentx-pdu';
import type { DaemonView } from './daemon-view';
import type { LayerColumnName, NotificationName, ScalarName } from './mib-tree';
import { LAYER_COLUMNS, NOTIFICATION_OBJECTS, NOTIFICATIONS, SNMP_TRAP_OID_0 } from './mib-tree';
import { ValueType } from './agentx-pdu';
import type { AgentSettings } from './varbinds';
import { layerInstance, layerValues, MAX_LAYER_ROWS, scalarInstance, scalarValues } from './varbinds';

export interface Notification {
  name: NotificationName;
  /** The reason, for the log. */
  reason: string;
  /** For a notification about one layer: its ovnLayerIndex (position + 1) in the view it was detected in. */
  layerIndex?: number;
}

export function poolAbove(view: DaemonView, settings: AgentSettings): boolean {
  return Math.max(view.pool.dataPercent, view.pool.metadataPercent) >= settings.poolUsageThreshold;
}

/** @param prev the last view in which the daemon was reachable (undefined before the first one) */
export function detectNotifications(prev: DaemonView | undefined, next: DaemonView, settings: AgentSettings): Notification[] {
  const out: Notification[] = [];
  if (!next.reachable) return out;
  const last = next.last;
  if (prev !== undefined && last !== null && last.kind === 'upgrade' && last.id !== '' && last.id !== prev.last?.id) {
    if (last.state === 'succeeded') out.push({ name: 'ovnUpgradeFinished', reason: `upgrade ${last.id} succeeded` });
    else out.push({ name: 'ovnUpgradeFailed', reason: `upgrade ${last.id} ${last.state}: ${last.errorName} ${last.errorMessage}`.trim() });
  }
  if (prev !== undefined && prev.health !== 'unknown' && next.health !== 'unknown' && prev.health !== next.health) {
    out.push({ name: 'ovnHealthChanged', reason: `health ${prev.health} → ${next.health}` });
  }
  if (prev !== undefined) {
    const before = new Map(prev.layers.map((l) => [l.name, l.bootState]));
    next.layers.forEach((l, i) => {
      if (l.bootState !== 'bad' || before.get(l.name) === 'bad' || i >= MAX_LAYER_ROWS) return;
      out.push({ name: 'ovnLayerBootFailed', reason: `layer ${l.name} boot failed: ${l.bootStateReason || 'no reason given'}`, layerIndex: i + 1 });
    });
  }
  if (poolAbove(next, settings) && !(prev !== undefined && poolAbove(prev, settings))) {
    out.push({
      name: 'ovnPoolUsageHigh',
      reason: `pool data ${next.pool.dataPercent}% / metadata ${next.pool.metadataPercent}% ≥ ${settings.poolUsageThreshold}%`,
    });
  }
  return out;
}

const isColumn = (name: ScalarName | LayerColumnName): name is LayerColumnName => Object.hasOwn(LAYER_COLUMNS, name);

/**
 * The varbinds of a Notify PDU: snmpTrapOID.0, then the notification's OBJECTS (the master adds sysUpTime.0).
 * Columns of ovnLayerTable are the instances of row `layerIndex` (ovnLayerIndex, from 1) of the same view.
 */
export function notificationVarbinds(n: NotificationName, view: DaemonView, settings: AgentSettings, layerIndex = 0): Varbind[] {
  const scalars = scalarValues(view, settings);
  const row = layerValues(view, layerIndex - 1);
  return [
    { oid: SNMP_TRAP_OID_0, type: ValueType.ObjectIdentifier, value: NOTIFICATIONS[n] },
    ...NOTIFICATION_OBJECTS[n].map((name): Varbind => (isColumn(name)
      ? { oid: layerInstance(name, layerIndex), ...row[name] }
      : { oid: scalarInstance(name), ...scalars[name] })),
  ];
}
