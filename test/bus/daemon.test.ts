/**
 * The daemon on a real private system bus (the SHIPPED bus policy) with a real polkitd (the SHIPPED .policy), in
 * sandbox mode over a temp sysroot with the dir backend. Callers: root, nobody, and a polkit-granted user.
 * Runs the compiled daemon (scripts/test.sh compiles first).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { CallResult, RemoteClient, SignalRecord } from './harness';
import { LAYERS, NODE, ok, unwrap, v } from './wire';
import { eventually, PrivateBus } from './harness';
import { parseIntrospectionXml } from '../dbus/introspection-xml';
import { NVR, snapshotHost, V2_CHANGES, sandboxHost } from '../helpers/host';
import type { ImageSet } from '../helpers/host';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');




describe('imgbased daemon on a private system bus with polkit', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let daemonLog = '';
  let root: RemoteClient;
  let nobody: RemoteClient;
  let granted: RemoteClient;

  const prop = async (c: RemoteClient, name: string, iface = 'org.ovirt.Node.Layers', objPath = NODE.path): Promise<unknown> =>
    unwrap(ok(await c.call({
      destination: NODE.destination, path: objPath, interface: 'org.freedesktop.DBus.Properties', member: 'Get',
      signature: 'ss', body: [iface, name],
    }))[0]);

  async function startDaemon(env: Record<string, string> = {}): Promise<void> {
    daemonLog = '';
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox'], env);
    daemon.stderr.on('data', (b: Buffer) => {
      daemonLog += b.toString();
    });
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }

  async function stopDaemon(): Promise<number | null> {
    const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
    daemon.kill('SIGTERM');
    return exited;
  }

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('daemon'));
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    await startDaemon();
    [root, nobody, granted] = await Promise.all([bus.clientAs('root'), bus.clientAs('nobody'), bus.clientAs('granted')]);
  }, 120_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) await stopDaemon();
    await bus?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('introspects exactly as the shipped XML says', async () => {
    const shipped = parseIntrospectionXml(await fs.readFile(path.join(REPO, 'dbus/org.ovirt.Node.Layers.xml'), 'utf8'));
    const live = parseIntrospectionXml(String(ok(await root.call({
      ...NODE, interface: 'org.freedesktop.DBus.Introspectable', member: 'Introspect',
    }))[0]));
    const shape = (i: ReturnType<typeof parseIntrospectionXml>, name: string): unknown => {
      const x = i.interfaces.get(name);
      return x && {
        methods: [...x.methods.values()].map((m) => [m.name, m.args.map((a) => `${a.direction}:${a.type}`)]).sort(),
        properties: [...x.properties.values()].map((p) => [p.name, p.type, p.access]).sort(),
        signals: [...x.signals.values()].map((s) => [s.name, s.args.map((a) => a.type)]).sort(),
      };
    };
    expect(shape(live, 'org.ovirt.Node.Layers')).toEqual(shape(shipped, 'org.ovirt.Node.Layers'));
  });

  it('anyone may read the properties', async () => {
    expect(await prop(nobody, 'CurrentLayer')).toBe(`${NVR.v1}+1`);
    expect(await prop(nobody, 'DefaultLayer')).toBe(`${NVR.v1}+1`);
    expect(await prop(nobody, 'ActiveTransaction')).toBe('/');
    expect(await prop(nobody, 'Health')).toBe('ok');
    const layers = (await prop(nobody, 'Layers')) as Array<Record<string, unknown>>;
    expect(layers).toEqual([expect.objectContaining({ name: `${NVR.v1}+1`, current: true, default: true, pinned: false })]);
    const pool = (await prop(nobody, 'Pool')) as Record<string, unknown>;
    expect(pool['size']).toBeGreaterThan(0);
    expect(await prop(nobody, 'Version')).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a denied caller gets NotAuthorized and nothing changes', async () => {
    const img = await images.image(NVR.v2, V2_CHANGES);
    const before = await snapshotHost(sysroot);
    const history = ok(await nobody.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [0] }))[0] as unknown[];
    for (const [member, signature, body] of [
      ['Upgrade', 'sa{sv}', [img.imagePath, {}]], ['Rollback', 'sa{sv}', ['', {}]], ['Cleanup', 'a{sv}', [{}]],
      ['Pin', 'sb', [`${NVR.v1}+1`, true]], ['SetAutomaticUpdatePolicy', 's', ['apply']],
    ] as const) {
      const r = await nobody.call({ ...LAYERS, member, signature, body: [...body] });
      expect({ member, r }).toEqual({ member, r: expect.objectContaining({ ok: false, name: 'org.ovirt.Node.Error.NotAuthorized' }) });
    }
    expect(await snapshotHost(sysroot)).toEqual(before);
    expect(ok(await nobody.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [0] }))[0]).toEqual(history);
  });

  it('bad arguments are named errors: unknown option key, wrong variant type, wrong argument types', async () => {
    const r1 = await root.call({ ...LAYERS, member: 'Cleanup', signature: 'a{sv}', body: [{ kepe: v('u', 2) }] });
    expect(r1).toEqual({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument', message: expect.stringMatching(/unknown option key "kepe"/) });
    const r2 = await root.call({ ...LAYERS, member: 'Cleanup', signature: 'a{sv}', body: [{ keep: v('s', 'two') }] });
    expect(r2).toEqual({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument', message: expect.stringMatching(/"keep" must be a uint32/) });
    const r3 = await root.call({ ...LAYERS, member: 'Upgrade', signature: 's', body: ['/x'] });
    expect(r3).toEqual({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument', message: 'Upgrade takes arguments (sa{sv}), got (s)' });
    const r4 = await root.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: ['relative.img', {}] });
    expect(r4).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument' });
    const r5 = await root.call({ ...LAYERS, member: 'SetAutomaticUpdatePolicy', signature: 's', body: ['sometimes'] });
    expect(r5).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument' });
  });

  it('a granted user upgrades: Progress (throttled, monotonic) and Finished signals, properties change, late joiners can read', async () => {
    await granted.addMatch("type='signal',sender='org.ovirt.Node'");
    const img = await images.image(NVR.v2, { ...V2_CHANGES, extraMb: 8, fileName: 'v2-daemon.img' });
    const [txPath] = ok(await granted.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: [img.imagePath, {}] })) as [string];
    expect(txPath).toMatch(/^\/org\/ovirt\/Node\/Transaction\/t\d{14}_[0-9a-f]{6}$/);
    const finished = await granted.waitForSignal((s) => s.path === txPath && s.member === 'Finished', 60_000);
    expect(finished.body).toEqual([true, '', '']);
    const progress = granted.signals.filter((s: SignalRecord) => s.path === txPath && s.member === 'Progress');
    const percents = progress.map((s) => s.body[0] as number);
    expect(percents.length).toBeGreaterThan(1);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents[percents.length - 1]).toBe(100);
    const changed = granted.signals.filter((s) => s.path === NODE.path && s.member === 'PropertiesChanged');
    expect(changed.some((s) => JSON.stringify(s.body).includes('DefaultLayer'))).toBe(true);
    await eventually(async () => (await prop(root, 'DefaultLayer')) === `${NVR.v2}+1`);
    // A late joiner reads the finished transaction.
    expect(await prop(nobody, 'State', 'org.ovirt.Node.Transaction', txPath)).toBe('succeeded');
    expect(await prop(nobody, 'Percent', 'org.ovirt.Node.Transaction', txPath)).toBe(100);
    expect(await prop(nobody, 'Error', 'org.ovirt.Node.Transaction', txPath)).toEqual(['', '']);
    const last = (await prop(nobody, 'LastTransaction')) as Record<string, unknown>;
    expect(last).toMatchObject({ kind: 'upgrade', state: 'succeeded' });
  }, 120_000);

  it('a second mutating call is Busy naming the running one; wait queues; Cancel is authorized and undoes', async () => {
    const big = await images.image(NVR.v3, { extraMb: 48, fileName: 'v3-big.img' });
    const before = await snapshotHost(sysroot);
    const [tx] = ok(await root.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: [big.imagePath, {}] })) as [string];
    const busy = await root.call({ ...LAYERS, member: 'Cleanup', signature: 'a{sv}', body: [{}] });
    expect(busy).toEqual({ ok: false, name: 'org.ovirt.Node.Error.Busy', message: expect.stringContaining(path.basename(tx)) });
    const [queued] = ok(await root.call({ ...LAYERS, member: 'Cleanup', signature: 'a{sv}', body: [{ wait: v('b', true) }] })) as [string];
    expect(await prop(root, 'State', 'org.ovirt.Node.Transaction', queued)).toBe('queued');
    const denied = await nobody.call({ destination: NODE.destination, path: tx, interface: 'org.ovirt.Node.Transaction', member: 'Cancel' });
    expect(denied).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.NotAuthorized' });
    ok(await root.call({ destination: NODE.destination, path: tx, interface: 'org.ovirt.Node.Transaction', member: 'Cancel' }));
    await eventually(async () => (await prop(root, 'State', 'org.ovirt.Node.Transaction', tx)) === 'cancelled', 60_000, 100);
    expect(await prop(root, 'Error', 'org.ovirt.Node.Transaction', tx)).toEqual(['org.ovirt.Node.Error.Cancelled', expect.any(String)]);
    await eventually(async () => (await prop(root, 'State', 'org.ovirt.Node.Transaction', queued)) === 'succeeded', 60_000, 100);
    expect(await snapshotHost(sysroot)).toEqual(before); // cancelled upgrade undone; the cleanup had nothing to remove
  }, 120_000);

  it('sandbox Reboot boots the default layer; pinning shows in Layers', async () => {
    const [booted] = ok(await root.call({ ...NODE, interface: 'org.ovirt.Node.Sandbox', member: 'Reboot' })) as [string];
    expect(booted).toBe(`${NVR.v2}+1`);
    await eventually(async () => (await prop(root, 'CurrentLayer')) === `${NVR.v2}+1`);
    ok(await granted.call({ ...LAYERS, member: 'Pin', signature: 'sb', body: [`${NVR.v1}+1`, true] }));
    const layers = (await prop(root, 'Layers')) as Array<Record<string, unknown>>;
    expect(layers.find((l) => l['name'] === `${NVR.v1}+1`)?.['pinned']).toBe(true);
    const missing = await root.call({ ...LAYERS, member: 'Pin', signature: 'sb', body: ['nope-1-1+1', true] });
    expect(missing).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.NotFound' });
  });

  it('Check answers the health report', async () => {
    const [status, results] = ok(await nobody.call({ ...LAYERS, member: 'Check' })) as [string, Array<[string, string, string, string]>];
    expect(status).toBe('ok');
    expect(results.map((r) => r[1])).toContain('Checking every layer has a boot entry');
  });

  it('history persists across a restart; a transaction killed mid-way is recovered before the name is owned', async () => {
    expect(await stopDaemon()).toBe(0);
    // Crash the next upgrade at a step boundary (SIGKILL), as a power cut would.
    await startDaemon({ IMGBASED_FAILPOINTS: 'before:carry-etc' });
    const before = await snapshotHost(sysroot);
    const img = await images.image(NVR.v3, { fileName: 'v3-crash.img' });
    const exited = new Promise<string | null>((r) => daemon.once('exit', (_c, sig) => r(sig)));
    ok(await root.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: [img.imagePath, {}] }));
    expect(await exited).toBe('SIGKILL');
    await startDaemon();
    expect(await snapshotHost(sysroot)).toEqual(before);
    const history = unwrap(ok(await nobody.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [0] }))[0]) as Array<Record<string, unknown>>;
    expect(history[0]).toMatchObject({ kind: 'upgrade', state: 'failed', recovered: true });
    expect(String(history[0]?.['error-message'])).toMatch(/interrupted .*rolled back/);
    expect(history.map((h) => `${h['kind']}:${h['state']}`)).toEqual(expect.arrayContaining(['upgrade:succeeded', 'upgrade:cancelled', 'init:succeeded']));
    expect(daemonLog).toMatch(/recovered transaction/);
  }, 120_000);
});
