/**
 * The daemon's core: authorizes calls, schedules transactions on the engine, keeps the manager's properties
 * current, and exports one Transaction object per transaction. D-Bus specifics stay in src/dbus/.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { MessageBus } from 'dbus-next';
import { Variant } from 'dbus-next';
import { decideReboot, decideTrigger } from '../automatic/policy';
import { insideWindow } from '../automatic/window';
import { evaluateHealth } from '../check/health';
import { gatherFacts } from '../check/facts';
import type { Engine } from '../engine';
import { newTransactionId } from '../engine';
import { BusyError, InvalidArgumentError } from '../errors';
import type { BootState } from '../boot/boot-state';
import type { UnitStates } from '../boot/gates';
import { runGates } from '../boot/gates';
import type { BootVerdict } from '../plan/boot';
import { trialLayerOf } from '../plan/state';
import type { Rebooter } from '../system/reboot';
import type { Outcome } from '../transaction/runner';
import type { VmGuard, VmReport } from '../virt/guard';
import { assertRebootAllowed } from '../virt/guard';
import { openImage } from '../image/inspect';
import type { Logger } from '../log';
import { compareNvr, parseNvr } from '../model/names';
import { writeFileDurable } from '../system/durable';
import type { JournalRecord } from '../transaction/types';
import type { AutomaticUpdatePolicy } from '../dbus/api';
import { AUTOMATIC_UPDATE_POLICIES, INTERFACES, POLKIT_ACTIONS } from '../dbus/api';
import type { CallContext } from '../dbus/call';
import { callContext, installMessageHook, installPeerGuard } from '../dbus/call';
import type { Authorizer } from '../dbus/polkit';
import type { Dict, ManagerBackend, ManagerView } from '../dbus/manager';
import { LayersObject, MANAGER_PATH } from '../dbus/manager';
import { parseOptions, quoted } from '../dbus/options';
import { SANDBOX_IFACE, SandboxObject } from '../dbus/sandbox-object';
import { bootSandbox } from '../sandbox/sysroot';
import { TransactionObject, transactionPath } from '../dbus/transaction-object';
import { nothingToDoIfInstalled } from '../update/installed';
import type { RepoUpdate } from '../update/repo';
import { newerThanBases } from '../update/repo';
import { repoUpdate, upgradeFromRepo } from '../update/repo-upgrade';
import type { Job, JobWork } from './scheduler';
import { Scheduler } from './scheduler';
import type { TransactionKind } from '../transaction/types';

const POLICIES = AUTOMATIC_UPDATE_POLICIES;
type UpdatePolicy = AutomaticUpdatePolicy;

/** An update found by a check: an image of ImageDir, or an image-update package of UpdateRepo. */
export type FoundUpdate =
  | { readonly source: 'dir'; readonly nvr: string; readonly path: string; readonly version: string; readonly release: string }
  | { readonly source: 'repo'; readonly nvr: string; readonly update: RepoUpdate; readonly version: string; readonly release: string };

/** Finished transactions stay on the bus for late joiners; the oldest beyond this are unexported (history keeps them). */
const KEEP_EXPORTED = 50;

/** In-signatures per interface and method (from api.ts), to answer a wrong argument type with a named error. */
const SIGNATURES = new Map<string, ReadonlyMap<string, string>>([
  ...Object.entries(INTERFACES).map(([iface, spec]): [string, ReadonlyMap<string, string>] =>
    [iface, new Map(Object.entries(spec.methods).map(([name, m]) => [name, m.inSignature]))]),
  [SANDBOX_IFACE, new Map([['Reboot', '']])],
]);

/** Longest image path accepted (PATH_MAX) and longest layer/base name (an LV name has at most 127 characters). */
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

/** Refuse over-long string arguments before anything else looks at them (they would end up in history and logs). */
function bounded(method: string, what: string, value: string, max: number): string {
  if (Buffer.byteLength(value) > max) {
    throw new InvalidArgumentError(`${method}: ${what} is too long (${Buffer.byteLength(value)} bytes; at most ${max})`);
  }
  return value;
}

const usec = (iso: string | undefined): bigint => (iso ? BigInt(Date.parse(iso)) * 1000n : 0n);

function variantOf(v: unknown): Variant {
  if (typeof v === 'boolean') return new Variant('b', v);
  if (typeof v === 'number' && Number.isInteger(v)) return new Variant('x', BigInt(v));
  if (typeof v === 'number') return new Variant('d', v);
  return new Variant('s', String(v));
}

/** How an upgrade wrote its base and how many bytes that wrote (from the write step's journaled result), or null. */
export function writeSummary(r: JournalRecord): { method: string; bytes: number } | null {
  const step = r.steps.find((s) => (s.action === 'write-base' || s.action === 'sync-base') && s.status === 'done');
  if (!step) return null;
  const res = step.result;
  const num = (k: string): number => {
    const v = typeof res === 'object' && res !== null ? (res as Record<string, unknown>)[k] : undefined;
    return typeof v === 'number' && Number.isFinite(v) ? v : 0;
  };
  if (step.action === 'sync-base') return { method: 'delta', bytes: num('bytesWritten') };
  const args = step.args as Record<string, unknown>;
  return args['method'] === 'blocks' ? { method: 'blocks', bytes: num('bytesWritten') } : { method: 'tree', bytes: num('bytesTotal') };
}

export function historyDict(r: JournalRecord, detailed: boolean): Dict {
  const d: Dict = {
    id: new Variant('s', r.id),
    kind: new Variant('s', r.kind),
    state: new Variant('s', r.state),
    'started-at': new Variant('t', usec(r.createdAt)),
    'finished-at': new Variant('t', usec(r.finishedAt)),
    'error-name': new Variant('s', r.error?.name ?? ''),
    'error-message': new Variant('s', r.error?.message ?? ''),
    recovered: new Variant('b', r.recovered === true),
  };
  const written = writeSummary(r);
  if (written) {
    d['write-method'] = new Variant('s', written.method);
    d['bytes-written'] = new Variant('t', BigInt(written.bytes));
  }
  if (!detailed) return d;
  return {
    ...d,
    initiator: new Variant('s', r.initiator),
    request: new Variant('a{sv}', Object.fromEntries(Object.entries(r.request).map(([k, v]) => [k, variantOf(v)]))),
    steps: new Variant('aa{sv}', r.steps.map((s) => ({
      id: new Variant('s', s.id), title: new Variant('s', s.title), status: new Variant('s', s.status),
    }))),
    warnings: new Variant('as', r.warnings),
  };
}

/** A layer's recorded boot-state reason; a trial that is running says what it waits for instead. */
function bootReason(b: BootState | undefined, running: boolean): string {
  if (b?.state === 'trial' && running) return 'booted on trial: waiting for CompleteBoot (imgbased-boot-complete.service)';
  return b?.reason ?? '';
}

export interface DaemonOptions {
  engine: Engine;
  bus: MessageBus;
  authorizer: Authorizer;
  log: Logger;
  version: string;
  /** Export org.ovirt.Node.Sandbox (Reboot) — sandbox mode only. */
  sandbox?: boolean;
  /** The running-VMs guard (libvirt). */
  vmGuard: VmGuard;
  /** How the host is rebooted (logind; in sandbox mode the sandbox's simulated reboot). */
  rebooter: Rebooter;
  /** Unit states for the boot health gates (systemd; in sandbox mode the sandbox's files). */
  unitStates: UnitStates;
  /** How often VirtualMachines is refreshed (ms; default 30 s). */
  vmPollMs?: number;
  /** The clock the maintenance window is judged by (tests). */
  now?: () => Date;
}

/** Poll libvirt this often for the VirtualMachines property. */
const VM_POLL_MS = 30_000;

function vmDict(r: VmReport): Dict {
  return {
    available: new Variant('b', r.available),
    running: new Variant('as', [...r.running]),
    message: new Variant('s', r.available ? '' : r.message),
  };
}

export class Daemon implements ManagerBackend {
  readonly scheduler: Scheduler;
  private readonly engine: Engine;
  private readonly bus: MessageBus;
  private readonly authorizer: Authorizer;
  private readonly log: Logger;
  private readonly version: string;
  private readonly sandbox: boolean;
  private manager: LayersObject | null = null;
  private readonly exported: TransactionObject[] = [];
  private refreshing: Promise<void> = Promise.resolve();
  private stoppingSince = 0;
  private readonly vmGuard: VmGuard;
  private readonly rebooter: Rebooter;
  private readonly unitStates: UnitStates;
  private readonly now: () => Date;
  private vms: VmReport = { available: false, running: [], message: 'not checked yet', checkedAt: 0 };
  private vmTimer: NodeJS.Timeout | null = null;
  private readonly vmPollMs: number;
  /** The last update check's finding (UpdateAvailable / AvailableVersion). */
  private available: string | null = null;

  constructor(opts: DaemonOptions) {
    this.engine = opts.engine;
    this.bus = opts.bus;
    this.authorizer = opts.authorizer;
    this.log = opts.log;
    this.version = opts.version;
    this.sandbox = opts.sandbox ?? false;
    this.vmGuard = opts.vmGuard;
    this.rebooter = opts.rebooter;
    this.unitStates = opts.unitStates;
    this.now = opts.now ?? (() => new Date());
    this.vmPollMs = opts.vmPollMs ?? VM_POLL_MS;
    // Properties are refreshed before a job's Finished is sent, so a client reacting to it reads the new state.
    this.scheduler = new Scheduler(() => newTransactionId(), this.log, { settle: () => this.refreshSoon() });
    this.scheduler.on('changed', () => this.refreshSoon());
  }

  /** Export the manager (before the name is requested, so the first caller finds it). */
  async export(): Promise<void> {
    installPeerGuard(this.bus);
    installMessageHook(this.bus, MANAGER_PATH, SIGNATURES);
    // No libvirt probe here: it would delay READY by a process start; startVmPolling() asks right after READY.
    this.manager = new LayersObject(await this.buildView(), this, this.log);
    this.bus.export(MANAGER_PATH, this.manager);
    if (this.sandbox) this.bus.export(MANAGER_PATH, new SandboxObject((call) => this.reboot(call), this.log));
  }

  /** Sandbox "reboot": refuses while a transaction runs (a real reboot would interrupt it). */
  async reboot(call: CallContext): Promise<string> {
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.rollback);
    const active = this.scheduler.active;
    if (active) throw new BusyError(`transaction ${active.snapshot.id} is running; reboot after it ends`);
    const layer = await bootSandbox(this.engine);
    this.log.info(`sandbox rebooted into ${layer} (by ${call.sender})`, { layer });
    await this.refreshSoon();
    return layer;
  }

  // ---- virtual machines -------------------------------------------------------------------------------------

  /**
   * Ask libvirt; refresh the properties when the answer changed. `fresh`: with a probe that starts now (decisions
   * and Check()); otherwise a probe already running is shared (the poller).
   */
  async pollVms(refresh = true, fresh = false): Promise<VmReport> {
    const before = JSON.stringify([this.vms.available, this.vms.running, this.vms.message]);
    this.vms = await this.vmGuard.report({ fresh });
    if (refresh && JSON.stringify([this.vms.available, this.vms.running, this.vms.message]) !== before) await this.refreshSoon();
    return this.vms;
  }

  /** Keep VirtualMachines current (libvirt has no events in our binding: poll). */
  startVmPolling(): void {
    if (this.vmTimer) return;
    const poll = (): void => {
      void this.pollVms().catch((e: unknown) => this.log.warn(`polling libvirt failed: ${String(e)}`));
    };
    poll();
    this.vmTimer = setInterval(poll, this.vmPollMs);
    this.vmTimer.unref();
  }

  /**
   * After a successful transaction that asked for a reboot: reboot if allowed now (fresh VM report, inhibitors),
   * else leave a warning on the transaction saying why. Runs inside the job, before Finished is sent.
   */
  private async rebootAfter(outcome: Outcome, what: string): Promise<Outcome> {
    if (outcome.record.state !== 'succeeded') return outcome;
    const id = outcome.record.id;
    let warning: string | null = null;
    try {
      const inhibitors = await this.rebooter.blockingInhibitors();
      const d = decideReboot(await this.pollVms(true, true), inhibitors);
      if (d.reboot) {
        this.log.warn(`rebooting to ${what} (transaction ${id})`, { transaction: id });
        await this.rebooter.reboot();
      } else {
        warning = `${what}: ${d.why}`;
      }
    } catch (e) {
      warning = `${what}: the reboot failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (warning === null) return outcome;
    this.log.warn(warning, { transaction: id });
    await this.engine.addWarning(id, warning);
    return { ...outcome, record: { ...outcome.record, warnings: [...outcome.record.warnings, warning] } };
  }

  // ---- properties -------------------------------------------------------------------------------------------

  private get policyFile(): string {
    return path.join(this.engine.paths.stateDir, 'automatic-update-policy');
  }

  /** SetAutomaticUpdatePolicy's choice (state dir) if one was made, else AutomaticUpdatePolicy= from the config. */
  async policy(): Promise<UpdatePolicy> {
    try {
      const text = (await fs.readFile(this.policyFile, 'utf8')).trim();
      const set = POLICIES.find((p) => p === text);
      if (set) return set;
      this.log.warn(`ignoring ${this.policyFile}: "${text}" is not a policy`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return this.engine.config.automaticUpdatePolicy;
  }

  async buildView(): Promise<ManagerView> {
    const state = await this.engine.state();
    const pool = await this.engine.backend.poolUsage();
    const health = evaluateHealth(await gatherFacts(this.engine, { running: this.scheduler.active?.snapshot.id ?? null }));
    const [last] = await this.engine.history(1);
    const active = this.scheduler.active;
    return {
      Version: this.version,
      Layers: state.layout.layers.map((l) => ({
        name: new Variant('s', l.name),
        kind: new Variant('s', 'layer'),
        base: new Variant('s', `${l.parsed.base.name}-${l.parsed.base.version}-${l.parsed.base.release}`),
        version: new Variant('s', l.parsed.base.version),
        release: new Variant('s', l.parsed.base.release),
        size: new Variant('t', BigInt(Math.floor(l.volume.sizeBytes))),
        current: new Variant('b', l.name === state.current),
        default: new Variant('b', l.name === state.defaultLayer),
        pinned: new Variant('b', state.pinned.has(l.name)),
        'boot-entry': new Variant('s', l.name),
        'read-only': new Variant('b', l.volume.readOnly),
        'boot-state': new Variant('s', state.bootStates?.get(l.name)?.state ?? ''),
        'boot-state-reason': new Variant('s', bootReason(state.bootStates?.get(l.name), l.name === state.current)),
        'boot-state-changed': new Variant('t', usec(state.bootStates?.get(l.name)?.changedAt)),
      })),
      Bases: state.layout.bases.map((b) => ({
        name: new Variant('s', b.name),
        version: new Variant('s', b.nvr.version),
        release: new Variant('s', b.nvr.release),
        size: new Variant('t', BigInt(Math.floor(b.volume?.sizeBytes ?? 0))),
        layers: new Variant('as', b.layers.map((l) => l.name)),
        present: new Variant('b', b.volume !== null),
      })),
      CurrentLayer: state.current ?? '',
      DefaultLayer: state.defaultLayer ?? '',
      TrialLayer: trialLayerOf(state) ?? '',
      Pool: {
        size: new Variant('t', BigInt(Math.floor(pool.sizeBytes))),
        free: new Variant('t', BigInt(Math.floor(pool.freeBytes))),
        'data-percent': new Variant('d', pool.dataPercent),
        'metadata-percent': new Variant('d', pool.metadataPercent),
        'autoextend-threshold': new Variant('i', pool.autoextendThreshold ?? -1),
      },
      Health: health.status,
      ActiveTransaction: active ? transactionPath(active.snapshot.id) : '/',
      AutomaticUpdatePolicy: await this.policy(),
      MaintenanceWindow: this.engine.config.maintenanceWindow.text,
      UpdateAvailable: this.available !== null,
      AvailableVersion: this.available ?? '',
      VirtualMachines: vmDict(this.vms),
      LastTransaction: last ? historyDict(last, false) : {},
    };
  }

  /** Rebuild the view and emit PropertiesChanged; serialized so views never go backwards. */
  refreshSoon(): Promise<void> {
    this.refreshing = this.refreshing.then(async () => {
      try {
        this.manager?.setView(await this.buildView());
      } catch (e) {
        this.log.error(`refreshing properties failed: ${e instanceof Error ? e.stack : String(e)}`);
      }
    });
    return this.refreshing;
  }

  // ---- calls ------------------------------------------------------------------------------------------------

  private async callerUid(sender: string): Promise<number | null> {
    try {
      const obj = await this.bus.getProxyObject('org.freedesktop.DBus', '/org/freedesktop/DBus');
      const iface: unknown = obj.getInterface('org.freedesktop.DBus');
      const fn = (iface as Record<string, unknown>)['GetConnectionUnixUser'];
      if (typeof fn !== 'function') return null;
      const uid: unknown = await (fn as (s: string) => Promise<unknown>).call(iface, sender);
      return typeof uid === 'number' ? uid : null;
    } catch (e) {
      this.log.debug(`GetConnectionUnixUser(${sender}) failed: ${String(e)}`);
      return null;
    }
  }

  private async initiator(call: CallContext): Promise<string> {
    const uid = await this.callerUid(call.sender);
    return `uid ${uid ?? '?'} (${call.sender})`;
  }

  /** Refuse new transactions from now on (SIGTERM: the daemon winds down). */
  shutdown(): void {
    this.stoppingSince = Date.now();
  }

  get stopping(): boolean {
    return this.stoppingSince !== 0;
  }

  private refuseWhenStopping(): void {
    if (this.stopping) throw new BusyError('imgbased is stopping; try again once it is back', { hint: 'the service restarts it' });
  }

  private async start(kind: TransactionKind, call: CallContext, wait: boolean, work: JobWork, initiatorPrefix = ''): Promise<string> {
    const initiator = initiatorPrefix + (await this.initiator(call));
    this.refuseWhenStopping();
    const job = this.scheduler.submit(kind, initiator, wait, work);
    this.exportJob(job);
    this.log.info(`transaction ${job.snapshot.id} (${kind}) accepted from ${job.snapshot.initiator}`, { transaction: job.snapshot.id });
    // Reply only once ActiveTransaction shows it: a client reading the properties after the reply sees it running.
    await this.refreshSoon();
    return transactionPath(job.snapshot.id);
  }

  private exportJob(job: Job): void {
    const obj = new TransactionObject(job, {
      context: callContext,
      log: this.log,
      cancel: async (j, call) => {
        await this.authorizer.check(call.sender, POLKIT_ACTIONS.cancel);
        this.log.info(`cancel of ${j.snapshot.id} requested by ${call.sender}`, { transaction: j.snapshot.id });
        this.scheduler.cancel(j);
      },
    });
    this.bus.export(transactionPath(job.snapshot.id), obj);
    this.exported.push(obj);
    job.once('finished', () => {
      while (this.exported.length > KEEP_EXPORTED) {
        const old = this.exported.shift();
        if (old) {
          this.bus.unexport(transactionPath(old.job.snapshot.id), old);
          this.scheduler.forget(old.job);
        }
      }
    });
  }

  async upgrade(call: CallContext, image: string, options: unknown): Promise<string> {
    const o = parseOptions(options, { wait: 'b', 'allow-downgrade': 'b', method: 's', keep: 'u', 'skip-installed': 'b' }, 'Upgrade');
    bounded('Upgrade', 'image', image, MAX_PATH_BYTES);
    if (!path.isAbsolute(image)) throw new InvalidArgumentError(`Upgrade: image must be an absolute path, got ${quoted(image)}`);
    if (o.method !== undefined && o.method !== 'tree' && o.method !== 'blocks' && o.method !== 'delta') {
      throw new InvalidArgumentError(`Upgrade: option "method" must be "tree", "blocks" or "delta", got ${quoted(o.method)}`);
    }
    if (o.keep !== undefined && o.keep < 1) throw new InvalidArgumentError('Upgrade: option "keep" must be at least 1');
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.upgrade);
    const method = o.method as 'tree' | 'blocks' | 'delta' | undefined;
    return this.start('upgrade', call, o.wait ?? false, async ({ id, initiator, signal, onProgress }) => {
      if (o['skip-installed'] === true) {
        const nothing = await nothingToDoIfInstalled(this.engine, this.log, image, { id, initiator, signal, onProgress });
        if (nothing !== null) return nothing;
      }
      return this.engine.upgrade(image, {
        id, signal, onProgress, initiator, allowDowngrade: o['allow-downgrade'] ?? false,
        ...(method ? { method } : {}), ...(o.keep !== undefined ? { keepBases: o.keep } : {}),
      });
    });
  }

  async rollback(call: CallContext, layer: string, options: unknown): Promise<string> {
    const o = parseOptions(options, { wait: 'b', reboot: 'b' }, 'Rollback');
    bounded('Rollback', 'layer', layer, MAX_NAME_BYTES);
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.rollback);
    const reboot = o.reboot ?? false;
    // Refused up front, before anything changes; asked again right before the reboot itself.
    if (reboot) assertRebootAllowed(await this.pollVms(true, true), 'the rollback');
    return this.start('rollback', call, o.wait ?? false, async ({ id, initiator, signal, onProgress }) => {
      const outcome = await this.engine.rollback(layer === '' ? null : layer, { id, signal, onProgress, initiator });
      return reboot ? this.rebootAfter(outcome, 'reboot into the rolled-back layer') : outcome;
    });
  }

  async cleanup(call: CallContext, options: unknown): Promise<string> {
    const o = parseOptions(options, { wait: 'b', keep: 'u' }, 'Cleanup');
    if (o.keep !== undefined && o.keep < 1) throw new InvalidArgumentError('Cleanup: option "keep" must be at least 1');
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.cleanup);
    return this.start('cleanup', call, o.wait ?? false, ({ id, initiator, signal, onProgress }) =>
      this.engine.cleanup(o.keep ?? null, { id, signal, onProgress, initiator }));
  }

  async removeBase(call: CallContext, nvr: string, options: unknown): Promise<string> {
    const o = parseOptions(options, { wait: 'b' }, 'RemoveBase');
    bounded('RemoveBase', 'nvr', nvr, MAX_NAME_BYTES);
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.cleanup);
    return this.start('remove-base', call, o.wait ?? false, ({ id, initiator, signal, onProgress }) =>
      this.engine.removeBase(nvr, { id, signal, onProgress, initiator }));
  }

  async pin(call: CallContext, layer: string, pinned: boolean): Promise<void> {
    bounded('Pin', 'layer', layer, MAX_NAME_BYTES);
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.pin);
    await this.engine.setPinned(layer, pinned);
    this.log.info(`${pinned ? 'pinned' : 'unpinned'} ${layer} for ${call.sender}`, { layer });
    await this.refreshSoon();
  }

  async check(): Promise<[string, Array<[string, string, string, string]>]> {
    const r = evaluateHealth(await gatherFacts(this.engine, { running: this.scheduler.active?.snapshot.id ?? null }));
    const rows: Array<[string, string, string, string]> = r.results.map((x) => [x.group, x.name, x.status, x.reason]);
    // Running VMs are information for whoever plans a reboot, not a health problem: always "ok". Always asked
    // afresh: a fleet tool runs check right before it decides to reboot (a cached or shared answer could predate a VM
    // that was just started).
    const vms = await this.pollVms(true, true);
    rows.push(['Virtualization', 'running-vms', 'ok', !vms.available
      ? `unknown: ${vms.message}`
      : vms.running.length ? `${vms.running.length} running: ${vms.running.join(', ')}` : 'none running']);
    return [r.status, rows];
  }

  async checkDeep(call: CallContext, options: unknown): Promise<[string, Array<[string, string, string, string]>]> {
    parseOptions(options, {}, 'CheckDeep');
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.verify);
    const active = this.scheduler.active;
    if (active) throw new BusyError(`transaction ${active.snapshot.id} is running; verify the bases after it ends`);
    // No transaction may change the bases while they are read (a cleanup removing the one being mounted).
    const release = this.scheduler.hold('a deep check of the bases (CheckDeep)');
    try {
      const [status, rows] = await this.check();
      const bases = await this.engine.verifyBases();
      for (const b of bases) rows.push(['Bases', b.base, b.status, b.reason]);
      const failed = status === 'failed' || bases.some((b) => b.status === 'failed');
      return [failed ? 'failed' : status, rows];
    } finally {
      release();
    }
  }

  async history(_call: CallContext, limit: number): Promise<Dict[]> {
    return (await this.engine.history(limit)).map((r) => historyDict(r, true));
  }

  async setPolicy(call: CallContext, policy: string): Promise<void> {
    if (!(POLICIES as readonly string[]).includes(policy)) {
      throw new InvalidArgumentError(`SetAutomaticUpdatePolicy: policy must be one of ${POLICIES.join(', ')}, got ${quoted(policy)}`);
    }
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.configure);
    await fs.mkdir(this.engine.paths.stateDir, { recursive: true, mode: 0o700 });
    await writeFileDurable(this.policyFile, `${policy}\n`, 0o600);
    this.log.info(`automatic update policy set to ${policy} by ${call.sender}`);
    await this.refreshSoon();
  }

  /** The newest image in ImageDir that is newer than every base, or null. */
  async newestImage(): Promise<{ path: string; nvr: string } | null> {
    const dir = path.join(this.engine.paths.sysroot, path.relative('/', this.engine.config.imageDir));
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const state = await this.engine.state();
    const newestBase = state.layout.bases[state.layout.bases.length - 1];
    let best: { path: string; nvr: string } | null = null;
    for (const n of names.filter((x) => !x.endsWith('.sha256') && !x.endsWith('.sig') && !x.startsWith('.'))) {
      const p = path.join(dir, n);
      if (!(await fs.stat(p)).isFile()) continue;
      let nvr: string;
      try {
        const img = await openImage({ imagePath: p, workDir: this.engine.paths.runDir });
        nvr = img.nvr;
        await img.close();
      } catch (e) {
        this.log.warn(`ignoring ${p}: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      if (newestBase && compareNvr(parseNvr(nvr), newestBase.nvr) <= 0) continue;
      if (!best || compareNvr(parseNvr(nvr), parseNvr(best.nvr)) > 0) best = { path: p, nvr };
    }
    return best;
  }

  /** The newest update of either source (ImageDir, UpdateRepo), by version and release; null when neither has one. */
  async findUpdate(): Promise<FoundUpdate | null> {
    const dirImage = await this.newestImage();
    let repo: RepoUpdate | null = null;
    try {
      repo = await repoUpdate(this.engine);
    } catch (e) {
      // An unreachable repository must not hide an image of ImageDir; it is logged and the check goes on.
      this.log.warn(`update check: ${e instanceof Error ? e.message : String(e)}`);
    }
    const dir: FoundUpdate | null = dirImage === null ? null : (() => {
      const n = parseNvr(dirImage.nvr);
      return { source: 'dir', nvr: dirImage.nvr, path: dirImage.path, version: n.version, release: n.release };
    })();
    const fromRepo: FoundUpdate | null = repo === null ? null
      : { source: 'repo', nvr: repo.nvr, update: repo, version: repo.version, release: repo.release };
    if (dir === null || fromRepo === null) return dir ?? fromRepo;
    return newerThanBases(fromRepo, [parseNvr(dir.nvr)]) ? fromRepo : dir;
  }

  async trigger(call: CallContext, options: unknown): Promise<[boolean, string, string]> {
    const o = parseOptions(options, { mode: 's', wait: 'b', 'respect-window': 'b' }, 'AutomaticUpdateTrigger');
    const mode = o.mode === undefined ? await this.policy() : POLICIES.find((p) => p === o.mode);
    if (mode === undefined) {
      throw new InvalidArgumentError(`AutomaticUpdateTrigger: mode must be one of ${POLICIES.join(', ')}, got ${quoted(o.mode ?? '')}`);
    }
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.automaticUpdate);
    let found: FoundUpdate | null = null;
    if (mode !== 'none') {
      await fs.mkdir(this.engine.paths.runDir, { recursive: true });
      found = await this.findUpdate();
      if ((found?.nvr ?? null) !== this.available) {
        this.available = found?.nvr ?? null;
        await this.refreshSoon();
      }
    }
    const window = this.engine.config.maintenanceWindow;
    const d = decideTrigger({
      mode, update: found?.nvr ?? null, insideWindow: insideWindow(window, this.now()),
      respectWindow: o['respect-window'] ?? true, window: window.text,
    });
    if (d.action !== 'upgrade') {
      this.log.info(`automatic update (${mode}): ${d.reason}`);
      return [found !== null, found?.nvr ?? '', '/'];
    }
    if (!found) throw new Error('decideTrigger chose to upgrade without an update');
    const update = found;
    this.log.info(`automatic update (${mode}): ${d.reboot ? 'applying' : 'staging'} ${found.nvr}${found.source === 'repo' ? ' from the update repository' : ''}`);
    const tx = await this.start('upgrade', call, o.wait ?? false, async (ctx) => {
      const { id, initiator, signal, onProgress } = ctx;
      const outcome = update.source === 'repo' ? await upgradeFromRepo(this.engine, this.log, update.update, ctx)
        : await this.engine.upgrade(update.path, { id, signal, onProgress, initiator });
      if (outcome.record.state === 'succeeded' && this.available === found.nvr) {
        this.available = null;
      }
      return d.reboot ? this.rebootAfter(outcome, `reboot into ${found.nvr} (automatic update policy "apply")`) : outcome;
    }, `automatic update (${mode}): `);
    return [true, found.nvr, tx];
  }

  async completeBoot(call: CallContext, options: unknown): Promise<string> {
    const o = parseOptions(options, { wait: 'b', verdict: 's', reason: 's' }, 'CompleteBoot');
    if (o.verdict !== undefined && o.verdict !== 'good' && o.verdict !== 'bad') {
      throw new InvalidArgumentError(`CompleteBoot: option "verdict" must be "good" or "bad", got ${quoted(o.verdict)}`);
    }
    if (o.reason !== undefined && o.verdict === undefined) throw new InvalidArgumentError('CompleteBoot: option "reason" needs "verdict"');
    if (o.reason !== undefined) bounded('CompleteBoot', 'reason', o.reason, 1024);
    await this.authorizer.check(call.sender, POLKIT_ACTIONS.completeBoot);
    const given: BootVerdict | null = o.verdict === undefined ? null
      : { verdict: o.verdict, reason: o.reason || `reported by ${await this.initiator(call)}` };
    const cfg = this.engine.config;
    return this.start('boot-complete', call, o.wait ?? false, async ({ id, initiator, signal, onProgress }) => {
      const progress = (percent: number, step: string, message: string): void =>
        onProgress({ transactionId: id, percent, stepIndex: 0, stepCount: 0, step, message, bytesDone: 0, bytesTotal: 0 });
      const judge = given ?? ((layer: string): Promise<BootVerdict> => {
        progress(0, 'health-gates', `Checking the health gates of ${layer}`);
        return runGates({
          units: cfg.requiredUnits,
          unitStates: this.unitStates,
          health: cfg.requireHealthy ? async () => {
            const [status, rows] = await this.check();
            return { status, failed: rows.filter((r) => r[2] === 'failed').map((r) => `${r[0]}/${r[1]}: ${r[3]}`) };
          } : null,
          timeoutMs: cfg.gateTimeoutSec * 1000,
          signal,
          onProgress: (fraction, message) => progress(Math.floor(fraction * 90), 'health-gates', message),
        });
      });
      const { outcome, plan } = await this.engine.completeBoot(judge, { id, signal, onProgress, initiator });
      if (plan.verdict === 'bad' && outcome.record.state === 'succeeded') {
        const warning = `${plan.layer} failed its boot assessment: ${plan.reason}`;
        await this.engine.addWarning(id, warning);
        const warned: Outcome = { ...outcome, record: { ...outcome.record, warnings: [...outcome.record.warnings, warning] } };
        return cfg.rebootOnFailure ? this.rebootAfter(warned, `reboot into the last good layer after ${plan.layer} failed its health gates`) : warned;
      }
      return outcome;
    });
  }

  /** Stop background work (VM polling). */
  close(): void {
    if (this.vmTimer) clearInterval(this.vmTimer);
    this.vmTimer = null;
  }
}
