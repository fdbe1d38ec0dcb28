import { BusyError, CancelledError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import type { JobWork } from '../../src/daemon/scheduler';
import { Scheduler } from '../../src/daemon/scheduler';
import type { Outcome } from '../../src/transaction/runner';

let n = 0;
const ids = (): string => `t${++n}`;

function outcome(id: string, state: 'succeeded' | 'failed' | 'cancelled', error: Outcome['error'] = null): Outcome {
  return {
    record: { version: 1, id, kind: 'upgrade', request: {}, initiator: 'x', createdAt: '', state, steps: [], warnings: [] },
    error,
  };
}

/** Work that reports progress and waits until released (or cancelled). */
function gated(): { work: JobWork; release: () => void } {
  let release = (): void => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  return {
    release: () => release(),
    work: async ({ id, signal, onProgress }) => {
      onProgress({ transactionId: id, percent: 10, stepIndex: 0, stepCount: 2, step: 'a', message: 'working', bytesDone: 1, bytesTotal: 10 });
      await Promise.race([gate, new Promise<void>((r) => signal.addEventListener('abort', () => r()))]);
      return signal.aborted ? outcome(id, 'cancelled', new CancelledError()) : outcome(id, 'succeeded');
    },
  };
}

describe('Scheduler', () => {
  it('runs one job at a time: Busy names the running one, wait queues behind it', async () => {
    const s = new Scheduler(ids, silentLogger);
    const a = gated();
    const first = s.submit('upgrade', 'root', false, a.work);
    expect(first.snapshot.state).toBe('running');
    expect(() => s.submit('rollback', 'root', false, gated().work)).toThrow(BusyError);
    expect(() => s.submit('rollback', 'root', false, gated().work)).toThrow(new RegExp(first.snapshot.id));
    const b = gated();
    const second = s.submit('rollback', 'root', true, b.work);
    expect(second.snapshot.state).toBe('queued');
    const finished: string[] = [];
    s.on('finished', (j) => finished.push(`${j.snapshot.id}:${j.snapshot.state}`));
    a.release();
    b.release();
    await s.idle();
    expect(finished).toEqual([`${first.snapshot.id}:succeeded`, `${second.snapshot.id}:succeeded`]);
    expect(first.snapshot.percent).toBe(100);
    expect(first.snapshot.finishedAt).toBeGreaterThanOrEqual(first.snapshot.startedAt);
  });

  it('a hold (CheckDeep reading the bases) keeps transactions off: Busy names it, wait queues until the last release', async () => {
    const s = new Scheduler(ids, silentLogger);
    const releaseA = s.hold('a deep check of the bases (CheckDeep)');
    const releaseB = s.hold('another deep check');
    expect(() => s.submit('cleanup', 'root', false, gated().work)).toThrow(BusyError);
    expect(() => s.submit('cleanup', 'root', false, gated().work)).toThrow(/a deep check of the bases \(CheckDeep\) is running/);
    const w = gated();
    const queued = s.submit('cleanup', 'root', true, w.work);
    expect(queued.snapshot.state).toBe('queued');
    releaseA();
    releaseA(); // a second call must not release the other hold
    await new Promise((r) => setImmediate(r));
    expect(queued.snapshot.state).toBe('queued');
    releaseB();
    expect(queued.snapshot.state).toBe('running');
    w.release();
    await s.idle();
    expect(queued.snapshot.state).toBe('succeeded');
    const free = gated();
    const next = s.submit('upgrade', 'root', false, free.work);
    expect(next.snapshot.state).toBe('running');
    free.release();
    await s.idle();
  });

  it('cancel works in every state: queued is dropped, running is aborted, finished is left alone', async () => {
    const s = new Scheduler(ids, silentLogger);
    const a = gated();
    const running = s.submit('upgrade', 'root', false, a.work);
    const queued = s.submit('cleanup', 'root', true, gated().work);
    s.cancel(queued);
    expect(queued.snapshot.state).toBe('cancelled');
    expect(queued.snapshot.error[0]).toBe('org.ovirt.Node.Error.Cancelled');
    s.cancel(running);
    await s.idle();
    expect(running.snapshot.state).toBe('cancelled');
    s.cancel(running);
    expect(running.snapshot.state).toBe('cancelled');
  });

  it('a job whose work throws ends failed with a named error', async () => {
    const s = new Scheduler(ids, silentLogger);
    const job = s.submit('upgrade', 'root', false, async () => {
      throw new Error('boom');
    });
    await s.idle();
    expect(job.snapshot.state).toBe('failed');
    expect(job.snapshot.error).toEqual(['org.ovirt.Node.Error.Failed', 'Internal error: boom']);
  });
});
