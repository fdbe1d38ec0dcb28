/**
 * Merge of /etc/passwd, group, shadow and gshadow by account name (pure: text in, text + report out).
 *
 * - Every line of the user's file is kept as it is, in order (comments and NIS `+`/`-` lines included).
 * - An account only the new image has (absent from the old image's factory copy) is appended.
 * - An account the old image shipped but the user removed stays removed.
 * - A group that exists on both sides gets the members the new image added to it (relative to the old factory).
 * - A new account whose UID/GID is already used by another name is renumbered to a free ID in the system range,
 *   counting down from its top (as `useradd -r` does); a new user whose same-named group was renumbered to G takes G
 *   as UID when that is free.
 * - `uidMap`/`gidMap` map every new-image ID whose account ends up with a different ID (renumbered, or kept from the
 *   user with another number) so files the new image ships can be re-owned.
 */
import { FailedError } from '../errors';

export const ACCOUNT_FILES = ['passwd', 'group', 'shadow', 'gshadow'] as const;
export type AccountFile = (typeof ACCOUNT_FILES)[number];
export type AccountTexts = Partial<Record<AccountFile, string>>;

export interface IdRange {
  min: number;
  max: number;
}

export interface AccountMergeInput {
  /** The running layer's /etc (the user's accounts). */
  user: AccountTexts;
  /** The running image's pristine copy (to tell "user deleted" from "new in the image"). */
  oldFactory: AccountTexts;
  /** The new image's /etc as shipped. */
  newImage: AccountTexts;
  uidRange: IdRange;
  gidRange: IdRange;
}

export interface Renumbered {
  kind: 'user' | 'group';
  name: string;
  /** The ID the new image gave the account. */
  from: number;
  /** The ID it gets on this host. */
  to: number;
  /** The user's account that already holds `from`. */
  clashWith: string;
}

export interface IdRemap {
  from: number;
  to: number;
}

export interface AccountReport {
  addedUsers: string[];
  addedGroups: string[];
  /** Accounts the old image shipped, the user removed, and the new image still ships: left out. */
  keptDeletedUsers: string[];
  keptDeletedGroups: string[];
  /** `group:member` pairs the new image added to groups the user already has. */
  addedMembers: string[];
  renumbered: Renumbered[];
  /** New-image UID → UID on this host, for every new-image user whose number differs after the merge. */
  uidMap: IdRemap[];
  gidMap: IdRemap[];
}

export interface AccountMergeResult {
  /** Merged text for each file the user has (a file the user lacks is not produced). */
  files: AccountTexts;
  report: AccountReport;
}

/** A colon-separated line; `name` is undefined for comments, blank and NIS lines (kept verbatim, never merged). */
interface Line {
  raw: string;
  fields: string[];
  name: string | undefined;
}

function parse(text: string | undefined): Line[] {
  if (text === undefined || text === '') return [];
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  return body.split('\n').map((raw) => {
    const fields = raw.split(':');
    const first = fields[0] ?? '';
    const mergeable = fields.length >= 2 && first !== '' && !/^[#+-]/.test(first);
    return { raw, fields, name: mergeable ? first : undefined };
  });
}

function serialize(lines: readonly Line[]): string {
  return lines.map((l) => l.raw + '\n').join('');
}

function byName(lines: readonly Line[]): Map<string, Line> {
  const m = new Map<string, Line>();
  for (const l of lines) if (l.name !== undefined && !m.has(l.name)) m.set(l.name, l);
  return m;
}

function idOf(line: Line, field: number): number | undefined {
  const s = line.fields[field];
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  return Number(s);
}

function withField(line: Line, field: number, value: string): Line {
  const fields = [...line.fields];
  fields[field] = value;
  return { raw: fields.join(':'), fields, name: line.name };
}

/** IDs used per name in a parsed file (ID in `field`). */
function idsByName(lines: readonly Line[], field: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const id = idOf(l, field);
    if (l.name !== undefined && id !== undefined && !m.has(l.name)) m.set(l.name, id);
  }
  return m;
}

function ownersById(lines: readonly Line[], field: number): Map<number, string> {
  const m = new Map<number, string>();
  for (const l of lines) {
    const id = idOf(l, field);
    if (l.name !== undefined && id !== undefined && !m.has(id)) m.set(id, l.name);
  }
  return m;
}

function pickFree(range: IdRange, taken: ReadonlySet<number>, kind: 'UID' | 'GID', name: string): number {
  for (let id = range.max; id >= range.min; id--) if (!taken.has(id)) return id;
  const key = kind === 'UID' ? 'SYS_UID' : 'SYS_GID';
  throw new FailedError(`No free ${kind} in ${range.min}-${range.max} for the new image's account "${name}"`, {
    hint: `Free a system ${kind} or widen ${key}_MIN/${key}_MAX in /etc/login.defs`,
  });
}

function splitMembers(s: string | undefined): string[] {
  return s === undefined || s === '' ? [] : s.split(',');
}

interface Table {
  lines: Line[];
  addedNames: string[];
  keptDeleted: string[];
  renumbered: Renumbered[];
  /** name → final ID for every mergeable name present after the merge. */
  finalIds: Map<string, number>;
}

/**
 * Merge one ID-bearing table (passwd with the UID in field 2, group with the GID in field 2).
 * `preferId` proposes an ID for a renumbered name; `rewrite` adjusts an appended line (e.g. passwd's GID field).
 */
function mergeTable(args: {
  kind: 'user' | 'group';
  user: Line[];
  oldFactory: Line[];
  newImage: Line[];
  range: IdRange;
  preferId: (name: string) => number | undefined;
  rewrite: (line: Line) => Line;
}): Table {
  const ID = 2;
  const lines = [...args.user];
  const userNames = byName(args.user);
  const factoryNames = byName(args.oldFactory);
  const owner = ownersById(args.user, ID);
  const taken = new Set<number>([...owner.keys(), ...ownersById(args.newImage, ID).keys()]);
  const out: Table = { lines, addedNames: [], keptDeleted: [], renumbered: [], finalIds: idsByName(args.user, ID) };
  for (const line of args.newImage) {
    const name = line.name;
    if (name === undefined || userNames.has(name) || out.finalIds.has(name)) continue;
    if (factoryNames.has(name)) {
      out.keptDeleted.push(name);
      continue;
    }
    let appended = args.rewrite(line);
    const id = idOf(line, ID);
    if (id !== undefined) {
      const holder = owner.get(id);
      let finalId = id;
      if (holder !== undefined && holder !== name) {
        const preferred = args.preferId(name);
        finalId =
          preferred !== undefined && !taken.has(preferred) && preferred >= args.range.min && preferred <= args.range.max
            ? preferred
            : pickFree(args.range, taken, args.kind === 'user' ? 'UID' : 'GID', name);
        taken.add(finalId);
        appended = withField(appended, ID, String(finalId));
        out.renumbered.push({ kind: args.kind, name, from: id, to: finalId, clashWith: holder });
      }
      owner.set(finalId, name);
      out.finalIds.set(name, finalId);
    }
    lines.push(appended);
    out.addedNames.push(name);
  }
  return out;
}

/** Remap list: new-image ID → final ID, for names whose number changed. */
function remap(newImage: readonly Line[], finalIds: ReadonlyMap<string, number>): IdRemap[] {
  const out: IdRemap[] = [];
  const seen = new Set<number>();
  for (const [name, from] of idsByName(newImage, 2)) {
    const to = finalIds.get(name);
    if (to === undefined || to === from || seen.has(from)) continue;
    seen.add(from);
    out.push({ from, to });
  }
  return out;
}

/** Add to the user's groups the members the new image added relative to the old factory. */
function mergeMembers(
  lines: Line[],
  field: number,
  oldFactory: readonly Line[],
  newImage: readonly Line[],
  added: Set<string>,
): void {
  const oldF = byName(oldFactory);
  const newI = byName(newImage);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line?.name === undefined) continue;
    const n = newI.get(line.name);
    const o = oldF.get(line.name);
    if (n === undefined || o === undefined) continue;
    const before = new Set(splitMembers(o.fields[field]));
    const have = splitMembers(line.fields[field]);
    const extra = splitMembers(n.fields[field]).filter((m) => !before.has(m) && !have.includes(m));
    if (extra.length === 0) continue;
    lines[i] = withField(line, field, [...have, ...extra].join(','));
    for (const m of extra) added.add(`${line.name}:${m}`);
  }
}

/** Append the new image's shadow-style lines for the names that were appended to the ID table. */
function appendByName(user: readonly Line[], newImage: readonly Line[], names: readonly string[]): Line[] {
  const lines = [...user];
  const have = byName(user);
  const img = byName(newImage);
  for (const name of names) {
    const l = img.get(name);
    if (l !== undefined && !have.has(name)) lines.push(l);
  }
  return lines;
}

export function mergeAccounts(input: AccountMergeInput): AccountMergeResult {
  const p = {
    user: mapTexts(input.user),
    oldFactory: mapTexts(input.oldFactory),
    newImage: mapTexts(input.newImage),
  };
  const addedMembers = new Set<string>();

  const groups = mergeTable({
    kind: 'group',
    user: p.user.group,
    oldFactory: p.oldFactory.group,
    newImage: p.newImage.group,
    range: input.gidRange,
    preferId: () => undefined,
    rewrite: (l) => l,
  });
  mergeMembers(groups.lines, 3, p.oldFactory.group, p.newImage.group, addedMembers);
  const gidMap = remap(p.newImage.group, groups.finalIds);
  const gidTo = new Map(gidMap.map((r) => [r.from, r.to]));
  const groupRenumbered = new Map(groups.renumbered.map((r) => [r.name, r.to]));

  const users = mergeTable({
    kind: 'user',
    user: p.user.passwd,
    oldFactory: p.oldFactory.passwd,
    newImage: p.newImage.passwd,
    range: input.uidRange,
    preferId: (name) => groupRenumbered.get(name),
    rewrite: (l) => {
      const gid = idOf(l, 3);
      const to = gid === undefined ? undefined : gidTo.get(gid);
      return to === undefined ? l : withField(l, 3, String(to));
    },
  });
  const uidMap = remap(p.newImage.passwd, users.finalIds);

  const gshadow = appendByName(p.user.gshadow, p.newImage.gshadow, groups.addedNames);
  mergeMembers(gshadow, 3, p.oldFactory.gshadow, p.newImage.gshadow, addedMembers);

  const merged: Record<AccountFile, Line[]> = {
    passwd: users.lines,
    group: groups.lines,
    shadow: appendByName(p.user.shadow, p.newImage.shadow, users.addedNames),
    gshadow,
  };
  const files: AccountTexts = {};
  for (const f of ACCOUNT_FILES) if (input.user[f] !== undefined) files[f] = serialize(merged[f]);

  return {
    files,
    report: {
      addedUsers: users.addedNames,
      addedGroups: groups.addedNames,
      keptDeletedUsers: users.keptDeleted,
      keptDeletedGroups: groups.keptDeleted,
      addedMembers: [...addedMembers],
      renumbered: [...groups.renumbered, ...users.renumbered],
      uidMap,
      gidMap,
    },
  };
}

function mapTexts(t: AccountTexts): Record<AccountFile, Line[]> {
  return { passwd: parse(t.passwd), group: parse(t.group), shadow: parse(t.shadow), gshadow: parse(t.gshadow) };
}

/** SYS_UID_MIN/MAX and SYS_GID_MIN/MAX from login.defs text, with shadow-utils' defaults (101–999). */
export function systemIdRanges(loginDefs: string | undefined): { uid: IdRange; gid: IdRange } {
  const vals = new Map<string, number>();
  for (const raw of (loginDefs ?? '').split('\n')) {
    const m = /^\s*([A-Z_]+)\s+(\d+)\s*(?:#.*)?$/.exec(raw);
    if (m?.[1] !== undefined && m[2] !== undefined) vals.set(m[1], Number(m[2]));
  }
  const get = (k: string, d: number): number => vals.get(k) ?? d;
  return {
    uid: { min: get('SYS_UID_MIN', 101), max: get('SYS_UID_MAX', get('UID_MIN', 1000) - 1) },
    gid: { min: get('SYS_GID_MIN', 101), max: get('SYS_GID_MAX', get('GID_MIN', 1000) - 1) },
  };
}
