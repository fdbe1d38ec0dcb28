/**
 * Object identifiers as arrays of sub-identifiers: parsing, printing and the lexicographic order SNMP walks in.
 * Pure; nothing here knows about our MIB.
 */

export type Oid = readonly number[];

const MAX_SUBID = 0xffff_ffff;

/** "1.3.6.1" (a leading "." is accepted) → [1, 3, 6, 1]; throws on anything else. */
export function parseOid(text: string): Oid {
  const body = text.startsWith('.') ? text.slice(1) : text;
  if (!/^\d+(\.\d+)*$/.test(body)) throw new Error(`not a numeric OID: ${JSON.stringify(text)}`);
  const out = body.split('.').map(Number);
  for (const n of out) if (!Number.isSafeInteger(n) || n > MAX_SUBID) throw new Error(`sub-identifier out of range in ${text}`);
  return out;
}

export function formatOid(oid: Oid): string {
  return oid.join('.');
}

/** <0, 0, >0 as a sorts before, equal to or after b (a prefix sorts first). */
export function compareOids(a: Oid, b: Oid): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True when `prefix` is `oid` or an ancestor of it. */
export function isPrefixOf(prefix: Oid, oid: Oid): boolean {
  if (prefix.length > oid.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== oid[i]) return false;
  return true;
}

export function child(parent: Oid, ...subids: number[]): Oid {
  return [...parent, ...subids];
}
