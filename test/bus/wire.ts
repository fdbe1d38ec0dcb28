/** Helpers for the harness client's wire values (a variant is {$v: [sig, value]}, a 64-bit integer {$n: "…"}). */
import type { CallResult, RemoteClient } from './harness';
import { eventually } from './harness';

export const NODE = { destination: 'org.ovirt.Node', path: '/org/ovirt/Node' };
export const LAYERS = { ...NODE, interface: 'org.ovirt.Node.Layers' };
export const TX_IFACE = 'org.ovirt.Node.Transaction';

export const v = (sig: string, value: unknown): { $v: [string, unknown] } => ({ $v: [sig, value] });

/** Variants and 64-bit integers → plain JSON values. */
export function unwrap(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(unwrap);
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if (Array.isArray(o['$v'])) return unwrap((o['$v'] as unknown[])[1]);
    if (typeof o['$n'] === 'string') return Number(o['$n']);
    return Object.fromEntries(Object.entries(o).map(([k, y]) => [k, unwrap(y)]));
  }
  return x;
}

/** The reply body of a successful call; a failed call fails the test with its error. */
export function ok(r: CallResult): unknown[] {
  if (!r.ok) throw new Error(`call failed: ${r.name}: ${r.message}`);
  return r.body;
}

/** A client's typed view of the daemon (a getter: tests connect their clients in beforeAll). */
export interface LayersOps {
  /** A property of the daemon's objects as plain JSON (org.ovirt.Node.Layers on /org/ovirt/Node by default). */
  prop(name: string, iface?: string, objPath?: string): Promise<unknown>;
  /** A Layers method's reply as plain JSON; a failed call fails the test. */
  call(member: string, signature: string, body: unknown[]): Promise<unknown[]>;
  /** Wait until a transaction has ended; its final State. */
  finish(tx: string): Promise<string>;
}

export function layersOps(client: () => RemoteClient): LayersOps {
  const prop = async (name: string, iface: string = LAYERS.interface, objPath: string = NODE.path): Promise<unknown> =>
    unwrap(ok(await client().call({
      destination: NODE.destination, path: objPath, interface: 'org.freedesktop.DBus.Properties', member: 'Get',
      signature: 'ss', body: [iface, name],
    }))[0]);
  return {
    prop,
    call: async (member, signature, body) => unwrap(ok(await client().call({ ...LAYERS, member, signature, body }))) as unknown[],
    finish: async (tx) => {
      await eventually(async () => !['queued', 'running'].includes(String(await prop('State', TX_IFACE, tx))), 60_000, 50);
      return String(await prop('State', TX_IFACE, tx));
    },
  };
}
