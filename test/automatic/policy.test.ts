import type { AutomaticUpdatePolicy } from '../../src/dbus/api';
import type { TriggerFacts } from '../../src/automatic/policy';
import { decideReboot, decideTrigger } from '../../src/automatic/policy';

const facts = (mode: AutomaticUpdatePolicy, over: Partial<TriggerFacts> = {}): TriggerFacts => ({
  mode, update: 'ovirt-node-ng-4.5.6-0.1', insideWindow: true, respectWindow: true, window: 'Sat 02:00-05:00', ...over,
});

describe('decideTrigger: policy × window × update', () => {
  const table: Array<[AutomaticUpdatePolicy, boolean, string]> = [
    ['none', true, 'nothing'], ['none', false, 'nothing'],
    ['check', true, 'report'], ['check', false, 'report'],
    ['stage', true, 'upgrade'], ['stage', false, 'report'],
    ['apply', true, 'upgrade'], ['apply', false, 'report'],
  ];
  it.each(table)('%s, inside window %p → %s', (mode, inside, action) => {
    const d = decideTrigger(facts(mode, { insideWindow: inside }));
    expect(d.action).toBe(action);
    if (d.action === 'upgrade') expect(d.reboot).toBe(mode === 'apply');
    if (d.action === 'report' && !inside && mode !== 'check') expect(d.reason).toMatch(/outside the maintenance window "Sat 02:00-05:00"/);
  });

  it('without an update nothing happens, whatever the mode', () => {
    for (const mode of ['check', 'stage', 'apply'] as const) {
      expect(decideTrigger(facts(mode, { update: null }))).toEqual({ action: 'nothing', reason: expect.stringMatching(/no image newer/) as unknown });
    }
  });

  it('respect-window false stages outside the window', () => {
    expect(decideTrigger(facts('stage', { insideWindow: false, respectWindow: false }))).toEqual({ action: 'upgrade', reboot: false });
  });
});

describe('decideReboot', () => {
  const none = { available: true, running: [], message: '' };
  it('reboots when libvirt says nothing runs and nothing inhibits', () => {
    expect(decideReboot(none, [])).toEqual({ reboot: true });
  });
  it('refuses with the running domains named', () => {
    expect(decideReboot({ ...none, running: ['engine', 'db'] }, [])).toEqual({ reboot: false, why: '2 virtual machines running (engine, db); not rebooting' });
  });
  it('refuses when libvirt cannot tell', () => {
    const d = decideReboot({ available: false, running: [], message: 'connection refused' }, []);
    expect(d).toEqual({ reboot: false, why: expect.stringMatching(/libvirt cannot tell.*connection refused/) as unknown });
  });
  it('respects blocking shutdown inhibitors', () => {
    expect(decideReboot(none, ['vdsm: migrating'])).toEqual({ reboot: false, why: 'shutdown is inhibited by vdsm: migrating; not rebooting' });
  });
});
