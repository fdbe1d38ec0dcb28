/**
 * Which notifications a change of the daemon view means. Pure: (previous view, next view, settings) → notifications.
 *
 * - ovnUpgradeFinished / ovnUpgradeFailed: LastTransaction names a new upgrade transaction (its id differs from
 *   the one before). The LastTransaction property is the single trigger: it covers upgrades started by anyone
 *   (nodectl, Cockpit, the automatic-update timer) and the rejections recorded before any step ran. Failed and
 *   cancelled both send ovnUpgradeFailed (ovnLastTxResult tells them apart).
 * - ovnHealthChanged: Health moved between two known values.
 * - ovnPoolUsageHigh: data or metadata usage rose to or above the threshold (edge: once per crossing).
 *
 * Nothing is sent for the first view after the subagent starts (there is no "before"), except ovnPoolUsageHigh
 * when the pool is already above the threshold — a condition, which a freshly started monitor should learn.
 * A daemon restart changes nothing by itself: the view before it is kept, so the same LastTransaction is not news.
 */
import type { Varbind } from './agentx-pdu';
import type { DaemonView } from './daemon-view';
import type { NotificationName } from './mib-tree';
import { NOTIFICATION_OBJECTS, NOTIFICATIONS, SNMP_TRAP_OID_0 } from './mib-tree';
import { ValueType } from './agentx-pdu';
import type { AgentSettings } from './varbinds';
import { scalarInstance, scalarValues } from './varbinds';

export interface Notification {
  name: NotificationName;
  /** The reason, for the log. */
  reason: string;
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
  if (poolAbove(next, settings) && !(prev !== undefined && poolAbove(prev, settings))) {
    out.push({
      name: 'ovnPoolUsageHigh',
      reason: `pool data ${next.pool.dataPercent}% / metadata ${next.pool.metadataPercent}% ≥ ${settings.poolUsageThreshold}%`,
    });
  }
  return out;
}

/** The varbinds of a Notify PDU: snmpTrapOID.0, then the notification's OBJECTS (the master adds sysUpTime.0). */
export function notificationVarbinds(n: NotificationName, view: DaemonView, settings: AgentSettings): Varbind[] {
  const values = scalarValues(view, settings);
  return [
    { oid: SNMP_TRAP_OID_0, type: ValueType.ObjectIdentifier, value: NOTIFICATIONS[n] },
    ...NOTIFICATION_OBJECTS[n].map((name): Varbind => ({ oid: scalarInstance(name), ...values[name] })),
  ];
}
