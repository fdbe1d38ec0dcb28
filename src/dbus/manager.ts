/**
 * org.ovirt.Node.Layers on /org/ovirt/Node. Glue only: properties show the daemon's current view; methods parse
 * and validate their arguments, then delegate to the Daemon (which authorizes and runs the work).
 */
import { interface as dbusInterface, Variant } from 'dbus-next';
import { dbusNextMembers, INTERFACES, LAYERS_IFACE, MANAGER_PATH } from './api';
import type { CallContext } from './call';
import { callContext } from './call';
import { mapped } from './errors';
import type { Logger } from '../log';

const { Interface } = dbusInterface;

export { LAYERS_IFACE, MANAGER_PATH };

export type Dict = Record<string, Variant>;

/** What the properties show; the daemon builds it and hands it over on every refresh. */
export interface ManagerView {
  readonly Version: string;
  readonly Layers: Dict[];
  readonly Bases: Dict[];
  readonly CurrentLayer: string;
  readonly DefaultLayer: string;
  readonly TrialLayer: string;
  readonly Pool: Dict;
  readonly Health: string;
  readonly ActiveTransaction: string;
  readonly AutomaticUpdatePolicy: string;
  readonly MaintenanceWindow: string;
  readonly UpdateAvailable: boolean;
  readonly AvailableVersion: string;
  readonly VirtualMachines: Dict;
  readonly LastTransaction: Dict;
}

/** The operations behind the methods (implemented by the Daemon). Options arrive unparsed (`unknown`). */
export interface ManagerBackend {
  upgrade(call: CallContext, image: string, options: unknown): Promise<string>;
  rollback(call: CallContext, layer: string, options: unknown): Promise<string>;
  cleanup(call: CallContext, options: unknown): Promise<string>;
  removeBase(call: CallContext, nvr: string, options: unknown): Promise<string>;
  pin(call: CallContext, layer: string, pinned: boolean): Promise<void>;
  check(call: CallContext): Promise<[string, Array<[string, string, string, string]>]>;
  history(call: CallContext, limit: number): Promise<Dict[]>;
  trigger(call: CallContext, options: unknown): Promise<[boolean, string, string]>;
  setPolicy(call: CallContext, policy: string): Promise<void>;
  completeBoot(call: CallContext, options: unknown): Promise<string>;
  checkDeep(call: CallContext, options: unknown): Promise<[string, Array<[string, string, string, string]>]>;
}

const stable = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Variant ? { s: x.signature, v: x.value as unknown } : x));

export class LayersObject extends Interface {
  private view: ManagerView;

  constructor(initial: ManagerView, private readonly ops: ManagerBackend, private readonly log: Logger) {
    super(LAYERS_IFACE);
    this.view = initial;
  }

  /** Replace the view; emit PropertiesChanged for what differs. */
  setView(next: ManagerView): void {
    const changed: Record<string, unknown> = {};
    for (const key of Object.keys(next) as Array<keyof ManagerView>) {
      if (stable(next[key]) !== stable(this.view[key])) changed[key] = next[key];
    }
    this.view = next;
    if (Object.keys(changed).length) Interface.emitPropertiesChanged(this, changed, []);
  }

  get Version(): string { return this.view.Version; }
  get Layers(): Dict[] { return this.view.Layers; }
  get Bases(): Dict[] { return this.view.Bases; }
  get CurrentLayer(): string { return this.view.CurrentLayer; }
  get DefaultLayer(): string { return this.view.DefaultLayer; }
  get TrialLayer(): string { return this.view.TrialLayer; }
  get Pool(): Dict { return this.view.Pool; }
  get Health(): string { return this.view.Health; }
  get ActiveTransaction(): string { return this.view.ActiveTransaction; }
  get AutomaticUpdatePolicy(): string { return this.view.AutomaticUpdatePolicy; }
  get MaintenanceWindow(): string { return this.view.MaintenanceWindow; }
  get UpdateAvailable(): boolean { return this.view.UpdateAvailable; }
  get AvailableVersion(): string { return this.view.AvailableVersion; }
  get VirtualMachines(): Dict { return this.view.VirtualMachines; }
  get LastTransaction(): Dict { return this.view.LastTransaction; }

  Upgrade(image: string, options: unknown, msg: unknown): Promise<string> {
    return mapped(this.log, 'Upgrade', () => this.ops.upgrade(callContext(msg), image, options));
  }

  Rollback(layer: string, options: unknown, msg: unknown): Promise<string> {
    return mapped(this.log, 'Rollback', () => this.ops.rollback(callContext(msg), layer, options));
  }

  Cleanup(options: unknown, msg: unknown): Promise<string> {
    return mapped(this.log, 'Cleanup', () => this.ops.cleanup(callContext(msg), options));
  }

  RemoveBase(nvr: string, options: unknown, msg: unknown): Promise<string> {
    return mapped(this.log, 'RemoveBase', () => this.ops.removeBase(callContext(msg), nvr, options));
  }

  Pin(layer: string, pinned: boolean, msg: unknown): Promise<void> {
    return mapped(this.log, 'Pin', () => this.ops.pin(callContext(msg), layer, pinned));
  }

  Check(msg: unknown): Promise<[string, Array<[string, string, string, string]>]> {
    return mapped(this.log, 'Check', () => this.ops.check(callContext(msg)));
  }

  CheckDeep(options: unknown, msg: unknown): Promise<[string, Array<[string, string, string, string]>]> {
    return mapped(this.log, 'CheckDeep', () => this.ops.checkDeep(callContext(msg), options));
  }

  GetHistory(limit: number, msg: unknown): Promise<Dict[]> {
    return mapped(this.log, 'GetHistory', () => this.ops.history(callContext(msg), limit));
  }

  AutomaticUpdateTrigger(options: unknown, msg: unknown): Promise<[boolean, string, string]> {
    return mapped(this.log, 'AutomaticUpdateTrigger', () => this.ops.trigger(callContext(msg), options));
  }

  CompleteBoot(options: unknown, msg: unknown): Promise<string> {
    return mapped(this.log, 'CompleteBoot', () => this.ops.completeBoot(callContext(msg), options));
  }

  SetAutomaticUpdatePolicy(policy: string, msg: unknown): Promise<void> {
    return mapped(this.log, 'SetAutomaticUpdatePolicy', () => this.ops.setPolicy(callContext(msg), policy));
  }
}

// Members come from api.ts, which a test keeps equal to dbus/org.ovirt.Node.Layers.xml.
LayersObject.configureMembers(dbusNextMembers(INTERFACES[LAYERS_IFACE]));
