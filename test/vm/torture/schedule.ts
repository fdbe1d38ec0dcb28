/**
 * Power-cut torture (issue 11): the campaign's schedule, reproducible from a seed. Pure.
 *
 * Every run interrupts one operation (mostly upgrades, some rollbacks and cleanups) with one kind of cut, at a moment
 * drawn uniformly over the operation's expected duration (a fraction in [0, 1.15): a few cuts land after the end, which
 * must then read as the new state). The two cut kinds alternate so that both are always used.
 *
 * The moment is counted from just before the operation's D-Bus call is sent (a cut can land while the call is still in
 * flight), and the expected duration is learned during the campaign: the median of the operation's latest measured
 * durations on this machine (`expectedMs`), from the call to the daemon's recorded finish, so that the cuts spread over
 * the operation as it runs here and now, not as it ran on a slower or busier machine.
 */

import { prng } from '../../helpers/prng';
export type TortureOp = 'upgrade' | 'rollback' | 'cleanup';
/** `sysrq`: the guest reboots itself (`echo b > /proc/sysrq-trigger`, no sync); `reset`: the host sends QMP `system_reset`. */
export type CutKind = 'sysrq' | 'reset';

export interface PlannedRun {
  /** 1-based. */
  readonly run: number;
  readonly op: TortureOp;
  readonly cut: CutKind;
  /** Where in the operation's expected duration the power goes (0 = right after the call returns). */
  readonly fraction: number;
}

export interface OpMix {
  readonly upgrade: number;
  readonly rollback: number;
  readonly cleanup: number;
}

export const DEFAULT_MIX: OpMix = { upgrade: 0.7, rollback: 0.15, cleanup: 0.15 };
/** Cuts are spread over this multiple of the expected duration. */
export const OVERSHOOT = 1.15;

/** The seeded PRNG the schedule draws from (mulberry32). */
export { prng };

export function pickOp(u: number, mix: OpMix): TortureOp {
  const total = mix.upgrade + mix.rollback + mix.cleanup;
  if (!(total > 0)) throw new Error('the operation mix is empty');
  const x = u * total;
  if (x < mix.upgrade) return 'upgrade';
  if (x < mix.upgrade + mix.rollback) return 'rollback';
  return 'cleanup';
}

/**
 * The runs of a campaign. The first run is always an upgrade (the operation the issue is about), and the cut kinds
 * alternate starting with a random one.
 */
export function makeSchedule(seed: number, runs: number, mix: OpMix = DEFAULT_MIX): PlannedRun[] {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const rnd = prng(seed);
  const firstCut: CutKind = rnd() < 0.5 ? 'sysrq' : 'reset';
  const out: PlannedRun[] = [];
  for (let run = 1; run <= runs; run++) {
    const op = run === 1 ? 'upgrade' : pickOp(rnd(), mix);
    const cut: CutKind = (run % 2 === 1) === (firstCut === 'sysrq') ? 'sysrq' : 'reset';
    out.push({ run, op, cut, fraction: Math.round(rnd() * OVERSHOOT * 1e4) / 1e4 });
  }
  return out;
}

/** The delay in ms after the operation's call was sent at which the power goes. */
export function cutDelayMs(run: PlannedRun, expectedMs: number): number {
  return Math.max(0, Math.round(run.fraction * expectedMs));
}

/** How many of an operation's latest measured durations its expected duration follows. */
export const SAMPLES = 5;

/** The measured durations with one more (the latest SAMPLES kept). */
export function addSample(samples: readonly number[] | undefined, ms: number): number[] {
  if (!(ms >= 0) || !Number.isFinite(ms)) return [...(samples ?? [])];
  return [...(samples ?? []), Math.round(ms)].slice(-SAMPLES);
}

/** An operation's expected duration: the median of its measured durations, or the first guess while there are none. */
export function expectedMs(samples: readonly number[] | undefined, guess: number): number {
  if (!samples || samples.length === 0) return guess;
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
}

/**
 * The short campaign CI runs (`scripts/torture-vm.sh --short`): two upgrades, one cut by each kind, inside the
 * operation (at 35 % and 65 % of its measured duration), so that both land on work in progress whatever the machine.
 */
export function shortSchedule(): PlannedRun[] {
  return [
    { run: 1, op: 'upgrade', cut: 'sysrq', fraction: 0.35 },
    { run: 2, op: 'upgrade', cut: 'reset', fraction: 0.65 },
  ];
}

/** Where the guest agent is (the part of its state.json this module needs). */
export interface Progress {
  readonly phase: 'ready' | 'cut' | 'done' | 'stopped';
  /** The run to start (ready) or being judged (cut). */
  readonly run: number;
  /** Images used so far (the next one to stage). */
  readonly nextImage: number;
}

/**
 * Signed images a campaign needs in all: what the first plan builds (the root, the setup upgrade, each run's upgrade
 * and follow-up), or, for a campaign under way, the images used so far plus what the rest stages — the follow-up of a
 * run being judged, then each later run's upgrade (if it is one) and follow-up — whichever is more (a campaign can
 * have used more than planned: the first resumed xfs campaign staged an interrupted follow-up's image twice).
 */
export function imagesNeeded(runs: readonly PlannedRun[], at: Progress | null): number {
  const stages = (rs: readonly PlannedRun[]): number => rs.reduce((n, r) => n + (r.op === 'upgrade' ? 2 : 1), 0);
  const planned = 2 + stages(runs);
  if (at === null || at.phase === 'done' || at.phase === 'stopped') return Math.max(planned, at?.nextImage ?? 0);
  const rest = at.phase === 'cut' ? 1 + stages(runs.filter((r) => r.run > at.run)) : stages(runs.filter((r) => r.run >= at.run));
  return Math.max(planned, at.nextImage + rest);
}

/** Parse `--seed`: a decimal integer, or any other string hashed (FNV-1a) so that names work as seeds too. */
export function parseSeed(text: string): number {
  if (/^\d+$/.test(text)) return Number(text) >>> 0;
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(text, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
