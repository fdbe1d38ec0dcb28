/**
 * Node Layers — the Cockpit page of imgbased. Talks only D-Bus (org.ovirt.Node via cockpit.dbus); state is the
 * manager's properties, kept live by PropertiesChanged; transactions are followed through their Progress and
 * Finished signals. Every outcome shown is the daemon's own: success, or the D-Bus error name and message.
 */
import { byId, h, replaceChildren, text } from './dom.js';
import type { Finished, Layer, NodeState, Policy, Progress, TransactionRecord } from './model.js';
import {
  applyProperties, bootStateBadge, bootVerdict, clampPercent, describeError, FINISHED_STATES, formatTime, kindTitle, layerTree,
  POLICIES, POOL_THRESHOLD, previousLayer, trialBanner, trialBannerText,
} from './model.js';
import { NodeClient } from './node-client.js';

interface FollowedTransaction {
  path: string;
  title: string;
  /** The transaction's Kind ("" until known: attached, and its properties not read yet). */
  kind: string;
  /** Started from this page (else attached to one already running). */
  mine: boolean;
  percent: number;
  step: string;
  message: string;
  done: number;
  total: number;
  initiator: string;
}

const HISTORY_LIMIT = 20;
/** Signals of transactions not (yet) followed, kept briefly: a reply can arrive after the transaction's first signals. */
const SIGNAL_MEMORY = 16;

const el = {
  app: byId('app', HTMLElement),
  healthBadge: byId('health-badge', HTMLElement),
  version: byId('daemon-version', HTMLElement),
  connection: byId('connection', HTMLElement),
  problems: byId('problems', HTMLElement),
  trialBanner: byId('trial-banner', HTMLElement),
  trialText: byId('trial-banner-text', HTMLElement),
  confirmBootBox: byId('confirm-boot-box', HTMLElement),
  confirmBoot: byId('confirm-boot', HTMLButtonElement),
  confirmBootHelp: byId('confirm-boot-help', HTMLElement),
  current: byId('current-layer', HTMLElement),
  default: byId('default-layer', HTMLElement),
  health: byId('health', HTMLElement),
  vms: byId('vms', HTMLElement),
  update: byId('update', HTMLElement),
  txIdle: byId('tx-idle', HTMLElement),
  txRunning: byId('tx-running', HTMLElement),
  txHeading: byId('tx-heading', HTMLElement),
  txProgress: byId('tx-progress', HTMLProgressElement),
  txPercent: byId('tx-percent', HTMLElement),
  txStep: byId('tx-step', HTMLElement),
  txBytes: byId('tx-bytes', HTMLElement),
  txMessage: byId('tx-message', HTMLElement),
  txCancel: byId('tx-cancel', HTMLButtonElement),
  txResult: byId('tx-result', HTMLElement),
  upgradeNewest: byId('upgrade-newest', HTMLButtonElement),
  upgradeForm: byId('upgrade-path-form', HTMLFormElement),
  upgradePath: byId('upgrade-path', HTMLInputElement),
  upgradeSubmit: byId('upgrade-path-submit', HTMLButtonElement),
  rollbackPrevious: byId('rollback-previous', HTMLButtonElement),
  rollbackHelp: byId('rollback-help', HTMLElement),
  cleanupForm: byId('cleanup-form', HTMLFormElement),
  cleanupKeep: byId('cleanup-keep', HTMLInputElement),
  cleanupSubmit: byId('cleanup-submit', HTMLButtonElement),
  pool: byId('pool', HTMLElement),
  layers: byId('layers', HTMLElement),
  check: byId('check', HTMLElement),
  checkRun: byId('check-run', HTMLButtonElement),
  policyForm: byId('policy-form', HTMLFormElement),
  policySelect: byId('policy-select', HTMLSelectElement),
  policySave: byId('policy-save', HTMLButtonElement),
  policyHelp: byId('policy-help', HTMLElement),
  history: byId('history', HTMLElement),
  historyRefresh: byId('history-refresh', HTMLButtonElement),
  dialog: byId('confirm-dialog', HTMLDialogElement),
  dialogTitle: byId('confirm-title', HTMLElement),
  dialogBody: byId('confirm-body', HTMLElement),
  dialogOk: byId('confirm-ok', HTMLButtonElement),
};

const node = new NodeClient();
let state: NodeState = {};
let followed: FollowedTransaction | null = null;
/** A mutating call is on its way (its reply not yet in). */
let calling = false;
let connected = true;
let policyDirty = false;
/** Bumped whenever the outcome area is cleared: an outcome computed asynchronously is dropped if it went stale. */
let outcomeGeneration = 0;
const recentSignals = new Map<string, { progress?: Progress; finished?: Finished }>();
const problems = new Set<string>();

function bytes(n: number): string {
  return cockpit.format_bytes(n, 1024);
}

function reportProblem(what: string): void {
  problems.add(what);
  el.problems.hidden = false;
  replaceChildren(el.problems, h('strong', {}, 'The daemon sent values this page does not understand: '), [...problems].join('; '));
}

// ---------------------------------------------------------------------------------------------------------------
// Outcomes

function showOutcome(kind: 'success' | 'danger' | 'info', title: string, detail = ''): void {
  replaceChildren(el.txResult, h('div', { class: `alert alert-${kind}`, role: kind === 'danger' ? 'alert' : 'status', 'data-outcome': kind },
    h('strong', { class: 'outcome-title' }, title),
    detail ? h('span', { class: 'outcome-detail' }, ` ${detail}`) : null));
}

function showError(title: string, e: unknown): void {
  const { name, message } = describeError(e);
  showOutcome('danger', title, name ? `${name}: ${message}` : message);
  if (name.endsWith('.NotAuthorized')) {
    el.txResult.firstElementChild?.append(h('p', { class: 'help' },
      'polkit refused this session. Turn on administrative access, or log in as a user allowed to manage Node layers.'));
  }
}

function clearOutcome(): void {
  outcomeGeneration++;
  replaceChildren(el.txResult);
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

function layerName(name: string | undefined): string {
  return name === undefined ? '…' : name === '' ? '(none)' : name;
}

function renderStatus(): void {
  text(el.current, layerName(state.currentLayer));
  text(el.default, layerName(state.defaultLayer));
  if (state.defaultLayer !== undefined && state.currentLayer !== undefined && state.defaultLayer !== '' &&
      state.defaultLayer !== state.currentLayer) {
    el.default.append(' ', h('span', { class: 'badge badge-info' }, 'boots next'));
    if (state.trialLayer !== undefined && state.trialLayer === state.defaultLayer) {
      el.default.append(' ', h('span', { class: 'badge badge-warning' }, 'on trial'));
    }
  }
  const health = state.health ?? '';
  text(el.health, health || '…');
  el.healthBadge.hidden = health === '';
  text(el.healthBadge, health === 'ok' ? 'Healthy' : health === 'warn' ? 'Warnings' : health === 'failed' ? 'Failed checks' : health);
  el.healthBadge.className = `badge badge-${health === 'ok' ? 'success' : health === 'warn' ? 'warning' : 'danger'}`;
  text(el.version, state.version ? `imgbased ${state.version}` : '');

  const vms = state.virtualMachines;
  if (vms === undefined) text(el.vms, '…');
  else if (!vms.available) text(el.vms, `unknown — libvirt did not answer${vms.message ? ` (${vms.message})` : ''}`);
  else text(el.vms, vms.running.length === 0 ? '0' : `${vms.running.length}: ${vms.running.join(', ')}`);

  if (state.updateAvailable === undefined) text(el.update, '…');
  else text(el.update, state.updateAvailable ? `${state.availableVersion ?? ''} is available` : 'none found at the last check');
}

function usageBar(id: string, label: string, percent: number): HTMLElement {
  const p = clampPercent(percent);
  const over = p >= POOL_THRESHOLD;
  const fill = h('div', { class: `bar-fill${over ? ' over' : ''}` });
  fill.style.width = `${p}%`;
  const shown = `${p.toFixed(1)}%`;
  return h('div', { class: 'usage', id },
    h('div', { class: 'usage-label', id: `${id}-label` }, h('span', {}, label), h('span', { class: 'usage-value' }, shown)),
    h('div', {
      class: 'bar', role: 'meter', 'aria-labelledby': `${id}-label`, 'aria-valuemin': 0, 'aria-valuemax': 100,
      'aria-valuenow': Number(p.toFixed(1)), 'aria-valuetext': `${shown} used${over ? `, at or above the ${POOL_THRESHOLD}% threshold` : ''}`,
    }, fill, h('div', { class: 'bar-threshold', title: `${POOL_THRESHOLD}% threshold` })),
    over ? h('p', { class: 'help warning-text' }, `At or above ${POOL_THRESHOLD}%: extend the pool or clean up old bases.`) : null);
}

function renderPool(): void {
  const pool = state.pool;
  if (pool === undefined) return;
  replaceChildren(el.pool,
    usageBar('pool-data', 'Data', pool.dataPercent),
    usageBar('pool-metadata', 'Metadata', pool.metadataPercent),
    h('p', { class: 'muted' }, `Size ${bytes(pool.size)}, free ${bytes(pool.free)}. Threshold ${POOL_THRESHOLD}%` +
      (pool.autoextendThreshold >= 0 ? `; lvm autoextends at ${pool.autoextendThreshold}%.` : '; lvm autoextend threshold unknown.')));
}

/** The layer's boot-assessment badge ("on trial", "good", "failed boot"); none for a layer never assessed. */
function bootBadge(l: Layer): HTMLSpanElement | null {
  const b = bootStateBadge(l.bootState);
  if (b === null) return null;
  const since = formatTime(l.bootStateChanged);
  return h('span', {
    class: `badge badge-${b.tone} boot-state`, 'data-boot-state': l.bootState,
    title: `Boot assessment: ${b.text}${since ? ` since ${since}` : ''}${l.bootStateReason ? ` (${l.bootStateReason})` : ''}`,
  }, b.text);
}

/** A details line under a layer whose boot failed: the reason, as text (never only a tooltip). */
function bootDetails(l: Layer): HTMLElement | null {
  if (l.bootState !== 'bad') return null;
  const since = formatTime(l.bootStateChanged);
  return h('div', { class: 'boot-reason', 'data-boot-reason': l.name },
    h('span', { class: 'label' }, 'Failed boot: '), l.bootStateReason || 'no reason recorded', since ? h('span', { class: 'muted' }, ` (${since})`) : null);
}

function layerRow(l: Layer): HTMLTableRowElement {
  const badges = h('span', { class: 'badges' }, ...[
    l.current ? h('span', { class: 'badge badge-info' }, 'current') : null,
    l.isDefault ? h('span', { class: 'badge badge-success' }, 'boot default') : null,
    l.pinned ? h('span', { class: 'badge badge-pinned' }, 'pinned') : null,
    bootBadge(l),
  ].filter((b): b is HTMLSpanElement => b !== null).flatMap((b, i) => (i === 0 ? [b] : [' ', b])));
  const pinButton = h('button', {
    type: 'button', class: 'btn btn-secondary btn-small', 'data-action': 'pin', 'data-layer': l.name,
    'aria-pressed': l.pinned ? 'true' : 'false', 'aria-label': `${l.pinned ? 'Unpin' : 'Pin'} layer ${l.name}`,
  }, l.pinned ? 'Unpin' : 'Pin');
  const defaultButton = l.isDefault ? null : h('button', {
    type: 'button', class: 'btn btn-secondary btn-small', 'data-action': 'rollback', 'data-layer': l.name,
    'aria-label': `Roll back: boot layer ${l.name} by default`,
  }, 'Boot by default');
  return h('tr', { class: 'layer-row', 'data-layer': l.name },
    h('th', { scope: 'row', 'data-label': 'Layer' }, h('span', { class: 'tree-indent', 'aria-hidden': 'true' }, '└ '), h('span', { class: 'layer-name' }, l.name), ' ', badges,
      bootDetails(l)),
    h('td', { 'data-label': 'Version' }, `${l.version}-${l.release}`),
    h('td', { 'data-label': 'Size' }, bytes(l.size)),
    h('td', { 'data-label': 'Pinned', class: 'pinned-cell' }, l.pinned ? 'yes' : 'no'),
    h('td', { 'data-label': 'Boot entry' }, l.bootEntry || '(none)'),
    h('td', { 'data-label': 'Actions', class: 'row-actions' }, pinButton, defaultButton));
}

function renderLayers(): void {
  if (state.layers === undefined || state.bases === undefined) return;
  const tree = layerTree(state.bases, state.layers);
  const body: HTMLTableSectionElement[] = tree.map(({ base, layers }) => h('tbody', { class: 'base-group', 'data-base': base.name },
    h('tr', { class: 'base-row' },
      h('th', { scope: 'rowgroup', 'data-label': 'Base' }, h('span', { class: 'base-name' }, base.name), base.present ? null : h('span', { class: 'badge badge-warning' }, 'missing')),
      h('td', { 'data-label': 'Version' }, `${base.version}-${base.release}`),
      h('td', { 'data-label': 'Size' }, bytes(base.size)),
      h('td', { 'data-label': 'Pinned' }, ''),
      h('td', { 'data-label': 'Boot entry' }, ''),
      h('td', { 'data-label': 'Actions' }, '')),
    ...layers.map(layerRow)));
  replaceChildren(el.layers, tree.length === 0 ? h('p', {}, 'No bases.') : h('table', { class: 'table', id: 'layers-table', 'aria-labelledby': 'layers-title' },
    h('thead', {}, h('tr', {}, ...['Base / layer', 'Version', 'Size', 'Pinned', 'Boot entry', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
    ...body));
  updateControls();
}

/** The banner while a layer is on trial, with "Confirm boot" while the running boot is the trial. */
function renderTrial(): void {
  const b = trialBanner(state);
  el.trialBanner.hidden = b === null;
  el.trialBanner.dataset['phase'] = b?.phase ?? '';
  text(el.trialText, b === null ? '' : trialBannerText(b));
  el.confirmBootBox.hidden = b?.phase !== 'booted';
  text(el.confirmBootHelp, b?.phase === 'booted'
    ? `Runs the configured boot checks now. If they pass, ${b.layer} becomes the boot default; if not, its boot is marked failed and ${b.fallback || 'the last good layer'} stays the default.`
    : '');
}

function renderPolicy(): void {
  if (state.policy !== undefined && !policyDirty) el.policySelect.value = state.policy;
  const window = state.maintenanceWindow;
  text(el.policyHelp, window === undefined ? '' : window === ''
    ? 'Maintenance window: any time (stage and apply may run whenever the timer fires).'
    : `Maintenance window: ${window} (stage and apply only run inside it; outside it they only check).`);
}

/** A boot assessment's verdict in words, for the history ("" for other kinds). */
function verdictText(r: TransactionRecord): string {
  const v = bootVerdict(r);
  if (v === null || v.verdict === '') return '';
  const what = v.verdict === 'good' ? 'boot confirmed' : v.verdict === 'bad' ? 'boot failed' : v.verdict === 'none' ? 'nothing on trial' : v.verdict;
  return `${v.layer ? `${v.layer}: ` : ''}${what}${v.reason ? ` — ${v.reason}` : ''}${r.errorName || r.errorMessage ? '. ' : ''}`;
}

function renderHistory(records: TransactionRecord[]): void {
  if (records.length === 0) {
    replaceChildren(el.history, h('p', {}, 'No transactions yet.'));
    return;
  }
  replaceChildren(el.history, h('table', { class: 'table', id: 'history-table', 'aria-labelledby': 'history-title' },
    h('thead', {}, h('tr', {}, ...['Finished', 'Kind', 'State', 'Details', 'Initiator'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...records.map((r) => h('tr', { 'data-id': r.id, 'data-state': r.state },
      h('td', { 'data-label': 'Finished' }, formatTime(r.finishedAt) || formatTime(r.startedAt)),
      h('td', { 'data-label': 'Kind' }, kindTitle(r.kind)),
      h('td', { 'data-label': 'State' }, h('span', { class: `badge badge-${r.state === 'succeeded' ? 'success' : r.state === 'cancelled' ? 'warning' : 'danger'}` }, r.state)),
      h('td', { 'data-label': 'Details' }, verdictText(r), r.errorName ? `${r.errorName}: ${r.errorMessage}` : r.errorMessage,
        r.recovered ? ' (recovered at start-up)' : '', ...r.warnings.map((w) => h('div', { class: 'warning-text' }, w))),
      h('td', { 'data-label': 'Initiator' }, r.initiator))))));
}

function renderTransaction(): void {
  const tx = followed;
  el.txIdle.hidden = tx !== null;
  el.txRunning.hidden = tx === null;
  el.app.setAttribute('aria-busy', 'false');
  if (tx === null) return;
  text(el.txHeading, `${tx.title} — ${tx.path.split('/').pop() ?? tx.path}${tx.mine ? '' : tx.initiator ? ` (started by ${tx.initiator})` : ' (already running)'}`);
  const p = clampPercent(tx.percent);
  el.txProgress.value = p;
  el.txProgress.setAttribute('aria-valuetext', `${p}% — ${tx.step}`);
  text(el.txPercent, `${p}%`);
  text(el.txStep, tx.step || 'waiting');
  text(el.txBytes, tx.total > 0 ? ` (${bytes(tx.done)} of ${bytes(tx.total)})` : '');
  text(el.txMessage, tx.message);
}

/** Buttons that would start a transaction are off while one runs (the daemon would answer Busy) or a call is out. */
function updateControls(): void {
  const running = followed !== null || (state.activeTransaction !== undefined && state.activeTransaction !== '/');
  const off = running || calling || !connected;
  for (const b of [el.upgradeNewest, el.upgradeSubmit, el.rollbackPrevious, el.cleanupSubmit, el.confirmBoot]) b.disabled = off;
  for (const b of el.layers.querySelectorAll<HTMLButtonElement>('button[data-action="rollback"]')) b.disabled = off;
  for (const b of el.layers.querySelectorAll<HTMLButtonElement>('button[data-action="pin"]')) b.disabled = calling || !connected;
  el.policySave.disabled = calling || !connected;
  el.txCancel.disabled = !connected;
  const prev = state.layers ? previousLayer(state.layers) : null;
  text(el.rollbackHelp, prev ? `Makes ${prev.name} the boot default.` : 'The boot default is the oldest layer: there is nothing older to roll back to.');
}

function render(): void {
  renderStatus();
  renderTrial();
  renderPool();
  renderLayers();
  renderPolicy();
  updateControls();
}

// ---------------------------------------------------------------------------------------------------------------
// Transactions

function applyProgress(tx: FollowedTransaction, p: Progress): void {
  tx.percent = p.percent;
  tx.step = p.step;
  tx.message = p.message;
  tx.done = p.done;
  tx.total = p.total;
}

function finish(tx: FollowedTransaction, f: Finished): void {
  if (followed !== tx) return;
  followed = null;
  if (f.success && (tx.kind === 'boot-complete' || tx.kind === '')) {
    void showSuccess(tx);
  } else if (f.success) {
    // The status card shows the new boot default as soon as its PropertiesChanged arrives (maybe after Finished).
    showOutcome('success', `${tx.title} succeeded.`);
  } else if (f.errorName.endsWith('.Cancelled')) {
    showOutcome('info', `${tx.title} was cancelled.`, f.errorMessage);
  } else {
    showOutcome('danger', `${tx.title} failed:`, `${f.errorName || 'unknown error'}: ${f.errorMessage}`);
  }
  renderTransaction();
  updateControls();
  void refreshHistory();
  void refreshCheck();
}

/**
 * The success of a boot assessment, or of a transaction whose kind is not known yet (attached, Finished before its
 * properties came): read from its history record. A boot assessment succeeds whatever it decided: the record says
 * what (verdict good, bad or none, and why). Shown once read, unless another action cleared the outcome meanwhile.
 */
async function showSuccess(tx: FollowedTransaction): Promise<void> {
  const generation = outcomeGeneration;
  const id = tx.path.split('/').pop() ?? '';
  let record: TransactionRecord | undefined;
  try {
    record = (await node.history(HISTORY_LIMIT)).find((r) => r.id === id);
  } catch {
    record = undefined;
  }
  if (generation !== outcomeGeneration) return;
  const title = tx.kind === '' && record !== undefined ? kindTitle(record.kind) : tx.title;
  const v = record === undefined ? null : bootVerdict(record);
  if (v === null) showOutcome('success', `${title} succeeded.`);
  else if (v.verdict === 'good') showOutcome('success', `Boot of ${v.layer} confirmed:`, 'it is good and boots by default now.');
  else if (v.verdict === 'bad') showOutcome('danger', `Boot of ${v.layer} failed:`, `${v.reason || 'no reason recorded'}. The last good layer boots by default again.`);
  else if (v.verdict === 'none') showOutcome('info', 'Nothing to confirm:', 'no layer is on trial.');
  else showOutcome('info', `${title} finished:`, `verdict ${v.verdict}${v.reason ? ` (${v.reason})` : ''}.`);
}

/** Follow a transaction: signals already seen, then its properties (authoritative if it has ended meanwhile). */
function follow(path: string, title: string | null, mine: boolean, kind = ''): void {
  if (followed?.path === path) return;
  const tx: FollowedTransaction = { path, title: title ?? 'Transaction', kind, mine, percent: 0, step: 'queued', message: '', done: 0, total: 0, initiator: '' };
  followed = tx;
  if (mine) clearOutcome();
  const seen = recentSignals.get(path);
  if (seen?.progress) applyProgress(tx, seen.progress);
  renderTransaction();
  updateControls();
  if (seen?.finished) {
    finish(tx, seen.finished);
    return;
  }
  node.transaction(path).then((snap) => {
    if (followed !== tx) return;
    if (title === null) tx.title = kindTitle(snap.kind);
    if (snap.kind !== '') tx.kind = snap.kind;
    tx.initiator = snap.initiator;
    if (snap.percent > tx.percent || tx.step === 'queued') {
      applyProgress(tx, { percent: snap.percent, step: snap.step || snap.state, message: snap.message, done: snap.done, total: snap.total });
    }
    renderTransaction();
    if (FINISHED_STATES.includes(snap.state)) {
      finish(tx, { success: snap.state === 'succeeded', errorName: snap.errorName, errorMessage: snap.errorMessage });
    }
  }, (e: unknown) => {
    if (followed !== tx) return;
    // Gone before we could read it (ended and dropped): the history has its outcome.
    followed = null;
    renderTransaction();
    updateControls();
    showError(`Lost track of transaction ${path}:`, e);
    void refreshHistory();
  });
}

function onProgress(path: string, p: Progress): void {
  remember(path).progress = p;
  if (followed?.path === path) {
    applyProgress(followed, p);
    renderTransaction();
  } else if (followed === null && !calling && recentSignals.get(path)?.finished === undefined) {
    // A transaction someone else started, whose ActiveTransaction change has not arrived yet.
    follow(path, null, false);
  }
}

function onFinished(path: string, f: Finished): void {
  remember(path).finished = f;
  if (followed?.path === path) finish(followed, f);
  else void refreshHistory();
}

function remember(path: string): { progress?: Progress; finished?: Finished } {
  let r = recentSignals.get(path);
  if (r === undefined) {
    r = {};
    recentSignals.set(path, r);
    while (recentSignals.size > SIGNAL_MEMORY) {
      const oldest = recentSignals.keys().next().value;
      if (oldest === undefined) break;
      recentSignals.delete(oldest);
    }
  }
  return r;
}

/** Run a call that starts a transaction, then follow it; an error up front (NotAuthorized, Busy, …) is shown as is. */
async function startTransaction(title: string, start: () => Promise<string>, kind = ''): Promise<void> {
  clearOutcome();
  calling = true;
  updateControls();
  try {
    const path = await start();
    calling = false;
    follow(path, title, true, kind);
  } catch (e) {
    showError(`${title} failed:`, e);
  } finally {
    calling = false;
    updateControls();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reads

async function refreshHistory(): Promise<void> {
  try {
    renderHistory(await node.history(HISTORY_LIMIT));
  } catch (e) {
    const { name, message } = describeError(e);
    replaceChildren(el.history, h('p', { class: 'alert alert-danger', role: 'alert' }, `Could not read the history: ${name ? `${name}: ` : ''}${message}`));
  }
}

async function refreshCheck(): Promise<void> {
  el.checkRun.disabled = true;
  try {
    const { status, results } = await node.check();
    replaceChildren(el.check,
      h('p', {}, 'Overall: ', h('span', { class: `badge badge-${status === 'ok' ? 'success' : status === 'warn' ? 'warning' : 'danger'}`, id: 'check-status' }, status)),
      h('table', { class: 'table', id: 'check-table', 'aria-labelledby': 'check-title' },
        h('thead', {}, h('tr', {}, ...['Group', 'Check', 'Status', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...results.map((r) => h('tr', { 'data-status': r.status },
          h('td', { 'data-label': 'Group' }, r.group),
          h('th', { scope: 'row', 'data-label': 'Check' }, r.check),
          h('td', { 'data-label': 'Status' }, h('span', { class: `badge badge-${r.status === 'ok' ? 'success' : r.status === 'warn' ? 'warning' : 'danger'}` }, r.status)),
          h('td', { 'data-label': 'Reason' }, r.reason))))));
  } catch (e) {
    const { name, message } = describeError(e);
    replaceChildren(el.check, h('p', { class: 'alert alert-danger', role: 'alert' }, `Check failed: ${name ? `${name}: ` : ''}${message}`));
  } finally {
    el.checkRun.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Confirmation (a native modal dialog: focus trapped, Escape cancels)

function confirmAction(title: string, body: string, ok: string): Promise<boolean> {
  text(el.dialogTitle, title);
  text(el.dialogBody, body);
  text(el.dialogOk, ok);
  el.dialog.returnValue = '';
  return new Promise((resolve) => {
    el.dialog.addEventListener('close', () => resolve(el.dialog.returnValue === 'confirm'), { once: true });
    el.dialog.showModal();
    el.dialogOk.focus();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Actions

el.upgradeNewest.addEventListener('click', () => {
  void (async () => {
    clearOutcome();
    calling = true;
    updateControls();
    try {
      const r = await node.upgradeNewest();
      calling = false;
      if (r.transaction !== '/') follow(r.transaction, `Upgrade to ${r.nvr}`, true, 'upgrade');
      else if (!r.available) showOutcome('info', 'No newer image:', 'neither the image directory nor the update repository (UpdateRepo=) has one newer than every base.');
      else showOutcome('info', `${r.nvr} is available,`, 'but the daemon started no upgrade.');
    } catch (e) {
      showError('Upgrade failed:', e);
    } finally {
      calling = false;
      updateControls();
    }
  })();
});

el.upgradeForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const image = el.upgradePath.value.trim();
  if (image === '') return;
  void startTransaction(`Upgrade from ${image}`, () => node.upgrade(image), 'upgrade');
});

async function rollbackTo(layer: string): Promise<void> {
  const target = layer || (state.layers ? previousLayer(state.layers)?.name : undefined) || 'the previous layer';
  if (!(await confirmAction('Roll back?', `${target} becomes the boot default; the host boots it at the next reboot.`, 'Roll back'))) return;
  await startTransaction(`Rollback to ${target}`, () => node.rollback(layer), 'rollback');
}

el.rollbackPrevious.addEventListener('click', () => void rollbackTo(''));

el.confirmBoot.addEventListener('click', () => {
  const b = trialBanner(state);
  const layer = b?.layer ?? state.currentLayer ?? '';
  void startTransaction(`Confirm boot of ${layer}`, () => node.completeBoot(), 'boot-complete');
});

el.cleanupForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const raw = el.cleanupKeep.value.trim();
  const keep = raw === '' ? null : Number(raw);
  if (keep !== null && !(Number.isInteger(keep) && keep >= 1)) {
    showOutcome('danger', 'Clean up:', 'bases to keep must be a whole number of at least 1.');
    el.cleanupKeep.focus();
    return;
  }
  void (async () => {
    const what = keep === null ? 'the configured number of' : String(keep);
    if (!(await confirmAction('Clean up old bases?', `Removes old bases and their layers, keeping ${what} newest; never the running, default or pinned ones.`, 'Clean up'))) return;
    await startTransaction('Cleanup', () => node.cleanup(keep), 'cleanup');
  })();
});

el.layers.addEventListener('click', (ev) => {
  const button = ev.target instanceof Element ? ev.target.closest('button[data-action]') : null;
  if (!(button instanceof HTMLButtonElement)) return;
  const layer = button.dataset['layer'] ?? '';
  if (button.dataset['action'] === 'rollback') {
    void rollbackTo(layer);
    return;
  }
  const pin = button.getAttribute('aria-pressed') !== 'true';
  void (async () => {
    clearOutcome();
    calling = true;
    updateControls();
    try {
      await node.pin(layer, pin);
      showOutcome('success', `${pin ? 'Pinned' : 'Unpinned'} ${layer}.`);
    } catch (e) {
      showError(`${pin ? 'Pin' : 'Unpin'} ${layer} failed:`, e);
    } finally {
      calling = false;
      updateControls();
    }
  })();
});

el.txCancel.addEventListener('click', () => {
  const tx = followed;
  if (tx === null) return;
  el.txCancel.disabled = true;
  node.cancel(tx.path).then(() => {
    if (followed === tx) text(el.txMessage, 'Cancelling: what was done is being undone…');
  }, (e: unknown) => showError('Cancel failed:', e)).then(() => updateControls(), () => updateControls());
});

el.policySelect.addEventListener('change', () => {
  policyDirty = el.policySelect.value !== state.policy;
});

el.policyForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const value = el.policySelect.value;
  const policy = POLICIES.find((p) => p === value);
  if (policy === undefined) return;
  void (async () => {
    clearOutcome();
    calling = true;
    updateControls();
    try {
      await node.setPolicy(policy satisfies Policy);
      policyDirty = false;
      showOutcome('success', `Automatic update policy set to "${policy}".`);
    } catch (e) {
      showError('Setting the automatic update policy failed:', e);
      policyDirty = false;
      renderPolicy();
    } finally {
      calling = false;
      updateControls();
    }
  })();
});

el.checkRun.addEventListener('click', () => void refreshCheck());
el.historyRefresh.addEventListener('click', () => void refreshHistory());

// ---------------------------------------------------------------------------------------------------------------
// Live state

function onProperties(raw: Record<string, unknown>): void {
  const before = state;
  const r = applyProperties(state, raw);
  state = r.state;
  for (const p of r.problems) reportProblem(p);
  render();
  const active = state.activeTransaction;
  if (active !== undefined && active !== before.activeTransaction) {
    if (active !== '/' && followed?.path !== active && !calling && recentSignals.get(active)?.finished === undefined) {
      follow(active, null, false);
    }
    if (active === '/' && followed !== null) {
      // Ended: the Finished signal normally came first; if not, the transaction's properties tell.
      const tx = followed;
      node.transaction(tx.path).then((snap) => {
        if (followed === tx && FINISHED_STATES.includes(snap.state)) {
          finish(tx, { success: snap.state === 'succeeded', errorName: snap.errorName, errorMessage: snap.errorMessage });
        }
      }, () => undefined);
    }
  }
  if (raw['LastTransaction'] !== undefined && before.lastTransaction !== undefined) void refreshHistory();
}

node.subscribeTransactions({ progress: onProgress, finished: onFinished, problem: reportProblem });
node.manager.addEventListener('changed', (_ev, changed) => onProperties(changed));
node.onClose((problem) => {
  connected = false;
  el.connection.hidden = false;
  text(el.connection, `Lost the connection to imgbased (${problem}).`);
  updateControls();
});
node.onOwner((owner) => {
  if (owner === null) {
    el.connection.hidden = false;
    text(el.connection, 'The imgbased daemon (org.ovirt.Node) is not running.');
  } else {
    el.connection.hidden = true;
  }
});
node.manager.wait().then(() => {
  if (!node.manager.valid) {
    el.connection.hidden = false;
    text(el.connection, 'Cannot reach org.ovirt.Node on the system bus: is the imgbased daemon running?');
    el.app.setAttribute('aria-busy', 'false');
    return;
  }
  onProperties(node.manager.data);
  el.app.setAttribute('aria-busy', 'false');
  el.app.dataset['ready'] = 'true';
}, (e: unknown) => {
  const { name, message } = describeError(e);
  el.connection.hidden = false;
  text(el.connection, `Cannot reach org.ovirt.Node: ${name ? `${name}: ` : ''}${message}`);
  el.app.setAttribute('aria-busy', 'false');
});
void refreshHistory();
void refreshCheck();
