/**
 * Decide, path by path, what happens to the new layer's /etc (the planner; it touches no files itself — comparisons
 * that need file content go through the `probe` passed in).
 *
 *   in old etc | in old factory | verdict
 *   -----------+----------------+-------------------------------------------------------------
 *   yes        | yes, same      | untouched → the new image's version stays ("tookNew")
 *   yes        | yes, differs   | changed by the user → carried (user wins)
 *   yes        | no             | added by the user → carried
 *   no         | yes            | deleted by the user → removed from the new etc ("keptDeleted")
 *
 * Conflicts (reported, the verdict above still applies): the user changed a path the new image also changed or
 * removed, added a path the new image now ships differently, deleted a path the new image changed, or the path
 * changed type on either side.
 */
import { parentRel, yieldToLoop, type TreeEntry, type TreeScan } from './tree-scan';

export type ConflictKind =
  /** The user changed it and the new image changed it too; the user's version is kept. */
  | 'both-changed'
  /** The user changed it and the new image no longer ships it; the user's version is kept. */
  | 'removed-upstream'
  /** The user added it and the new image now ships a different one; the user's version is kept. */
  | 'both-added'
  /** The user deleted it and the new image changed it; it stays deleted. */
  | 'deleted-but-changed-upstream'
  /** The user's entry has another type than the image's (old or new); the user's entry is kept. */
  | 'type-changed';

export interface EtcConflict {
  /** Relative to /etc. */
  path: string;
  kind: ConflictKind;
  resolution: 'kept-user' | 'kept-deleted';
}

/** Comparisons the planner needs; the carry-forward module backs them with the real trees. */
export interface PlanProbe {
  /** Old etc entry vs old factory entry at the same path: true when they differ. */
  userChanged(rel: string, etc: TreeEntry, factory: TreeEntry): boolean;
  /** The new image's factory entry, if it has one. */
  newFactory(rel: string): TreeEntry | undefined;
  /** Old factory vs new factory at the same path: true when they differ. */
  upstreamChanged(rel: string, oldFactory: TreeEntry, newFactory: TreeEntry): boolean;
  /** User-added entry vs the new factory's entry at the same path: true when they differ. */
  differsFromNewFactory(rel: string, etc: TreeEntry, newFactory: TreeEntry): boolean;
}

export interface CarryPlan {
  /** Paths to copy from the old etc into the new one (changed + added), in scan order. */
  carry: string[];
  /** Topmost paths to remove from the new etc (a deleted directory covers everything below it). */
  remove: string[];
  changed: number;
  added: number;
  untouched: number;
  /** Every old-factory entry the user deleted (including those below a deleted directory). */
  deletedEntries: number;
  conflicts: EtcConflict[];
}

export interface PlanInput {
  oldEtc: TreeScan;
  oldFactory: TreeScan;
  /** Paths handled elsewhere (the account files). */
  skip: ReadonlySet<string>;
  probe: PlanProbe;
  signal?: AbortSignal;
  /** Called after each batch with the number of paths classified so far. */
  onClassified?: (done: number) => void;
}

const BATCH = 256;

/** Number of distinct paths the planner will classify. */
export function pathCount(oldEtc: TreeScan, oldFactory: TreeScan): number {
  let n = oldEtc.size;
  for (const rel of oldFactory.keys()) if (!oldEtc.has(rel)) n++;
  return n;
}

export async function planCarry(input: PlanInput): Promise<CarryPlan> {
  const { oldEtc, oldFactory, skip, probe } = input;
  const plan: CarryPlan = {
    carry: [],
    remove: [],
    changed: 0,
    added: 0,
    untouched: 0,
    deletedEntries: 0,
    conflicts: [],
  };
  const conflict = (path: string, kind: ConflictKind, resolution: EtcConflict['resolution']): void => {
    plan.conflicts.push({ path, kind, resolution });
  };
  let done = 0;
  const tick = async (): Promise<void> => {
    done++;
    if (done % BATCH === 0) {
      input.onClassified?.(done);
      await yieldToLoop(input.signal);
    }
  };

  for (const [rel, etc] of oldEtc) {
    await tick();
    if (skip.has(rel)) continue;
    const factory = oldFactory.get(rel);
    if (factory !== undefined) {
      if (!probe.userChanged(rel, etc, factory)) {
        plan.untouched++;
        continue;
      }
      plan.changed++;
      plan.carry.push(rel);
      const next = probe.newFactory(rel);
      if (etc.kind !== factory.kind || (next !== undefined && next.kind !== etc.kind)) {
        conflict(rel, 'type-changed', 'kept-user');
      } else if (next === undefined) {
        conflict(rel, 'removed-upstream', 'kept-user');
      } else if (probe.upstreamChanged(rel, factory, next)) {
        conflict(rel, 'both-changed', 'kept-user');
      }
      continue;
    }
    plan.added++;
    plan.carry.push(rel);
    // Below an added directory everything is added too; only report the topmost clash with the new image.
    if (oldEtc.has(parentRel(rel)) && !oldFactory.has(parentRel(rel)) && parentRel(rel) !== '') continue;
    const next = probe.newFactory(rel);
    if (next === undefined) continue;
    if (next.kind !== etc.kind) conflict(rel, 'type-changed', 'kept-user');
    else if (probe.differsFromNewFactory(rel, etc, next)) conflict(rel, 'both-added', 'kept-user');
  }

  for (const [rel, factory] of oldFactory) {
    if (oldEtc.has(rel)) continue;
    await tick();
    if (skip.has(rel)) continue;
    plan.deletedEntries++;
    const parent = parentRel(rel);
    if (parent !== '') {
      const userParent = oldEtc.get(parent);
      // Parent deleted too (its removal covers this) or replaced by a non-directory (carried as a type change).
      if (userParent === undefined || userParent.kind !== 'dir') continue;
    }
    plan.remove.push(rel);
    const next = probe.newFactory(rel);
    if (next !== undefined && probe.upstreamChanged(rel, factory, next)) {
      conflict(rel, 'deleted-but-changed-upstream', 'kept-deleted');
    }
  }
  input.onClassified?.(done);
  return plan;
}
