/** Which daemon-view changes send which notification, and what each carries. */
import { ValueType } from '../../src/snmp/agentx-pdu';
import type { DaemonView } from '../../src/snmp/daemon-view';
import { EMPTY_VIEW } from '../../src/snmp/daemon-view';
import { NOTIFICATIONS, SNMP_TRAP_OID_0 } from '../../src/snmp/mib-tree';
import { detectNotifications, notificationVarbinds } from '../../src/snmp/notifications';
import { formatOid } from '../../src/snmp/oid';

const S = { poolUsageThreshold: 90 };
const base: DaemonView = {
  ...EMPTY_VIEW, reachable: true, health: 'ok', currentLayer: 'a+1', defaultLayer: 'a+1',
  pool: { sizeBytes: 100n, freeBytes: 50n, dataPercent: 50, metadataPercent: 5, autoextendThreshold: -1 },
  last: { id: 't1', kind: 'init', state: 'succeeded', finishedAtUs: 1n, errorName: '', errorMessage: '' },
};
const names = (prev: DaemonView | undefined, next: DaemonView): string[] => detectNotifications(prev, next, S).map((n) => n.name);

describe('notifications', () => {
  it('a new succeeded upgrade → ovnUpgradeFinished; failed or cancelled → ovnUpgradeFailed; other kinds → nothing', () => {
    const up = (state: string, id = 't2', kind = 'upgrade'): DaemonView => ({ ...base, last: { ...base.last!, id, kind, state } });
    expect(names(base, up('succeeded'))).toEqual(['ovnUpgradeFinished']);
    expect(names(base, up('failed'))).toEqual(['ovnUpgradeFailed']);
    expect(names(base, up('cancelled'))).toEqual(['ovnUpgradeFailed']);
    expect(names(base, up('succeeded', 't2', 'rollback'))).toEqual([]);
    expect(names(up('succeeded'), up('succeeded'))).toEqual([]); // same transaction (e.g. after a daemon restart)
  });

  it('nothing for the first view, except a pool that is already above the threshold', () => {
    expect(names(undefined, { ...base, last: { ...base.last!, kind: 'upgrade' } })).toEqual([]);
    expect(names(undefined, { ...base, pool: { ...base.pool, dataPercent: 95 } })).toEqual(['ovnPoolUsageHigh']);
  });

  it('health changes between known states only', () => {
    expect(names(base, { ...base, health: 'failed' })).toEqual(['ovnHealthChanged']);
    expect(names({ ...base, health: 'unknown' }, base)).toEqual([]);
    expect(names(base, { ...base, health: 'unknown' })).toEqual([]);
  });

  it('pool usage: once per upward crossing, data or metadata', () => {
    const at = (data: number, meta = 5): DaemonView => ({ ...base, pool: { ...base.pool, dataPercent: data, metadataPercent: meta } });
    expect(names(at(89.9), at(90))).toEqual(['ovnPoolUsageHigh']);
    expect(names(at(90), at(97))).toEqual([]);
    expect(names(at(97), at(50))).toEqual([]);
    expect(names(at(50), at(50, 91))).toEqual(['ovnPoolUsageHigh']);
  });

  it('an unreachable daemon sends nothing', () => {
    expect(names(base, { ...base, reachable: false, health: 'failed' })).toEqual([]);
  });

  it('varbinds: snmpTrapOID.0 first, then the OBJECTS in the MIB\'s order', () => {
    const v = { ...base, last: { ...base.last!, id: 't2', kind: 'upgrade' }, defaultLayer: 'b+1' };
    const vbs = notificationVarbinds('ovnUpgradeFinished', v, S);
    expect(vbs[0]).toEqual({ oid: SNMP_TRAP_OID_0, type: ValueType.ObjectIdentifier, value: NOTIFICATIONS.ovnUpgradeFinished });
    expect(vbs.slice(1).map((x) => formatOid(x.oid))).toEqual([
      '1.3.6.1.4.1.2312.13.2.1.5.1.0', '1.3.6.1.4.1.2312.13.2.1.5.2.0', '1.3.6.1.4.1.2312.13.2.1.1.4.0', '1.3.6.1.4.1.2312.13.2.1.1.3.0',
    ]);
    expect(vbs.slice(1).map((x) => ('value' in x && Buffer.isBuffer(x.value) ? x.value.toString() : ''))).toEqual(['t2', 'upgrade', 'b+1', 'a+1']);
  });

  it('a layer whose boot-state turns bad → ovnLayerBootFailed about that row; already bad or first view → nothing', () => {
    const row = (name: string, bootState: string, bootStateReason = ''): DaemonView['layers'][number] => ({
      name, kind: 'layer', base: name.replace(/\+\d+$/, ''), sizeBytes: 0n, current: false, default: false, pinned: false, bootState, bootStateReason,
    });
    const trial: DaemonView = { ...base, currentLayer: 'b+1', defaultLayer: 'a+1', trialLayer: 'b+1', layers: [row('a+1', 'good'), row('b+1', 'trial')] };
    const bad: DaemonView = { ...trial, trialLayer: '', layers: [row('a+1', 'good'), row('b+1', 'bad', 'vdsmd.service is not active')] };
    const found = detectNotifications(trial, bad, S);
    expect(found).toEqual([{ name: 'ovnLayerBootFailed', reason: 'layer b+1 boot failed: vdsmd.service is not active', layerIndex: 2 }]);
    expect(names(bad, bad)).toEqual([]);
    expect(names(undefined, bad)).toEqual([]);
    expect(names(trial, { ...trial, layers: [row('a+1', 'good'), row('b+1', 'good')] })).toEqual([]);
    // a trial layer the subagent never saw as trial (e.g. coalesced changes) is news too once bad
    expect(names({ ...trial, layers: [row('a+1', 'good')] }, bad)).toEqual(['ovnLayerBootFailed']);

    const vbs = notificationVarbinds('ovnLayerBootFailed', bad, S, 2);
    expect(vbs[0]).toEqual({ oid: SNMP_TRAP_OID_0, type: ValueType.ObjectIdentifier, value: NOTIFICATIONS.ovnLayerBootFailed });
    expect(formatOid(NOTIFICATIONS.ovnLayerBootFailed)).toBe('1.3.6.1.4.1.2312.13.2.0.5');
    expect(vbs.slice(1).map((x) => formatOid(x.oid))).toEqual([
      '1.3.6.1.4.1.2312.13.2.1.6.1.2.2', '1.3.6.1.4.1.2312.13.2.1.6.1.10.2', '1.3.6.1.4.1.2312.13.2.1.1.3.0', '1.3.6.1.4.1.2312.13.2.1.1.4.0',
    ]);
    expect(vbs.slice(1).map((x) => ('value' in x && Buffer.isBuffer(x.value) ? x.value.toString() : ''))).toEqual([
      'b+1', 'vdsmd.service is not active', 'b+1', 'a+1',
    ]);
  });
});
