/**
 * rpm's version segment comparison (rpmvercmp from rpm >= 4.15, including `~` and `^`).
 * Returns -1, 0 or 1.
 */
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isAlnum = (c: string): boolean => isDigit(c) || isAlpha(c);

export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const at = (s: string, k: number): string => (k < s.length ? (s[k] as string) : '');
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(at(a, i)) && at(a, i) !== '~' && at(a, i) !== '^') i++;
    while (j < b.length && !isAlnum(at(b, j)) && at(b, j) !== '~' && at(b, j) !== '^') j++;

    // Tilde sorts before everything, even the end of the string.
    if (at(a, i) === '~' || at(b, j) === '~') {
      if (at(a, i) !== '~') return 1;
      if (at(b, j) !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // Caret sorts after the end of the string but before anything else.
    if (at(a, i) === '^' || at(b, j) === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (at(a, i) !== '^') return 1;
      if (at(b, j) !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;

    let ei = i;
    let ej = j;
    const numeric = isDigit(at(a, i));
    const inSeg = numeric ? isDigit : isAlpha;
    while (ei < a.length && inSeg(at(a, ei))) ei++;
    while (ej < b.length && inSeg(at(b, ej))) ej++;
    // A numeric segment is newer than an alpha one.
    if (ej === j) return numeric ? 1 : -1;

    let sa = a.slice(i, ei);
    let sb = b.slice(j, ej);
    if (numeric) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1;
    i = ei;
    j = ej;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}
