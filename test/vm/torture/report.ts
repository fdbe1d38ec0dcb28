/**
 * Power-cut torture (issue 11): one result row per run, the CSV and the summary printed at the end. Pure.
 */
import type { CutKind, TortureOp } from './schedule';
import type { Verdict } from './classify';

export interface RunResult {
  readonly run: number;
  readonly fs: string;
  readonly op: TortureOp;
  readonly cut: CutKind;
  /** ms after the operation's call was sent at which the cut was scheduled (sysrq: guest clock; reset: host clock). */
  readonly delayMs: number;
  /** The step the journal on disk was at (classify.ts stepAtCut). */
  readonly step: string;
  readonly verdict: Verdict;
  /** History state of the transaction after recovery (failed/succeeded/none/unfinished). */
  readonly history: string;
  readonly recovered: boolean;
  /** The upgrade that followed the recovery: succeeded, or what went wrong. */
  readonly followUp: string;
  readonly tempFiles: number;
  /** Guest seconds from the run's start to its verdict (the follow-up upgrade excluded). */
  readonly seconds: number;
  readonly reasons: readonly string[];
  /**
   * How often systemd had to restart the daemon in the boot after the cut before it served (0 = started at once).
   * Anything else means the host was without its daemon after a power cut. Absent in rows of older agents.
   */
  readonly daemonRestarts?: number;
}

export const CSV_COLUMNS = [
  'run', 'fs', 'op', 'cut', 'delay_ms', 'step', 'verdict', 'history', 'recovered', 'follow_up', 'temp_files', 'seconds', 'reasons', 'daemon_restarts',
] as const;

export function csvField(v: string | number | boolean): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(r: RunResult): string {
  return [
    r.run, r.fs, r.op, r.cut, r.delayMs, r.step, r.verdict, r.history, r.recovered, r.followUp, r.tempFiles, r.seconds,
    r.reasons.join(' | '), r.daemonRestarts ?? '',
  ].map(csvField).join(',');
}

export function toCsv(rows: readonly RunResult[]): string {
  return [CSV_COLUMNS.join(','), ...rows.map(csvRow)].join('\n') + '\n';
}

export interface Counts {
  OLD: number;
  NEW: number;
  BROKEN: number;
}

export interface Summary {
  readonly runs: number;
  readonly total: Counts;
  readonly byStep: ReadonlyArray<{ step: string; counts: Counts }>;
  readonly byCut: ReadonlyArray<{ cut: string; counts: Counts }>;
  readonly byOp: ReadonlyArray<{ op: string; counts: Counts }>;
  readonly followUpFailures: number;
  /** Runs after whose cut the daemon did not start at the first attempt. */
  readonly daemonStartFailures: number;
  readonly tempFiles: number;
  readonly meanSeconds: number;
}

function tally(rows: readonly RunResult[], key: (r: RunResult) => string): Array<{ key: string; counts: Counts }> {
  const m = new Map<string, Counts>();
  for (const r of rows) {
    const k = key(r);
    const c = m.get(k) ?? { OLD: 0, NEW: 0, BROKEN: 0 };
    c[r.verdict]++;
    m.set(k, c);
  }
  return [...m.entries()].map(([k, counts]) => ({ key: k, counts }));
}

/** Step order for the table: the order steps first appear in the runs, then by name. */
export function summarize(rows: readonly RunResult[]): Summary {
  const total: Counts = { OLD: 0, NEW: 0, BROKEN: 0 };
  for (const r of rows) total[r.verdict]++;
  const byStep = tally(rows, (r) => r.step).sort((a, b) => a.key.localeCompare(b.key)).map((x) => ({ step: x.key, counts: x.counts }));
  return {
    runs: rows.length,
    total,
    byStep,
    byCut: tally(rows, (r) => r.cut).map((x) => ({ cut: x.key, counts: x.counts })),
    byOp: tally(rows, (r) => r.op).map((x) => ({ op: x.key, counts: x.counts })),
    followUpFailures: rows.filter((r) => r.followUp !== 'succeeded' && r.followUp !== 'skipped').length,
    daemonStartFailures: rows.filter((r) => (r.daemonRestarts ?? 0) > 0).length,
    tempFiles: rows.reduce((n, r) => n + r.tempFiles, 0),
    meanSeconds: rows.length ? Math.round(rows.reduce((n, r) => n + r.seconds, 0) / rows.length) : 0,
  };
}

function table(title: string, rows: ReadonlyArray<{ name: string; counts: Counts }>): string[] {
  const w = Math.max(title.length, ...rows.map((r) => r.name.length));
  const line = (name: string, a: string, b: string, c: string, d: string): string =>
    `${name.padEnd(w)}  ${a.padStart(4)}  ${b.padStart(4)}  ${c.padStart(4)}  ${d.padStart(6)}`;
  return [
    line(title, 'runs', 'OLD', 'NEW', 'BROKEN'),
    ...rows.map((r) => line(r.name, String(r.counts.OLD + r.counts.NEW + r.counts.BROKEN), String(r.counts.OLD), String(r.counts.NEW), String(r.counts.BROKEN))),
  ];
}

/** The human summary printed at the end of a campaign. */
export function formatSummary(s: Summary, label: string): string {
  const out = [
    `power-cut torture ${label}: ${s.runs} runs, ${s.total.OLD} OLD, ${s.total.NEW} NEW, ${s.total.BROKEN} BROKEN; ` +
      `follow-up upgrade failures ${s.followUpFailures}; daemon start failures ${s.daemonStartFailures}; leftover temp files ${s.tempFiles}; mean ${s.meanSeconds} s per run (guest)`,
    '',
    ...table('step at the cut', s.byStep.map((x) => ({ name: x.step, counts: x.counts }))),
    '',
    ...table('cut', s.byCut.map((x) => ({ name: x.cut, counts: x.counts }))),
    '',
    ...table('operation', s.byOp.map((x) => ({ name: x.op, counts: x.counts }))),
  ];
  return out.join('\n') + '\n';
}

/** Parse the agent's results.jsonl (one RunResult per line; a torn last line is ignored). */
export function parseResults(text: string): RunResult[] {
  const out: RunResult[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as RunResult;
      if (typeof v.run === 'number' && (v.verdict === 'OLD' || v.verdict === 'NEW' || v.verdict === 'BROKEN')) out.push(v);
    } catch {
      // a line the host saw half-written
    }
  }
  // the last word on a run wins (a run re-judged after an infrastructure retry)
  const byRun = new Map<number, RunResult>();
  for (const r of out) byRun.set(r.run, r);
  return [...byRun.values()].sort((a, b) => a.run - b.run);
}
