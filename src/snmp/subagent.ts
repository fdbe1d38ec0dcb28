/**
 * Composition of the subagent: the D-Bus watcher's views → MIB instances (and notifications) → the AgentX session.
 * main.ts adds the command line, the logger and sd_notify; tests and the bench can start it in-process.
 */
import type * as dbus from 'dbus-next';
import type { Logger } from '../log';
import type { MasterAddress, SessionState } from './agentx-session';
import { AgentxSession } from './agentx-session';
import type { DaemonView } from './daemon-view';
import { DaemonWatcher } from './daemon-watcher';
import { LAYER_COLUMNS, LAYER_ENTRY, ROOT, SCALARS } from './mib-tree';
import { MibView } from './mib-view';
import type { Oid } from './oid';
import { detectNotifications, notificationVarbinds } from './notifications';
import type { AgentSettings } from './varbinds';
import { buildVarbinds } from './varbinds';

/** Every object the MIB defines (for noSuchInstance vs noSuchObject). */
export const MIB_OBJECTS: readonly Oid[] = [
  ...Object.values(SCALARS),
  ...Object.values(LAYER_COLUMNS).map((c) => [...LAYER_ENTRY, c]),
];

export interface SubagentOptions {
  master: MasterAddress;
  settings: AgentSettings;
  connectBus: () => dbus.MessageBus;
  log: Logger;
  backoff?: { initialMs: number; maxMs: number };
  pingIntervalMs?: number;
  /** Called on every change of what `status()` would say. */
  onStatus?: (status: string) => void;
}

export class Subagent {
  readonly watcher: DaemonWatcher;
  readonly session: AgentxSession;
  private mib: MibView;
  private lastReachable: DaemonView | undefined;

  constructor(private readonly opts: SubagentOptions) {
    this.watcher = new DaemonWatcher({ connect: opts.connectBus, log: opts.log, ...(opts.backoff ? { backoff: opts.backoff } : {}) });
    this.mib = new MibView(buildVarbinds(this.watcher.view, opts.settings), MIB_OBJECTS);
    this.session = new AgentxSession({
      master: opts.master,
      subtree: ROOT,
      id: ROOT,
      description: 'imgbased-snmp: oVirt Node layers (OVIRT-NODE-LAYERS-MIB)',
      view: () => this.mib,
      log: opts.log,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
    });
    this.watcher.on('view', (v: DaemonView) => this.onView(v));
    this.session.on('state', () => opts.onStatus?.(this.status()));
  }

  /** Read the daemon's state, then connect to the master (which may come later: the session keeps trying). */
  async start(): Promise<void> {
    await this.watcher.start();
    this.session.start();
  }

  async stop(): Promise<void> {
    await this.session.stop();
    this.watcher.stop();
    const st = this.session.stats;
    this.opts.log.info(`agentx: ${st.requests} requests answered, ${st.registrations} registrations, ${st.notificationsSent} notifications sent `
      + `(${st.notificationsDropped} dropped), ${st.coalescedEvents} coalesced reads, ${st.splitPdus} split PDUs`);
  }

  /** The instances answered right now. */
  get view(): MibView {
    return this.mib;
  }

  status(): string {
    const s: SessionState = this.session.state;
    const master = s === 'registered' ? 'registered with the AgentX master' : `AgentX master: ${s}`;
    const daemon = this.watcher.view.reachable ? 'org.ovirt.Node reachable' : 'org.ovirt.Node not reachable';
    return `${master}; ${daemon}`;
  }

  private onView(v: DaemonView): void {
    const before = this.mib;
    this.mib = new MibView(buildVarbinds(v, this.opts.settings), MIB_OBJECTS);
    if (before.size !== this.mib.size || !v.reachable) this.opts.onStatus?.(this.status());
    if (!v.reachable) return;
    const prev = this.lastReachable;
    this.lastReachable = v;
    if (prev === undefined) this.opts.onStatus?.(this.status());
    for (const n of detectNotifications(prev, v, this.opts.settings)) {
      this.opts.log.info(`snmp notification ${n.name}: ${n.reason}`);
      this.session.notify(notificationVarbinds(n.name, v, this.opts.settings, n.layerIndex));
    }
  }
}
