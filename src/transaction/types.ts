/** Transactions: plans (lists of steps) executed with a journal. */
export type TransactionKind = 'init' | 'upgrade' | 'rollback' | 'cleanup' | 'remove-base' | 'boot-complete';

export type TransactionState = 'running' | 'undoing' | 'succeeded' | 'failed' | 'cancelled';

/**
 * `apply` steps are undone (in reverse) when the transaction fails, is cancelled or crashes;
 * `finalize` steps come after the point of no return and are rolled forward (re-run, idempotent) on recovery.
 */
export type StepPhase = 'apply' | 'finalize';

export interface PlannedStep<A extends string = string, P = unknown> {
  /** Unique within the plan; failpoints name it (`before:<id>`). */
  readonly id: string;
  readonly action: A;
  readonly args: P;
  readonly title: string;
  /** Share of the transaction's progress (relative). */
  readonly weight: number;
  readonly phase: StepPhase;
}

export type StepStatus = 'pending' | 'doing' | 'done' | 'failed' | 'undoing' | 'undone';

export interface JournalStep extends PlannedStep {
  status: StepStatus;
  /** What the step's `do` returned (JSON), used by undo and reported in the result. */
  result?: unknown;
  error?: { name: string; message: string };
  startedAt?: string;
  finishedAt?: string;
}

export interface JournalRecord {
  readonly version: 1;
  readonly id: string;
  readonly kind: TransactionKind;
  readonly request: Readonly<Record<string, unknown>>;
  readonly initiator: string;
  readonly createdAt: string;
  state: TransactionState;
  steps: JournalStep[];
  finishedAt?: string;
  error?: { name: string; message: string };
  /** Set when the transaction was finished by start-up recovery after a crash. */
  recovered?: boolean;
  warnings: string[];
}

export interface ProgressEvent {
  readonly transactionId: string;
  readonly percent: number;
  readonly stepIndex: number;
  readonly stepCount: number;
  readonly step: string;
  readonly message: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

export interface StepProgress {
  /** 0..1 of this step. */
  fraction?: number;
  message?: string;
  bytesDone?: number;
  bytesTotal?: number;
}
