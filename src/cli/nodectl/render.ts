/** nodectl's renderers: data in, text out (pure). Shapes follow oVirt's nodectl so scripts keep working. */

export interface LayerRow {
  name: string;
  base: string;
  current: boolean;
  default: boolean;
  pinned: boolean;
  'boot-entry': string;
}

export interface InfoData {
  bootloader: { default: string; entries: string[] };
  layers: Record<string, string[]>;
  current_layer: string;
}

export function infoData(props: Record<string, unknown>): InfoData {
  const layers = (props['Layers'] as LayerRow[] | undefined) ?? [];
  const tree: Record<string, string[]> = {};
  for (const l of layers) (tree[l.base] ??= []).push(l.name);
  return {
    bootloader: {
      default: String(props['DefaultLayer'] ?? ''),
      entries: layers.filter((l) => l['boot-entry']).map((l) => l['boot-entry']),
    },
    layers: tree,
    current_layer: String(props['CurrentLayer'] ?? ''),
  };
}

export function renderInfo(d: InfoData): string {
  const lines = ['bootloader:', `  default: ${d.bootloader.default}`, '  entries:'];
  for (const e of d.bootloader.entries) lines.push(`    ${e}`);
  lines.push('layers:');
  for (const [base, layers] of Object.entries(d.layers)) {
    lines.push(`  ${base}:`);
    for (const l of layers) lines.push(`    ${l}`);
  }
  lines.push(`current_layer: ${d.current_layer}`);
  return lines.join('\n') + '\n';
}

export type CheckRow = [group: string, name: string, status: string, reason: string];

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
  return layers.map((l) => `${l.name}${l.current ? ' [current]' : ''}${l.default ? ' [default]' : ''}${l.pinned ? ' [pinned]' : ''}\n`).join('');
}

export function renderHistory(rows: Array<Record<string, unknown>>): string {
  return rows.map((r) => {
    const when = new Date(Number(r['started-at']) / 1000).toISOString().replace('T', ' ').slice(0, 19);
    const err = r['error-message'] ? `: ${String(r['error-message'])}` : '';
    return `${when}  ${String(r['id'])}  ${String(r['kind']).padEnd(11)} ${String(r['state'])}${r['recovered'] ? ' (recovered)' : ''}${err}\n`;
  }).join('');
}
