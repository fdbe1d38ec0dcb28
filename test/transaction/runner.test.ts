import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError, FailedError } from '../../src/errors';
import { Failpoints } from '../../src/transaction/failpoints';
import { Journal } from '../../src/transaction/journal';
import type { ExecutorMap } from '../../src/transaction/runner';
import { TransactionRunner } from '../../src/transaction/runner';
import type { PlannedStep, ProgressEvent } from '../../src/transaction/types';

type Step = PlannedStep<'add', { key: string }> | PlannedStep<'slow', { key: string }>;

/** A tiny "system": a set of keys; steps add keys, undo removes them. */
interface World {
  keys: Set<string>;
  log: string[];
  failOn?: string;
}

function executors(): ExecutorMap<Step, World> {
  return {
    add: {
      async do(args, ctx) {
        if (ctx.services.failOn === args.key) throw new FailedError(`cannot add ${args.key}`);
        ctx.services.keys.add(args.key);
        ctx.services.log.push(`do ${args.key}`);
        return { added: args.key };
      },
      async undo(args, ctx, result) {
        ctx.services.keys.delete(args.key);
        ctx.services.log.push(`undo ${args.key} ${JSON.stringify(result ?? null)}`);
      },
    },
    slow: {
      async do(args, ctx) {
        for (let i = 1; i <= 4; i++) {
          if (ctx.signal.aborted) throw new CancelledError();
          ctx.progress({ bytesDone: i * 25, bytesTotal: 100, message: `chunk ${i}` });
          await new Promise((r) => setTimeout(r, 5));
        }
        ctx.services.keys.add(args.key);
      },
      async undo(args, ctx) {
        ctx.services.keys.delete(args.key);
        ctx.services.log.push(`undo ${args.key}`);
      },
    },
  };
}

const step = (id: string, action: Step['action'] = 'add', phase: 'apply' | 'finalize' = 'apply'): Step =>
  ({ id, action, args: { key: id }, title: `step ${id}`, weight: 1, phase }) as Step;

describe('TransactionRunner', () => {
  let dir: string;
  let world: World;
  let journal: Journal;
  const runner = (fp = ''): TransactionRunner<Step, World> =>
    new TransactionRunner({ journal, executors: executors(), services: world, failpoints: new Failpoints(fp) });

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-tx-'));
    world = { keys: new Set(), log: [] };
    journal = new Journal(dir);
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('runs every step, archives the record and reports monotonic progress to 100', async () => {
    const events: ProgressEvent[] = [];
    const out = await runner().run(
      { id: 't1', kind: 'upgrade', request: {}, initiator: 'test', steps: [step('a'), step('b', 'slow'), step('c')] },
      { onProgress: (e) => events.push(e) },
    );
    expect(out.error).toBeNull();
    expect(out.record.state).toBe('succeeded');
    expect([...world.keys]).toEqual(['a', 'b', 'c']);
    expect(await journal.unfinished()).toEqual([]);
    expect((await journal.history()).map((r) => r.id)).toEqual(['t1']);
    const percents = events.map((e) => e.percent);
    expect(percents).toEqual([...percents].sort((x, y) => x - y));
    expect(percents[percents.length - 1]).toBe(100);
    expect(events.some((e) => e.bytesTotal === 100 && e.message === 'chunk 2')).toBe(true);
  });

  it('undoes started steps in reverse when a step fails, and records the error', async () => {
    world.failOn = 'c';
    const out = await runner().run({
      id: 't2', kind: 'upgrade', request: {}, initiator: 'test', steps: [step('a'), step('b'), step('c'), step('d')],
    });
    expect(out.error).toBeInstanceOf(FailedError);
    expect(out.record.state).toBe('failed');
    expect(world.keys.size).toBe(0);
    expect(world.log).toEqual(['do a', 'do b', 'undo c null', 'undo b {"added":"b"}', 'undo a {"added":"a"}']);
    expect(out.record.steps.map((s) => s.status)).toEqual(['undone', 'undone', 'undone', 'pending']);
    expect((await journal.history())[0]?.error?.name).toBe('org.ovirt.Node.Error.Failed');
  });

  it('cancels inside a long step and undoes', async () => {
    const ac = new AbortController();
    const out = await runner().run(
      { id: 't3', kind: 'upgrade', request: {}, initiator: 'test', steps: [step('a'), step('b', 'slow'), step('c')] },
      { signal: ac.signal, onProgress: (e) => { if (e.message === 'chunk 2') ac.abort(); } },
    );
    expect(out.error).toBeInstanceOf(CancelledError);
    expect(out.record.state).toBe('cancelled');
    expect(world.keys.size).toBe(0);
  });

  it('turns finalize failures into warnings after the point of no return', async () => {
    world.failOn = 'gc';
    const out = await runner().run({
      id: 't4', kind: 'upgrade', request: {}, initiator: 'test', steps: [step('a'), step('gc', 'add', 'finalize')],
    });
    expect(out.error).toBeNull();
    expect(out.record.state).toBe('succeeded');
    expect(out.record.warnings[0]).toMatch(/cannot add gc/);
    expect(world.keys.has('a')).toBe(true);
  });

  it('error failpoints fail the transaction at a step boundary', async () => {
    const out = await runner('after:b=error').run({
      id: 't5', kind: 'upgrade', request: {}, initiator: 'test', steps: [step('a'), step('b'), step('c')],
    });
    expect(out.record.state).toBe('failed');
    expect(world.keys.size).toBe(0);
  });

  it('recovers an interrupted transaction: undo before the point of no return', async () => {
    world.keys.add('a');
    await journal.write({
      version: 1, id: 't6', kind: 'upgrade', request: {}, initiator: 'test', createdAt: new Date().toISOString(),
      state: 'running', warnings: [],
      steps: [{ ...step('a'), status: 'done' }, { ...step('b'), status: 'doing' }, { ...step('c'), status: 'pending' }],
    });
    const [rec] = await runner().recover();
    expect(rec?.state).toBe('failed');
    expect(rec?.recovered).toBe(true);
    expect(rec?.error?.message).toMatch(/interrupted .* during "step b"; rolled back/);
    expect(world.log).toEqual(['undo b null', 'undo a null']);
    expect(await journal.unfinished()).toEqual([]);
  });

  it('recovers an interrupted transaction: roll finalize steps forward after the point of no return', async () => {
    await journal.write({
      version: 1, id: 't7', kind: 'upgrade', request: {}, initiator: 'test', createdAt: new Date().toISOString(),
      state: 'running', warnings: [],
      steps: [{ ...step('a'), status: 'done' }, { ...step('gc', 'add', 'finalize'), status: 'doing' }],
    });
    const [rec] = await runner().recover();
    expect(rec?.state).toBe('succeeded');
    expect(world.keys.has('gc')).toBe(true);
  });

  it('rejects a corrupt journal with a named error', async () => {
    await fs.mkdir(path.join(dir, 'journal'), { recursive: true });
    await fs.writeFile(path.join(dir, 'journal', 'x.json'), '{"version":1}');
    await expect(runner().recover()).rejects.toBeInstanceOf(FailedError);
  });

  it('parses failpoint specs strictly', () => {
    expect(() => new Failpoints('before:x=explode')).toThrow(/bad failpoint/);
    expect(new Failpoints('').enabled).toBe(false);
  });
});
