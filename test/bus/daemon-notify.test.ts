/**
 * The compiled daemon as systemd would run it (Type=notify, WatchdogSec=): NOTIFY_SOCKET is a real SOCK_DGRAM
 * listener (python3, SO_PASSCRED), WATCHDOG_USEC is 400 ms, the bus is a private system-like bus with the SHIPPED
 * policy and a real polkitd, the host a sandbox sysroot with the dir backend.
 *
 * Proves: READY=1 is sent once, only after org.ovirt.Node has an owner (checked while the daemon is frozen at the
 * moment it sent READY=1); STATUS= lines follow the daemon's life (starting, recovering…, idle, running transaction
 * …, idle); WATCHDOG=1 keeps coming at half the interval — also while an upgrade works; SIGTERM gives STOPPING=1
 * and exit 0; SIGTERM during an upgrade cancels it and undoes it before the process exits (history: cancelled,
 * not recovered; host snapshot unchanged; no journal left), and calls arriving meanwhile start nothing.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { CallResult, RemoteClient } from './harness';
import { LAYERS, NODE, ok, unwrap } from './wire';
import { eventually, PrivateBus } from './harness';
import { NotifyListener } from './notify-listener';
import { NVR, snapshotHost, sandboxHost } from '../helpers/host';
import type { ImageSet } from '../helpers/host';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const WATCHDOG_MS = 400;



describe('imgbased daemon under a NOTIFY_SOCKET with a watchdog', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let notify: NotifyListener;
  let daemon: ChildProcessWithoutNullStreams;
  let daemonLog = '';
  let spawnedAt = 0;
  let root: RemoteClient;

  function startDaemon(): ChildProcessWithoutNullStreams {
    daemonLog = '';
    spawnedAt = Date.now();
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox'], {
      NOTIFY_SOCKET: notify.socketPath,
      WATCHDOG_USEC: String(WATCHDOG_MS * 1000),
    });
    daemon.stderr.on('data', (b: Buffer) => {
      daemonLog += b.toString();
    });
    return daemon;
  }

  const exitOf = (p: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: string | null }> =>
    p.exitCode !== null || p.signalCode !== null
      ? Promise.resolve({ code: p.exitCode, signal: p.signalCode })
      : new Promise((r) => p.once('exit', (code, signal) => r({ code, signal })));

  const lines = (pid: number | undefined): string[] => notify.lines(pid).map((l) => l.line);

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('daemon-notify'));
    bus = await PrivateBus.start({ polkit: true });
    notify = await NotifyListener.start(dir, { address: bus.address, name: 'org.ovirt.Node' });
    root = await bus.clientAs('root');
  }, 120_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = exitOf(daemon);
      daemon.kill('SIGTERM');
      await gone;
    }
    await bus?.stop();
    await notify?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('READY=1 arrives once, after the name is owned; STATUS lines; WATCHDOG=1 at half the interval; SIGTERM → STOPPING=1, exit 0', async () => {
    const p = startDaemon();
    const ready = await notify.waitFor((d) => d.pid === p.pid && d.data.split('\n').includes('READY=1'), 20_000);
    const startToReady = ready.t - spawnedAt;
    process.stdout.write(`daemon start → READY=1: ${startToReady.toFixed(0)} ms\n`);
    // The listener froze the daemon when READY=1 came in and asked the bus: the name was already owned.
    expect({ owner: ready.ownerAtReady, check: ready.ownerCheck }).toEqual({ owner: true, check: 'b true' });
    expect(ready.uid).toBe(0);
    expect(startToReady).toBeLessThan(5_000); // the goal (≤ 400 ms) is bench/api's business; this only catches hangs

    // Idle for a few watchdog intervals: WATCHDOG=1 keeps coming, never later than the interval allows.
    await new Promise((r) => setTimeout(r, 4 * WATCHDOG_MS));
    const dogs = notify.lines(p.pid).filter((l) => l.line === 'WATCHDOG=1').map((l) => l.t);
    expect(dogs.length).toBeGreaterThanOrEqual(6); // one at once, then every 200 ms
    const gaps = dogs.slice(1).map((t, i) => t - (dogs[i] ?? t));
    expect(Math.max(...gaps)).toBeLessThan(WATCHDOG_MS);

    const exited = exitOf(p);
    p.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    await eventually(() => lines(p.pid).includes('STOPPING=1'), 3_000, 20);

    const rest = lines(p.pid).filter((l) => l !== 'WATCHDOG=1');
    expect(rest.filter((l) => l === 'READY=1')).toHaveLength(1);
    // STATUS lines in order, READY=1 after the start-up ones, STOPPING=1 last but for its own STATUS line.
    expect(rest).toEqual([
      'STATUS=starting',
      'STATUS=recovering interrupted transactions',
      'READY=1',
      'STATUS=idle',
      'STOPPING=1',
      'STATUS=stopping',
    ]);
    expect(daemonLog).toMatch(/SIGTERM: stopping/);
  }, 60_000);

  it('STATUS names the running transaction and returns to idle; WATCHDOG=1 keeps up while an upgrade works', async () => {
    const img = await images.image(NVR.v2, { extraMb: 96, fileName: 'v2-big.img' });
    const p = startDaemon();
    const ready = await notify.waitFor((d) => d.pid === p.pid && d.data.split('\n').includes('READY=1'), 20_000);
    await root.addMatch("type='signal',sender='org.ovirt.Node'");
    const t0 = Date.now();
    const [tx] = ok(await root.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: [img.imagePath, {}] })) as [string];
    const id = path.basename(tx);
    const finished = await root.waitForSignal((s) => s.path === tx && s.member === 'Finished', 120_000);
    expect(finished.body).toEqual([true, '', '']);
    const t1 = Date.now();
    await notify.waitFor((d) => d.pid === p.pid && d.t > t1 - 50 && d.data === 'STATUS=idle', 5_000);
    await notify.waitFor((d) => d.pid === p.pid && d.t >= t1 && d.data === 'WATCHDOG=1', 2 * WATCHDOG_MS);
    // every ping from READY=1 until the first one after the upgrade ended
    const dogs = notify.lines(p.pid).filter((l) => l.line === 'WATCHDOG=1' && l.t >= ready.t).map((l) => l.t);
    const gaps = dogs.slice(1).map((t, i) => t - (dogs[i] ?? t));
    process.stdout.write(`upgrade took ${t1 - t0} ms; watchdog gaps: max ${Math.max(...gaps).toFixed(0)} ms over ${gaps.length}\n`);
    // The pings cover READY=1 → past the end of the upgrade with no gap a watchdog would fire on. (Not a count: on
    // a loaded machine timers run late, which is fine as long as no gap reaches the limit.)
    expect((dogs[0] ?? Infinity) - ready.t).toBeLessThan(WATCHDOG_MS);
    expect(dogs.at(-1)).toBeGreaterThanOrEqual(t1);
    expect(Math.max(...gaps)).toBeLessThan(WATCHDOG_MS);
    const statuses = notify.lines(p.pid).map((l) => l.line).filter((l) => l.startsWith('STATUS='));
    expect(statuses.slice(-2)).toEqual([`STATUS=running transaction ${id} (upgrade)`, 'STATUS=idle']);
  }, 180_000);

  it('SIGTERM during an upgrade cancels and undoes it before exit; calls meanwhile start nothing', async () => {
    const big = await images.image(NVR.v3, { extraMb: 64, fileName: 'v3-big.img' });
    let p = daemon;
    if (p.exitCode !== null || p.signalCode !== null) {
      p = startDaemon();
      await notify.waitFor((d) => d.pid === p.pid && d.data.split('\n').includes('READY=1'), 20_000);
      await root.addMatch("type='signal',sender='org.ovirt.Node'");
    }
    const before = await snapshotHost(sysroot);
    const historyBefore = (await fs.readdir(path.join(sysroot, 'var/lib/imgbased/history'))).sort();
    const [tx] = ok(await root.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: [big.imagePath, {}] })) as [string];
    const id = path.basename(tx);
    await notify.waitFor((d) => d.pid === p.pid && d.data === `STATUS=running transaction ${id} (upgrade)`, 10_000);
    // Let it get past verification into the journaled steps (something to undo), then stop the daemon.
    await root.waitForSignal((s) => s.path === tx && s.member === 'Progress' && ['create-layer', 'carry-etc', 'write-base'].includes(String(s.body[1])), 60_000);
    const sigtermAt = Date.now();
    const exited = exitOf(p);
    p.kill('SIGTERM');
    // While it winds down, new work is refused and nothing is started.
    const late = await root.call({ ...LAYERS, member: 'Cleanup', signature: 'a{sv}', body: [{ wait: { $v: ['b', true] } }] });
    process.stdout.write(`call during shutdown: ${JSON.stringify(late)}\n`);
    expect(late).toMatchObject({ ok: false, name: expect.stringMatching(/^org\.ovirt\.Node\.Error\.(Busy|Failed)$|^org\.freedesktop\.DBus\.Error\.(NoReply|ServiceUnknown|NameHasNoOwner)$|^harness\./) });
    expect(await exited).toEqual({ code: 0, signal: null });
    process.stdout.write(`SIGTERM during an upgrade → exit: ${Date.now() - sigtermAt} ms\n`);

    const mine = notify.lines(p.pid);
    const stoppingAt = mine.find((l) => l.line === 'STOPPING=1')?.t;
    expect(stoppingAt).toBeDefined();
    const rest = mine.map((l) => l.line).filter((l) => l !== 'WATCHDOG=1');
    expect(rest.slice(-3)).toEqual([`STATUS=running transaction ${id} (upgrade)`, 'STOPPING=1', `STATUS=stopping: cancelling transaction ${id}`]);

    // Undone before exit: the host is as before, no journal is left, history says cancelled (not recovered).
    expect(await snapshotHost(sysroot)).toEqual(before);
    const historyAfter = (await fs.readdir(path.join(sysroot, 'var/lib/imgbased/history'))).sort();
    expect(historyAfter.filter((n) => !historyBefore.includes(n))).toEqual([`${id}.json`]);
    const record = JSON.parse(await fs.readFile(path.join(sysroot, 'var/lib/imgbased/history', `${id}.json`), 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ id, kind: 'upgrade', state: 'cancelled', error: { name: 'org.ovirt.Node.Error.Cancelled' } });
    expect(record['recovered']).not.toBe(true);
    expect(daemonLog).toMatch(new RegExp(`transaction ${id} cancelled`));

    // A restart finds nothing to recover and shows the cancelled upgrade as the last transaction.
    const again = startDaemon();
    await notify.waitFor((d) => d.pid === again.pid && d.data.split('\n').includes('READY=1'), 20_000);
    expect(daemonLog).not.toMatch(/recovered transaction/);
    const history = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, unknown>>;
    expect(history[0]).toMatchObject({ id, kind: 'upgrade', state: 'cancelled', recovered: false });
    const exited2 = exitOf(again);
    again.kill('SIGTERM');
    expect(await exited2).toEqual({ code: 0, signal: null });
  }, 120_000);
});
