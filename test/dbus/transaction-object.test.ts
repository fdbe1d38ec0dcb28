import { Job } from '../../src/daemon/scheduler';
import { TransactionObject } from '../../src/dbus/transaction-object';
import { silentLogger } from '../../src/log';

/** dbus-next interfaces emit their signals on an internal emitter; count what would go on the bus. */
function signalsOf(obj: TransactionObject): Array<{ name: string; body: unknown }> {
  const seen: Array<{ name: string; body: unknown }> = [];
  const emitter = (obj as unknown as { $emitter: NodeJS.EventEmitter }).$emitter;
  emitter.on('signal', (opts: { name: string }, body: unknown) => seen.push({ name: opts.name, body }));
  return seen;
}

describe('Transaction object', () => {
  it('throttles Progress to at most 10 per second and always sends the final state and Finished', async () => {
    const job = new Job('t1', 'upgrade', 'root', async () => {
      throw new Error('unused');
    });
    const obj = new TransactionObject(job, { cancel: async () => undefined, context: () => ({ sender: ':1.1' }), log: silentLogger });
    const seen = signalsOf(obj);
    for (let i = 1; i <= 100; i++) {
      job.update({ percent: i, step: 'write-base', message: `chunk ${i}` });
      job.emit('progress', job.snapshot);
    }
    await new Promise((r) => setTimeout(r, 150));
    const burst = seen.filter((s) => s.name === 'Progress').length;
    expect(burst).toBeLessThanOrEqual(2); // one at once, one trailing with the latest state
    expect(seen.filter((s) => s.name === 'Progress').at(-1)?.body).toEqual([100, 'write-base', 'chunk 100', 0n, 0n]);
    job.update({ state: 'succeeded' });
    job.emit('finished', job.snapshot);
    expect(seen.at(-1)).toEqual({ name: 'Finished', body: [true, '', ''] });
    expect(obj.State).toBe('succeeded');
  });
});
