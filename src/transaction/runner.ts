/**
 * Runs a plan step by step with the journal written (and fsynced) before and after every step.
 *
 * - `apply` steps: on failure or cancel, every step that started is undone in reverse (undo is idempotent, so a step
 *   that crashed half-way is undone too). A crash leaves the journal behind; `recover()` at start-up undoes it.
 * - `finalize` steps: past the point of no return. A failure becomes a warning; recovery rolls them forward.
 */
import { CancelledError, FailedError, ImgbasedError, toDbusError } from '../errors';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import type { Failpoints } from './failpoints';
import type { Journal } from './journal';
import type {
  JournalRecord, JournalStep, PlannedStep, ProgressEvent, StepProgress, TransactionKind,
} from './types';

export interface StepContext<C> {
  readonly services: C;
  readonly signal: AbortSignal;
  readonly transactionId: string;
  readonly stepId: string;
  progress(p: StepProgress): void;
  /** Failpoint inside a long step (`during:<step id>`). */
  failpoint(): void;
}

export interface Executor<P, C> {
  /** Do the step; the (JSON) value returned is journaled and passed to undo. */
  do(args: P, ctx: StepContext<C>): Promise<unknown>;
  /** Undo the step; must be idempotent and must cope with a half-done or never-started `do` (result undefined). */
  undo(args: P, ctx: StepContext<C>, result: unknown): Promise<void>;
}

/** One executor per action: a plan step without an executor does not compile. */
export type ExecutorMap<S extends PlannedStep, C> = {
  [K in S['action']]: Executor<Extract<S, { action: K }>['args'], C>;
};

export interface TransactionSpec<S extends PlannedStep> {
  readonly id: string;
  readonly kind: TransactionKind;
  readonly request: Readonly<Record<string, unknown>>;
  readonly initiator: string;
  readonly steps: readonly S[];
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface Outcome {
  readonly record: JournalRecord;
  /** The error that failed or cancelled the transaction (null on success). */
  readonly error: ImgbasedError | null;
}

export interface RunnerDeps<S extends PlannedStep, C> {
  journal: Journal;
  executors: ExecutorMap<S, C>;
  services: C;
  failpoints: Failpoints;
  now?: () => Date;
  log?: Logger;
}

const never = new AbortController().signal;

export class TransactionRunner<S extends PlannedStep, C> {
  private readonly now: () => Date;
  private readonly log: Logger;

  constructor(private readonly deps: RunnerDeps<S, C>) {
    this.now = deps.now ?? (() => new Date());
    this.log = deps.log ?? silentLogger;
  }

  private executor(action: string): Executor<unknown, C> {
    const ex = (this.deps.executors as Record<string, Executor<unknown, C> | undefined>)[action];
    if (!ex) throw new FailedError(`no executor for step action "${action}"`);
    return ex;
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  async run(spec: TransactionSpec<S>, opts: RunOptions = {}): Promise<Outcome> {
    const record: JournalRecord = {
      version: 1,
      id: spec.id,
      kind: spec.kind,
      request: spec.request,
      initiator: spec.initiator,
      createdAt: this.stamp(),
      state: 'running',
      steps: spec.steps.map((s) => ({ ...s, status: 'pending' })),
      warnings: [],
    };
    const { journal } = this.deps;
    await journal.write(record);
    const signal = opts.signal ?? never;
    const progress = new ProgressTracker(record, opts.onProgress);
    let error: ImgbasedError | null = null;

    for (const [index, step] of record.steps.entries()) {
      if (step.phase === 'finalize') break;
      try {
        if (signal.aborted) throw new CancelledError();
        await this.doStep(record, step, index, signal, progress);
      } catch (e) {
        error = e instanceof ImgbasedError ? e : new FailedError(e instanceof Error ? e.message : String(e), { cause: e });
        step.status = 'failed';
        step.error = toDbusError(e);
        step.finishedAt = this.stamp();
        this.log.error(`step ${step.id} failed: ${error.message}`, { transaction: record.id, step: step.id });
        break;
      }
    }

    if (error) {
      await this.undoAll(record, progress);
      record.state = error instanceof CancelledError ? 'cancelled' : 'failed';
      record.error = toDbusError(error);
    } else {
      await this.finalize(record, progress);
      record.state = 'succeeded';
    }
    record.finishedAt = this.stamp();
    progress.finish();
    if (record.steps.some((s) => s.status === 'undoing')) {
      // An undo failed: keep the journal so start-up recovery (and `check`) sees the unfinished transaction.
      await journal.write(record);
    } else {
      await journal.archive(record);
    }
    return { record, error };
  }

  private async doStep(
    record: JournalRecord, step: JournalStep, index: number, signal: AbortSignal, progress: ProgressTracker,
  ): Promise<void> {
    const { journal, failpoints } = this.deps;
    step.status = 'doing';
    step.startedAt = this.stamp();
    await journal.write(record);
    progress.enter(index);
    failpoints.hit(`before:${step.id}`);
    const result = await this.executor(step.action).do(step.args, this.context(record, step, signal, progress));
    failpoints.hit(`after:${step.id}`);
    step.status = 'done';
    if (result !== undefined) step.result = result;
    step.finishedAt = this.stamp();
    await journal.write(record);
    progress.leave(index);
  }

  private context(record: JournalRecord, step: JournalStep, signal: AbortSignal, progress: ProgressTracker): StepContext<C> {
    return {
      services: this.deps.services,
      signal,
      transactionId: record.id,
      stepId: step.id,
      progress: (p) => progress.update(p),
      failpoint: () => this.deps.failpoints.hit(`during:${step.id}`),
    };
  }

  /** Undo every step that started, newest first. Undo is never cancelled. */
  private async undoAll(record: JournalRecord, progress: ProgressTracker): Promise<void> {
    const { journal } = this.deps;
    record.state = 'undoing';
    await journal.write(record);
    for (const step of [...record.steps].reverse()) {
      if (step.phase !== 'apply' || step.status === 'pending' || step.status === 'undone') continue;
      step.status = 'undoing';
      await journal.write(record);
      progress.message(`Undoing: ${step.title}`);
      try {
        await this.executor(step.action).undo(step.args, this.context(record, step, never, progress), step.result);
        step.status = 'undone';
        await journal.write(record);
      } catch (e) {
        const msg = `undo of ${step.id} failed: ${e instanceof Error ? e.message : String(e)}`;
        this.log.error(msg, { transaction: record.id, step: step.id });
        record.warnings.push(msg);
        await journal.write(record);
        return;
      }
    }
  }

  /** Run (or re-run, after a crash) the finalize steps; failures become warnings. */
  private async finalize(record: JournalRecord, progress: ProgressTracker): Promise<void> {
    for (const [index, step] of record.steps.entries()) {
      if (step.phase !== 'finalize' || step.status === 'done') continue;
      try {
        await this.doStep(record, step, index, never, progress);
      } catch (e) {
        step.status = 'failed';
        step.error = toDbusError(e);
        const msg = `${step.title} failed: ${e instanceof Error ? e.message : String(e)}`;
        record.warnings.push(msg);
        this.log.warn(msg, { transaction: record.id, step: step.id });
        await this.deps.journal.write(record);
      }
    }
  }

  /**
   * Start-up recovery: finish every transaction the journal still holds. Before the point of no return (some apply
   * step not done) → undo what started: the old state. After it → roll the finalize steps forward: the new state.
   */
  async recover(): Promise<JournalRecord[]> {
    const recovered: JournalRecord[] = [];
    for (const t of await this.deps.journal.removeStaleTemps()) this.log.warn(`removed ${t}, left by an interrupted write`);
    for (const record of await this.deps.journal.unfinished()) {
      const progress = new ProgressTracker(record, undefined);
      const applied = record.steps.filter((s) => s.phase === 'apply').every((s) => s.status === 'done');
      const terminal = record.state === 'succeeded' || record.state === 'failed' || record.state === 'cancelled';
      this.log.warn(`recovering interrupted transaction ${record.id} (${record.kind}, state ${record.state})`, {
        transaction: record.id,
      });
      if (terminal && !record.steps.some((s) => s.status === 'undoing')) {
        // Crashed between the final journal write and the archive: nothing to redo.
      } else if (applied && record.state === 'running') {
        await this.finalize(record, progress);
        record.state = 'succeeded';
        record.recovered = true;
      } else {
        const at = record.steps.find((s) => s.status === 'doing' || s.status === 'failed' || s.status === 'undoing');
        await this.undoAll(record, progress);
        record.state = record.state === 'cancelled' ? 'cancelled' : 'failed';
        record.error ??= {
          name: 'org.ovirt.Node.Error.Failed',
          message: `interrupted (crash or power loss)${at ? ` during "${at.title}"` : ''}; rolled back`,
        };
        record.recovered = true;
      }
      record.finishedAt ??= this.stamp();
      if (record.steps.some((s) => s.status === 'undoing')) await this.deps.journal.write(record);
      else await this.deps.journal.archive(record);
      recovered.push(record);
    }
    return recovered;
  }
}

/** Percent by step weight, refined by the running step's own fraction or bytes. Never goes backwards. */
class ProgressTracker {
  private readonly total: number;
  private doneWeight = 0;
  private current = -1;
  private fraction = 0;
  private lastPercent = 0;
  private msg = '';
  private bytesDone = 0;
  private bytesTotal = 0;

  constructor(private readonly record: JournalRecord, private readonly sink: ((e: ProgressEvent) => void) | undefined) {
    this.total = record.steps.reduce((n, s) => n + s.weight, 0) || 1;
  }

  enter(index: number): void {
    this.current = index;
    this.fraction = 0;
    this.bytesDone = 0;
    this.bytesTotal = 0;
    this.msg = this.record.steps[index]?.title ?? '';
    this.emit();
  }

  leave(index: number): void {
    this.doneWeight += this.record.steps[index]?.weight ?? 0;
    this.fraction = 0;
    this.emit();
  }

  update(p: StepProgress): void {
    if (p.bytesTotal !== undefined) this.bytesTotal = p.bytesTotal;
    if (p.bytesDone !== undefined) this.bytesDone = p.bytesDone;
    if (p.fraction !== undefined) this.fraction = p.fraction;
    else if (p.bytesDone !== undefined && this.bytesTotal > 0) this.fraction = this.bytesDone / this.bytesTotal;
    if (p.message !== undefined) this.msg = p.message;
    this.emit();
  }

  message(text: string): void {
    this.msg = text;
    this.emit();
  }

  finish(): void {
    if (this.record.state === 'succeeded') this.lastPercent = 100;
    this.msg = this.record.state;
    this.emit();
  }

  private emit(): void {
    if (!this.sink) return;
    const step = this.record.steps[this.current];
    const weight = step?.weight ?? 0;
    const raw = ((this.doneWeight + weight * Math.min(1, Math.max(0, this.fraction))) / this.total) * 100;
    this.lastPercent = Math.max(this.lastPercent, Math.min(100, raw));
    this.sink({
      transactionId: this.record.id,
      percent: Math.floor(this.lastPercent),
      stepIndex: Math.max(0, this.current),
      stepCount: this.record.steps.length,
      step: step?.id ?? '',
      message: this.msg,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
    });
  }
}
