import { InvalidArgumentError } from '../../src/errors';
import { insideWindow, parseMaintenanceWindow } from '../../src/automatic/window';

/** A local time: 2026-11-23 is a Monday. */
const at = (day: 'Sun' | 'Mon' | 'Tue' | 'Wed' | 'Thu' | 'Fri' | 'Sat', hhmm: string): Date => {
  const offset = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 }[day];
  const [h, m] = hhmm.split(':').map(Number);
  return new Date(2026, 10, 23 + offset, h, m);
};

describe('maintenance window', () => {
  it('empty means any time', () => {
    const w = parseMaintenanceWindow('  ');
    expect(w.spans).toEqual([]);
    expect(insideWindow(w, at('Wed', '13:37'))).toBe(true);
  });

  it('a daily window includes its start and excludes its end', () => {
    const w = parseMaintenanceWindow('02:00-05:00');
    expect(insideWindow(w, at('Tue', '01:59'))).toBe(false);
    expect(insideWindow(w, at('Tue', '02:00'))).toBe(true);
    expect(insideWindow(w, at('Sun', '04:59'))).toBe(true);
    expect(insideWindow(w, at('Sun', '05:00'))).toBe(false);
  });

  it('day lists and ranges (names case-insensitive, full names too)', () => {
    const w = parseMaintenanceWindow('sat,Sunday 01:30-06:00');
    expect(insideWindow(w, at('Sat', '03:00'))).toBe(true);
    expect(insideWindow(w, at('Sun', '01:30'))).toBe(true);
    expect(insideWindow(w, at('Mon', '03:00'))).toBe(false);
    const r = parseMaintenanceWindow('Fri-Mon 10:00-11:00');
    expect(['Fri', 'Sat', 'Sun', 'Mon'].every((d) => insideWindow(r, at(d as 'Fri', '10:30')))).toBe(true);
    expect(insideWindow(r, at('Tue', '10:30'))).toBe(false);
  });

  it('wraps past midnight: the day names the evening the window opens', () => {
    const w = parseMaintenanceWindow('Mon-Fri 23:00-02:00');
    expect(insideWindow(w, at('Fri', '23:30'))).toBe(true);
    expect(insideWindow(w, at('Sat', '01:00'))).toBe(true); // Friday's window
    expect(insideWindow(w, at('Sat', '23:30'))).toBe(false);
    expect(insideWindow(w, at('Mon', '01:00'))).toBe(false); // Sunday opened none
    expect(insideWindow(w, at('Tue', '02:00'))).toBe(false);
  });

  it('several windows and a whole day', () => {
    const w = parseMaintenanceWindow('Sat 00:00-24:00; Wed 03:00-04:00');
    expect(insideWindow(w, at('Sat', '23:59'))).toBe(true);
    expect(insideWindow(w, at('Wed', '03:15'))).toBe(true);
    expect(insideWindow(w, at('Wed', '04:15'))).toBe(false);
    expect(w.text).toBe('Sat 00:00-24:00; Wed 03:00-04:00');
  });

  it.each(['2-5', '02:00', '25:00-01:00', '02:60-03:00', 'Funday 01:00-02:00', '01:00-01:00', 'Mon- 01:00-02:00',
    '24:00-01:00', ';', 'Mon,,Tue 01:00-02:00', 'Mo 01:00-02:00'])('rejects %p with a named error', (text) => {
    expect(() => parseMaintenanceWindow(text)).toThrow(InvalidArgumentError);
    expect(() => parseMaintenanceWindow(text)).toThrow(/MaintenanceWindow .*expected e\.g\./);
  });
});
