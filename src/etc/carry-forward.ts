/**
 * /etc carry-forward: bring the user's configuration from the running layer into a new layer's /etc.
 *
 * Each image ships a pristine copy of its /etc in /usr/share/factory/etc. Comparing the running layer's /etc with its
 * own factory copy tells what the user changed, added and deleted; those changes are applied on top of the new
 * layer's /etc (see carry-plan.ts for the rules and accounts.ts for the passwd/group/shadow/gshadow merge).
 *
 * Steps: scan old etc + old factory (lstat only) → plan (content read only where size and mtime do not settle it) →
 * remove what the user deleted → one rsync of the carried entries (all metadata) → write merged account files →
 * re-own files of the new image whose owner was renumbered.
 *
 * The new layer's /etc is modified in place and is left half-done on failure or cancellation: the caller throws the
 * new layer away (the transaction's undo), it never runs this on a live /etc.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors';
import { ACCOUNT_FILES, mergeAccounts, systemIdRanges, type AccountReport, type AccountTexts } from './accounts';
import { planCarry, pathCount, type EtcConflict, type PlanProbe } from './carry-plan';
import { copyEntries } from './copy-entries';
import { sameEntry, type CompareOptions } from './entry-compare';
import { lstatEntry, parentRel, scanTree, throwIfAborted, yieldToLoop, type TreeEntry } from './tree-scan';

export type { EtcConflict, ConflictKind } from './carry-plan';
export type { AccountReport, Renumbered, IdRemap } from './accounts';

export interface CarryForwardOptions {
  /** Root of the running layer's tree (has etc/ and usr/share/factory/etc/). */
  oldRoot: string;
  /** Root of the new layer's tree, fresh from the new image. Its etc/ is modified in place. */
  newRoot: string;
  signal?: AbortSignal;
  /** Monotonic; `done === total` once at the end. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Trust equal size + equal mtime (ns) as "same content" like rsync's quick check (default true). false reads every
   * pair of equal-sized files.
   */
  quickCheck?: boolean;
  /** rsync binary (default "rsync" on PATH). */
  rsync?: string;
}

export interface EtcCounts {
  /** Paths looked at (union of old etc and old factory). */
  scanned: number;
  /** Entries copied from the old etc (changed + added + missing parents + account files). */
  carried: number;
  /** Paths the user changed (content, mode, owner, type or link target). */
  changed: number;
  /** Paths the user added. */
  added: number;
  /** Paths the user never touched: the new image's version stays. */
  tookNew: number;
  /** Old-factory entries the user deleted (each stays deleted). */
  keptDeleted: number;
  conflicts: number;
  /** Entries of the new etc re-owned because their owner's ID was renumbered. */
  reowned: number;
}

export interface EtcResult {
  counts: EtcCounts;
  /** Relative to /etc: entries copied from the old etc. */
  carried: string[];
  /** Relative to /etc: topmost entries removed from the new etc because the user had deleted them. */
  deleted: string[];
  conflicts: EtcConflict[];
  /** undefined when the old etc has none of passwd/group/shadow/gshadow as regular files. */
  accounts: AccountReport | undefined;
  /** Relative to /etc: entries of the new image re-owned to the renumbered IDs. */
  reowned: string[];
}

interface Trees {
  oldEtc: string;
  oldFactory: string;
  newEtc: string;
  newFactory: string;
}

export function etcTrees(oldRoot: string, newRoot: string): Trees {
  return {
    oldEtc: path.join(oldRoot, 'etc'),
    oldFactory: path.join(oldRoot, 'usr/share/factory/etc'),
    newEtc: path.join(newRoot, 'etc'),
    newFactory: path.join(newRoot, 'usr/share/factory/etc'),
  };
}

export async function carryForwardEtc(opts: CarryForwardOptions): Promise<EtcResult> {
  const t = etcTrees(opts.oldRoot, opts.newRoot);
  const signal = opts.signal;
  const cmp: CompareOptions = { quickCheck: opts.quickCheck ?? true };
  for (const dir of [t.oldEtc, t.newEtc]) {
    if (lstatEntry(dir)?.kind !== 'dir') throw new InvalidArgumentError(`${dir} is not a directory`);
  }
  throwIfAborted(signal);

  const oldEtc = await scanTree(t.oldEtc, withSignal(signal));
  const oldFactory = await scanTree(t.oldFactory, withSignal(signal));
  const total = pathCount(oldEtc, oldFactory) + 1;
  let reported = 0;
  const progress = (done: number): void => {
    if (done <= reported) return;
    reported = done;
    opts.onProgress?.(done, total);
  };

  const accountFiles = ACCOUNT_FILES.filter((f) => oldEtc.get(f)?.kind === 'file');
  const plan = await planCarry({
    oldEtc,
    oldFactory,
    skip: new Set(accountFiles),
    probe: treeProbe(t, cmp),
    ...withSignal(signal),
    onClassified: (done) => progress(Math.min(done, total - 1)),
  });

  // Merge the accounts before touching anything (it can fail: no free system ID).
  const merged = accountFiles.length > 0 ? mergeAccountFiles(t, plan.carry.includes(LOGIN_DEFS)) : undefined;

  for (const rel of plan.remove) {
    throwIfAborted(signal);
    fs.rmSync(path.join(t.newEtc, rel), { recursive: true, force: true });
  }

  const conflicts = [...plan.conflicts];
  const carried = withMissingParents([...plan.carry, ...accountFiles], t.newEtc, conflicts);
  await copyEntries({
    from: t.oldEtc,
    to: t.newEtc,
    paths: carried,
    additive: false,
    ...(opts.rsync === undefined ? {} : { rsync: opts.rsync }),
    ...withSignal(signal),
  });

  let reowned: string[] = [];
  if (merged !== undefined) {
    throwIfAborted(signal);
    writeMergedAccounts(t.newEtc, merged);
    if (merged.report.uidMap.length > 0 || merged.report.gidMap.length > 0) {
      reowned = await reownNewEntries(t.newEtc, merged.report, new Set(carried), signal);
    }
  }
  progress(total);

  return {
    counts: {
      scanned: total - 1,
      carried: carried.length,
      changed: plan.changed,
      added: plan.added,
      tookNew: plan.untouched,
      keptDeleted: plan.deletedEntries,
      conflicts: conflicts.length,
      reowned: reowned.length,
    },
    carried,
    deleted: plan.remove,
    conflicts,
    accounts: merged?.report,
    reowned,
  };
}

function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

function treeProbe(t: Trees, cmp: CompareOptions): PlanProbe {
  const at = (root: string, rel: string): string => path.join(root, rel);
  return {
    userChanged: (rel, etc, factory) => !sameEntry(at(t.oldEtc, rel), etc, at(t.oldFactory, rel), factory, cmp),
    newFactory: (rel) => lstatEntry(at(t.newFactory, rel)),
    upstreamChanged: (rel, a, b) => !sameEntry(at(t.oldFactory, rel), a, at(t.newFactory, rel), b, cmp),
    differsFromNewFactory: (rel, etc, b) => !sameEntry(at(t.oldEtc, rel), etc, at(t.newFactory, rel), b, cmp),
  };
}

/**
 * Add the directories a carried entry needs that the new etc lacks (the new image dropped them) or has as a
 * non-directory (reported as a type change). Parents come before their children in the result.
 */
function withMissingParents(carry: readonly string[], newEtc: string, conflicts: EtcConflict[]): string[] {
  const listed = new Set(carry);
  const checked = new Set<string>();
  const extra: string[] = [];
  for (const rel of carry) {
    const chain: string[] = [];
    for (let p = parentRel(rel); p !== '' && !listed.has(p) && !checked.has(p); p = parentRel(p)) {
      checked.add(p);
      const there = lstatEntry(path.join(newEtc, p));
      if (there?.kind === 'dir') break;
      if (there !== undefined) conflicts.push({ path: p, kind: 'type-changed', resolution: 'kept-user' });
      chain.push(p);
    }
    for (const p of chain.reverse()) {
      listed.add(p);
      extra.push(p);
    }
  }
  return [...extra, ...carry];
}

function readText(root: string, rel: string): string | undefined {
  const e = lstatEntry(path.join(root, rel));
  return e?.kind === 'file' ? fs.readFileSync(path.join(root, rel), 'utf8') : undefined;
}

function readAccounts(root: string): AccountTexts {
  const out: AccountTexts = {};
  for (const f of ACCOUNT_FILES) {
    const text = readText(root, f);
    if (text !== undefined) out[f] = text;
  }
  return out;
}

const LOGIN_DEFS = 'login.defs';

interface MergedAccounts {
  user: AccountTexts;
  files: AccountTexts;
  report: AccountReport;
}

/**
 * Merge the user's account files with the new etc's as shipped. The ID ranges come from the login.defs that will be
 * in effect in the new layer: the user's if it is carried, else the new image's.
 */
function mergeAccountFiles(t: Trees, userLoginDefs: boolean): MergedAccounts {
  const user = readAccounts(t.oldEtc);
  const ranges = systemIdRanges(readText(userLoginDefs ? t.oldEtc : t.newEtc, LOGIN_DEFS));
  const merged = mergeAccounts({
    user,
    oldFactory: readAccounts(t.oldFactory),
    newImage: readAccounts(t.newEtc),
    uidRange: ranges.uid,
    gidRange: ranges.gid,
  });
  return { user, ...merged };
}

/**
 * Write the merged files over the copies rsync just carried: same inode, so the user's owner, mode, xattrs and
 * SELinux label stay. A file whose merge equals the user's is left as copied.
 */
function writeMergedAccounts(newEtc: string, merged: MergedAccounts): void {
  for (const f of ACCOUNT_FILES) {
    const text = merged.files[f];
    if (text !== undefined && text !== merged.user[f]) fs.writeFileSync(path.join(newEtc, f), text);
  }
}

/**
 * Re-own the new image's entries (not the carried ones, which already use this host's IDs) whose UID/GID the
 * account merge moved. chown clears setuid/setgid, so the mode is put back afterwards.
 * Known limit: chown also drops a security.capability xattr; /etc does not ship file capabilities.
 */
async function reownNewEntries(
  newEtc: string,
  accounts: AccountReport,
  carried: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const uid = new Map(accounts.uidMap.map((r) => [r.from, r.to]));
  const gid = new Map(accounts.gidMap.map((r) => [r.from, r.to]));
  const scan = await scanTree(newEtc, withSignal(signal));
  const out: string[] = [];
  let n = 0;
  for (const [rel, e] of scan) {
    if (carried.has(rel)) continue;
    const u = uid.get(e.uid);
    const g = gid.get(e.gid);
    if (u === undefined && g === undefined) continue;
    reown(path.join(newEtc, rel), e, u ?? e.uid, g ?? e.gid);
    out.push(rel);
    if (++n % 256 === 0) await yieldToLoop(signal);
  }
  return out;
}

function reown(p: string, e: TreeEntry, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (e.kind !== 'symlink' && (e.mode & 0o6000) !== 0) fs.chmodSync(p, e.mode);
}
