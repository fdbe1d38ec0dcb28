/**
 * One transaction at a time. A second request fails with Busy naming the running one, or (wait: true) queues.
 * A reader that must see the bases unchanged (CheckDeep) holds transactions off while it reads: new ones fail with
 * Busy naming it, or (wait: true) queue and start when the last hold is released.
 * Each transaction is a Job: its live state (what the D-Bus Transaction object shows) and an event stream.
 * No D-Bus here.
 */
import { EventEmitter } from 'node:events';
import { BusyError, CancelledError, ImgbasedError, toDbusError } from '../errors';
import type { Logger } from '../log';
import type { Outcome } from '../transaction/runner';
import type { ProgressEvent, TransactionKind } from '../transaction/types';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobSnapshot {
  readonly id: string;
  readonly kind: TransactionKind;
  readonly state: JobState;
  readonly percent: number;
  readonly step: string;
  readonly stepIndex: number;
  readonly stepCount: number;
  readonly message: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** ms since the epoch, 0 when not yet. */
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly initiator: string;
  readonly error: readonly [string, string];
}

/** The work of a job. `initiator` is who asked ("uid 0 (:1.42)"), recorded in the transaction's history. */
export type JobWork = (ctx: { id: string; initiator: string; signal: AbortSignal; onProgress: (e: ProgressEvent) => void }) => Promise<Outcome>;

export interface JobEvents {
  progress: [JobSnapshot];
  finished: [JobSnapshot];
}

export class Job extends EventEmitter<JobEvents> {
  private snap: JobSnapshot;
  readonly abort = new AbortController();

  constructor(id: string, kind: TransactionKind, initiator: string, readonly work: JobWork) {
    super();
    this.snap = {
      id, kind, initiator, state: 'queued', percent: 0, step: '', stepIndex: 0, stepCount: 0, message: 'queued',
      bytesDone: 0, bytesTotal: 0, startedAt: 0, finishedAt: 0, error: ['', ''],
    };
  }

  get snapshot(): JobSnapshot {
    return this.snap;
  }

  get done(): boolean {
    return this.snap.state !== 'queued' && this.snap.state !== 'running';
  }

  update(patch: Partial<JobSnapshot>): void {
    this.snap = { ...this.snap, ...patch };
  }
}

export class Scheduler extends EventEmitter<{ changed: [Job | null]; finished: [Job] }> {
  private running: Job | null = null;
  private readonly queue: Job[] = [];
  private readonly jobs = new Map<string, Job>();
  /** What holds transactions off now (one entry per hold, oldest first). */
  private readonly holds: string[] = [];

  private readonly now: () => number;
  private readonly settle: () => Promise<void>;

  constructor(
    private readonly newId: () => string,
    private readonly log: Logger,
    opts: { now?: () => number; settle?: () => Promise<void> } = {},
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.settle = opts.settle ?? (async () => undefined);
  }

  get active(): Job | null {
    return this.running;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  all(): Job[] {
    return [...this.jobs.values()];
  }

  /** Drop a finished job from the scheduler's memory (its record lives on in the history). */
  forget(job: Job): void {
    if (job.done) this.jobs.delete(job.snapshot.id);
  }

  /**
   * Hold transactions off until the returned release is called (once; later calls do nothing). The caller checks
   * that none runs first; `what` names the holder in Busy errors ("a deep check of the bases").
   */
  hold(what: string): () => void {
    this.holds.push(what);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds.splice(this.holds.indexOf(what), 1);
      void this.pump();
    };
  }

  /** Start (or queue) a job; throws BusyError when one runs, waits or is held off and `wait` is false. */
  submit(kind: TransactionKind, initiator: string, wait: boolean, work: JobWork): Job {
    const busy = this.running ?? this.queue[0];
    if (busy && !wait) {
      throw new BusyError(`transaction ${busy.snapshot.id} (${busy.snapshot.kind}) is ${busy.snapshot.state}`, {
        hint: `watch it with "nodectl watch", cancel it with "nodectl cancel", or pass wait to queue behind it`,
      });
    }
    if (this.holds.length && !wait) {
      throw new BusyError(`${this.holds[0]} is running; no transaction starts until it ends`, {
        hint: 'retry when it has ended, or pass wait to queue behind it',
      });
    }
    const job = new Job(this.newId(), kind, initiator, work);
    this.jobs.set(job.snapshot.id, job);
    this.queue.push(job);
    void this.pump();
    return job;
  }

  /** Cancel in any state: a queued job is dropped, a running one stops at its next safe point, a finished one stays. */
  cancel(job: Job): void {
    if (job.done) return;
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      const t = this.now();
      job.update({ state: 'cancelled', finishedAt: t, message: 'cancelled before it started', error: [new CancelledError().dbusName, 'cancelled before it started'] });
      job.emit('finished', job.snapshot);
      this.emit('finished', job);
      return;
    }
    job.abort.abort();
  }

  /** Resolves when nothing runs or waits (used at shutdown and by tests). */
  async idle(): Promise<void> {
    while (this.running || this.queue.length) await new Promise<void>((r) => this.once('changed', () => r()));
  }

  private async pump(): Promise<void> {
    if (this.running || this.holds.length) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    job.update({ state: 'running', startedAt: this.now(), message: 'starting' });
    this.emit('changed', job);
    job.emit('progress', job.snapshot);
    let final: Partial<JobSnapshot>;
    try {
      const outcome = await job.work({
        id: job.snapshot.id,
        initiator: job.snapshot.initiator,
        signal: job.abort.signal,
        onProgress: (e) => {
          job.update({
            percent: e.percent, step: e.step, stepIndex: e.stepIndex, stepCount: e.stepCount || job.snapshot.stepCount,
            message: e.message, bytesDone: e.bytesDone, bytesTotal: e.bytesTotal,
          });
          job.emit('progress', job.snapshot);
        },
      });
      const err = outcome.error;
      final = {
        state: outcome.record.state === 'succeeded' ? 'succeeded' : outcome.record.state === 'cancelled' ? 'cancelled' : 'failed',
        percent: outcome.record.state === 'succeeded' ? 100 : job.snapshot.percent,
        stepCount: outcome.record.steps.length,
        message: err ? err.message : 'done',
        error: err ? [err.dbusName, err.message] : ['', ''],
      };
    } catch (e) {
      const { name, message } = toDbusError(e);
      final = { state: e instanceof CancelledError ? 'cancelled' : 'failed', message, error: [name, message] };
      if (!(e instanceof ImgbasedError)) {
        this.log.error(`transaction ${job.snapshot.id} crashed: ${e instanceof Error ? e.stack : String(e)}`, { transaction: job.snapshot.id });
      }
    }
    final = { ...final, finishedAt: this.now() };
    this.running = null;
    // The manager's properties first, then the transaction's final state: whoever sees State end (by signal or by
    // polling) reads the properties as they are after it.
    await this.settle();
    job.update(final);
    job.emit('progress', job.snapshot);
    job.emit('finished', job.snapshot);
    this.emit('finished', job);
    this.emit('changed', null);
    void this.pump();
  }
}
