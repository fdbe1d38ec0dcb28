/**
 * The SHIPPED bus policy (dbus/org.ovirt.Node.conf) and polkit actions (polkit/org.ovirt.node.layers.policy),
 * enforced by a real dbus-daemon and a real polkitd, with callers as root, nobody and a polkit-granted user.
 */
import * as fs from 'node:fs/promises';
import * as dbus from 'dbus-next';
import { BUS_NAME, LAYERS_IFACE, MANAGER_PATH, POLKIT_ACTIONS } from '../../src/dbus/api';
import type { CallResult, CallSpec, RemoteClient } from './harness';
import { POLKIT_ACTIONS_DIR, POLKIT_RULES_DIR, PrivateBus } from './harness';

const ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';
const SECRET_IFACE = 'org.ovirt.Node.Secret';
const ACTIONS: string[] = Object.values(POLKIT_ACTIONS);

let bus: PrivateBus;

beforeAll(async () => {
  bus = await PrivateBus.start({ polkit: true });
});

afterAll(async () => {
  await bus?.stop();
});

const errorName = (r: CallResult): string => (r.ok ? 'ok' : r.name);

describe('bus policy: owning org.ovirt.Node', () => {
  it('is refused to nobody and to the polkit-granted user', async () => {
    for (const who of ['nobody', 'granted'] as const) {
      const c = await bus.clientAs(who);
      const r = await c.requestName(BUS_NAME);
      expect({ who, error: errorName(r) }).toEqual({ who, error: ACCESS_DENIED });
      await c.close();
    }
  });

  it('is granted to root (and root may own no other name)', async () => {
    const c = await bus.clientAs('root');
    const r = await c.requestName(BUS_NAME);
    expect(r).toEqual({ ok: true, signature: 'u', body: [1] }); // DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
    expect(errorName(await c.requestName('org.ovirt.NodeEvil'))).toBe(ACCESS_DENIED);
    await c.close(); // releases the name for the stand-in service below
  });

  it('is refused to nobody through busctl too', async () => {
    const r = await bus.busctl('nobody', ['call', 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'RequestName', 'su', BUS_NAME, '4']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Access denied/);
  });
});

/** A stand-in for the daemon: org.ovirt.Node.Layers (one method) plus an interface the policy does not open. */
class LayersStandIn extends dbus.interface.Interface {
  Check(): [string, Array<[string, string, string, string]>] {
    return ['ok', []];
  }
}
LayersStandIn.configureMembers({ methods: { Check: { inSignature: '', outSignature: 'sa(ssss)' } } });

class SecretStandIn extends dbus.interface.Interface {
  Reveal(): string {
    return 'the secret';
  }
}
SecretStandIn.configureMembers({ methods: { Reveal: { inSignature: '', outSignature: 's' } } });

describe('bus policy: calling org.ovirt.Node', () => {
  let service: dbus.MessageBus;
  let nobody: RemoteClient;

  beforeAll(async () => {
    service = bus.connect();
    service.export(MANAGER_PATH, new LayersStandIn(LAYERS_IFACE));
    service.export(MANAGER_PATH, new SecretStandIn(SECRET_IFACE));
    const reply = await service.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
    expect(reply).toBe(dbus.RequestNameReply.PRIMARY_OWNER);
    nobody = await bus.clientAs('nobody');
  });

  const at = (iface: string, member: string, signature = '', body: unknown[] = []): CallSpec =>
    ({ destination: BUS_NAME, path: MANAGER_PATH, interface: iface, member, signature, body });

  it('lets nobody call org.ovirt.Node.Layers', async () => {
    expect(await nobody.call(at(LAYERS_IFACE, 'Check'))).toEqual({ ok: true, signature: 'sa(ssss)', body: ['ok', []] });
  });

  it('lets nobody call Properties, Introspectable and Peer', async () => {
    const all = await nobody.call(at('org.freedesktop.DBus.Properties', 'GetAll', 's', [LAYERS_IFACE]));
    expect(all).toEqual({ ok: true, signature: 'a{sv}', body: [{}] });
    const xml = await nobody.call(at('org.freedesktop.DBus.Introspectable', 'Introspect'));
    expect(xml.ok && String(xml.body[0])).toContain(`<interface name="${LAYERS_IFACE}">`);
    const ping = await nobody.call(at('org.freedesktop.DBus.Peer', 'Ping'));
    expect(ping).toEqual({ ok: true, signature: '', body: [] });
  });

  it('lets nobody reach Properties.Set (which is why every property must stay read-only)', async () => {
    const r = await nobody.call(at('org.freedesktop.DBus.Properties', 'Set', 'ssv', [LAYERS_IFACE, 'Version', { $v: ['s', 'x'] }]));
    // the service answered (no such property), the bus did not refuse
    expect(errorName(r)).not.toBe(ACCESS_DENIED);
    expect(r.ok).toBe(false);
  });

  it('refuses any other interface — to nobody and to root', async () => {
    expect(errorName(await nobody.call(at(SECRET_IFACE, 'Reveal')))).toBe(ACCESS_DENIED);
    const root = await bus.clientAs('root');
    expect(errorName(await root.call(at(SECRET_IFACE, 'Reveal')))).toBe(ACCESS_DENIED);
    expect(errorName(await root.call(at(LAYERS_IFACE, 'Check')))).toBe('ok');
    await root.close();
  });

  it('refuses a call without an interface field', async () => {
    const r = await nobody.call({ destination: BUS_NAME, path: MANAGER_PATH, interface: '', member: 'Reveal' });
    expect(errorName(r)).toBe(ACCESS_DENIED);
  });

  it('busctl as nobody: Layers works, Secret is refused', async () => {
    const ok = await bus.busctl('nobody', ['call', BUS_NAME, MANAGER_PATH, LAYERS_IFACE, 'Check']);
    expect({ code: ok.code, stdout: ok.stdout.trim(), stderr: ok.stderr }).toEqual({ code: 0, stdout: 'sa(ssss) "ok" 0', stderr: '' });
    const denied = await bus.busctl('nobody', ['call', BUS_NAME, MANAGER_PATH, SECRET_IFACE, 'Reveal']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Access denied|Rejected send message/);
  });
});

describe('polkit: the shipped actions', () => {
  it('pkaction lists the seven actions', async () => {
    const r = await bus.run('root', ['pkaction']);
    expect(r.code).toBe(0);
    const ours = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('org.ovirt.node.'));
    expect(ours.sort()).toEqual([...ACTIONS].sort());
  });

  it('pkaction --verbose shows the description, message and defaults polkitd parsed', async () => {
    for (const id of ACTIONS) {
      const r = await bus.run('root', ['pkaction', '--action-id', id, '--verbose']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/description:\s+\S.{10,}/);
      expect(r.stdout).toMatch(/message:\s+Authentication is required to /);
      expect(r.stdout).toMatch(/vendor:\s+oVirt Node/);
      expect(r.stdout).toMatch(/implicit any:\s+no\n/);
      expect(r.stdout).toMatch(/implicit inactive:\s+no\n/);
      expect(r.stdout).toMatch(/implicit active:\s+auth_admin_keep\n/);
    }
  });
});

describe('polkit: CheckAuthorization per caller', () => {
  let nobody: RemoteClient;
  let root: RemoteClient;
  let granted: RemoteClient;

  beforeAll(async () => {
    [nobody, root, granted] = await Promise.all([bus.clientAs('nobody'), bus.clientAs('root'), bus.clientAs('granted')]);
  });

  it('denies nobody every action (no interactive challenge on a non-session caller)', async () => {
    for (const id of ACTIONS) expect({ id, ...(await bus.checkAuthorization(nobody.uniqueName, id)) }).toEqual({ id, authorized: false, challenge: false });
  });

  it('allows root every action', async () => {
    for (const id of ACTIONS) expect({ id, ...(await bus.checkAuthorization(root.uniqueName, id)) }).toEqual({ id, authorized: true, challenge: false });
  });

  it('allows the granted user every action through the JS rule, and nothing outside the project', async () => {
    for (const id of ACTIONS) expect({ id, ...(await bus.checkAuthorization(granted.uniqueName, id)) }).toEqual({ id, authorized: true, challenge: false });
    const foreign = await bus.checkAuthorization(granted.uniqueName, 'org.freedesktop.policykit.exec');
    expect(foreign.authorized).toBe(false);
  });

  it('treats a caller that has left the bus as an error (the daemon must deny)', async () => {
    const gone = await bus.clientAs('granted');
    const name = gone.uniqueName;
    await gone.close();
    await expect(bus.checkAuthorization(name, POLKIT_ACTIONS.upgrade)).rejects.toThrow();
  });
});

describe('harness hygiene', () => {
  it('stop() stops its processes and removes the polkit files it installed', async () => {
    const other = await PrivateBus.start({ polkit: true });
    const mine = async (dir: string): Promise<string[]> =>
      (await fs.readdir(dir)).filter((n) => n.includes(`imgbased-test-${process.pid}-${other.dir.split('/').pop() ?? '?'}`));
    expect(await mine(POLKIT_ACTIONS_DIR)).toHaveLength(1);
    expect(await mine(POLKIT_RULES_DIR)).toHaveLength(1);
    const c = await other.clientAs('nobody');
    expect(c.uniqueName).toMatch(/^:1\.\d+$/);
    await other.stop();
    expect(await mine(POLKIT_ACTIONS_DIR)).toEqual([]);
    expect(await mine(POLKIT_RULES_DIR)).toEqual([]);
    await expect(fs.stat(other.socketPath)).rejects.toThrow();
  });
});
