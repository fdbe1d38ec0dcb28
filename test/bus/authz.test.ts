/**
 * The authorization matrix of every mutating method (org.ovirt.Node.Layers: Upgrade, Rollback, Cleanup, RemoveBase,
 * Pin, AutomaticUpdateTrigger, SetAutomaticUpdatePolicy; org.ovirt.Node.Transaction: Cancel), against the compiled
 * daemon on a private system-like bus with the SHIPPED bus policy and a real polkitd with the SHIPPED actions.
 *
 * - root is allowed, and so is a non-root user in the group a polkit JS rule grants the actions to: every method
 *   does what it says (each caller upgrades, rolls back, removes the base again, pins, configures, cancels).
 * - nobody gets org.ovirt.Node.Error.NotAuthorized for every method, also with valid arguments, `wait: true`, or
 *   while a transaction runs (not Busy: nothing about the queue leaks), and leaves NO trace: no transaction object,
 *   no history entry, no journal file, the host snapshot, pins, policy and every property unchanged.
 * - Properties.Set is refused to everyone (every property is read-only) and the value stays.
 * - A caller that vanished before polkit answered is denied (root, who would otherwise be allowed).
 * (Owning the name is policy.test.ts's business.)
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { LAYERS_PROPERTIES, TRANSACTION_PROPERTIES } from '../../src/dbus/api';
import type { Caller, CallResult, RemoteClient } from './harness';
import { LAYERS, NODE, ok, TX_IFACE, unwrap, v } from './wire';
import { eventually, PrivateBus, REPO } from './harness';
import { NVR, snapshotHost, sandboxHost } from '../helpers/host';
import type { ImageSet } from '../helpers/host';
import { holdBaseCopy, release } from '../helpers/procs';

const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NOT_AUTHORIZED = 'org.ovirt.Node.Error.NotAuthorized';



/** A node script that sends one method call and disconnects at once, without waiting for the reply. */
const VANISH = `
const dbus = require('dbus-next');
const bus = dbus.sessionBus({ busAddress: process.argv[1] });
bus.on('connect', () => {
  process.stdout.write(bus.name + '\\n');
  bus.send(new dbus.Message({ destination: 'org.ovirt.Node', path: '/org/ovirt/Node', interface: 'org.ovirt.Node.Layers',
    member: process.argv[2], signature: 'a{sv}', body: [{}] }));
  bus.disconnect();
});
`;

describe('authorization of every mutating method', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let daemonLog = '';
  const clients = {} as Record<Caller, RemoteClient>;
  const state = (...p: string[]): string => path.join(sysroot, 'var/lib/imgbased', ...p);

  const prop = async (name: string, iface = 'org.ovirt.Node.Layers', objPath = NODE.path, c: RemoteClient = clients.root): Promise<unknown> =>
    unwrap(ok(await c.call({
      destination: NODE.destination, path: objPath, interface: 'org.freedesktop.DBus.Properties', member: 'Get',
      signature: 'ss', body: [iface, name],
    }))[0]);

  const allProps = async (iface = 'org.ovirt.Node.Layers', objPath = NODE.path): Promise<unknown> =>
    unwrap(ok(await clients.root.call({
      destination: NODE.destination, path: objPath, interface: 'org.freedesktop.DBus.Properties', member: 'GetAll',
      signature: 's', body: [iface],
    }))[0]);

  const readOrNull = (file: string): Promise<string | null> => fs.readFile(file, 'utf8').catch(() => null);
  const list = (d: string): Promise<string[]> => fs.readdir(d).then((n) => n.sort()).catch(() => []);

  /** Everything a mutating call could leave behind. */
  async function trace(): Promise<Record<string, unknown>> {
    const xml = String(ok(await clients.root.call({
      ...NODE, path: '/org/ovirt/Node/Transaction', interface: 'org.freedesktop.DBus.Introspectable', member: 'Introspect',
    }))[0]);
    return {
      host: await snapshotHost(sysroot),
      history: await list(state('history')),
      journal: await list(state('journal')),
      pins: await readOrNull(state('pinned.json')),
      policy: await readOrNull(state('automatic-update-policy')),
      transactionObjects: [...xml.matchAll(/<node name="([^"]+)"/g)].map((m) => m[1]).sort(),
      properties: await allProps(),
      accepted: (daemonLog.match(/accepted from/g) ?? []).length,
    };
  }

  const call = (who: Caller, member: string, signature: string, body: unknown[]): Promise<CallResult> =>
    clients[who].call({ ...LAYERS, member, signature, body });

  /** Wait for a transaction to end; its State, Error and Initiator. */
  async function outcome(tx: string): Promise<{ state: string; error: unknown; initiator: string }> {
    await eventually(async () => !['queued', 'running'].includes(String(await prop('State', TX_IFACE, tx))), 60_000, 50);
    return { state: String(await prop('State', TX_IFACE, tx)), error: await prop('Error', TX_IFACE, tx), initiator: String(await prop('Initiator', TX_IFACE, tx)) };
  }

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('authz'));
    bus = await PrivateBus.start({ polkit: true });
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot]);
    daemon.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
    [clients.root, clients.nobody, clients.granted] = await Promise.all([bus.clientAs('root'), bus.clientAs('nobody'), bus.clientAs('granted')]);
  }, 120_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await gone;
    }
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** Every mutating Layers method with arguments an allowed caller could use. */
  async function layersCalls(): Promise<Array<[string, string, unknown[]]>> {
    const img = await images.image(NVR.v2, { fileName: 'v2-authz.img' });
    const layer = `${NVR.v1}+1`;
    return [
      ['Upgrade', 'sa{sv}', [img.imagePath, {}]],
      ['Upgrade', 'sa{sv}', [img.imagePath, { wait: v('b', true), 'allow-downgrade': v('b', true), method: v('s', 'tree'), keep: v('u', 3) }]],
      ['Rollback', 'sa{sv}', ['', {}]],
      ['Rollback', 'sa{sv}', [layer, { wait: v('b', true) }]],
      ['Cleanup', 'a{sv}', [{}]],
      ['Cleanup', 'a{sv}', [{ keep: v('u', 1), wait: v('b', true) }]],
      ['RemoveBase', 'sa{sv}', [NVR.v1, {}]],
      ['RemoveBase', 'sa{sv}', [NVR.v1, { wait: v('b', true) }]],
      ['Pin', 'sb', [layer, true]],
      ['Pin', 'sb', [layer, false]],
      ['AutomaticUpdateTrigger', 'a{sv}', [{}]],
      ['AutomaticUpdateTrigger', 'a{sv}', [{ mode: v('s', 'apply'), wait: v('b', true) }]],
      ['SetAutomaticUpdatePolicy', 's', ['apply']],
      ['SetAutomaticUpdatePolicy', 's', ['none']],
    ];
  }

  it('nobody: every mutating Layers method → NotAuthorized, and no trace at all', async () => {
    const before = await trace();
    for (const [member, signature, body] of await layersCalls()) {
      const r = await call('nobody', member, signature, body);
      expect({ member, body, r }).toEqual({ member, body, r: { ok: false, name: NOT_AUTHORIZED, message: expect.stringMatching(/^not authorized for org\.ovirt\.node\.layers\./) } });
    }
    expect(await trace()).toEqual(before);
    expect(daemonLog).not.toMatch(/failed unexpectedly|crashed/);
  });

  it('nobody is NotAuthorized (not Busy) while a transaction runs, and nothing is queued', async () => {
    const big = await images.image(NVR.v3, { extraMb: 64, fileName: 'v3-authz-big.img' });
    const [tx] = ok(await call('root', 'Upgrade', 'sa{sv}', [big.imagePath, { method: v('s', 'tree') }])) as [string];
    // Held in its base copy (SIGSTOP by pid), so it cannot end before the calls below on a fast or busy machine.
    const held = await holdBaseCopy(daemon.pid ?? -1, () => daemonLog);
    try {
      const before = { history: await list(state('history')), accepted: (daemonLog.match(/accepted from/g) ?? []).length };
      for (const [member, signature, body] of await layersCalls()) {
        const r = await call('nobody', member, signature, body);
        expect({ member, r }).toEqual({ member, r: expect.objectContaining({ ok: false, name: NOT_AUTHORIZED }) });
      }
      expect(await prop('ActiveTransaction')).toBe(tx);
      expect(await prop('State', TX_IFACE, tx)).toBe('running');
      expect({ history: await list(state('history')), accepted: (daemonLog.match(/accepted from/g) ?? []).length }).toEqual(before);

      // Cancel: nobody is denied and the transaction runs on; the granted user may cancel it.
      const denied = await clients.nobody.call({ ...NODE, path: tx, interface: TX_IFACE, member: 'Cancel' });
      expect(denied).toEqual({ ok: false, name: NOT_AUTHORIZED, message: 'not authorized for org.ovirt.node.layers.cancel' });
      expect(await prop('State', TX_IFACE, tx)).toBe('running');
      expect(await prop('Error', TX_IFACE, tx)).toEqual(['', '']);
      ok(await clients.granted.call({ ...NODE, path: tx, interface: TX_IFACE, member: 'Cancel' }));
    } finally {
      release(held);
    }
    expect(await outcome(tx)).toEqual({ state: 'cancelled', error: ['org.ovirt.Node.Error.Cancelled', expect.any(String)], initiator: expect.stringMatching(/^uid 0 /) });
    expect(daemonLog).toMatch(new RegExp(`cancel of ${path.basename(tx)} requested by :1\\.\\d+`));
  }, 120_000);

  it.each([
    ['root', NVR.v2, 'uid 0 '],
    ['granted', NVR.v3, 'uid GRANTED '],
  ] as const)('%s: every mutating method is allowed and does its work', async (who, nvr, initiatorPrefix) => {
    const prefix = initiatorPrefix.replace('GRANTED', String(bus.granted?.uid));
    const v1Layer = `${NVR.v1}+1`;
    const start = async (member: string, signature: string, body: unknown[]): Promise<string> => {
      const [tx] = ok(await call(who, member, signature, body)) as [string];
      expect(tx).toMatch(/^\/org\/ovirt\/Node\/Transaction\/t\d{14}_[0-9a-f]{6}$/);
      return tx;
    };
    const succeeded = async (tx: string): Promise<void> => {
      expect(await outcome(tx)).toEqual({ state: 'succeeded', error: ['', ''], initiator: expect.stringContaining(prefix) });
    };

    // Pin / unpin
    expect(ok(await call(who, 'Pin', 'sb', [v1Layer, true]))).toEqual([]);
    expect((await prop('Layers') as Array<Record<string, unknown>>).find((l) => l['name'] === v1Layer)?.['pinned']).toBe(true);
    expect(ok(await call(who, 'Pin', 'sb', [v1Layer, false]))).toEqual([]);
    expect(await readOrNull(state('pinned.json'))).toBe('[]\n');
    // Configure the automatic update policy, trigger it (nothing in ImageDir), back to none.
    expect(ok(await call(who, 'SetAutomaticUpdatePolicy', 's', ['check']))).toEqual([]);
    await eventually(async () => (await prop('AutomaticUpdatePolicy')) === 'check');
    expect(ok(await call(who, 'AutomaticUpdateTrigger', 'a{sv}', [{}]))).toEqual([false, '', '/']);
    expect(ok(await call(who, 'SetAutomaticUpdatePolicy', 's', ['none']))).toEqual([]);
    // Upgrade → the new layer is the default; Rollback → back to v1's layer; RemoveBase → the new base is gone.
    const img = await images.image(nvr, { fileName: `${who}-authz.img` });
    await succeeded(await start('Upgrade', 'sa{sv}', [img.imagePath, {}]));
    expect(await prop('DefaultLayer')).toBe(`${nvr}+1`);
    await succeeded(await start('Rollback', 'sa{sv}', ['', {}]));
    expect(await prop('DefaultLayer')).toBe(v1Layer);
    await succeeded(await start('Cleanup', 'a{sv}', [{}]));
    await succeeded(await start('RemoveBase', 'sa{sv}', [nvr, {}]));
    expect((await prop('Bases') as Array<Record<string, unknown>>).map((b) => b['name'])).toEqual([NVR.v1]);
    // Cancel: a running transaction of the other kind of caller, cancelled by this one.
    const big = await images.image(nvr, { extraMb: 64, fileName: `${who}-authz-big.img` });
    const other: Caller = who === 'root' ? 'granted' : 'root';
    const [tx] = ok(await call(other, 'Upgrade', 'sa{sv}', [big.imagePath, {}])) as [string];
    ok(await clients[who].call({ ...NODE, path: tx, interface: TX_IFACE, member: 'Cancel' }));
    expect((await outcome(tx)).state).toBe('cancelled');
    // Cancel of a finished transaction: allowed, and it stays as it was.
    ok(await clients[who].call({ ...NODE, path: tx, interface: TX_IFACE, member: 'Cancel' }));
    expect((await outcome(tx)).state).toBe('cancelled');
  }, 180_000);

  it('nobody: Cancel of a finished transaction → NotAuthorized, and it stays as it was', async () => {
    const [tx] = ok(await call('root', 'Cleanup', 'a{sv}', [{}])) as [string];
    await outcome(tx);
    const before = { tx: await allProps(TX_IFACE, tx), trace: await trace() };
    const r = await clients.nobody.call({ ...NODE, path: tx, interface: TX_IFACE, member: 'Cancel' });
    expect(r).toMatchObject({ ok: false, name: NOT_AUTHORIZED });
    expect({ tx: await allProps(TX_IFACE, tx), trace: await trace() }).toEqual(before);
  });

  it('Properties.Set is refused to every caller on every property; the values stay', async () => {
    const [tx] = ok(await call('root', 'Cleanup', 'a{sv}', [{}])) as [string];
    await outcome(tx);
    const before = { layers: await allProps(), tx: await allProps(TX_IFACE, tx), trace: await trace() };
    const sample: Record<string, { $v: [string, unknown] }> = {
      s: v('s', 'x'), o: v('o', '/x'), u: v('u', 1), t: v('t', { $n: '1' }), 'aa{sv}': v('aa{sv}', []), 'a{sv}': v('a{sv}', {}), '(ss)': v('(ss)', ['a', 'b']),
    };
    const targets: Array<[string, string, string, string]> = [
      ...Object.entries(LAYERS_PROPERTIES).map(([n, p]): [string, string, string, string] => [NODE.path, 'org.ovirt.Node.Layers', n, p.signature]),
      ...Object.entries(TRANSACTION_PROPERTIES).map(([n, p]): [string, string, string, string] => [tx, TX_IFACE, n, p.signature]),
    ];
    for (const who of ['nobody', 'granted', 'root'] as const) {
      for (const [objPath, iface, name, sig] of targets) {
        for (const value of [sample[sig] ?? v('s', 'x'), v('s', 'hijacked')]) {
          const r = await clients[who].call({
            ...NODE, path: objPath, interface: 'org.freedesktop.DBus.Properties', member: 'Set', signature: 'ssv', body: [iface, name, value],
          });
          expect({ who, name, r }).toEqual({
            who, name, r: { ok: false, name: expect.stringMatching(/^org\.freedesktop\.DBus\.Error\.(InvalidArgs|PropertyReadOnly|AccessDenied)$/), message: expect.any(String) },
          });
        }
      }
    }
    expect({ layers: await allProps(), tx: await allProps(TX_IFACE, tx), trace: await trace() }).toEqual(before);
  });

  it('a caller that vanished before polkit answered is denied (even root): nothing starts', async () => {
    const before = await trace();
    const logBefore = daemonLog.length;
    const senders: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await bus.run('root', [process.execPath, '-e', VANISH, bus.address, i % 2 ? 'Cleanup' : 'AutomaticUpdateTrigger'],
        { env: { NODE_PATH: path.join(REPO, 'node_modules') } });
      expect(r).toMatchObject({ code: 0 });
      senders.push(r.stdout.trim());
    }
    // Each call was received and refused: polkit could not find the caller any more.
    const refused = (s: string): boolean => new RegExp(`polkit check of \\S+ for ${s.replace('.', '\\.')} failed: .*NameHasNoOwner`).test(daemonLog.slice(logBefore));
    await eventually(() => senders.every(refused), 10_000, 50);
    expect(await trace()).toEqual(before);
  });
});
