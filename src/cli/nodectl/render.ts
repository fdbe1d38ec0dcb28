/**
 * nodectl's renderers: plain reply data in, text out (pure, no I/O). The parse* functions narrow the `unknown` D-Bus
 * replies (after client.plain()) to the shapes the XML promises. Shapes of info and check follow oVirt's nodectl so
 * scripts keep working.
 */
import { badReply, bool, isRecord, str } from './client';

export interface LayerRow {
  name: string;
  base: string;
  current: boolean;
  default: boolean;
  pinned: boolean;
  'boot-entry': string;
  /** "trial", "good", "bad" or "" (never assessed). */
  'boot-state': string;
  'boot-state-reason': string;
}

export function parseLayers(v: unknown): LayerRow[] {
  if (!Array.isArray(v)) throw badReply('Layers is not an array');
  return v.map((x: unknown, i) => {
    if (!isRecord(x)) throw badReply(`Layers[${i}] is not a dict`);
    return {
      ...x,
      name: str(x['name'], `Layers[${i}].name`),
      base: str(x['base'], `Layers[${i}].base`),
      current: bool(x['current'], `Layers[${i}].current`, false),
      default: bool(x['default'], `Layers[${i}].default`, false),
      pinned: bool(x['pinned'], `Layers[${i}].pinned`, false),
      'boot-entry': str(x['boot-entry'], `Layers[${i}].boot-entry`, ''),
      'boot-state': str(x['boot-state'], `Layers[${i}].boot-state`, ''),
      'boot-state-reason': str(x['boot-state-reason'], `Layers[${i}].boot-state-reason`, ''),
    };
  });
}

/** The VirtualMachines property: whether libvirt answered, the running domains, why libvirt is unavailable. */
export interface VmsData {
  available: boolean;
  running: string[];
  message: string;
}

export function parseVms(v: unknown): VmsData {
  if (!isRecord(v)) return { available: false, running: [], message: 'not reported by imgbased' };
  const running = v['running'];
  return {
    available: bool(v['available'], 'VirtualMachines.available', false),
    running: Array.isArray(running) ? running.map((r, i) => str(r, `VirtualMachines.running[${i}]`)) : [],
    message: str(v['message'], 'VirtualMachines.message', ''),
  };
}

export function renderVms(d: VmsData): string {
  if (!d.available) return `unknown (libvirt: ${d.message || 'unavailable'})`;
  return `${d.running.length} running`;
}

export interface InfoData {
  bootloader: { default: string; entries: string[] };
  layers: Record<string, string[]>;
  current_layer: string;
  /** Added after oVirt's keys (scripts reading those keep working). */
  vms: VmsData;
  /** The layer on trial ("" when none): boots once next time, or runs unconfirmed. */
  trial_layer: string;
  /** Boot assessment of every layer that has one. */
  boot_states: Record<string, { state: string; reason: string }>;
}

export function infoData(props: Record<string, unknown>): InfoData {
  const layers = parseLayers(props['Layers'] ?? []);
  const tree: Record<string, string[]> = {};
  for (const l of layers) (tree[l.base] ??= []).push(l.name);
  return {
    bootloader: {
      default: str(props['DefaultLayer'], 'DefaultLayer', ''),
      entries: layers.filter((l) => l['boot-entry']).map((l) => l['boot-entry']),
    },
    layers: tree,
    current_layer: str(props['CurrentLayer'], 'CurrentLayer', ''),
    vms: parseVms(props['VirtualMachines']),
    trial_layer: str(props['TrialLayer'], 'TrialLayer', ''),
    boot_states: Object.fromEntries(layers.filter((l) => l['boot-state'])
      .map((l) => [l.name, { state: l['boot-state'], reason: l['boot-state-reason'] }])),
  };
}

/** " [trial: …]", " [good]", " [bad: …]" or "" for a layer's boot state. */
export function bootMark(state: string, reason: string): string {
  if (!state) return '';
  return state === 'good' || !reason ? ` [${state}]` : ` [${state}: ${reason}]`;
}

export function renderInfo(d: InfoData): string {
  const lines = ['bootloader:', `  default: ${d.bootloader.default}`, '  entries:'];
  for (const e of d.bootloader.entries) lines.push(`    ${e}`);
  lines.push('layers:');
  for (const [base, layers] of Object.entries(d.layers)) {
    lines.push(`  ${base}:`);
    for (const l of layers) {
      const b = d.boot_states[l];
      lines.push(`    ${l}${b && b.state !== 'good' ? bootMark(b.state, b.reason) : ''}`);
    }
  }
  lines.push(`current_layer: ${d.current_layer}`);
  if (d.trial_layer) lines.push(`trial_layer: ${d.trial_layer}`);
  lines.push(`vms: ${renderVms(d.vms)}`);
  return lines.join('\n') + '\n';
}

export type CheckRow = [group: string, name: string, status: string, reason: string];

export function parseCheckRows(v: unknown): CheckRow[] {
  if (!Array.isArray(v)) throw badReply('Check results are not an array');
  return v.map((r: unknown, i) => {
    if (!Array.isArray(r) || r.length !== 4) throw badReply(`Check results[${i}] is not (ssss)`);
    const [g, n, s, reason] = r.map((x: unknown, j) => str(x, `Check results[${i}][${j}]`));
    return [g ?? '', n ?? '', s ?? '', reason ?? ''];
  });
}

const rank: Record<string, number> = { ok: 0, warn: 1, failed: 2 };
const worst = (statuses: string[]): string => statuses.reduce((a, b) => ((rank[b] ?? 2) > (rank[a] ?? 2) ? b : a), 'ok');
const label = (s: string): string => (s === 'ok' ? 'OK' : s === 'warn' ? 'WARN' : 'FAILED');

export interface CheckData {
  status: string;
  groups: Record<string, { status: string; checks: Record<string, { status: string; reason: string }> }>;
}

export function checkData(status: string, rows: CheckRow[]): CheckData {
  const groups: CheckData['groups'] = {};
  for (const [group, name, st, reason] of rows) {
    const g = (groups[group] ??= { status: 'ok', checks: {} });
    g.checks[name] = { status: label(st), reason };
  }
  for (const [group, g] of Object.entries(groups)) {
    g.status = label(worst(rows.filter((r) => r[0] === group).map((r) => r[2])));
  }
  return { status: label(status), groups };
}

export function renderCheck(d: CheckData, oneline: boolean): string {
  if (oneline) return `Status: ${d.status}\n`;
  const lines = [`Status: ${d.status}`];
  for (const [group, g] of Object.entries(d.groups)) {
    lines.push(`${group} ... ${g.status}`);
    for (const [name, c] of Object.entries(g.checks)) {
      lines.push(`  ${name} ... ${c.status}${c.status === 'OK' ? '' : `: ${c.reason}`}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function renderLayers(layers: LayerRow[]): string {
  return layers.map((l) => `${l.name}${l.current ? ' [current]' : ''}${l.default ? ' [default]' : ''}${l.pinned ? ' [pinned]' : ''}`
    + `${bootMark(l['boot-state'], l['boot-state-reason'])}\n`).join('');
}

export function parseHistory(v: unknown): Array<Record<string, unknown>> {
  if (!Array.isArray(v)) throw badReply('GetHistory did not return an array');
  return v.map((r: unknown, i) => {
    if (!isRecord(r)) throw badReply(`GetHistory[${i}] is not a dict`);
    return r;
  });
}

export function renderHistory(rows: Array<Record<string, unknown>>): string {
  return rows.map((r) => {
    const when = new Date(Number(r['started-at']) / 1000).toISOString().replace('T', ' ').slice(0, 19);
    const err = r['error-message'] ? `: ${String(r['error-message'])}` : '';
    return `${when}  ${String(r['id'])}  ${String(r['kind']).padEnd(11)} ${String(r['state'])}${r['recovered'] ? ' (recovered)' : ''}${err}\n`;
  }).join('');
}

// ---- motd ------------------------------------------------------------------------------------------------------

export interface MotdData {
  /** "OK", "DEGRADED" (oVirt's words) or "UNKNOWN" (imgbased not reachable). */
  status: string;
  current_layer: string;
  default_layer: string;
  update_available: string;
  transaction: { id: string; kind: string; percent: number } | null;
  message: string;
}

export function motdData(props: Record<string, unknown>, tx: { id: string; kind: string; percent: number } | null): MotdData {
  const health = str(props['Health'], 'Health', 'ok');
  const available = bool(props['UpdateAvailable'], 'UpdateAvailable', false);
  return {
    status: health === 'ok' ? 'OK' : 'DEGRADED',
    current_layer: str(props['CurrentLayer'], 'CurrentLayer', ''),
    default_layer: str(props['DefaultLayer'], 'DefaultLayer', ''),
    update_available: available ? str(props['AvailableVersion'], 'AvailableVersion', '') || 'yes' : '',
    transaction: tx,
    message: '',
  };
}

export function motdUnreachable(why: string): MotdData {
  return { status: 'UNKNOWN', current_layer: '', default_layer: '', update_available: '', transaction: null, message: why };
}

/** A few indented lines for a login banner (oVirt's "  node status: OK" + the pointer to nodectl check). */
export function renderMotd(d: MotdData): string {
  if (d.status === 'UNKNOWN') return `  node status: unknown (${d.message}; see \`systemctl status imgbased\`)\n`;
  const lines = [`  node status: ${d.status}`, '  See `nodectl check` for more information'];
  if (d.current_layer) lines.push(`  current layer: ${d.current_layer}`);
  if (d.default_layer && d.default_layer !== d.current_layer) lines.push(`  next boot: ${d.default_layer}`);
  if (d.update_available) lines.push(`  update available: ${d.update_available} (\`nodectl upgrade\`)`);
  if (d.transaction) {
    lines.push(`  running: ${d.transaction.kind} ${d.transaction.id}, ${d.transaction.percent}% (\`nodectl watch\`)`);
  }
  return lines.join('\n') + '\n';
}

// ---- policy ----------------------------------------------------------------------------------------------------

export const POLICIES = ['none', 'check', 'stage', 'apply'] as const;
export type Policy = (typeof POLICIES)[number];
export const isPolicy = (s: string): s is Policy => (POLICIES as readonly string[]).includes(s);

export interface PolicyData {
  policy: string;
  maintenance_window: string;
}

export function policyData(props: Record<string, unknown>): PolicyData {
  return {
    policy: str(props['AutomaticUpdatePolicy'], 'AutomaticUpdatePolicy', ''),
    maintenance_window: str(props['MaintenanceWindow'], 'MaintenanceWindow', ''),
  };
}

const POLICY_WORDS: Record<string, string> = {
  none: 'automatic updates are off',
  check: 'look for newer images only',
  stage: 'install newer images; they boot next time',
  apply: 'install newer images and reboot into them when no VMs run',
};

export function renderPolicy(d: PolicyData): string {
  const words = POLICY_WORDS[d.policy];
  return `policy: ${d.policy}${words ? ` (${words})` : ''}\nmaintenance window: ${d.maintenance_window || 'any time'}\n`;
}

// ---- upgrade --automatic -----------------------------------------------------------------------------------------

/** What `upgrade --automatic` (or `upgrade` without IMAGE) did. */
export type AutomaticResult = 'nothing-to-do' | 'update-available' | 'staged' | 'applied';

export interface AutomaticData {
  result: AutomaticResult;
  nvr: string;
  policy: string;
  maintenance_window: string;
  transaction: string;
  warnings: string[];
}

export function renderAutomatic(d: AutomaticData): string {
  switch (d.result) {
    case 'nothing-to-do':
      return d.policy === 'none'
        ? 'Nothing to do: the automatic update policy is "none" (`nodectl policy` changes it).\n'
        : 'Nothing to do: no image newer than every base in the image directory or the update repository.\n';
    case 'update-available': {
      const why = d.policy === 'check' ? 'the policy is "check"'
        : d.maintenance_window ? `outside the maintenance window ${d.maintenance_window}` : 'nothing was started';
      return `Update available: ${d.nvr} (not installed: ${why}; \`nodectl upgrade\` installs it now).\n`;
    }
    case 'staged':
      return `Staged: ${d.nvr} boots next time.\n${d.warnings.map((w) => `warning: ${w}\n`).join('')}`;
    case 'applied':
      return `Applied: ${d.nvr} is installed; the host reboots into it.\n`;
  }
}

// ---- boot-complete -----------------------------------------------------------------------------------------------

export interface BootCompleteData {
  /** The judged layer ("" when nothing was on trial). */
  layer: string;
  verdict: 'good' | 'bad' | 'none';
  reason: string;
  /** The layer the next boot starts after the assessment. */
  default_layer: string;
  /** The running layer and its boot state after the assessment. */
  current_layer: string;
  current_state: string;
  transaction: string;
  warnings: string[];
}

export function renderBootComplete(d: BootCompleteData): string {
  const w = d.warnings.filter((x) => !x.includes('failed its boot assessment')).map((x) => `warning: ${x}\n`).join('');
  switch (d.verdict) {
    case 'good':
      return `Boot of ${d.layer} confirmed: ${d.reason}. It is the default layer now.\n${w}`;
    case 'bad':
      return `Boot of ${d.layer} FAILED: ${d.reason}.\nDefault layer (boots next time): ${d.default_layer || '(none)'}\n${w}`;
    case 'none':
      return `Nothing to confirm: ${d.reason}.\n${w}`;
  }
}
