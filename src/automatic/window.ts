/**
 * Maintenance windows: when automatic stage/apply runs may start (MaintenanceWindow= in imgbased.conf).
 *
 *   ""                          any time
 *   "02:00-05:00"               every day, local time
 *   "Sat,Sun 01:30-06:00"       only on those days
 *   "Mon-Fri 23:00-02:00"       wraps past midnight: the day names the day the window opens
 *   "Sat 00:00-24:00; Wed 03:00-04:00"   several windows, separated by ";"
 *
 * Pure: parsing and evaluation take the time as an argument (local wall-clock time of the Date given).
 */
import { InvalidArgumentError } from '../errors';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const MINUTES_PER_DAY = 24 * 60;

export interface WindowSpan {
  /** Days the window opens on (0 = Sunday). */
  readonly days: ReadonlySet<number>;
  /** Minutes after local midnight. end > start; end may exceed 1440 when the window wraps past midnight. */
  readonly start: number;
  readonly end: number;
}

export interface MaintenanceWindow {
  /** The text it was parsed from (normalized whitespace); "" = any time. */
  readonly text: string;
  /** Empty = any time. */
  readonly spans: readonly WindowSpan[];
}

export const ANY_TIME: MaintenanceWindow = { text: '', spans: [] };

function fail(text: string, why: string): never {
  throw new InvalidArgumentError(
    `MaintenanceWindow "${text}": ${why} (expected e.g. "02:00-05:00", "Sat,Sun 01:30-06:00" or "Mon-Fri 23:00-02:00")`,
  );
}

function dayIndex(text: string, name: string): number {
  const i = DAYS.indexOf(name.toLowerCase().slice(0, 3) as (typeof DAYS)[number]);
  if (i < 0 || name.length < 3 || !/^[a-z]+$/i.test(name)) fail(text, `unknown day "${name}"`);
  return i;
}

function parseDays(text: string, spec: string): Set<number> {
  const days = new Set<number>();
  for (const part of spec.split(',')) {
    const [from, to, extra] = part.split('-');
    if (!from || extra !== undefined) fail(text, `bad day list "${spec}"`);
    const a = dayIndex(text, from);
    if (to === undefined) {
      days.add(a);
      continue;
    }
    const b = dayIndex(text, to);
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return days;
}

function parseClock(text: string, clock: string, allow24: boolean): number {
  const m = /^([0-9]{1,2}):([0-9]{2})$/.exec(clock);
  if (!m?.[1] || !m[2]) fail(text, `bad time "${clock}"`);
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && (min !== 0 || !allow24))) fail(text, `bad time "${clock}"`);
  return h * 60 + min;
}

export function parseMaintenanceWindow(raw: string): MaintenanceWindow {
  const text = raw.trim().replace(/\s+/g, ' ');
  if (text === '') return ANY_TIME;
  const spans: WindowSpan[] = [];
  for (const piece of text.split(';').map((p) => p.trim())) {
    if (piece === '') fail(text, 'empty window');
    const m = /^(?:(\S+) )?(\S+)-(\S+)$/.exec(piece);
    if (!m?.[2] || !m[3]) fail(text, `cannot read "${piece}"`);
    const days = m[1] ? parseDays(text, m[1]) : new Set([0, 1, 2, 3, 4, 5, 6]);
    const start = parseClock(text, m[2], false);
    let end = parseClock(text, m[3], true);
    if (end === start) fail(text, `"${piece}" is empty`);
    if (end < start) end += MINUTES_PER_DAY;
    spans.push({ days, start, end });
  }
  return { text, spans };
}

/** Whether `now` (local time) is inside the window. */
export function insideWindow(w: MaintenanceWindow, now: Date): boolean {
  if (w.spans.length === 0) return true;
  const minute = now.getHours() * 60 + now.getMinutes();
  const today = now.getDay();
  const yesterday = (today + 6) % 7;
  return w.spans.some((s) =>
    (s.days.has(today) && minute >= s.start && minute < s.end) ||
    // A window that opened yesterday and wraps past midnight.
    (s.days.has(yesterday) && s.end > MINUTES_PER_DAY && minute < s.end - MINUTES_PER_DAY));
}
