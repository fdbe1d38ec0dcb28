/**
 * nodectl's D-Bus side: a thin client of org.ovirt.Node. Never touches LVM or /boot. Works on the system bus or,
 * for the sandbox, whatever DBUS_SYSTEM_BUS_ADDRESS names.
 */
import { BUS_NAME, LAYERS_IFACE, MANAGER_PATH, TRANSACTION_IFACE } from '../../dbus/api';
import { systemBusAddress } from '../../dbus/address';
// The client-only connection: a fraction of dbus-next's load time (nodectl's start-up is benchmarked).
import { DBusError, LightBus, Message, Variant } from '../../dbus/light-bus';

/** nodectl's documented exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notAuthorized: 3, busy: 4, checkProblems: 5, cancelled: 130 } as const;

const HINTS: Record<string, string> = {
  'org.ovirt.Node.Error.Busy': 'follow it with "nodectl watch", stop it with "nodectl cancel", or retry with --wait',
  'org.ovirt.Node.Error.NotAuthorized': 'run as root, or ask your administrator for the polkit permission',
  'org.ovirt.Node.Error.NoSpace': 'free space with "nodectl cleanup" or extend the thin pool',
  'org.ovirt.Node.Error.NotNewer': 'pass --allow-downgrade to install an older image on purpose',
  'org.ovirt.Node.Error.VerificationFailed': 'check the image file and its .sha256/.sig beside it',
  'org.ovirt.Node.Error.VMsRunning': 'stop or migrate the VMs first (`virsh list` shows them), or roll back without --reboot',
  'org.ovirt.Node.Error.NotFound': '"nodectl layers" lists the layers and bases',
  'org.freedesktop.DBus.Error.ServiceUnknown': 'is imgbased running? (systemctl status imgbased)',
};

export class NodectlError extends Error {
  constructor(readonly dbusName: string, message: string, readonly exitCode: number, private readonly ownHint?: string) {
    super(message);
  }

  get hint(): string | undefined {
    return this.ownHint ?? HINTS[this.dbusName];
  }
}

/** The system bus cannot be reached at all (no socket, connection refused): no daemon can answer. */
export class BusUnreachableError extends NodectlError {}

export function exitCodeFor(name: string): number {
  switch (name) {
    case 'org.ovirt.Node.Error.NotAuthorized':
    case 'org.freedesktop.DBus.Error.AccessDenied':
      return EXIT.notAuthorized;
    case 'org.ovirt.Node.Error.Busy':
      return EXIT.busy;
    case 'org.ovirt.Node.Error.InvalidArgument':
      return EXIT.usage;
    case 'org.ovirt.Node.Error.Cancelled':
      return EXIT.cancelled;
    default:
      return EXIT.failed;
  }
}

/** A reply that does not have the shape the XML promises (a programmer or version error, exit 1). */
export function badReply(what: string): NodectlError {
  return new NodectlError('', `unexpected reply from imgbased: ${what}`, EXIT.failed);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string field of a plain reply (missing → def; present with another type → badReply). */
export function str(v: unknown, what: string, def?: string): string {
  if (typeof v === 'string') return v;
  if (v === undefined && def !== undefined) return def;
  throw badReply(`${what} is not a string`);
}

export function bool(v: unknown, what: string, def?: boolean): boolean {
  if (typeof v === 'boolean') return v;
  if (v === undefined && def !== undefined) return def;
  throw badReply(`${what} is not a boolean`);
}

/** Variants and 64-bit integers → plain JSON values. */
export function plain(v: unknown): unknown {
  if (v instanceof Variant) return plain(v.value);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

export class NodeClient {
  /** Rejects once the connection fails (no bus socket, bus gone): every call races it, so nothing hangs. */
  private readonly broken: Promise<never>;

  private constructor(readonly bus: LightBus, readonly address: string) {
    this.broken = new Promise<never>((_resolve, reject) => {
      bus.on('error', (e: unknown) => {
        reject(new BusUnreachableError('', `cannot talk to the system bus at ${address}: ${e instanceof Error ? e.message : String(e)}`, EXIT.failed,
          'is dbus running? DBUS_SYSTEM_BUS_ADDRESS names another bus (e.g. a sandbox\'s)'));
      });
    });
    this.broken.catch(() => undefined);
  }

  static connect(env: NodeJS.ProcessEnv = process.env): NodeClient {
    const address = systemBusAddress(env);
    return new NodeClient(new LightBus(address), address);
  }

  close(): void {
    this.bus.disconnect();
  }

  /** Call a method; D-Bus errors become NodectlError with the exit code they mean. */
  async call(path: string, iface: string, member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    try {
      const reply = await Promise.race([
        this.bus.call(new Message({ destination: BUS_NAME, path, interface: iface, member, signature, body })),
        this.broken,
      ]);
      return reply?.body ?? [];
    } catch (e) {
      if (e instanceof DBusError) throw new NodectlError(e.type, e.text, exitCodeFor(e.type));
      const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : '';
      if (['ENOENT', 'ECONNREFUSED', 'ENOTSOCK'].includes(code)) {
        throw new BusUnreachableError('', `cannot talk to the system bus at ${this.address}: ${e instanceof Error ? e.message : code}`, EXIT.failed,
          'is dbus running? DBUS_SYSTEM_BUS_ADDRESS names another bus (e.g. a sandbox\'s)');
      }
      throw e;
    }
  }

  layers(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.call(MANAGER_PATH, LAYERS_IFACE, member, signature, body);
  }

  async properties(path = MANAGER_PATH, iface = LAYERS_IFACE): Promise<Record<string, unknown>> {
    const [all] = await this.call(path, 'org.freedesktop.DBus.Properties', 'GetAll', 's', [iface]);
    const props = plain(all);
    if (!isRecord(props)) throw badReply(`GetAll(${iface}) is not a dict`);
    return props;
  }

  /** Subscribe to a transaction's signals. */
  async watch(
    txPath: string,
    onProgress: (percent: number, step: string, message: string, done: number, total: number) => void,
  ): Promise<{ finished: Promise<[boolean, string, string]> }> {
    const rule = `type='signal',sender='${BUS_NAME}',path='${txPath}',interface='${TRANSACTION_IFACE}'`;
    await Promise.race([this.bus.call(new Message({
      destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
      member: 'AddMatch', signature: 's', body: [rule],
    })), this.broken]);
    let resolve: (r: [boolean, string, string]) => void = () => undefined;
    const finished = new Promise<[boolean, string, string]>((r) => {
      resolve = r;
    });
    this.bus.on('message', (msg: Message) => {
      if (msg.path !== txPath || msg.interface !== TRANSACTION_IFACE) return;
      const b = msg.body as unknown[];
      if (msg.member === 'Progress') {
        onProgress(Number(b[0]), String(b[1]), String(b[2]), Number(b[3]), Number(b[4]));
      } else if (msg.member === 'Finished') {
        resolve([b[0] === true, String(b[1]), String(b[2])]);
      }
    });
    // A transaction that ended before we subscribed: read its state.
    const props = await this.properties(txPath, TRANSACTION_IFACE);
    const state = str(props['State'], 'State');
    if (state !== 'queued' && state !== 'running') {
      const err = props['Error'];
      const [name, message] = Array.isArray(err) ? err.map((x: unknown) => String(x)) : [];
      resolve([state === 'succeeded', name ?? '', message ?? '']);
    }
    // The daemon going away while we follow is a failure, not a hang.
    return { finished: Promise.race([finished, this.broken]) };
  }
}
