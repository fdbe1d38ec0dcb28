/**
 * The subagent's D-Bus side: a client of org.ovirt.Node (never touches LVM) that keeps a DaemonView current.
 *
 *   - Subscribes first (AddMatch: the daemon's PropertiesChanged and Transaction signals, and NameOwnerChanged for
 *     org.ovirt.Node), then reads everything (GetAll) — so no change can fall between the read and the subscription.
 *   - PropertiesChanged of the manager carries the new values: applied directly, no round trip.
 *   - ActiveTransaction → that transaction's properties (GetAll), then its Progress signals and PropertiesChanged.
 *   - NameOwnerChanged: a new owner (daemon (re)started) → read everything again; no owner → reachable = false,
 *     the last values stay. Signals are only believed from the current owner's unique name (anyone can send a
 *     unicast signal to us; the bus only routes the broadcast ones by our match rules).
 *   - A lost bus connection is re-made with back-off.
 *
 * Emits 'view' (DaemonView) after every change, serialized.
 */
import { EventEmitter } from 'node:events';
import * as dbus from 'dbus-next';
import type { Logger } from '../log';
import { BUS_NAME, LAYERS_IFACE, MANAGER_PATH, NO_TRANSACTION, PROPERTIES_IFACE, TRANSACTION_IFACE, TRANSACTION_PATH_PREFIX } from '../dbus/api';
import type { ActiveTransactionView, DaemonView } from './daemon-view';
import {
  applyManagerProperties, applyProgress, applyTransactionProperties, EMPTY_VIEW, transactionIdFromPath, unwrapVariants,
} from './daemon-view';

const DBUS = { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus' } as const;

export interface WatcherOptions {
  /** Open a bus connection (src/dbus/connect.ts connectSystemBus in production). */
  connect: () => dbus.MessageBus;
  log: Logger;
  /** Bus reconnect back-off (default 500 → 10000 ms). */
  backoff?: { initialMs: number; maxMs: number };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class DaemonWatcher extends EventEmitter {
  private bus: dbus.MessageBus | undefined;
  private owner = '';
  private activePath = NO_TRANSACTION;
  private _view: DaemonView = EMPTY_VIEW;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly reportedProblems = new Set<string>();

  constructor(private readonly opts: WatcherOptions) {
    super();
  }

  get view(): DaemonView {
    return this._view;
  }

  /** Connect, subscribe and read the daemon's state once; resolves when the first view is known (reachable or not). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const bus = this.bus;
    this.bus = undefined;
    bus?.disconnect();
  }

  /** Run `fn` after everything queued before it (keeps views in order). */
  private serial(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn).catch((e: unknown) => {
      this.opts.log.error(`snmp watcher: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    });
    return this.chain;
  }

  private publish(next: DaemonView): void {
    this._view = next;
    this.emit('view', next);
  }

  private problems(list: readonly string[]): void {
    for (const p of list) {
      if (this.reportedProblems.has(p)) continue;
      this.reportedProblems.add(p);
      this.opts.log.warn(`org.ovirt.Node property not understood: ${p}`);
    }
  }

  private async open(): Promise<void> {
    const bus = this.opts.connect();
    this.bus = bus;
    bus.on('message', (msg: dbus.Message) => {
      if (this.bus === bus) this.onMessage(msg);
    });
    bus.on('error', (e: unknown) => {
      if (this.bus === bus) this.busLost(bus, e instanceof Error ? e.message : String(e));
    });
    // dbus-next does not forward the end of the stream (the bus went away) from its connection to the MessageBus;
    // without this, calls on a dead connection would just hang.
    const conn: unknown = (bus as unknown as Record<string, unknown>)['_connection'];
    if (conn instanceof EventEmitter) {
      conn.on('end', () => {
        if (this.bus === bus) this.busLost(bus, 'the bus closed the connection');
      });
    }
    try {
      for (const rule of [
        `type='signal',sender='${BUS_NAME}',path_namespace='${MANAGER_PATH}'`,
        `type='signal',sender='${DBUS.destination}',interface='${DBUS.interface}',member='NameOwnerChanged',arg0='${BUS_NAME}'`,
      ]) {
        await bus.call(new dbus.Message({ ...DBUS, member: 'AddMatch', signature: 's', body: [rule] }));
      }
    } catch (e) {
      this.busLost(bus, e instanceof Error ? e.message : String(e));
      return;
    }
    this.attempt = 0;
    await this.serial(() => this.reload(bus));
  }

  private busLost(bus: dbus.MessageBus, why: string): void {
    if (this.bus !== bus || this.stopped) return;
    this.bus = undefined;
    try {
      bus.disconnect();
    } catch {
      // already broken
    }
    this.opts.log.warn(`snmp watcher: system bus connection lost (${why}); reconnecting`);
    this.owner = '';
    this.publish({ ...this._view, reachable: false });
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 500, maxMs: 10_000 };
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt++, 20));
    this.retryTimer = setTimeout(() => {
      void this.open();
    }, delay);
  }

  private async call(bus: dbus.MessageBus, path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    const reply = await bus.call(new dbus.Message({ destination: BUS_NAME, path, interface: iface, member, signature, body }));
    return reply?.body ?? [];
  }

  /** Read everything again (start, new owner). */
  private async reload(bus: dbus.MessageBus): Promise<void> {
    let owner = '';
    try {
      const [o] = (await bus.call(new dbus.Message({ ...DBUS, member: 'GetNameOwner', signature: 's', body: [BUS_NAME] })))?.body ?? [];
      owner = typeof o === 'string' ? o : '';
    } catch (e) {
      if (!(e instanceof dbus.DBusError)) throw e; // NameHasNoOwner: the daemon is not running
    }
    this.owner = owner;
    if (owner === '') {
      this.publish({ ...this._view, reachable: false, active: null });
      return;
    }
    let props: unknown;
    try {
      [props] = await this.call(bus, MANAGER_PATH, PROPERTIES_IFACE, 'GetAll', 's', [LAYERS_IFACE]);
    } catch (e) {
      if (!(e instanceof dbus.DBusError)) throw e;
      this.opts.log.warn(`snmp watcher: reading ${BUS_NAME} failed: ${e.type}: ${e.text}`);
      this.publish({ ...this._view, reachable: false });
      return;
    }
    const plain = unwrapVariants(props);
    if (!isRecord(plain)) {
      this.problems(['GetAll: expected a dictionary']);
      return;
    }
    const { view, problems } = applyManagerProperties({ ...this._view, reachable: true }, plain);
    this.problems(problems);
    view.active = await this.readActive(bus, plain['ActiveTransaction']);
    this.publish(view);
  }

  /** The active transaction's view from its object path ("/" = none). */
  private async readActive(bus: dbus.MessageBus, pathValue: unknown): Promise<ActiveTransactionView | null> {
    const path = typeof pathValue === 'string' ? pathValue : NO_TRANSACTION;
    this.activePath = path;
    if (path === NO_TRANSACTION || !path.startsWith(TRANSACTION_PATH_PREFIX)) return null;
    const base: ActiveTransactionView = { id: transactionIdFromPath(path, TRANSACTION_PATH_PREFIX), kind: '', percent: 0, step: '' };
    try {
      const [props] = await this.call(bus, path, PROPERTIES_IFACE, 'GetAll', 's', [TRANSACTION_IFACE]);
      const plain = unwrapVariants(props);
      if (!isRecord(plain)) return base;
      const { active, problems } = applyTransactionProperties(base, plain);
      this.problems(problems);
      return active;
    } catch (e) {
      if (!(e instanceof dbus.DBusError)) throw e;
      return base; // finished and gone in the meantime: ActiveTransaction will change too
    }
  }

  private onMessage(msg: dbus.Message): void {
    const bus = this.bus;
    if (bus === undefined || msg.type !== dbus.MessageType.SIGNAL) return;
    const body: unknown[] = Array.isArray(msg.body) ? (msg.body as unknown[]) : [];
    if (msg.interface === DBUS.interface && msg.member === 'NameOwnerChanged' && msg.sender === DBUS.destination) {
      const [name, , newOwner] = body;
      if (name !== BUS_NAME) return;
      void this.serial(async () => {
        if (typeof newOwner === 'string' && newOwner !== '') {
          this.opts.log.info(`snmp watcher: ${BUS_NAME} is now ${newOwner}; reading its state`);
          await this.reload(bus);
        } else {
          this.opts.log.warn(`snmp watcher: ${BUS_NAME} left the bus; keeping the last values`);
          this.owner = '';
          this.publish({ ...this._view, reachable: false, active: null });
        }
      });
      return;
    }
    if (this.owner === '' || msg.sender !== this.owner) return;
    const path = msg.path ?? '';
    if (msg.interface === PROPERTIES_IFACE && msg.member === 'PropertiesChanged') {
      const [iface, changed] = body;
      const plain = unwrapVariants(changed);
      if (!isRecord(plain)) return;
      if (iface === LAYERS_IFACE && path === MANAGER_PATH) {
        void this.serial(async () => {
          const { view, problems } = applyManagerProperties(this._view, plain);
          this.problems(problems);
          if (Object.hasOwn(plain, 'ActiveTransaction')) view.active = await this.readActive(bus, plain['ActiveTransaction']);
          this.publish(view);
        });
      } else if (iface === TRANSACTION_IFACE && path === this.activePath) {
        void this.serial(async () => {
          const cur = this._view.active;
          if (cur === null || path !== this.activePath) return;
          const { active, problems } = applyTransactionProperties(cur, plain);
          this.problems(problems);
          this.publish({ ...this._view, active });
        });
      }
      return;
    }
    if (msg.interface === TRANSACTION_IFACE && msg.member === 'Progress' && path === this.activePath) {
      void this.serial(async () => {
        const cur = this._view.active;
        if (cur === null || path !== this.activePath) return;
        this.publish({ ...this._view, active: applyProgress(cur, body) });
      });
    }
  }
}
