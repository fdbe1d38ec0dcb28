/**
 * org.ovirt.Node.Transaction: one bus object per transaction (/org/ovirt/Node/Transaction/<id>). Glue only: it
 * shows a Job's snapshot, throttles Progress to <= 10/s (the final state is always sent), and forwards Cancel.
 */
import { interface as dbusInterface } from 'dbus-next';
import type { Job, JobSnapshot } from '../daemon/scheduler';
import { dbusNextMembers, INTERFACES, TRANSACTION_IFACE, TRANSACTION_PATH_PREFIX } from './api';
import type { Logger } from '../log';
import type { CallContext } from './call';
import { mapped } from './errors';

const { Interface } = dbusInterface;
const THROTTLE_MS = 100;

export { TRANSACTION_IFACE };
export const transactionPath = (id: string): string => `${TRANSACTION_PATH_PREFIX}${id}`;

const usec = (ms: number): bigint => BigInt(Math.max(0, Math.floor(ms))) * 1000n;

export interface TransactionHooks {
  /** Authorize and perform a cancel (polkit lives in the caller, not here). */
  cancel(job: Job, call: CallContext): Promise<void>;
  /** Turn a message from dbus-next's extra argument into a call context. */
  context(msg: unknown): CallContext;
  readonly log: Logger;
}

export class TransactionObject extends Interface {
  private lastSent = 0;
  private pending: NodeJS.Timeout | null = null;
  private shown: JobSnapshot;

  constructor(readonly job: Job, private readonly hooks: TransactionHooks) {
    super(TRANSACTION_IFACE);
    this.shown = job.snapshot;
    job.on('progress', (s) => this.onProgress(s));
    job.on('finished', (s) => this.onFinished(s));
  }

  get Id(): string { return this.shown.id; }
  get Kind(): string { return this.shown.kind; }
  get State(): string { return this.shown.state; }
  get Percent(): number { return this.shown.percent; }
  get Step(): string { return this.shown.step; }
  get StepIndex(): number { return this.shown.stepIndex; }
  get StepCount(): number { return this.shown.stepCount; }
  get Message(): string { return this.shown.message; }
  get BytesDone(): bigint { return BigInt(this.shown.bytesDone); }
  get BytesTotal(): bigint { return BigInt(this.shown.bytesTotal); }
  get StartedAt(): bigint { return usec(this.shown.startedAt); }
  get FinishedAt(): bigint { return usec(this.shown.finishedAt); }
  get Initiator(): string { return this.shown.initiator; }
  get Error(): [string, string] { return [this.shown.error[0], this.shown.error[1]]; }

  Cancel(msg: unknown): Promise<void> {
    return mapped(this.hooks.log, 'Cancel', () => this.hooks.cancel(this.job, this.hooks.context(msg)));
  }

  Progress(percent: number, step: string, message: string, done: bigint, total: bigint): [number, string, string, bigint, bigint] {
    return [percent, step, message, done, total];
  }

  Finished(success: boolean, errorName: string, errorMessage: string): [boolean, string, string] {
    return [success, errorName, errorMessage];
  }

  private onProgress(s: JobSnapshot): void {
    const now = Date.now();
    const wait = THROTTLE_MS - (now - this.lastSent);
    if (wait <= 0) {
      this.send(s);
    } else if (!this.pending) {
      this.pending = setTimeout(() => {
        this.pending = null;
        this.send(this.job.snapshot);
      }, wait);
    }
  }

  private send(s: JobSnapshot): void {
    this.lastSent = Date.now();
    const before = this.shown;
    this.shown = s;
    const changed: Record<string, unknown> = {};
    if (before.state !== s.state) changed['State'] = s.state;
    if (before.percent !== s.percent) changed['Percent'] = s.percent;
    if (before.step !== s.step) changed['Step'] = s.step;
    if (before.stepIndex !== s.stepIndex) changed['StepIndex'] = s.stepIndex;
    if (before.stepCount !== s.stepCount) changed['StepCount'] = s.stepCount;
    if (before.message !== s.message) changed['Message'] = s.message;
    if (before.bytesDone !== s.bytesDone) changed['BytesDone'] = BigInt(s.bytesDone);
    if (before.bytesTotal !== s.bytesTotal) changed['BytesTotal'] = BigInt(s.bytesTotal);
    if (before.startedAt !== s.startedAt) changed['StartedAt'] = usec(s.startedAt);
    if (before.finishedAt !== s.finishedAt) changed['FinishedAt'] = usec(s.finishedAt);
    if (before.error[0] !== s.error[0]) changed['Error'] = [s.error[0], s.error[1]];
    if (Object.keys(changed).length) Interface.emitPropertiesChanged(this, changed, []);
    this.Progress(s.percent, s.step, s.message, BigInt(s.bytesDone), BigInt(s.bytesTotal));
  }

  private onFinished(s: JobSnapshot): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
    this.send(s); // the final state is always sent
    this.Finished(s.state === 'succeeded', s.error[0], s.error[1]);
  }
}

// Members come from api.ts, which a test keeps equal to dbus/org.ovirt.Node.Layers.xml.
TransactionObject.configureMembers(dbusNextMembers(INTERFACES[TRANSACTION_IFACE]));
