/**
 * Names and signatures of the org.ovirt.Node D-Bus API, as TypeScript constants.
 *
 * dbus/org.ovirt.Node.Layers.xml is the single source of truth; test/dbus/api.test.ts parses it and fails when this
 * file and the XML disagree in either direction (members, argument names, signatures, access, polkit actions,
 * error names). Pure data: nothing here touches the bus.
 */

export const BUS_NAME = 'org.ovirt.Node';
export const MANAGER_PATH = '/org/ovirt/Node';
/** Transaction objects live at TRANSACTION_PATH_PREFIX + id. */
export const TRANSACTION_PATH_PREFIX = '/org/ovirt/Node/Transaction/';
/** The object path meaning "no transaction" (ActiveTransaction when idle, AutomaticUpdateTrigger's nothing-started). */
export const NO_TRANSACTION = '/';

export const LAYERS_IFACE = 'org.ovirt.Node.Layers';
export const TRANSACTION_IFACE = 'org.ovirt.Node.Transaction';

/** Standard interfaces the bus policy lets anyone call on org.ovirt.Node (besides the two above). */
export const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';
export const INTROSPECTABLE_IFACE = 'org.freedesktop.DBus.Introspectable';
export const PEER_IFACE = 'org.freedesktop.DBus.Peer';
/** Every interface a caller may address on org.ovirt.Node (the shipped bus policy allows exactly these). */
export const PUBLIC_INTERFACES = [LAYERS_IFACE, TRANSACTION_IFACE, PROPERTIES_IFACE, INTROSPECTABLE_IFACE, PEER_IFACE] as const;

export const ERROR_PREFIX = 'org.ovirt.Node.Error.';
export const ERROR_NAMES = {
  InvalidArgument: 'org.ovirt.Node.Error.InvalidArgument',
  NotAuthorized: 'org.ovirt.Node.Error.NotAuthorized',
  Busy: 'org.ovirt.Node.Error.Busy',
  NotFound: 'org.ovirt.Node.Error.NotFound',
  NoSpace: 'org.ovirt.Node.Error.NoSpace',
  VerificationFailed: 'org.ovirt.Node.Error.VerificationFailed',
  NotNewer: 'org.ovirt.Node.Error.NotNewer',
  Cancelled: 'org.ovirt.Node.Error.Cancelled',
  VMsRunning: 'org.ovirt.Node.Error.VMsRunning',
  Failed: 'org.ovirt.Node.Error.Failed',
} as const;
export type ErrorShortName = keyof typeof ERROR_NAMES;
export type ErrorName = (typeof ERROR_NAMES)[ErrorShortName];

export const POLKIT_ACTIONS = {
  upgrade: 'org.ovirt.node.layers.upgrade',
  rollback: 'org.ovirt.node.layers.rollback',
  cleanup: 'org.ovirt.node.layers.cleanup',
  pin: 'org.ovirt.node.layers.pin',
  cancel: 'org.ovirt.node.layers.cancel',
  configure: 'org.ovirt.node.layers.configure',
  automaticUpdate: 'org.ovirt.node.layers.automatic-update',
  completeBoot: 'org.ovirt.node.layers.complete-boot',
  verify: 'org.ovirt.node.layers.verify',
} as const;
export type PolkitAction = (typeof POLKIT_ACTIONS)[keyof typeof POLKIT_ACTIONS];

/** One method or signal argument. */
export interface ArgSpec {
  readonly name: string;
  readonly type: string;
}

export interface MethodSpec {
  readonly in: readonly ArgSpec[];
  readonly out: readonly ArgSpec[];
  /** Concatenated in-argument types (dbus-next `inSignature`). */
  readonly inSignature: string;
  /** Concatenated out-argument types (dbus-next `outSignature`). */
  readonly outSignature: string;
  /** The polkit action checked before the call does anything; null for read-only methods. */
  readonly polkit: PolkitAction | null;
  /** Error names the XML documents for the method (short names). */
  readonly errors: readonly ErrorShortName[];
}

export interface PropertySpec {
  readonly signature: string;
  readonly access: 'read' | 'readwrite' | 'write';
  /** org.freedesktop.DBus.Property.EmitsChangedSignal = "true" in the XML. */
  readonly emitsChanged: boolean;
}

export interface SignalSpec {
  readonly args: readonly ArgSpec[];
  readonly signature: string;
}

export interface InterfaceSpec {
  readonly methods: Readonly<Record<string, MethodSpec>>;
  readonly properties: Readonly<Record<string, PropertySpec>>;
  readonly signals: Readonly<Record<string, SignalSpec>>;
}

const a = (name: string, type: string): ArgSpec => ({ name, type });
const ro = (signature: string, emitsChanged = false): PropertySpec => ({ signature, access: 'read', emitsChanged });

export const LAYERS_METHODS = {
  Upgrade: {
    in: [a('image', 's'), a('options', 'a{sv}')],
    out: [a('transaction', 'o')],
    inSignature: 'sa{sv}',
    outSignature: 'o',
    polkit: POLKIT_ACTIONS.upgrade,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy', 'NotFound', 'NoSpace', 'VerificationFailed', 'NotNewer', 'Failed'],
  },
  Rollback: {
    in: [a('layer', 's'), a('options', 'a{sv}')],
    out: [a('transaction', 'o')],
    inSignature: 'sa{sv}',
    outSignature: 'o',
    polkit: POLKIT_ACTIONS.rollback,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy', 'NotFound', 'VMsRunning'],
  },
  Cleanup: {
    in: [a('options', 'a{sv}')],
    out: [a('transaction', 'o')],
    inSignature: 'a{sv}',
    outSignature: 'o',
    polkit: POLKIT_ACTIONS.cleanup,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy'],
  },
  RemoveBase: {
    in: [a('nvr', 's'), a('options', 'a{sv}')],
    out: [a('transaction', 'o')],
    inSignature: 'sa{sv}',
    outSignature: 'o',
    polkit: POLKIT_ACTIONS.cleanup,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy', 'NotFound'],
  },
  Pin: {
    in: [a('layer', 's'), a('pinned', 'b')],
    out: [],
    inSignature: 'sb',
    outSignature: '',
    polkit: POLKIT_ACTIONS.pin,
    errors: ['NotAuthorized', 'NotFound', 'InvalidArgument'],
  },
  Check: {
    in: [],
    out: [a('status', 's'), a('results', 'a(ssss)')],
    inSignature: '',
    outSignature: 'sa(ssss)',
    polkit: null,
    errors: [],
  },
  CheckDeep: {
    in: [a('options', 'a{sv}')],
    out: [a('status', 's'), a('results', 'a(ssss)')],
    inSignature: 'a{sv}',
    outSignature: 'sa(ssss)',
    polkit: POLKIT_ACTIONS.verify,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy'],
  },
  GetHistory: {
    in: [a('limit', 'u')],
    out: [a('transactions', 'aa{sv}')],
    inSignature: 'u',
    outSignature: 'aa{sv}',
    polkit: null,
    errors: [],
  },
  AutomaticUpdateTrigger: {
    in: [a('options', 'a{sv}')],
    out: [a('available', 'b'), a('nvr', 's'), a('transaction', 'o')],
    inSignature: 'a{sv}',
    outSignature: 'bso',
    polkit: POLKIT_ACTIONS.automaticUpdate,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy'],
  },
  CompleteBoot: {
    in: [a('options', 'a{sv}')],
    out: [a('transaction', 'o')],
    inSignature: 'a{sv}',
    outSignature: 'o',
    polkit: POLKIT_ACTIONS.completeBoot,
    errors: ['InvalidArgument', 'NotAuthorized', 'Busy'],
  },
  SetAutomaticUpdatePolicy: {
    in: [a('policy', 's')],
    out: [],
    inSignature: 's',
    outSignature: '',
    polkit: POLKIT_ACTIONS.configure,
    errors: ['InvalidArgument', 'NotAuthorized'],
  },
} as const satisfies Record<string, MethodSpec>;
export type LayersMethod = keyof typeof LAYERS_METHODS;

export const LAYERS_PROPERTIES = {
  Version: ro('s'),
  Layers: ro('aa{sv}', true),
  Bases: ro('aa{sv}', true),
  CurrentLayer: ro('s', true),
  DefaultLayer: ro('s', true),
  TrialLayer: ro('s', true),
  Pool: ro('a{sv}', true),
  Health: ro('s', true),
  ActiveTransaction: ro('o', true),
  AutomaticUpdatePolicy: ro('s', true),
  MaintenanceWindow: ro('s'),
  UpdateAvailable: ro('b', true),
  AvailableVersion: ro('s', true),
  VirtualMachines: ro('a{sv}', true),
  LastTransaction: ro('a{sv}', true),
} as const satisfies Record<string, PropertySpec>;
export type LayersProperty = keyof typeof LAYERS_PROPERTIES;

export const LAYERS_SIGNALS = {} as const satisfies Record<string, SignalSpec>;

export const TRANSACTION_METHODS = {
  Cancel: { in: [], out: [], inSignature: '', outSignature: '', polkit: POLKIT_ACTIONS.cancel, errors: ['NotAuthorized'] },
} as const satisfies Record<string, MethodSpec>;
export type TransactionMethod = keyof typeof TRANSACTION_METHODS;

export const TRANSACTION_PROPERTIES = {
  Id: ro('s'),
  Kind: ro('s'),
  State: ro('s'),
  Percent: ro('u'),
  Step: ro('s'),
  StepIndex: ro('u'),
  StepCount: ro('u'),
  Message: ro('s'),
  BytesDone: ro('t'),
  BytesTotal: ro('t'),
  StartedAt: ro('t'),
  FinishedAt: ro('t'),
  Initiator: ro('s'),
  Error: ro('(ss)'),
} as const satisfies Record<string, PropertySpec>;
export type TransactionProperty = keyof typeof TRANSACTION_PROPERTIES;

export const TRANSACTION_SIGNALS = {
  Progress: {
    args: [a('percent', 'u'), a('step', 's'), a('message', 's'), a('done', 't'), a('total', 't')],
    signature: 'usstt',
  },
  Finished: {
    args: [a('success', 'b'), a('error_name', 's'), a('error_message', 's')],
    signature: 'bss',
  },
} as const satisfies Record<string, SignalSpec>;
export type TransactionSignal = keyof typeof TRANSACTION_SIGNALS;

/** Both interfaces, keyed by interface name. */
export const INTERFACES = {
  [LAYERS_IFACE]: { methods: LAYERS_METHODS, properties: LAYERS_PROPERTIES, signals: LAYERS_SIGNALS },
  [TRANSACTION_IFACE]: { methods: TRANSACTION_METHODS, properties: TRANSACTION_PROPERTIES, signals: TRANSACTION_SIGNALS },
} as const satisfies Record<string, InterfaceSpec>;

/** Transaction states (the State property). */
export const TRANSACTION_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TransactionState = (typeof TRANSACTION_STATES)[number];
/** Transaction kinds (the Kind property). */
export const TRANSACTION_KINDS = ['upgrade', 'rollback', 'cleanup', 'remove-base', 'boot-complete'] as const;
/** AutomaticUpdatePolicy values. */
export const AUTOMATIC_UPDATE_POLICIES = ['none', 'check', 'stage', 'apply'] as const;
export type AutomaticUpdatePolicy = (typeof AUTOMATIC_UPDATE_POLICIES)[number];
/** Health / Check() status values. */
export const HEALTH_STATES = ['ok', 'warn', 'failed'] as const;

/** The polkit action of `method` on `iface`, or null when the method is read-only. */
export function polkitActionFor(iface: string, method: string): PolkitAction | null {
  const spec = iface === LAYERS_IFACE ? LAYERS_METHODS : iface === TRANSACTION_IFACE ? TRANSACTION_METHODS : undefined;
  if (spec === undefined || !Object.hasOwn(spec, method)) throw new Error(`no method ${iface}.${method}`);
  const m: MethodSpec = (spec as Readonly<Record<string, MethodSpec>>)[method] as MethodSpec;
  return m.polkit;
}

/** dbus-next `Interface.configureMembers()` argument derived from a spec (signatures and access only). */
export function dbusNextMembers(spec: InterfaceSpec): {
  methods: Record<string, { inSignature: string; outSignature: string }>;
  properties: Record<string, { signature: string; access: 'read' | 'readwrite' | 'write' }>;
  signals: Record<string, { signature: string }>;
} {
  const methods: Record<string, { inSignature: string; outSignature: string }> = {};
  for (const [name, m] of Object.entries(spec.methods)) methods[name] = { inSignature: m.inSignature, outSignature: m.outSignature };
  const properties: Record<string, { signature: string; access: 'read' | 'readwrite' | 'write' }> = {};
  for (const [name, p] of Object.entries(spec.properties)) properties[name] = { signature: p.signature, access: p.access };
  const signals: Record<string, { signature: string }> = {};
  for (const [name, s] of Object.entries(spec.signals)) signals[name] = { signature: s.signature };
  return { methods, properties, signals };
}
