/**
 * The page's reading of org.ovirt.Node values as cockpit.dbus delivers them (variants as {t, v}, 64-bit integers as
 * numbers): valid values parse, a bad value is reported and leaves only its own field unknown.
 */
import {
  applyProperties, bootStateBadge, bootVerdict, describeError, layerTree, parseCheck, parseLayers, parseTransactionRecord, parseTransactionSnapshot,
  previousLayer, trialBanner, trialBannerText,
} from '../../src/cockpit/model';

const v = (t: string, value: unknown): { t: string; v: unknown } => ({ t, v: value });
const layer = (name: string, base: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: v('s', name), kind: v('s', 'layer'), base: v('s', base), version: v('s', '4.5'), release: v('s', '1'), size: v('t', 1024),
  current: v('b', false), default: v('b', false), pinned: v('b', false), 'boot-entry': v('s', name), 'read-only': v('b', false), ...extra,
});

describe('cockpit page model', () => {
  it('parses the manager properties; a bad one is a problem, the rest still apply', () => {
    const { state, problems } = applyProperties({}, {
      CurrentLayer: 'a-1-1+1',
      DefaultLayer: 'b-1-1+1',
      Layers: [layer('a-1-1+1', 'a-1-1', { current: v('b', true) }), layer('b-1-1+1', 'b-1-1', { default: v('b', true) })],
      Pool: { size: v('t', 100), free: v('t', 60), 'data-percent': v('d', 40.5), 'metadata-percent': v('d', 2), 'autoextend-threshold': v('i', 70) },
      Health: 42,
      VirtualMachines: { available: v('b', true), running: v('as', ['vm1']), message: v('s', '') },
      LastTransaction: {},
    });
    expect(problems).toEqual(['Health: Health: expected a string']);
    expect(state.health).toBeUndefined();
    expect(state.currentLayer).toBe('a-1-1+1');
    expect(state.pool).toEqual({ size: 100, free: 60, dataPercent: 40.5, metadataPercent: 2, autoextendThreshold: 70 });
    expect(state.virtualMachines).toEqual({ available: true, running: ['vm1'], message: '' });
    expect(state.lastTransaction).toBeNull();
    expect(previousLayer(state.layers ?? [])?.name).toBe('a-1-1+1');
  });

  it('groups layers under their bases, keeping layers of an unknown base visible', () => {
    const layers = parseLayers([layer('a-1-1+1', 'a-1-1'), layer('x-1-1+1', 'x-1-1')]);
    const tree = layerTree([{ name: 'a-1-1', version: '1', release: '1', size: 1, layers: ['a-1-1+1'], present: true }], layers);
    expect(tree.map((g) => [g.base.name, g.base.present, g.layers.map((l) => l.name)])).toEqual([
      ['a-1-1', true, ['a-1-1+1']], ['x-1-1', false, ['x-1-1+1']],
    ]);
  });

  it('reads check results, transaction snapshots and D-Bus errors', () => {
    expect(parseCheck(['warn', [['Thin storage', 'space', 'warn', '85% used']]])).toEqual({
      status: 'warn', results: [{ group: 'Thin storage', check: 'space', status: 'warn', reason: '85% used' }],
    });
    expect(() => parseCheck(['ok', [['too', 'short']]])).toThrow(/expected \(ssss\)/);
    expect(parseTransactionSnapshot([{ Id: v('s', 't1'), Kind: v('s', 'upgrade'), State: v('s', 'failed'), Percent: v('u', 12),
      Error: v('(ss)', ['org.ovirt.Node.Error.VerificationFailed', 'checksum mismatch']) }])).toMatchObject({
      id: 't1', kind: 'upgrade', state: 'failed', percent: 12, errorName: 'org.ovirt.Node.Error.VerificationFailed', errorMessage: 'checksum mismatch',
    });
    expect(describeError({ name: 'org.ovirt.Node.Error.NotAuthorized', message: 'not authorized for org.ovirt.node.layers.pin' }))
      .toEqual({ name: 'org.ovirt.Node.Error.NotAuthorized', message: 'not authorized for org.ovirt.node.layers.pin' });
    expect(describeError({ problem: 'not-found', message: '' })).toEqual({ name: 'not-found', message: 'not-found' });
  });

  it('reads the boot assessment of each layer; a daemon without it means "never assessed"', () => {
    const [a, b, c] = parseLayers([
      layer('a-1-1+1', 'a-1-1'),
      layer('b-1-1+1', 'b-1-1', { 'boot-state': v('s', 'good'), 'boot-state-reason': v('s', 'gates passed'), 'boot-state-changed': v('t', 1_767_225_600_000_000) }),
      layer('c-1-1+1', 'c-1-1', { 'boot-state': v('s', 'bad'), 'boot-state-reason': v('s', 'unit vdsmd.service is failed'), 'boot-state-changed': v('t', 5) }),
    ]);
    expect(a).toMatchObject({ bootState: '', bootStateReason: '', bootStateChanged: 0 });
    expect(b).toMatchObject({ bootState: 'good', bootStateReason: 'gates passed', bootStateChanged: 1_767_225_600_000_000 });
    expect(c).toMatchObject({ bootState: 'bad', bootStateReason: 'unit vdsmd.service is failed' });
    expect(() => parseLayers([layer('x+1', 'x', { 'boot-state': v('b', true) })])).toThrow(/boot-state: expected a string/);
    expect(['', 'trial', 'good', 'bad', 'future'].map(bootStateBadge)).toEqual([
      null, { text: 'on trial', tone: 'warning' }, { text: 'good', tone: 'success' }, { text: 'failed boot', tone: 'danger' }, { text: 'future', tone: 'info' },
    ]);
  });

  it('the trial banner: pending before the trial boot, booted (with the fallback) during it, none otherwise', () => {
    const layers = parseLayers([layer('a+1', 'a', { 'boot-state': v('s', 'good') }), layer('b+1', 'b', { 'boot-state': v('s', 'trial') })]);
    const { state } = applyProperties({}, { TrialLayer: 'b+1', CurrentLayer: 'a+1', DefaultLayer: 'b+1' });
    const pending = trialBanner({ ...state, layers });
    expect(pending).toEqual({ phase: 'pending', layer: 'b+1' });
    expect(trialBannerText(pending!)).toBe('b+1 boots once on the next reboot; it becomes the default only when its boot is confirmed.');
    const booted = trialBanner({ ...state, layers, currentLayer: 'b+1', defaultLayer: 'a+1' });
    expect(booted).toEqual({ phase: 'booted', layer: 'b+1', fallback: 'a+1' });
    expect(trialBannerText(booted!)).toBe('This boot of b+1 is on trial; a reset returns to a+1.');
    expect(trialBanner({ ...state, layers, trialLayer: '' })).toBeNull();
    // A daemon without TrialLayer: the layer whose boot-state is "trial".
    expect(trialBanner({ layers, currentLayer: 'b+1', defaultLayer: 'a+1' })).toEqual({ phase: 'booted', layer: 'b+1', fallback: 'a+1' });
    expect(trialBanner({ layers: layers.slice(0, 1), currentLayer: 'a+1' })).toBeNull();
  });

  it('a boot-complete history record carries its verdict in the request', () => {
    const r = parseTransactionRecord({
      id: v('s', 't5'), kind: v('s', 'boot-complete'), state: v('s', 'succeeded'),
      request: v('a{sv}', { layer: v('s', 'b+1'), verdict: v('s', 'bad'), reason: v('s', 'smoke test failed'), wait: v('b', true) }),
    });
    expect(r?.request).toEqual({ layer: 'b+1', verdict: 'bad', reason: 'smoke test failed' });
    expect(bootVerdict(r!)).toEqual({ layer: 'b+1', verdict: 'bad', reason: 'smoke test failed' });
    expect(bootVerdict({ ...r!, kind: 'upgrade' })).toBeNull();
  });
});
