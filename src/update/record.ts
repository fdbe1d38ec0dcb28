/**
 * History records for upgrades that end before the engine runs (the package could not be fetched or checked, or
 * the image is installed already). Shaped like Engine's own rejected records, written through its journal.
 */
import type { Engine } from '../engine';
import { newTransactionId } from '../engine';
import { CancelledError, FailedError, ImgbasedError, toDbusError } from '../errors';
import type { Outcome } from '../transaction/runner';
import type { JournalRecord } from '../transaction/types';

export interface RecordOptions {
  readonly id?: string;
  readonly initiator?: string;
}

/** A failed (or cancelled) upgrade that never reached a step. */
export async function recordFailedUpgrade(engine: Engine, request: Record<string, unknown>, err: unknown, opts: RecordOptions): Promise<Outcome> {
  const error = err instanceof ImgbasedError ? err : new FailedError(err instanceof Error ? err.message : String(err), { cause: err });
  const record = base(request, opts, error instanceof CancelledError ? 'cancelled' : 'failed');
  record.error = toDbusError(error);
  await engine.journal.archive(record);
  return { record, error };
}

/** An upgrade with nothing to do (its image is installed already): succeeded, with the reason as a warning. */
export async function recordNothingToDo(engine: Engine, request: Record<string, unknown>, why: string, opts: RecordOptions): Promise<Outcome> {
  const record = base(request, opts, 'succeeded');
  record.warnings.push(why);
  await engine.journal.archive(record);
  return { record, error: null };
}

function base(request: Record<string, unknown>, opts: RecordOptions, state: JournalRecord['state']): JournalRecord {
  const stamp = new Date().toISOString();
  return {
    version: 1, id: opts.id ?? newTransactionId(), kind: 'upgrade', request, initiator: opts.initiator ?? 'root',
    createdAt: stamp, finishedAt: stamp, state, steps: [], warnings: [],
  };
}
