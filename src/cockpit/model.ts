/**
 * What the page knows about the host, parsed from the raw values cockpit.dbus hands over (`unknown` until checked
 * here). Pure: no DOM, no cockpit global — the page's only place that interprets org.ovirt.Node's data.
 * Keys and types follow dbus/org.ovirt.Node.Layers.xml.
 */

export const BUS_NAME = 'org.ovirt.Node';
export const MANAGER_PATH = '/org/ovirt/Node';
export const LAYERS_IFACE = 'org.ovirt.Node.Layers';
export const TRANSACTION_IFACE = 'org.ovirt.Node.Transaction';
export const TRANSACTION_NAMESPACE = '/org/ovirt/Node/Transaction';
/** The pool usage the page flags (lvm's usual thin_pool_autoextend_threshold). */
export const POOL_THRESHOLD = 80;
export const POLICIES = ['none', 'check', 'stage', 'apply'] as const;
export type Policy = (typeof POLICIES)[number];

export interface Layer {
  name: string;
  base: string;
  version: string;
  release: string;
  size: number;
  current: boolean;
  isDefault: boolean;
  pinned: boolean;
  bootEntry: string;
  readOnly: boolean;
  /**
   * The boot assessment: "trial" (waiting for its first boot, or booted and waiting for CompleteBoot), "good",
   * "bad", or "" (never assessed). Kept as the daemon says it: a state this page does not know is shown as is.
   */
  bootState: string;
  /** Why, in words ("" when none). */
  bootStateReason: string;
  /** Microseconds since the epoch; 0 when never assessed. */
  bootStateChanged: number;
}

export interface Base {
  name: string;
  version: string;
  release: string;
  size: number;
  layers: string[];
  present: boolean;
}

export interface Pool {
  size: number;
  free: number;
  dataPercent: number;
  metadataPercent: number;
  autoextendThreshold: number;
}

export interface VirtualMachines {
  available: boolean;
  running: string[];
  message: string;
}

export interface TransactionRecord {
  id: string;
  kind: string;
  state: string;
  startedAt: number;
  finishedAt: number;
  errorName: string;
  errorMessage: string;
  recovered: boolean;
  initiator: string;
  warnings: string[];
  /** The request's string values (e.g. a boot-complete's "layer", "verdict", "reason"); others left out. */
  request: Record<string, string>;
}

export interface CheckResult {
  group: string;
  check: string;
  status: string;
  reason: string;
}

/** The manager's properties; a field is undefined until the daemon has given a valid value. */
export interface NodeState {
  version?: string;
  layers?: Layer[];
  bases?: Base[];
  currentLayer?: string;
  defaultLayer?: string;
  trialLayer?: string;
  pool?: Pool;
  health?: string;
  activeTransaction?: string;
  policy?: string;
  maintenanceWindow?: string;
  updateAvailable?: boolean;
  availableVersion?: string;
  virtualMachines?: VirtualMachines;
  lastTransaction?: TransactionRecord | null;
}

export interface Progress {
  percent: number;
  step: string;
  message: string;
  done: number;
  total: number;
}

export interface Finished {
  success: boolean;
  errorName: string;
  errorMessage: string;
}

/** A snapshot of a transaction object's properties. */
export interface TransactionSnapshot {
  id: string;
  kind: string;
  state: string;
  percent: number;
  step: string;
  message: string;
  done: number;
  total: number;
  initiator: string;
  errorName: string;
  errorMessage: string;
}

export class BadValue extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A cockpit variant `{t, v}` unwrapped to its value; anything else as it is. */
export function unvariant(v: unknown): unknown {
  if (isRecord(v) && typeof v['t'] === 'string' && 'v' in v) return v['v'];
  return v;
}

function str(v: unknown, what: string): string {
  const x = unvariant(v);
  if (typeof x !== 'string') throw new BadValue(`${what}: expected a string`);
  return x;
}

function num(v: unknown, what: string): number {
  const x = unvariant(v);
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new BadValue(`${what}: expected a number`);
  return x;
}

function bool(v: unknown, what: string): boolean {
  const x = unvariant(v);
  if (typeof x !== 'boolean') throw new BadValue(`${what}: expected a boolean`);
  return x;
}

function strings(v: unknown, what: string): string[] {
  const x = unvariant(v);
  if (!Array.isArray(x)) throw new BadValue(`${what}: expected an array of strings`);
  return x.map((s, i) => str(s, `${what}[${i}]`));
}

function dict(v: unknown, what: string): Record<string, unknown> {
  const x = unvariant(v);
  if (!isRecord(x)) throw new BadValue(`${what}: expected a dictionary`);
  return x;
}

function dicts(v: unknown, what: string): Array<Record<string, unknown>> {
  const x = unvariant(v);
  if (!Array.isArray(x)) throw new BadValue(`${what}: expected an array of dictionaries`);
  return x.map((d, i) => dict(d, `${what}[${i}]`));
}

/** An optional key of an a{sv}: its value, or the fallback when the key is absent. */
function opt<T>(d: Record<string, unknown>, key: string, parse: (v: unknown, what: string) => T, fallback: T): T {
  return key in d ? parse(d[key], key) : fallback;
}

export function parseLayers(v: unknown): Layer[] {
  return dicts(v, 'Layers').map((d) => ({
    name: str(d['name'], 'Layers.name'),
    base: opt(d, 'base', str, ''),
    version: opt(d, 'version', str, ''),
    release: opt(d, 'release', str, ''),
    size: opt(d, 'size', num, 0),
    current: opt(d, 'current', bool, false),
    isDefault: opt(d, 'default', bool, false),
    pinned: opt(d, 'pinned', bool, false),
    bootEntry: opt(d, 'boot-entry', str, ''),
    readOnly: opt(d, 'read-only', bool, false),
    bootState: opt(d, 'boot-state', str, ''),
    bootStateReason: opt(d, 'boot-state-reason', str, ''),
    bootStateChanged: opt(d, 'boot-state-changed', num, 0),
  }));
}

export function parseBases(v: unknown): Base[] {
  return dicts(v, 'Bases').map((d) => ({
    name: str(d['name'], 'Bases.name'),
    version: opt(d, 'version', str, ''),
    release: opt(d, 'release', str, ''),
    size: opt(d, 'size', num, 0),
    layers: opt(d, 'layers', strings, []),
    present: opt(d, 'present', bool, true),
  }));
}

export function parsePool(v: unknown): Pool {
  const d = dict(v, 'Pool');
  return {
    size: opt(d, 'size', num, 0),
    free: opt(d, 'free', num, 0),
    dataPercent: opt(d, 'data-percent', num, 0),
    metadataPercent: opt(d, 'metadata-percent', num, 0),
    autoextendThreshold: opt(d, 'autoextend-threshold', num, -1),
  };
}

export function parseVirtualMachines(v: unknown): VirtualMachines {
  const d = dict(v, 'VirtualMachines');
  return {
    available: opt(d, 'available', bool, false),
    running: opt(d, 'running', strings, []),
    message: opt(d, 'message', str, ''),
  };
}

/** A LastTransaction / GetHistory entry; null for the empty dictionary (no transaction yet). */
export function parseTransactionRecord(v: unknown): TransactionRecord | null {
  const d = dict(v, 'transaction');
  if (Object.keys(d).length === 0) return null;
  return {
    id: str(d['id'], 'transaction.id'),
    kind: opt(d, 'kind', str, ''),
    state: opt(d, 'state', str, ''),
    startedAt: opt(d, 'started-at', num, 0),
    finishedAt: opt(d, 'finished-at', num, 0),
    errorName: opt(d, 'error-name', str, ''),
    errorMessage: opt(d, 'error-message', str, ''),
    recovered: opt(d, 'recovered', bool, false),
    initiator: opt(d, 'initiator', str, ''),
    warnings: opt(d, 'warnings', strings, []),
    request: opt(d, 'request', stringValues, {}),
  };
}

/** The string-valued entries of an a{sv} (anything else is left out: the page only shows words). */
function stringValues(v: unknown, what: string): Record<string, string> {
  const d = dict(v, what);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(d)) {
    const u = unvariant(x);
    if (typeof u === 'string') out[k] = u;
  }
  return out;
}

export function parseHistory(reply: unknown[]): TransactionRecord[] {
  const list = unvariant(reply[0]);
  if (!Array.isArray(list)) throw new BadValue('GetHistory: expected aa{sv}');
  return list.map(parseTransactionRecord).filter((r): r is TransactionRecord => r !== null);
}

export function parseCheck(reply: unknown[]): { status: string; results: CheckResult[] } {
  const status = str(reply[0], 'Check.status');
  const rows = reply[1];
  if (!Array.isArray(rows)) throw new BadValue('Check.results: expected a(ssss)');
  return {
    status,
    results: rows.map((r, i) => {
      if (!Array.isArray(r) || r.length !== 4) throw new BadValue(`Check.results[${i}]: expected (ssss)`);
      return { group: str(r[0], 'group'), check: str(r[1], 'check'), status: str(r[2], 'status'), reason: str(r[3], 'reason') };
    }),
  };
}

export function parseProgress(args: unknown[]): Progress {
  return {
    percent: num(args[0], 'Progress.percent'),
    step: str(args[1], 'Progress.step'),
    message: str(args[2], 'Progress.message'),
    done: num(args[3], 'Progress.done'),
    total: num(args[4], 'Progress.total'),
  };
}

export function parseFinished(args: unknown[]): Finished {
  return {
    success: bool(args[0], 'Finished.success'),
    errorName: str(args[1], 'Finished.error_name'),
    errorMessage: str(args[2], 'Finished.error_message'),
  };
}

/** Properties.GetAll of a transaction object. */
export function parseTransactionSnapshot(reply: unknown[]): TransactionSnapshot {
  const d = dict(reply[0], 'Transaction');
  const err = unvariant(d['Error']);
  const [errorName, errorMessage] = Array.isArray(err) ? [str(err[0], 'Error[0]'), str(err[1], 'Error[1]')] : ['', ''];
  return {
    id: opt(d, 'Id', str, ''),
    kind: opt(d, 'Kind', str, ''),
    state: opt(d, 'State', str, ''),
    percent: opt(d, 'Percent', num, 0),
    step: opt(d, 'Step', str, ''),
    message: opt(d, 'Message', str, ''),
    done: opt(d, 'BytesDone', num, 0),
    total: opt(d, 'BytesTotal', num, 0),
    initiator: opt(d, 'Initiator', str, ''),
    errorName,
    errorMessage,
  };
}

export const FINISHED_STATES: readonly string[] = ['succeeded', 'failed', 'cancelled'];

type Parsers = { [K in keyof NodeState]-?: [string, (v: unknown) => NonNullable<NodeState[K]> | null] };

/** D-Bus property name → NodeState field and parser (each property parsed on its own: one bad value spoils only itself). */
const PROPERTY_PARSERS: Parsers = {
  version: ['Version', (v) => str(v, 'Version')],
  layers: ['Layers', parseLayers],
  bases: ['Bases', parseBases],
  currentLayer: ['CurrentLayer', (v) => str(v, 'CurrentLayer')],
  defaultLayer: ['DefaultLayer', (v) => str(v, 'DefaultLayer')],
  trialLayer: ['TrialLayer', (v) => str(v, 'TrialLayer')],
  pool: ['Pool', parsePool],
  health: ['Health', (v) => str(v, 'Health')],
  activeTransaction: ['ActiveTransaction', (v) => str(v, 'ActiveTransaction')],
  policy: ['AutomaticUpdatePolicy', (v) => str(v, 'AutomaticUpdatePolicy')],
  maintenanceWindow: ['MaintenanceWindow', (v) => str(v, 'MaintenanceWindow')],
  updateAvailable: ['UpdateAvailable', (v) => bool(v, 'UpdateAvailable')],
  availableVersion: ['AvailableVersion', (v) => str(v, 'AvailableVersion')],
  virtualMachines: ['VirtualMachines', parseVirtualMachines],
  lastTransaction: ['LastTransaction', parseTransactionRecord],
};

/**
 * Merge raw properties (a proxy's data or a PropertiesChanged dictionary) into the state. Returns the new state
 * and the problems met (property name: reason) — a bad value leaves the field as it was.
 */
export function applyProperties(state: NodeState, raw: Record<string, unknown>): { state: NodeState; problems: string[] } {
  const next: Record<string, unknown> = { ...state };
  const problems: string[] = [];
  for (const [field, [prop, parse]] of Object.entries(PROPERTY_PARSERS) as Array<[keyof NodeState, [string, (v: unknown) => unknown]]>) {
    if (!(prop in raw)) continue;
    try {
      next[field] = parse(raw[prop]);
    } catch (e) {
      problems.push(`${prop}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { state: next as NodeState, problems };
}

/** Layers grouped under their bases (bases oldest first; layers whose base is unknown go last under it). */
export function layerTree(bases: readonly Base[], layers: readonly Layer[]): Array<{ base: Base; layers: Layer[] }> {
  const out = bases.map((base) => ({ base, layers: layers.filter((l) => l.base === base.name) }));
  const known = new Set(bases.map((b) => b.name));
  for (const l of layers) {
    if (known.has(l.base)) continue;
    known.add(l.base);
    out.push({
      base: { name: l.base || '(unknown base)', version: l.version, release: l.release, size: 0, layers: [], present: false },
      layers: layers.filter((x) => x.base === l.base),
    });
  }
  return out;
}

/** The layer Rollback("") would pick: the one before the boot default, or null at the oldest. */
export function previousLayer(layers: readonly Layer[]): Layer | null {
  const i = layers.findIndex((l) => l.isDefault);
  return i > 0 ? (layers[i - 1] ?? null) : null;
}

/** An error from cockpit.dbus (or anything thrown) as "Name: message" pieces, honest about what is unknown. */
export function describeError(e: unknown): { name: string; message: string } {
  if (isRecord(e) || e instanceof Error) {
    const r = e as unknown as Record<string, unknown>;
    const name = typeof r['name'] === 'string' && r['name'] !== 'Error' ? r['name'] : typeof r['problem'] === 'string' ? r['problem'] : '';
    const message = typeof r['message'] === 'string' && r['message'] !== '' ? r['message'] : name || 'unknown error';
    return { name, message };
  }
  return { name: '', message: String(e) };
}

/** Microseconds since the epoch → "2025-06-01 12:34:56" local time; "" for 0. */
export function formatTime(usec: number): string {
  if (!usec) return '';
  const d = new Date(usec / 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function clampPercent(n: number): number {
  return Math.max(0, Math.min(100, Number.isFinite(n) ? n : 0));
}

/** Kind of transaction → what the page calls it. */
export function kindTitle(kind: string): string {
  switch (kind) {
    case 'upgrade': return 'Upgrade';
    case 'rollback': return 'Rollback';
    case 'cleanup': return 'Cleanup';
    case 'remove-base': return 'Remove base';
    case 'init': return 'Initialization';
    case 'boot-complete': return 'Boot assessment';
    default: return kind || 'Transaction';
  }
}

/** How the page names a layer's boot state (a badge), and the badge's style. null: never assessed, no badge. */
export function bootStateBadge(state: string): { text: string; tone: 'success' | 'warning' | 'danger' | 'info' } | null {
  switch (state) {
    case '': return null;
    case 'trial': return { text: 'on trial', tone: 'warning' };
    case 'good': return { text: 'good', tone: 'success' };
    case 'bad': return { text: 'failed boot', tone: 'danger' };
    default: return { text: state, tone: 'info' };
  }
}

/**
 * The trial banner: null when no layer is on trial; "pending" while the trial layer has not booted yet (it boots
 * once on the next reboot); "booted" while the host runs it unconfirmed (fallback: the layer a reset returns to,
 * DefaultLayer then). The trial layer is TrialLayer; a daemon without that property is read from the layers' states.
 */
export type TrialBanner =
  | { phase: 'pending'; layer: string }
  | { phase: 'booted'; layer: string; fallback: string };

export function trialBanner(state: NodeState): TrialBanner | null {
  const layer = state.trialLayer ?? state.layers?.find((l) => l.bootState === 'trial')?.name ?? '';
  if (layer === '') return null;
  if (state.currentLayer !== undefined && state.currentLayer === layer) {
    return { phase: 'booted', layer, fallback: state.defaultLayer !== undefined && state.defaultLayer !== layer ? state.defaultLayer : '' };
  }
  return { phase: 'pending', layer };
}

/** The words of the trial banner. */
export function trialBannerText(b: TrialBanner): string {
  if (b.phase === 'pending') return `${b.layer} boots once on the next reboot; it becomes the default only when its boot is confirmed.`;
  return `This boot of ${b.layer} is on trial; ${b.fallback ? `a reset returns to ${b.fallback}` : 'there is no layer for a reset to return to'}.`;
}

/** What a finished boot-complete transaction decided, from its history record (request keys layer, verdict, reason). */
export function bootVerdict(r: TransactionRecord): { layer: string; verdict: string; reason: string } | null {
  if (r.kind !== 'boot-complete') return null;
  return { layer: r.request['layer'] ?? '', verdict: r.request['verdict'] ?? '', reason: r.request['reason'] ?? '' };
}
