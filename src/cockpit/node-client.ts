/**
 * org.ovirt.Node through cockpit.dbus — the page's only way to the host. Mutating calls go with superuser "try":
 * through Cockpit's superuser bridge when the session has one, else as the logged-in user; polkit decides either
 * way (the daemon asks polkit for the caller's bus name), and a refusal comes back as Error.NotAuthorized.
 */
import type { Policy, TransactionSnapshot } from './model.js';
import {
  BUS_NAME, LAYERS_IFACE, MANAGER_PATH, parseCheck, parseFinished, parseHistory, parseProgress,
  parseTransactionSnapshot, TRANSACTION_IFACE, TRANSACTION_NAMESPACE,
} from './model.js';
import type { CheckResult, Finished, Progress, TransactionRecord } from './model.js';

export interface TransactionEvents {
  progress(path: string, p: Progress): void;
  finished(path: string, f: Finished): void;
  /** A signal that did not parse (reported, never thrown). */
  problem(what: string): void;
}

const variant = (t: string, v: unknown): { t: string; v: unknown } => ({ t, v });

export class NodeClient {
  private readonly client: cockpit.DBusClient;
  readonly manager: cockpit.DBusProxy;

  constructor() {
    this.client = cockpit.dbus(BUS_NAME, { bus: 'system', superuser: 'try' });
    this.manager = this.client.proxy(LAYERS_IFACE, MANAGER_PATH);
  }

  onClose(listener: (problem: string) => void): void {
    this.client.addEventListener('close', (_ev, options) => listener(options.problem ?? 'disconnected'));
  }

  onOwner(listener: (owner: string | null) => void): void {
    this.client.addEventListener('owner', (_ev, owner) => listener(owner));
  }

  /**
   * Every transaction's Progress and Finished, subscribed once up front (before any call): a transaction started
   * by this page cannot emit before the match exists, so no signal is missed between the call and its reply.
   */
  subscribeTransactions(events: TransactionEvents): cockpit.Subscription {
    return this.client.subscribe({ interface: TRANSACTION_IFACE, path_namespace: TRANSACTION_NAMESPACE }, (path, _iface, signal, args) => {
      try {
        if (signal === 'Progress') events.progress(path, parseProgress(args));
        else if (signal === 'Finished') events.finished(path, parseFinished(args));
      } catch (e) {
        events.problem(`${signal} from ${path}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  private async layers(method: string, args: unknown[], type: string): Promise<unknown[]> {
    return this.client.call(MANAGER_PATH, LAYERS_IFACE, method, args, { type });
  }

  private static path(reply: unknown[], method: string): string {
    const p = reply[0];
    if (typeof p !== 'string' || !p.startsWith('/')) throw new Error(`${method} returned no transaction path`);
    return p;
  }

  async upgrade(image: string): Promise<string> {
    return NodeClient.path(await this.layers('Upgrade', [image, {}], 'sa{sv}'), 'Upgrade');
  }

  /** AutomaticUpdateTrigger in "stage" mode now, whatever the maintenance window says. */
  async upgradeNewest(): Promise<{ available: boolean; nvr: string; transaction: string }> {
    const r = await this.layers('AutomaticUpdateTrigger', [{ mode: variant('s', 'stage'), 'respect-window': variant('b', false) }], 'a{sv}');
    const [available, nvr, transaction] = r;
    if (typeof available !== 'boolean' || typeof nvr !== 'string' || typeof transaction !== 'string') {
      throw new Error('AutomaticUpdateTrigger returned an unexpected reply');
    }
    return { available, nvr, transaction };
  }

  async rollback(layer: string): Promise<string> {
    return NodeClient.path(await this.layers('Rollback', [layer, {}], 'sa{sv}'), 'Rollback');
  }

  async cleanup(keep: number | null): Promise<string> {
    return NodeClient.path(await this.layers('Cleanup', [keep === null ? {} : { keep: variant('u', keep) }], 'a{sv}'), 'Cleanup');
  }

  /** CompleteBoot({}): assess the running layer's boot with the configured gates. */
  async completeBoot(): Promise<string> {
    return NodeClient.path(await this.layers('CompleteBoot', [{}], 'a{sv}'), 'CompleteBoot');
  }

  async pin(layer: string, pinned: boolean): Promise<void> {
    await this.layers('Pin', [layer, pinned], 'sb');
  }

  async setPolicy(policy: Policy): Promise<void> {
    await this.layers('SetAutomaticUpdatePolicy', [policy], 's');
  }

  async check(): Promise<{ status: string; results: CheckResult[] }> {
    return parseCheck(await this.layers('Check', [], ''));
  }

  async history(limit: number): Promise<TransactionRecord[]> {
    return parseHistory(await this.layers('GetHistory', [limit], 'u'));
  }

  async cancel(path: string): Promise<void> {
    await this.client.call(path, TRANSACTION_IFACE, 'Cancel', [], { type: '' });
  }

  async transaction(path: string): Promise<TransactionSnapshot> {
    return parseTransactionSnapshot(await this.client.call(path, 'org.freedesktop.DBus.Properties', 'GetAll', [TRANSACTION_IFACE], { type: 's' }));
  }
}
