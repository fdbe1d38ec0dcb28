/** The pure mapping: D-Bus properties (unknown) → DaemonView → the MIB's instances, with the encodings the MIB names. */
import * as dbus from 'dbus-next';
import { ValueType } from '../../src/snmp/agentx-pdu';
import type { DaemonView } from '../../src/snmp/daemon-view';
import { applyManagerProperties, applyProgress, applyTransactionProperties, EMPTY_VIEW, unwrapVariants } from '../../src/snmp/daemon-view';
import { LAYER_COLUMNS, LAYER_ENTRY, SCALARS } from '../../src/snmp/mib-tree';
import { compareOids, formatOid } from '../../src/snmp/oid';
import { bootStateNumber, buildVarbinds, dateAndTime, percentHundredths, utf8String } from '../../src/snmp/varbinds';
import type { VarbindValue } from '../../src/snmp/agentx-pdu';

const valueOf = (v: VarbindValue): unknown => ('value' in v ? v.value : undefined);

const V = (sig: string, value: unknown): dbus.Variant => new dbus.Variant(sig, value);
/** Layers properties as the daemon sends them (dbus-next Variants, 64-bit as bigint). */
const PROPS = {
  Version: '0.1.0',
  Layers: [
    { name: V('s', 'ovirt-node-ng-4.5.4-0.20250101.0+1'), kind: V('s', 'layer'), base: V('s', 'ovirt-node-ng-4.5.4-0.20250101.0'),
      version: V('s', '4.5.4'), release: V('s', '0.20250101.0'), size: V('t', 5n * 1024n ** 3n), current: V('b', true), default: V('b', false),
      pinned: V('b', true), 'boot-entry': V('s', 'x'), 'read-only': V('b', false),
      'boot-state': V('s', 'good'), 'boot-state-reason': V('s', ''), 'boot-state-changed': V('t', 1n) },
    { name: V('s', 'ovirt-node-ng-4.5.5-0.20250301.0+1'), kind: V('s', 'layer'), base: V('s', 'ovirt-node-ng-4.5.5-0.20250301.0'),
      size: V('t', 6n * 1024n ** 3n + 5n), current: V('b', false), default: V('b', true), pinned: V('b', false),
      'boot-state': V('s', 'trial'), 'boot-state-reason': V('s', 'installed by upgrade t1; boots once'), 'boot-state-changed': V('t', 2n) },
  ],
  CurrentLayer: 'ovirt-node-ng-4.5.4-0.20250101.0+1',
  DefaultLayer: 'ovirt-node-ng-4.5.5-0.20250301.0+1',
  TrialLayer: 'ovirt-node-ng-4.5.5-0.20250301.0+1',
  Pool: { size: V('t', 100n * 1024n ** 3n), free: V('t', 40n * 1024n ** 3n), 'data-percent': V('d', 60.126), 'metadata-percent': V('d', 3.5), 'autoextend-threshold': V('i', 70) },
  Health: 'warn',
  ActiveTransaction: '/',
  AutomaticUpdatePolicy: 'stage',
  UpdateAvailable: true,
  AvailableVersion: 'ovirt-node-ng-4.5.6-0.20250601.0',
  LastTransaction: { id: V('s', 't1'), kind: V('s', 'upgrade'), state: V('s', 'failed'), 'started-at': V('t', 1n), 'finished-at': V('t', 1767225600_123_456n),
    'error-name': V('s', 'org.ovirt.Node.Error.NoSpace'), 'error-message': V('s', 'pool full…'), recovered: V('b', false) },
};

function viewOf(props: Record<string, unknown>): DaemonView {
  const plain = unwrapVariants(props) as Record<string, unknown>;
  const { view, problems } = applyManagerProperties({ ...EMPTY_VIEW, reachable: true }, plain);
  expect(problems).toEqual([]);
  return view;
}

const byOid = (view: DaemonView): Map<string, unknown> =>
  new Map(buildVarbinds(view, { poolUsageThreshold: 90 }).map((vb) => [formatOid(vb.oid), 'value' in vb ? vb.value : vb.type]));
const at = (oid: readonly number[]): string => formatOid([...oid, 0]);
const col = (c: number, row: number): string => formatOid([...LAYER_ENTRY, c, row]);

describe('daemon view → varbinds', () => {
  it('maps every property to its object with the MIB\'s encoding', () => {
    const m = byOid(viewOf(PROPS));
    const str = (k: string): string => (m.get(k) as Buffer).toString('utf8');
    expect(m.get(at(SCALARS.ovnDaemonReachable))).toBe(1);
    expect(str(at(SCALARS.ovnCurrentLayer))).toBe(PROPS.CurrentLayer);
    expect(str(at(SCALARS.ovnDefaultLayer))).toBe(PROPS.DefaultLayer);
    expect(m.get(at(SCALARS.ovnHealthStatus))).toBe(2);
    expect(m.get(at(SCALARS.ovnLayerCount))).toBe(2);
    expect(m.get(at(SCALARS.ovnAutomaticUpdatePolicy))).toBe(3);
    expect(m.get(at(SCALARS.ovnPoolSize))).toBe(102400);
    expect(m.get(at(SCALARS.ovnPoolFree))).toBe(40960);
    expect(m.get(at(SCALARS.ovnPoolDataPercent))).toBe(6013);
    expect(m.get(at(SCALARS.ovnPoolMetadataPercent))).toBe(350);
    expect(m.get(at(SCALARS.ovnPoolAutoextendThreshold))).toBe(70);
    expect(m.get(at(SCALARS.ovnPoolUsageThreshold))).toBe(90);
    expect(m.get(at(SCALARS.ovnUpdateAvailable))).toBe(1);
    expect(str(at(SCALARS.ovnUpdateAvailableVersion))).toBe(PROPS.AvailableVersion);
    expect(str(at(SCALARS.ovnActiveTxId))).toBe('');
    expect(m.get(at(SCALARS.ovnLastTxResult))).toBe(3);
    expect(str(at(SCALARS.ovnLastTxErrorName))).toBe('org.ovirt.Node.Error.NoSpace');
    expect(str(at(SCALARS.ovnLastTxErrorMessage))).toBe('pool full…');
    expect(m.get(at(SCALARS.ovnLastTxFinishedEpoch))).toBe(1767225600);
    expect([...(m.get(at(SCALARS.ovnLastTxFinishedAt)) as Buffer)]).toEqual([0x07, 0xea, 1, 1, 0, 0, 0, 1, 0x2b, 0, 0]); // 2026-1-1,0:0:0.1,+0:0
    expect(str(col(LAYER_COLUMNS.ovnLayerName, 2))).toBe('ovirt-node-ng-4.5.5-0.20250301.0+1');
    expect(str(col(LAYER_COLUMNS.ovnLayerBase, 1))).toBe('ovirt-node-ng-4.5.4-0.20250101.0');
    expect(m.get(col(LAYER_COLUMNS.ovnLayerCurrent, 1))).toBe(1);
    expect(m.get(col(LAYER_COLUMNS.ovnLayerDefault, 1))).toBe(2);
    expect(m.get(col(LAYER_COLUMNS.ovnLayerPinned, 1))).toBe(1);
    expect(m.get(col(LAYER_COLUMNS.ovnLayerSize, 2))).toBe(6144);
    expect(str(at(SCALARS.ovnTrialLayer))).toBe(PROPS.TrialLayer);
    expect(m.get(col(LAYER_COLUMNS.ovnLayerBootState, 1))).toBe(3); // good(3)
    expect(m.get(col(LAYER_COLUMNS.ovnLayerBootState, 2))).toBe(2); // trial(2)
    expect(str(col(LAYER_COLUMNS.ovnLayerBootStateReason, 1))).toBe('');
    expect(str(col(LAYER_COLUMNS.ovnLayerBootStateReason, 2))).toBe('installed by upgrade t1; boots once');
    expect(m.has(col(1, 1))).toBe(false); // ovnLayerIndex is not-accessible
  });

  it('is sorted by OID and has every scalar plus 9 columns per layer', () => {
    const vbs = buildVarbinds(viewOf(PROPS), { poolUsageThreshold: 90 });
    expect(Object.keys(LAYER_COLUMNS)).toHaveLength(9);
    expect(vbs).toHaveLength(Object.keys(SCALARS).length + 9 * 2);
    for (let i = 1; i < vbs.length; i++) expect(compareOids(vbs[i - 1]?.oid ?? [], vbs[i]?.oid ?? [])).toBeLessThan(0);
    expect(buildVarbinds(EMPTY_VIEW, { poolUsageThreshold: 90 })).toHaveLength(Object.keys(SCALARS).length);
  });

  it('encodes text, percentages and times within the MIB\'s ranges', () => {
    const long = valueOf(utf8String('é'.repeat(200))) as Buffer; // 400 bytes → cut to 254, not inside a character
    expect(long.length).toBe(254);
    expect(long.toString('utf8')).toBe('é'.repeat(127));
    expect(valueOf(percentHundredths(120))).toBe(10000);
    expect(valueOf(percentHundredths(-1))).toBe(0);
    expect(valueOf(percentHundredths(Number.NaN))).toBe(0);
    expect([...(valueOf(dateAndTime(0n)) as Buffer)]).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0x2b, 0, 0]);
  });

  it('a property of the wrong shape is reported and falls back, the others still apply', () => {
    const { view, problems } = applyManagerProperties({ ...EMPTY_VIEW, reachable: true },
      unwrapVariants({ ...PROPS, Health: 'purple', Pool: 'full', Layers: [{ name: V('s', 'x'), size: V('s', 'big') }] }) as Record<string, unknown>);
    expect(view.health).toBe('unknown');
    expect(view.pool).toEqual(EMPTY_VIEW.pool);
    expect(view.layers).toEqual([{ name: 'x', kind: 'layer', base: '', sizeBytes: 0n, current: false, default: false, pinned: false, bootState: '', bootStateReason: '' }]);
    expect(view.currentLayer).toBe(PROPS.CurrentLayer);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^Health/), expect.stringMatching(/^Pool/), expect.stringMatching(/size/)]));
  });

  it('PropertiesChanged is a partial update; transaction properties and Progress update the active transaction', () => {
    const base = viewOf(PROPS);
    const { view } = applyManagerProperties(base, { DefaultLayer: 'other' });
    expect(view.defaultLayer).toBe('other');
    expect(view.layers).toBe(base.layers);
    const { active } = applyTransactionProperties({ id: 't9', kind: '', percent: 0, step: '' }, { Kind: 'upgrade', Percent: 10, Step: 'create-base', State: 'running' });
    expect(active).toEqual({ id: 't9', kind: 'upgrade', percent: 10, step: 'create-base' });
    expect(applyProgress(active, [55, 'write-base', 'Writing', 1n, 2n])).toEqual({ id: 't9', kind: 'upgrade', percent: 55, step: 'write-base' });
    expect(applyProgress(active, ['x'])).toEqual(active);
  });

  it('boot assessment: every boot-state maps to OvnBootState; a daemon without it reads as notAssessed(1) and no trial layer', () => {
    expect(['', 'trial', 'good', 'bad', 'purple'].map(bootStateNumber)).toEqual([1, 2, 3, 4, 5]);
    const { TrialLayer: _none, ...before } = PROPS;
    const old = viewOf({ ...before, Layers: [{ name: V('s', 'a+1'), kind: V('s', 'layer'), base: V('s', 'a'), size: V('t', 0n),
      current: V('b', true), default: V('b', true), pinned: V('b', false) }] });
    expect(old.trialLayer).toBe('');
    const m = byOid(old);
    expect(m.get(col(LAYER_COLUMNS.ovnLayerBootState, 1))).toBe(1);
    expect((m.get(at(SCALARS.ovnTrialLayer)) as Buffer).toString()).toBe('');
    // a reason is free text: UTF-8, cut at a character boundary like the other OvnUtf8String objects
    const { view } = applyManagerProperties({ ...EMPTY_VIEW, reachable: true }, unwrapVariants({ Layers: [{ name: V('s', 'b+1'), kind: V('s', 'layer'),
      base: V('s', 'b'), size: V('t', 0n), current: V('b', false), default: V('b', false), pinned: V('b', false), 'boot-state': V('s', 'bad'),
      'boot-state-reason': V('s', `vdsmd.service not active — ${'é'.repeat(200)}`) }] }) as Record<string, unknown>);
    const reason = byOid(view).get(col(LAYER_COLUMNS.ovnLayerBootStateReason, 1)) as Buffer;
    expect(reason.length).toBeLessThanOrEqual(255);
    expect(reason.toString('utf8')).toMatch(/^vdsmd\.service not active — é+$/);
    const bad = applyManagerProperties(view, { Layers: [{ name: 'c+1', 'boot-state': 7 }] });
    expect(bad.problems).toEqual(expect.arrayContaining(['Layers[0].boot-state: expected a string']));
  });
});
