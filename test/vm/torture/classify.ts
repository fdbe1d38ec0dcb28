/**
 * Power-cut torture (issue 11): what the host looked like before an interrupted operation, after the power came back
 * and the daemon recovered, and the verdict. Pure: the guest agent (agent.ts) takes the snapshots, this module judges.
 *
 * OLD    everything imgbased owns is exactly as before (LVs with attrs/tags/origin/size, entries byte for byte, /boot
 *        layer dirs, grubenv, every layer's /etc manifest), and the history says the transaction failed (or it never
 *        started).
 * NEW    exactly what the transaction's own plan (the journaled steps) says: its new LVs with the attrs imgbased
 *        leaves, its removals gone, every other LV/entry/dir/layer untouched, the default moved as planned, the new
 *        layer complete (fsck clean, the image's NVR inside, the carried /etc marker, no file emptied), and the history
 *        says it succeeded.
 * BROKEN anything else, including: an unfinished journal after recovery, leftover mounts, a grubenv that is not a
 *        valid 1024-byte block or names a missing entry/layer, a default layer that fails fsck.
 *
 * Leftover temp files of the atomic writers (`.NAME.tmp-PID-RAND`) are reported, never a verdict of their own.
 */
import type { JournalRecord } from '../../../src/transaction/types';

export interface LvInfo {
  readonly attr: string;
  readonly tags: readonly string[];
  readonly origin: string | null;
  readonly size: number;
}

/** One mounted-and-checked layer. */
export interface LayerCheck {
  /** fsck (after a read-only mount replayed the log, as a boot would) found nothing to fix. */
  readonly fsckOk: boolean;
  readonly fsckOutput: string;
  /** usr/share/imgbase/build/meta/nvr inside the layer (trimmed), null when missing or unreadable. */
  readonly nvr: string | null;
  /** The administrator's marker the agent wrote into /etc at setup (carried forward by every upgrade). */
  readonly marker: string | null;
  /** /etc as path → "kind mode uid:gid size sha256|target". */
  readonly etc: Readonly<Record<string, string>>;
  /** Set when the layer could not be mounted or read at all. */
  readonly error?: string;
}

export interface Snapshot {
  readonly lvs: Readonly<Record<string, LvInfo>>;
  /** loader/entries/*.conf → content. */
  readonly entries: Readonly<Record<string, string>>;
  /** /boot/<layer>/ → "name size" lines (only directories named like layers). */
  readonly bootDirs: Readonly<Record<string, readonly string[]>>;
  /** The grubenv file as latin1 text, '(none)' when missing. */
  readonly grubenv: string;
  /** Unfinished journal records (file names) after recovery: must be none. */
  readonly journal: readonly string[];
  /** Leftover temp files of the atomic writers (reported only). */
  readonly tempFiles: readonly string[];
  /** Mounts below the daemon's run dir (must be none). */
  readonly mounts: readonly string[];
  /** Every layer LV, checked. */
  readonly layers: Readonly<Record<string, LayerCheck>>;
  /**
   * The shared /var's `lib/torture/` (file → content): each torture image adds `image-<NVR>` there, which the upgrade's
   * migrate-var step copies (forward only: an undone upgrade may leave it, a finished one must have it, complete).
   */
  readonly varFiles?: Readonly<Record<string, string>>;
}

export type Verdict = 'OLD' | 'NEW' | 'BROKEN';

/** What the transaction's plan promises (from its journal record). */
export interface Expectation {
  readonly kind: string;
  readonly addBases: ReadonlyArray<{ name: string; origin: string | null }>;
  readonly addLayers: ReadonlyArray<{ name: string; base: string }>;
  /** LVs (layers and bases) the plan removes. */
  readonly removes: readonly string[];
  /** Layers whose boot entry + /boot dir the plan installs. */
  readonly bootFor: readonly string[];
  /** The layer the plan makes the default (saved_entry), null when it does not touch the default. */
  readonly setDefault: string | null;
}

/** What became of the interrupted transaction, as the agent found it after the reboot. */
export interface TxnFacts {
  /** Transaction id from the call's object path ('' when the call itself failed). */
  readonly id: string;
  /** The raw journal record found right after the reboot, before the daemon started (null: none). */
  readonly journalAtBoot: JournalRecord | null;
  /** The history record after recovery (null: not in the history). */
  readonly history: JournalRecord | null;
  /** Still in the journal after the daemon started. */
  readonly unfinishedAfter: boolean;
}

export const BASE_ATTR = 'Vri---tz-k';
export const LAYER_ATTR = 'Vwi-a-tz--';
export const TAG_BASE = 'imgbased:base';
export const TAG_LAYER = 'imgbased:layer';

function isRec(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function argStr(args: unknown, key: string): string | null {
  if (!isRec(args)) return null;
  const v = args[key];
  return typeof v === 'string' ? v : null;
}

/** The plan's promises, read from the journaled steps. */
export function expectationOf(record: JournalRecord): Expectation {
  const addBases: Array<{ name: string; origin: string | null }> = [];
  const addLayers: Array<{ name: string; base: string }> = [];
  const removes: string[] = [];
  const bootFor: string[] = [];
  let setDefault: string | null = null;
  for (const s of record.steps) {
    const name = argStr(s.args, 'name');
    switch (s.action) {
      case 'snapshot-base':
        if (name) addBases.push({ name, origin: argStr(s.args, 'from') });
        break;
      case 'create-base':
        if (name) addBases.push({ name, origin: null });
        break;
      case 'create-layer': {
        const base = argStr(s.args, 'base');
        if (name && base) addLayers.push({ name, base });
        break;
      }
      case 'remove-layer':
      case 'remove-base':
        if (name) removes.push(name);
        break;
      case 'install-boot': {
        const layer = argStr(s.args, 'layer');
        if (layer) bootFor.push(layer);
        break;
      }
      case 'set-default':
        setDefault = argStr(s.args, 'layer');
        break;
      default:
        break;
    }
  }
  return { kind: record.kind, addBases, addLayers, removes, bootFor, setDefault };
}

/**
 * Where the power went, from the journal as it was on disk after the reboot: the step being done (`write-base`),
 * being undone (`undo:write-base`), or between two steps (`after:create-layer`); `not-journaled` when the transaction
 * left no record at all, `finished` when it was already in the history.
 */
export function stepAtCut(f: Pick<TxnFacts, 'journalAtBoot' | 'history'>): string {
  const r = f.journalAtBoot;
  if (r === null) {
    if (f.history !== null && f.history.recovered !== true) return 'finished';
    return f.history === null ? 'not-journaled' : 'unknown';
  }
  const undoing = r.steps.find((s) => s.status === 'undoing');
  if (undoing) return `undo:${undoing.id}`;
  const doing = r.steps.find((s) => s.status === 'doing');
  if (doing) return doing.id;
  if (r.state === 'undoing') {
    const undone = r.steps.filter((s) => s.status === 'undone');
    const last = undone[undone.length - 1];
    return last ? `undo:after:${last.id}` : 'undo:start';
  }
  const done = r.steps.filter((s) => s.status === 'done');
  const last = done[done.length - 1];
  if (r.state !== 'running') return `end:${r.state}`;
  return last ? `after:${last.id}` : 'start';
}

/** grubenv as grub reads it: null when not a valid 1024-byte block. */
export function grubenvVars(text: string): Map<string, string> | null {
  if (text.length !== 1024 || !text.startsWith('# GRUB Environment Block\n')) return null;
  const vars = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i <= 0) return null;
    vars.set(line.slice(0, i), line.slice(i + 1));
  }
  return vars;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sortedKeys(o: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(o).sort();
}

function diffKeys(what: string, got: readonly string[], want: readonly string[]): string[] {
  const g = new Set(got);
  const w = new Set(want);
  const extra = got.filter((k) => !w.has(k));
  const missing = want.filter((k) => !g.has(k));
  return [
    ...(extra.length ? [`${what}: unexpected ${extra.join(', ')}`] : []),
    ...(missing.length ? [`${what}: missing ${missing.join(', ')}`] : []),
  ];
}

/** Entry (BLS) field value. */
function blsField(text: string, key: string): string | null {
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m && m[1] === key) return m[2] ?? null;
  }
  return null;
}

/** Checks that hold in any acceptable state (old or new). */
export function invariants(s: Snapshot): string[] {
  const out: string[] = [];
  if (s.journal.length) out.push(`unfinished journal after recovery: ${s.journal.join(', ')}`);
  if (s.mounts.length) out.push(`leftover mounts: ${s.mounts.join(', ')}`);
  const env = grubenvVars(s.grubenv);
  if (env === null) {
    out.push('grubenv is not a valid 1024-byte GRUB environment block');
    return out;
  }
  for (const key of ['saved_entry', 'next_entry']) {
    const id = env.get(key);
    if (id === undefined || id === '') {
      if (key === 'saved_entry') out.push('grubenv has no saved_entry');
      continue;
    }
    const entry = s.entries[`${id}.conf`];
    if (entry === undefined) {
      out.push(`${key}=${id} names no boot entry`);
      continue;
    }
    if (!s.lvs[id]) out.push(`${key}=${id}: no such layer LV`);
    const layer = s.layers[id];
    if (!layer) out.push(`${key}=${id}: layer not checked`);
    else {
      if (layer.error) out.push(`${key}=${id}: ${layer.error}`);
      if (!layer.fsckOk) out.push(`${key}=${id}: fsck: ${layer.fsckOutput.trim().split('\n').slice(-3).join(' / ')}`);
      if (layer.nvr === null) out.push(`${key}=${id}: no NVR file inside the layer`);
    }
    for (const k of ['linux', 'initrd']) {
      const rel = blsField(entry, k);
      if (!rel) {
        out.push(`entry ${id}: no ${k}`);
        continue;
      }
      const [dir, file] = rel.replace(/^\//, '').split('/');
      const line = (s.bootDirs[dir ?? ''] ?? []).find((l) => l.startsWith(`${file} `));
      if (!line) out.push(`entry ${id}: ${k} ${rel} missing`);
      else if (line.endsWith(' 0')) out.push(`entry ${id}: ${k} ${rel} is empty`);
    }
  }
  // every entry's layer exists, every layer dir has an entry (no orphans)
  for (const f of sortedKeys(s.entries)) {
    const layer = f.replace(/\.conf$/, '');
    if (!s.lvs[layer]) out.push(`orphan entry ${f}: no LV ${layer}`);
  }
  for (const d of sortedKeys(s.bootDirs)) if (!s.entries[`${d}.conf`]) out.push(`orphan /boot/${d}: no entry`);
  for (const [name, lv] of Object.entries(s.lvs)) {
    if (lv.tags.includes(TAG_LAYER) && /\+\d+$/.test(name) && !s.entries[`${name}.conf`]) out.push(`layer ${name} has no boot entry`);
  }
  return out;
}

function oldDiff(pre: Snapshot, post: Snapshot): string[] {
  const out: string[] = [];
  for (const name of new Set([...sortedKeys(pre.lvs), ...sortedKeys(post.lvs)])) {
    if (!same(pre.lvs[name], post.lvs[name])) out.push(`lv ${name}: ${JSON.stringify(pre.lvs[name] ?? null)} → ${JSON.stringify(post.lvs[name] ?? null)}`);
  }
  for (const f of new Set([...sortedKeys(pre.entries), ...sortedKeys(post.entries)])) {
    if (pre.entries[f] !== post.entries[f]) out.push(`entry ${f} differs`);
  }
  if (!same(pre.bootDirs, post.bootDirs)) out.push('/boot layer dirs differ');
  if (pre.grubenv !== post.grubenv) out.push('grubenv differs');
  for (const l of new Set([...sortedKeys(pre.layers), ...sortedKeys(post.layers)])) {
    const a = pre.layers[l];
    const b = post.layers[l];
    if (!a || !b) continue; // already reported as an LV difference
    if (a.nvr !== b.nvr || a.marker !== b.marker) out.push(`layer ${l}: nvr/marker differ`);
    if (!same(a.etc, b.etc)) out.push(`layer ${l}: /etc differs (${etcDiff(a.etc, b.etc).slice(0, 5).join('; ')})`);
  }
  return out;
}

function etcDiff(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const p of new Set([...Object.keys(a), ...Object.keys(b)])) if (a[p] !== b[p]) out.push(`${p}: ${a[p] ?? '-'} → ${b[p] ?? '-'}`);
  return out;
}

/** Size field of an /etc manifest value ("kind mode uid:gid size rest"). */
function etcSize(v: string | undefined): number | null {
  const f = v?.split(' ');
  return f && f[0] === 'file' ? Number(f[3]) : null;
}

function newDiff(pre: Snapshot, post: Snapshot, e: Expectation): string[] {
  const out: string[] = [];
  const removed = new Set(e.removes);
  const wantLvs: Record<string, LvInfo | 'base' | 'layer'> = {};
  // a thin snapshot whose origin is removed keeps its data and loses the origin link
  for (const [n, lv] of Object.entries(pre.lvs)) {
    if (!removed.has(n)) wantLvs[n] = lv.origin !== null && removed.has(lv.origin) ? { ...lv, origin: null } : lv;
  }
  for (const b of e.addBases) wantLvs[b.name] = 'base';
  for (const l of e.addLayers) wantLvs[l.name] = 'layer';
  out.push(...diffKeys('LVs', sortedKeys(post.lvs), sortedKeys(wantLvs)));
  for (const [n, want] of Object.entries(wantLvs)) {
    const got = post.lvs[n];
    if (!got) continue;
    if (want === 'base') {
      const origin = e.addBases.find((b) => b.name === n)?.origin ?? null;
      if (got.attr !== BASE_ATTR || !same(got.tags, [TAG_BASE]) || got.origin !== origin) out.push(`new base ${n}: ${JSON.stringify(got)}`);
    } else if (want === 'layer') {
      const base = e.addLayers.find((l) => l.name === n)?.base ?? null;
      if (got.attr !== LAYER_ATTR || !same(got.tags, [TAG_LAYER]) || got.origin !== base) out.push(`new layer ${n}: ${JSON.stringify(got)}`);
    } else if (!same(got, want)) {
      out.push(`lv ${n}: ${JSON.stringify(want)} → ${JSON.stringify(got)}`);
    }
  }
  // entries and /boot dirs: the removed layers' gone, the installed ones there, the rest untouched
  const keepEntry = (f: string): boolean => !removed.has(f.replace(/\.conf$/, ''));
  const wantEntries = [...sortedKeys(pre.entries).filter(keepEntry), ...e.bootFor.map((l) => `${l}.conf`)];
  out.push(...diffKeys('entries', sortedKeys(post.entries), [...new Set(wantEntries)]));
  for (const f of sortedKeys(pre.entries).filter(keepEntry)) {
    if (!e.bootFor.includes(f.replace(/\.conf$/, '')) && post.entries[f] !== undefined && post.entries[f] !== pre.entries[f]) out.push(`entry ${f} changed`);
  }
  for (const l of e.bootFor) {
    const text = post.entries[`${l}.conf`];
    if (text !== undefined && !text.includes(`img.bootid=${l}`)) out.push(`entry ${l}.conf lacks img.bootid=${l}`);
  }
  const wantDirs = [...sortedKeys(pre.bootDirs).filter((d) => !removed.has(d)), ...e.bootFor];
  out.push(...diffKeys('/boot dirs', sortedKeys(post.bootDirs), [...new Set(wantDirs)]));
  for (const d of sortedKeys(pre.bootDirs).filter((x) => !removed.has(x) && !e.bootFor.includes(x))) {
    if (post.bootDirs[d] && !same(post.bootDirs[d], pre.bootDirs[d])) out.push(`/boot/${d} changed`);
  }
  // the default
  const preEnv = grubenvVars(pre.grubenv);
  const postEnv = grubenvVars(post.grubenv);
  if (postEnv) {
    const want = e.setDefault ?? preEnv?.get('saved_entry');
    if (postEnv.get('saved_entry') !== want) out.push(`saved_entry=${postEnv.get('saved_entry') ?? ''}, expected ${want ?? ''}`);
  }
  // the shared /var: what the new image brought is there and complete
  if (post.varFiles !== undefined && e.kind === 'upgrade') {
    for (const b of e.addBases) {
      const got = post.varFiles[`image-${b.name}`];
      if (got !== `${b.name}\n`) out.push(`/var/lib/torture/image-${b.name}: ${got === undefined ? 'missing' : JSON.stringify(got)}`);
    }
  }
  // layers: untouched ones identical, new ones complete
  const defaultLayer = preEnv?.get('saved_entry');
  const refEtc = defaultLayer ? pre.layers[defaultLayer]?.etc : undefined;
  for (const [l, got] of Object.entries(post.layers)) {
    const before = pre.layers[l];
    const added = e.addLayers.find((x) => x.name === l);
    if (added) {
      if (got.error) out.push(`new layer ${l}: ${got.error}`);
      if (!got.fsckOk) out.push(`new layer ${l}: fsck failed`);
      if (got.nvr !== added.base) out.push(`new layer ${l}: nvr ${got.nvr ?? '(none)'}, expected ${added.base}`);
      const refMarker = defaultLayer ? pre.layers[defaultLayer]?.marker : undefined;
      if (refMarker !== undefined && got.marker !== refMarker) out.push(`new layer ${l}: /etc marker ${got.marker ?? '(none)'} (carried /etc lost?)`);
      for (const [p, v] of Object.entries(refEtc ?? {})) {
        const was = etcSize(v);
        const now = etcSize(got.etc[p]);
        if (was !== null && was > 0 && now === 0) out.push(`new layer ${l}: /etc/${p} is empty`);
      }
    } else if (before && !removed.has(l)) {
      if (before.nvr !== got.nvr || before.marker !== got.marker || !same(before.etc, got.etc)) {
        out.push(`layer ${l} changed: ${etcDiff(before.etc, got.etc).slice(0, 5).join('; ')}`);
      }
    }
  }
  return out;
}

export interface Judgement {
  readonly verdict: Verdict;
  /** Why BROKEN (or why neither OLD nor NEW matched); empty for a clean OLD/NEW. */
  readonly reasons: readonly string[];
  /** What the history says: failed/succeeded/cancelled, `none` when the transaction left no record. */
  readonly history: string;
  readonly tempFiles: number;
}

/**
 * The verdict. `expected` comes from the journaled plan (history record, or the journal at boot); without one (the
 * transaction never reached the journal) only OLD is acceptable.
 */
export function judge(pre: Snapshot, post: Snapshot, facts: TxnFacts): Judgement {
  const reasons = invariants(post);
  const record = facts.history ?? facts.journalAtBoot;
  const history = facts.history ? facts.history.state : facts.unfinishedAfter ? 'unfinished' : 'none';
  if (facts.unfinishedAfter) reasons.push('the transaction is still unfinished after the daemon started');
  const old = oldDiff(pre, post);
  const fresh = record ? newDiff(pre, post, expectationOf(record)) : ['no plan: the transaction left no record'];
  let verdict: Verdict = 'BROKEN';
  if (old.length === 0) {
    verdict = 'OLD';
    // a transaction that reports success must have changed something (an empty plan is the exception)
    if (facts.history?.state === 'succeeded' && fresh.length > 0) reasons.push('history says succeeded, the host is in the old state');
  } else if (fresh.length === 0) {
    verdict = 'NEW';
    if (facts.history === null) reasons.push('the host is in the new state but the history has no record of the transaction');
    else if (facts.history.state !== 'succeeded') reasons.push(`the host is in the new state but the history says ${facts.history.state}`);
  } else {
    reasons.push(...old.slice(0, 8).map((r) => `not old: ${r}`), ...fresh.slice(0, 8).map((r) => `not new: ${r}`));
  }
  if (facts.history !== null && facts.journalAtBoot !== null && facts.history.recovered !== true) {
    reasons.push('the journal held the transaction at boot, but its history record is not marked recovered');
  }
  return { verdict: reasons.length > 0 ? 'BROKEN' : verdict, reasons, history, tempFiles: post.tempFiles.length };
}
