/**
 * The health gates of a trial boot: every required unit active, the health report not "failed", within a timeout.
 * The sources (unit states, the health report, the clock) are passed in; `judgeGates` is the pure decision.
 */
import { CancelledError } from '../errors';
import type { BootVerdict } from '../plan/boot';

/** Where unit states come from: systemd over D-Bus (src/system/units.ts), or the sandbox's files. */
export interface UnitStates {
  /** systemd's ActiveState ("active", "activating", "failed", "inactive", …; "inactive" for a unit not loaded). */
  activeState(unit: string): Promise<string>;
}

export interface GateFacts {
  /** ActiveState per required unit. */
  readonly units: ReadonlyArray<{ unit: string; state: string }>;
  /** The health report's status and the names of failed checks; null when the health gate is off. */
  readonly health: { status: string; failed: readonly string[] } | null;
}

export type GateJudgement =
  | { readonly done: true; readonly verdict: BootVerdict }
  | { readonly done: false; readonly waitingFor: readonly string[] };

/** States from which a unit will not become active without someone acting. */
const SETTLED_DOWN = new Set(['failed', 'inactive', 'deactivating', 'maintenance']);

/**
 * Judge the gates once. `final`: the timeout has passed, so anything not active fails the gate. Before that, a
 * unit still starting (activating, reloading, or inactive: not started yet this boot) is waited for.
 */
export function judgeGates(f: GateFacts, final: boolean): GateJudgement {
  const failed = f.units.filter((u) => u.state === 'failed');
  if (failed.length > 0) {
    return { done: true, verdict: { verdict: 'bad', reason: `required unit ${failed.map((u) => u.unit).join(', ')} failed` } };
  }
  const notActive = f.units.filter((u) => u.state !== 'active');
  if (notActive.length > 0 && !final) return { done: false, waitingFor: notActive.map((u) => `${u.unit} (${u.state})`) };
  if (notActive.length > 0) {
    const what = notActive.map((u) => `${u.unit} (${u.state})`).join(', ');
    return { done: true, verdict: { verdict: 'bad', reason: `required unit not active in time: ${what}` } };
  }
  if (f.health && f.health.status === 'failed') {
    return { done: true, verdict: { verdict: 'bad', reason: `the health check failed: ${f.health.failed.join(', ') || 'status failed'}` } };
  }
  const parts = [
    f.units.length ? `${f.units.map((u) => u.unit).join(', ')} active` : '',
    f.health ? `health ${f.health.status}` : '',
  ].filter(Boolean);
  return { done: true, verdict: { verdict: 'good', reason: parts.length ? `gates passed: ${parts.join('; ')}` : 'no gates configured' } };
}

export interface RunGatesOptions {
  readonly units: readonly string[];
  readonly unitStates: UnitStates;
  /** null: the health gate is off. */
  readonly health: (() => Promise<{ status: string; failed: string[] }>) | null;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** How often unit states are asked again while waiting (default 1 s). */
  readonly pollMs?: number;
  readonly onProgress?: (fraction: number, message: string) => void;
  readonly now?: () => number;
}

/** Ask the sources until the gates are decided or the timeout passes. */
export async function runGates(o: RunGatesOptions): Promise<BootVerdict> {
  const now = o.now ?? Date.now;
  const start = now();
  const poll = o.pollMs ?? 1000;
  for (;;) {
    if (o.signal?.aborted) throw new CancelledError('the health gates were cancelled');
    const units = await Promise.all(o.units.map(async (unit) => ({ unit, state: await o.unitStates.activeState(unit) })));
    const elapsed = now() - start;
    const final = elapsed >= o.timeoutMs;
    // The health report is asked only once the units are up (it is the more expensive source).
    const unitsDecided = judgeGates({ units, health: null }, final);
    const health = unitsDecided.done && unitsDecided.verdict.verdict === 'good' && o.health ? await o.health() : null;
    const j = judgeGates({ units, health }, final);
    if (j.done) return j.verdict;
    o.onProgress?.(Math.min(1, elapsed / Math.max(1, o.timeoutMs)), `waiting for ${j.waitingFor.join(', ')}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.min(poll, Math.max(0, o.timeoutMs - elapsed)));
      function done(): void {
        clearTimeout(t);
        o.signal?.removeEventListener('abort', done);
        resolve();
      }
      o.signal?.addEventListener('abort', done, { once: true });
    });
  }
}
