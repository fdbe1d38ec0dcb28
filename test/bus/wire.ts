/** Helpers for the harness client's wire values (a variant is {$v: [sig, value]}, a 64-bit integer {$n: "…"}). */
import type { CallResult } from './harness';

export const v = (sig: string, value: unknown): { $v: [string, unknown] } => ({ $v: [sig, value] });

/** Variants and 64-bit integers → plain JSON values. */
export function unwrap(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(unwrap);
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if (Array.isArray(o['$v'])) return unwrap((o['$v'] as unknown[])[1]);
    if (typeof o['$n'] === 'string') return Number(o['$n']);
    return Object.fromEntries(Object.entries(o).map(([k, y]) => [k, unwrap(y)]));
  }
  return x;
}

/** The reply body of a successful call; a failed call fails the test with its error. */
export function ok(r: CallResult): unknown[] {
  if (!r.ok) throw new Error(`call failed: ${r.name}: ${r.message}`);
  return r.body;
}
