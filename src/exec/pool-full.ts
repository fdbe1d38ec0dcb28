/**
 * A base write that fails because the thin pool ran out of room (another writer took it, or the pool was smaller
 * than the free space the planner saw) fails with an I/O error or ENOSPC from deep inside cp, rsync or a write(2).
 * Reported like that, an administrator cannot tell it from a broken disk; reported as NoSpace, it says what to do.
 */
import { CancelledError, NoSpaceError } from '../errors';
import type { PoolUsage } from '../storage/backend';

/** Data or metadata use at or above this percentage counts as a full pool. */
export const FULL_PERCENT = 99.5;

/** The error a failed write of `what` should report, given the pool's use right after the failure. Pure. */
export function writeFailure(e: unknown, usage: PoolUsage | null, what: string): unknown {
  if (e instanceof CancelledError || e instanceof NoSpaceError || usage === null) return e;
  const full = usage.dataPercent >= FULL_PERCENT ? 'data' : usage.metadataPercent >= FULL_PERCENT ? 'metadata' : null;
  if (full === null) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new NoSpaceError(`the thin pool's ${full} space ran out while writing ${what} (${detail.split('\n')[0] ?? ''})`, {
    hint: 'remove old bases (nodectl cleanup) or extend the thin pool (lvextend), then upgrade again',
    cause: e,
  });
}

/** Run a write; when it fails, ask the pool and report a full pool as NoSpace. */
export async function poolAware<T>(poolUsage: () => Promise<PoolUsage>, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    const usage = await poolUsage().catch(() => null); // cannot ask: report the write's own error
    throw writeFailure(e, usage, what);
  }
}
