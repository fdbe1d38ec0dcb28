/**
 * What the subagent knows about the daemon: a plain, validated snapshot built from org.ovirt.Node's properties
 * (Layers GetAll / PropertiesChanged) and the active transaction's properties and Progress signals.
 *
 * Pure. D-Bus values come in as `unknown` (variants already unwrapped by unwrapVariants) and are narrowed here,
 * once; a property that is missing or has the wrong shape falls back to its "unknown" value and is reported in
 * `problems`, so one odd property never hides the others.
 */

export type HealthStatus = 'ok' | 'warn' | 'failed' | 'unknown';

export interface LayerRow {
  name: string;
  kind: string;
  base: string;
  sizeBytes: bigint;
  current: boolean;
  default: boolean;
  pinned: boolean;
  /** "boot-state": "trial", "good", "bad" or "" (never assessed; also for a daemon without boot assessment). */
  bootState: string;
  /** "boot-state-reason" ("" when none). */
  bootStateReason: string;
}

export interface PoolView {
  sizeBytes: bigint;
  freeBytes: bigint;
  dataPercent: number;
  metadataPercent: number;
  /** -1 when unknown. */
  autoextendThreshold: number;
}

export interface ActiveTransactionView {
  id: string;
  kind: string;
  percent: number;
  step: string;
}

export interface LastTransactionView {
  id: string;
  kind: string;
  state: string;
  /** Microseconds since the epoch (0 when unknown). */
  finishedAtUs: bigint;
  errorName: string;
  errorMessage: string;
}

export interface DaemonView {
  /** org.ovirt.Node has an owner and answered; when false the other fields are the last values seen. */
  reachable: boolean;
  version: string;
  currentLayer: string;
  defaultLayer: string;
  /** TrialLayer: the layer on trial ("" when none). */
  trialLayer: string;
  health: HealthStatus;
  policy: string;
  pool: PoolView;
  updateAvailable: boolean;
  availableVersion: string;
  active: ActiveTransactionView | null;
  last: LastTransactionView | null;
  layers: LayerRow[];
}

export const EMPTY_VIEW: DaemonView = {
  reachable: false,
  version: '',
  currentLayer: '',
  defaultLayer: '',
  trialLayer: '',
  health: 'unknown',
  policy: '',
  pool: { sizeBytes: 0n, freeBytes: 0n, dataPercent: 0, metadataPercent: 0, autoextendThreshold: -1 },
  updateAvailable: false,
  availableVersion: '',
  active: null,
  last: null,
  layers: [],
};

/** dbus-next Variants (anything with `signature` and `value`) replaced by their values, recursively. */
export function unwrapVariants(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapVariants);
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o['signature'] === 'string' && 'value' in o && Object.keys(o).length === 2) return unwrapVariants(o['value']);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapVariants(x)]));
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** Narrowing helpers that record what was wrong. */
class Reader {
  readonly problems: string[] = [];

  str(where: string, v: unknown, def = ''): string {
    if (typeof v === 'string') return v;
    this.problems.push(`${where}: expected a string`);
    return def;
  }

  bool(where: string, v: unknown, def = false): boolean {
    if (typeof v === 'boolean') return v;
    this.problems.push(`${where}: expected a boolean`);
    return def;
  }

  num(where: string, v: unknown, def = 0): number {
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'bigint') return Number(v);
    this.problems.push(`${where}: expected a number`);
    return def;
  }

  big(where: string, v: unknown, def = 0n): bigint {
    if (typeof v === 'bigint') return v >= 0n ? v : def;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    this.problems.push(`${where}: expected an unsigned integer`);
    return def;
  }

  record(where: string, v: unknown): Record<string, unknown> | undefined {
    if (isRecord(v)) return v;
    this.problems.push(`${where}: expected a dictionary`);
    return undefined;
  }
}

function health(r: Reader, v: unknown): HealthStatus {
  if (v === 'ok' || v === 'warn' || v === 'failed') return v;
  r.problems.push(`Health: unexpected value ${JSON.stringify(v) ?? String(v)}`);
  return 'unknown';
}

function layers(r: Reader, v: unknown): LayerRow[] {
  if (!Array.isArray(v)) {
    r.problems.push('Layers: expected an array');
    return [];
  }
  const out: LayerRow[] = [];
  v.forEach((item: unknown, i) => {
    const d = r.record(`Layers[${i}]`, item);
    if (d === undefined) return;
    out.push({
      name: r.str(`Layers[${i}].name`, d['name']),
      kind: r.str(`Layers[${i}].kind`, d['kind'], 'layer'),
      base: r.str(`Layers[${i}].base`, d['base']),
      sizeBytes: r.big(`Layers[${i}].size`, d['size']),
      current: r.bool(`Layers[${i}].current`, d['current']),
      default: r.bool(`Layers[${i}].default`, d['default']),
      pinned: r.bool(`Layers[${i}].pinned`, d['pinned']),
      // Optional keys: a daemon from before boot assessment has neither (never assessed).
      bootState: 'boot-state' in d ? r.str(`Layers[${i}].boot-state`, d['boot-state']) : '',
      bootStateReason: 'boot-state-reason' in d ? r.str(`Layers[${i}].boot-state-reason`, d['boot-state-reason']) : '',
    });
  });
  return out;
}

function pool(r: Reader, v: unknown): PoolView {
  const d = r.record('Pool', v);
  if (d === undefined) return EMPTY_VIEW.pool;
  return {
    sizeBytes: r.big('Pool.size', d['size']),
    freeBytes: r.big('Pool.free', d['free']),
    dataPercent: r.num('Pool.data-percent', d['data-percent']),
    metadataPercent: r.num('Pool.metadata-percent', d['metadata-percent']),
    autoextendThreshold: 'autoextend-threshold' in d ? r.num('Pool.autoextend-threshold', d['autoextend-threshold'], -1) : -1,
  };
}

function last(r: Reader, v: unknown): LastTransactionView | null {
  const d = r.record('LastTransaction', v);
  if (d === undefined || Object.keys(d).length === 0) return null;
  return {
    id: r.str('LastTransaction.id', d['id']),
    kind: r.str('LastTransaction.kind', d['kind']),
    state: r.str('LastTransaction.state', d['state']),
    finishedAtUs: r.big('LastTransaction.finished-at', d['finished-at']),
    errorName: 'error-name' in d ? r.str('LastTransaction.error-name', d['error-name']) : '',
    errorMessage: 'error-message' in d ? r.str('LastTransaction.error-message', d['error-message']) : '',
  };
}

/**
 * The manager's properties (org.ovirt.Node.Layers, unwrapped) → the view's manager part. `props` may be a partial
 * update (PropertiesChanged): only the properties present replace the corresponding fields of `base`.
 */
export function applyManagerProperties(base: DaemonView, props: Readonly<Record<string, unknown>>): { view: DaemonView; problems: string[] } {
  const r = new Reader();
  const has = (k: string): boolean => Object.hasOwn(props, k);
  const view: DaemonView = { ...base };
  if (has('Version')) view.version = r.str('Version', props['Version']);
  if (has('CurrentLayer')) view.currentLayer = r.str('CurrentLayer', props['CurrentLayer']);
  if (has('DefaultLayer')) view.defaultLayer = r.str('DefaultLayer', props['DefaultLayer']);
  if (has('TrialLayer')) view.trialLayer = r.str('TrialLayer', props['TrialLayer']);
  if (has('Health')) view.health = health(r, props['Health']);
  if (has('AutomaticUpdatePolicy')) view.policy = r.str('AutomaticUpdatePolicy', props['AutomaticUpdatePolicy']);
  if (has('Pool')) view.pool = pool(r, props['Pool']);
  if (has('UpdateAvailable')) view.updateAvailable = r.bool('UpdateAvailable', props['UpdateAvailable']);
  if (has('AvailableVersion')) view.availableVersion = r.str('AvailableVersion', props['AvailableVersion']);
  if (has('LastTransaction')) view.last = last(r, props['LastTransaction']);
  if (has('Layers')) view.layers = layers(r, props['Layers']);
  return { view, problems: r.problems };
}

/** A transaction object's properties (org.ovirt.Node.Transaction, unwrapped; partial allowed) over `base`. */
export function applyTransactionProperties(
  base: ActiveTransactionView,
  props: Readonly<Record<string, unknown>>,
): { active: ActiveTransactionView; problems: string[] } {
  const r = new Reader();
  const has = (k: string): boolean => Object.hasOwn(props, k);
  const active = { ...base };
  if (has('Id')) active.id = r.str('Transaction.Id', props['Id'], base.id);
  if (has('Kind')) active.kind = r.str('Transaction.Kind', props['Kind'], base.kind);
  if (has('Percent')) active.percent = r.num('Transaction.Percent', props['Percent'], base.percent);
  if (has('Step')) active.step = r.str('Transaction.Step', props['Step'], base.step);
  return { active, problems: r.problems };
}

/** A Progress signal body (percent u, step s, message s, done t, total t) over `base`. */
export function applyProgress(base: ActiveTransactionView, body: readonly unknown[]): ActiveTransactionView {
  const [percent, step] = body;
  return {
    ...base,
    percent: typeof percent === 'number' && Number.isFinite(percent) ? percent : base.percent,
    step: typeof step === 'string' ? step : base.step,
  };
}

/** The transaction id from its object path (…/Transaction/<id>); "" for anything else. */
export function transactionIdFromPath(path: string, prefix: string): string {
  return path.startsWith(prefix) ? path.slice(prefix.length) : '';
}
