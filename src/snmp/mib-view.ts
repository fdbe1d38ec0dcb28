/**
 * Answering AgentX Get, GetNext and GetBulk (RFC 2741 §7.2.3) from one immutable, sorted list of instances. Pure.
 *
 * One snapshot answers a whole request, so a walk step never mixes two daemon views. Search ranges are honoured:
 * GetNext returns the first instance after the start (or at it, when `include` is set) and before the range's end,
 * else endOfMibView named by the start OID.
 */
import type { SearchRange, Varbind } from './agentx-pdu';
import { ValueType } from './agentx-pdu';
import type { Oid } from './oid';
import { compareOids, isPrefixOf } from './oid';

export class MibView {
  private readonly instances: readonly Varbind[];

  /**
   * @param instances every instance (any order; sorted here)
   * @param objects the OIDs of the objects (scalars, table columns) the MIB defines — a Get below one of them that
   *   has no instance is noSuchInstance, anything else noSuchObject.
   */
  constructor(instances: readonly Varbind[], private readonly objects: readonly Oid[]) {
    this.instances = [...instances].sort((a, b) => compareOids(a.oid, b.oid));
  }

  get size(): number {
    return this.instances.length;
  }

  /** Index of the first instance with OID ≥ oid (binary search). */
  private lowerBound(oid: Oid): number {
    let lo = 0;
    let hi = this.instances.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.instances[mid];
      if (at !== undefined && compareOids(at.oid, oid) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(oid: Oid): Varbind {
    const i = this.lowerBound(oid);
    const hit = this.instances[i];
    if (hit !== undefined && compareOids(hit.oid, oid) === 0) return hit;
    const known = this.objects.some((o) => isPrefixOf(o, oid) && o.length < oid.length);
    return { oid, type: known ? ValueType.NoSuchInstance : ValueType.NoSuchObject };
  }

  getNext(range: SearchRange): Varbind {
    let i = this.lowerBound(range.start);
    const at = this.instances[i];
    if (at !== undefined && !range.include && compareOids(at.oid, range.start) === 0) i++;
    const next = this.instances[i];
    if (next === undefined || (range.end.length > 0 && compareOids(next.oid, range.end) >= 0)) {
      return { oid: range.start, type: ValueType.EndOfMibView };
    }
    return next;
  }

  /**
   * GetBulk: the first `nonRepeaters` ranges once, then up to `maxRepetitions` rounds over the others, each
   * continuing after what it returned last; a repeater that reached its end keeps answering endOfMibView. Stops
   * early once every repeater has ended (RFC 2741 §7.2.3.3 lets the subagent return fewer repetitions).
   */
  getBulk(nonRepeaters: number, maxRepetitions: number, ranges: readonly SearchRange[]): Varbind[] {
    const out: Varbind[] = [];
    const n = Math.min(nonRepeaters, ranges.length);
    for (let i = 0; i < n; i++) {
      const r = ranges[i];
      if (r !== undefined) out.push(this.getNext(r));
    }
    const cursors = ranges.slice(n).map((r) => ({ ...r }));
    if (cursors.length === 0) return out;
    for (let rep = 0; rep < maxRepetitions; rep++) {
      let live = 0;
      for (const c of cursors) {
        const vb = this.getNext(c);
        out.push(vb);
        if (vb.type !== ValueType.EndOfMibView) {
          live++;
          c.start = vb.oid;
          c.include = false;
        }
      }
      if (live === 0) break;
    }
    return out;
  }
}
