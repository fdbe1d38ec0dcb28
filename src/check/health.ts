/**
 * The health report (`nodectl check`): pure evaluation of facts gathered by `gatherFacts`.
 * Groups and names follow oVirt's `nodectl check` so scripts keep working.
 */
import type { PoolUsage } from '../storage/backend';

export type CheckStatus = 'ok' | 'warn' | 'failed';

export interface CheckResult {
  readonly group: string;
  readonly name: string;
  readonly status: CheckStatus;
  readonly reason: string;
}

export interface CheckReport {
  readonly status: CheckStatus;
  readonly results: readonly CheckResult[];
}

export interface HealthFacts {
  readonly backendKind: 'lvm' | 'dir';
  readonly pool: PoolUsage;
  readonly layers: readonly string[];
  /** img.bootid of every boot entry that has one. */
  readonly entryBootIds: readonly string[];
  readonly defaultLayer: string | null;
  /** null when /var is not a mount point. */
  readonly varMountOptions: readonly string[] | null;
  /** Mount options of / (null when unknown, e.g. sandbox). */
  readonly rootMountOptions: readonly string[] | null;
  /** Extra volumes (imgbased:volume) that are mounted, with whether discard is on. */
  readonly volumesDiscard: ReadonlyArray<{ name: string; discard: boolean }>;
  readonly unfinishedTransactions: readonly string[];
}

export const POOL_THRESHOLD = 80;

const worst = (a: CheckStatus, b: CheckStatus): CheckStatus =>
  a === 'failed' || b === 'failed' ? 'failed' : a === 'warn' || b === 'warn' ? 'warn' : 'ok';

export function evaluateHealth(f: HealthFacts): CheckReport {
  const r: CheckResult[] = [];
  const add = (group: string, name: string, status: CheckStatus, reason: string): void => {
    r.push({ group, name, status, reason });
  };

  // Thin storage
  const pct = (what: string, v: number): void => {
    const s: CheckStatus = v >= 95 ? 'failed' : v >= POOL_THRESHOLD ? 'warn' : 'ok';
    add('Thin storage', what, s, `${v.toFixed(1)}% used (threshold ${POOL_THRESHOLD}%)`);
  };
  pct('Checking available space in thinpool', f.pool.dataPercent);
  pct('Checking thinpool metadata usage', f.pool.metadataPercent);
  const t = f.pool.autoextendThreshold;
  add('Thin storage', 'Checking thinpool auto-extend', t !== null && t < 100 ? 'ok' : 'warn',
    t === null ? 'no autoextend profile on the pool' : t < 100 ? `autoextend at ${t}%` : 'autoextend is off (threshold 100)');

  // Mount points
  if (f.varMountOptions) add('Mount points', 'Checking separate /var', 'ok', '/var is its own filesystem');
  else if (f.backendKind === 'dir') add('Mount points', 'Checking separate /var', 'ok', 'sandbox (dir backend): /var is a directory of the sysroot');
  else add('Mount points', 'Checking separate /var', 'failed', '/var is not a separate filesystem');
  if (f.rootMountOptions) {
    const ok = f.rootMountOptions.includes('discard');
    add('Mount points', 'Checking discard on /', ok ? 'ok' : 'warn', ok ? 'mounted with discard' : '/ is mounted without discard');
  }
  for (const v of f.volumesDiscard) {
    add('Mount points', `Checking discard on ${v.name}`, v.discard ? 'ok' : 'warn', v.discard ? 'mounted with discard' : 'mounted without discard');
  }

  // Boot entries
  const entries = new Set(f.entryBootIds);
  const missing = f.layers.filter((l) => !entries.has(l));
  add('Bootloader', 'Checking every layer has a boot entry', missing.length ? 'failed' : 'ok',
    missing.length ? `no boot entry for ${missing.join(', ')}` : `${f.layers.length} layers, all with entries`);
  const layers = new Set(f.layers);
  const dangling = f.entryBootIds.filter((b) => !layers.has(b));
  add('Bootloader', 'Checking every boot entry has a layer', dangling.length ? 'failed' : 'ok',
    dangling.length ? `entries point at missing layers: ${dangling.join(', ')}` : 'all entries point at existing layers');
  add('Bootloader', 'Checking the default boot entry', f.defaultLayer && layers.has(f.defaultLayer) ? 'ok' : 'failed',
    f.defaultLayer ? `default is ${f.defaultLayer}` : 'no default boot entry (saved_entry) points at a layer');

  // Transactions
  add('Transactions', 'Checking for unfinished transactions', f.unfinishedTransactions.length ? 'failed' : 'ok',
    f.unfinishedTransactions.length ? `unfinished: ${f.unfinishedTransactions.join(', ')} (restart the daemon to recover)` : 'none');

  return { status: r.map((x) => x.status).reduce(worst, 'ok'), results: r };
}
