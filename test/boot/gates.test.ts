import { judgeGates, runGates } from '../../src/boot/gates';
import { CancelledError } from '../../src/errors';

const units = (...pairs: Array<[string, string]>) => pairs.map(([unit, state]) => ({ unit, state }));

describe('judgeGates', () => {
  it('passes when every unit is active and the health report is not failed', () => {
    expect(judgeGates({ units: units(['vdsmd.service', 'active']), health: { status: 'warn', failed: [] } }, false)).toEqual({
      done: true, verdict: { verdict: 'good', reason: 'gates passed: vdsmd.service active; health warn' },
    });
    expect(judgeGates({ units: [], health: null }, false)).toEqual({ done: true, verdict: { verdict: 'good', reason: 'no gates configured' } });
  });

  it('a failed unit fails at once; a unit still starting is waited for until the timeout', () => {
    expect(judgeGates({ units: units(['a.service', 'active'], ['b.service', 'failed']), health: null }, false))
      .toEqual({ done: true, verdict: { verdict: 'bad', reason: 'required unit b.service failed' } });
    expect(judgeGates({ units: units(['a.service', 'activating']), health: null }, false)).toEqual({ done: false, waitingFor: ['a.service (activating)'] });
    expect(judgeGates({ units: units(['a.service', 'inactive']), health: null }, true))
      .toEqual({ done: true, verdict: { verdict: 'bad', reason: 'required unit not active in time: a.service (inactive)' } });
  });

  it('a failed health report fails the gate, naming the failed checks', () => {
    expect(judgeGates({ units: [], health: { status: 'failed', failed: ['Bootloader/default: no default'] } }, false))
      .toEqual({ done: true, verdict: { verdict: 'bad', reason: 'the health check failed: Bootloader/default: no default' } });
  });
});

describe('runGates', () => {
  it('asks again until the unit is active; asks the health report only then', async () => {
    const seen: string[] = [];
    let n = 0;
    const verdict = await runGates({
      units: ['vdsmd.service'],
      unitStates: { activeState: async () => (++n < 3 ? 'activating' : 'active') },
      health: async () => {
        seen.push(`health after ${n}`);
        return { status: 'ok', failed: [] };
      },
      timeoutMs: 60_000, pollMs: 1,
      onProgress: (_f, m) => seen.push(m),
    });
    expect(verdict).toEqual({ verdict: 'good', reason: 'gates passed: vdsmd.service active; health ok' });
    expect(seen).toEqual(['waiting for vdsmd.service (activating)', 'waiting for vdsmd.service (activating)', 'health after 3']);
  });

  it('gives up at the timeout (a fake clock) and stops when cancelled', async () => {
    let t = 0;
    const never = { activeState: async () => 'inactive' };
    const r = await runGates({ units: ['x.service'], unitStates: never, health: null, timeoutMs: 5000, pollMs: 1, now: () => (t += 1000) });
    expect(r).toEqual({ verdict: 'bad', reason: 'required unit not active in time: x.service (inactive)' });
    const ac = new AbortController();
    const p = runGates({ units: ['x.service'], unitStates: never, health: null, timeoutMs: 60_000, pollMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    await expect(p).rejects.toBeInstanceOf(CancelledError);
  });
});
