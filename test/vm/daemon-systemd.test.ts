/**
 * The daemon as a package installs it, under the guest's real systemd (PID 1), real system bus and polkitd, on real
 * dm-thin (issue 4): `make install DESTDIR=/ PREFIX=/usr` from the shared tree, D-Bus activation through systemd
 * (SystemdService=imgbased.service), Type=notify (active only after READY=1, STATUS= shown), the watchdog (a stopped
 * daemon is killed and restarted), an upgrade by root over the bus with the shipped polkit actions, a non-root caller
 * refused with NotAuthorized, journald priorities from the `<N>` prefixes, the automatic-update timer's service, and
 * imgbased-boot-complete.service judging trial boots with gates on real units (pass → default moves, fail → unit fails),
 * and UpdateRepo= under the shipped hardening: a dnf repository served on 127.0.0.1 inside the guest, asked by the
 * daemon's dnf (check-update, D-Bus properties) with its cache in /var/cache/imgbased (CacheDirectory=), and staged
 * from by imgbased-automatic.service.
 *
 * The guest itself is the host: an oVirt-like install on the blank disk (VG onn, thin pool00, root LV), `imgbased
 * init` by the installed offline tool, /etc/imgbased/imgbased.conf pointing at it. The guest is a throw-away overlay;
 * the disk is wiped afterwards (the other VM test files start blank), and imgbased's files outside /usr are removed.
 */
import { execFile, spawn } from 'node:child_process';
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { promisify } from 'node:util';
import { TAG } from '../../src/storage/backend';
import { imageSet, NVR, V2_CHANGES } from '../helpers/host';
import { serveRepo } from '../helpers/repo-server';
import type { ImageSet } from '../helpers/host';
import { installOvirtHost, lvsState, OVIRT_CONFIG, type OvirtHost } from './ovirt-host';

const pexec = promisify(execFile);
/** The repository (this file runs as dist/test/vm/daemon-systemd.test.js). */
const REPO = path.resolve(__dirname, '../../..');
const UNIT = 'imgbased.service';
const BUS = 'org.ovirt.Node';
const OBJ = '/org/ovirt/Node';
const LAYERS = 'org.ovirt.Node.Layers';
const TXN = 'org.ovirt.Node.Transaction';
const DROPIN_DIR = '/run/systemd/system/imgbased.service.d';
const WATCHDOG_DROPIN = path.join(DROPIN_DIR, '50-vm-test-watchdog.conf');
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
/**
 * busctl with a method-call timeout above its default 25 s, and dbus-daemon's activation timeout (default 25 s)
 * raised by a test-only config: under TCG (no KVM) the daemon takes ~20 s from exec to READY=1 (about 150 ms on
 * hardware), too close to the defaults. Installed for the test only, removed afterwards.
 */
const BUSCTL = ['busctl', '--system', '--timeout=180'];
const DBUS_TEST_CONF = '/etc/dbus-1/system.d/zz-imgbased-vm-test.conf';
const DBUS_TEST_LIMITS = '<busconfig>\n  <limit name="service_start_timeout">180000</limit>\n</busconfig>\n';
interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cmd(argv: readonly string[], opts: { cwd?: string } = {}): Promise<Result> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  try {
    const r = await pexec(file, args, { cwd: opts.cwd ?? '/', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C', SYSTEMD_COLORS: '0' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

/** Run, fail with the command's stderr unless it exits 0; stdout. */
async function must(...argv: string[]): Promise<string> {
  const r = await cmd(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `systemctl show UNIT -p …` as a record. */
async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = await must('systemctl', 'show', unit, ...props.flatMap((p) => ['-p', p]));
  const rec: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) rec[line.slice(0, i)] = line.slice(i + 1);
  }
  return rec;
}

/** busctl --json=short output {"type": T, "data": D} → D (validated). */
function busData(stdout: string, type: string): unknown {
  const v: unknown = JSON.parse(stdout);
  if (typeof v !== 'object' || v === null) throw new Error(`busctl: not an object: ${stdout}`);
  const o = v as Record<string, unknown>;
  if (o['type'] !== type) throw new Error(`busctl: type ${String(o['type'])}, expected ${type}: ${stdout}`);
  return o['data'];
}

/**
 * A property through `busctl call … Properties Get` (only `call` honours --timeout; get-property keeps sd-bus's 25 s
 * default): {"type":"v","data":[{"type": T, "data": D}]} → D (validated).
 */
async function getProp(objPath: string, iface: string, prop: string, type: string): Promise<unknown> {
  const out = busData(await must(...BUSCTL, '--json=short', 'call', BUS, objPath, 'org.freedesktop.DBus.Properties', 'Get', 'ss', iface, prop), 'v');
  const [variant] = Array.isArray(out) ? out : [];
  return busData(JSON.stringify(variant ?? null), type);
}

async function getString(objPath: string, iface: string, prop: string): Promise<string> {
  const v = await getProp(objPath, iface, prop, 's');
  if (typeof v !== 'string') throw new Error(`${prop}: not a string`);
  return v;
}

interface JournalEntry {
  message: string;
  priority: string;
  pid: string;
  /** CLOCK_MONOTONIC µs, comparable with systemd's *TimestampMonotonic properties and process.hrtime. */
  monotonic: number;
}

/** The journal of a unit as parsed records, oldest first. */
async function journal(unit: string): Promise<JournalEntry[]> {
  const out = await must('journalctl', '-b', '-u', unit, '-o', 'json', '--no-pager', '--output-fields=MESSAGE,PRIORITY,_PID');
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const v = JSON.parse(l) as Record<string, unknown>;
    const msg = v['MESSAGE'];
    return {
      // journald stores non-UTF-8 messages as byte arrays
      message: typeof msg === 'string' ? msg : Array.isArray(msg) ? Buffer.from(msg as number[]).toString('utf8') : '',
      priority: typeof v['PRIORITY'] === 'string' ? v['PRIORITY'] : '',
      pid: typeof v['_PID'] === 'string' ? v['_PID'] : '',
      monotonic: Number(v['__MONOTONIC_TIMESTAMP']),
    };
  });
}

async function journalText(unit: string, lines = 60): Promise<string> {
  return (await cmd(['journalctl', '-b', '-u', unit, '-o', 'short-monotonic', '--no-pager', '-n', String(lines)])).stdout;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${await journalText(UNIT)}`);
    await sleep(everyMs);
  }
}

/** A call as nobody through dbus-next (test/bus/client-agent.js): the D-Bus error NAME, which busctl does not print. */
async function callAsNobody(member: string, signature: string, body: unknown[]): Promise<{ ok: boolean; name?: string; message?: string }> {
  const child = spawn(NOBODY[0] as string, [...NOBODY.slice(1), process.execPath, path.join(REPO, 'test/bus/client-agent.js'), 'unix:path=/run/dbus/system_bus_socket'], {
    cwd: '/', stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const lines = readline.createInterface({ input: child.stdout });
  const done = new Promise<{ ok: boolean; name?: string; message?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client-agent: no answer (stderr: ${stderr})`)), 60_000);
    lines.on('line', (line) => {
      const v = JSON.parse(line) as Record<string, unknown>;
      if ('name' in v && !('id' in v)) {
        child.stdin.write(JSON.stringify({ id: 1, op: 'call', msg: { destination: BUS, path: OBJ, interface: LAYERS, member, signature, body } }) + '\n');
      } else if (v['id'] === 1) {
        clearTimeout(timer);
        child.stdin.end();
        resolve({
          ok: v['ok'] === true,
          ...(typeof v['name'] === 'string' ? { name: v['name'] } : {}),
          ...(typeof v['message'] === 'string' ? { message: v['message'] } : {}),
        });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`client-agent exited ${code} before answering: ${stderr}`));
    });
  });
  try {
    return await done;
  } finally {
    child.kill('SIGKILL');
  }
}

/** Start an upgrade as root with busctl and wait for the transaction's final state. */
async function upgradeAsRoot(image: string): Promise<{ txn: string; state: string; ms: number }> {
  const t0 = Date.now();
  const data = busData(await must(...BUSCTL, '--json=short', 'call', BUS, OBJ, LAYERS, 'Upgrade', 'sa{sv}', image, '0'), 'o');
  const txn = Array.isArray(data) ? data[0] : undefined;
  if (typeof txn !== 'string' || !txn.startsWith('/org/ovirt/Node/Transaction/')) throw new Error(`Upgrade returned ${JSON.stringify(data)}`);
  const state = await waitFor(`${txn} to finish`, 20 * 60_000, async () => {
    const s = await getString(txn, TXN, 'State');
    return ['succeeded', 'failed', 'cancelled'].includes(s) ? s : undefined;
  }, 1000);
  return { txn, state, ms: Date.now() - t0 };
}

async function bootEntries(): Promise<string[]> {
  return (await fs.readdir('/boot/loader/entries').catch(() => [] as string[])).filter((f) => f.startsWith('ovirt-node-ng-')).sort();
}

const BOOT_COMPLETE = 'imgbased-boot-complete.service';
const FAKE_CMDLINE = '/run/imgbased-vm-test-cmdline';
const CMDLINE_DROPIN = '/run/systemd/system/imgbased.service.d/60-vm-test-cmdline.conf';

/** The guest's grubenv as the real grub-editenv lists it. */
async function grubenvList(): Promise<Record<string, string>> {
  expect((await fs.stat('/boot/grub2/grubenv')).size).toBe(1024);
  const out = await must('grub-editenv', '/boot/grub2/grubenv', 'list');
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/**
 * What grub does on a trial boot, without rebooting the guest: next_entry is used up (grub.cfg unsets it) and the
 * kernel command line carries the layer's img.bootid — a file the daemon sees as /proc/cmdline through a drop-in
 * (BindReadOnlyPaths= in its own mount namespace; removed in afterAll). The caller restarts the daemon.
 */
async function trialBoot(layer: string): Promise<void> {
  await must('grub-editenv', '/boot/grub2/grubenv', 'unset', 'next_entry');
  await fs.writeFile(FAKE_CMDLINE, `BOOT_IMAGE=/${layer}/vmlinuz root=/dev/onn/${layer} ro img.bootid=${layer}\n`);
  await fs.mkdir(DROPIN_DIR, { recursive: true });
  await fs.writeFile(CMDLINE_DROPIN, `[Service]\nBindReadOnlyPaths=${FAKE_CMDLINE}:/proc/cmdline\n`);
  await must('systemctl', 'daemon-reload');
}

async function nodeVersion(): Promise<string> {
  const pkg = JSON.parse(await fs.readFile(path.join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  if (typeof pkg['version'] !== 'string') throw new Error('package.json has no version');
  return pkg['version'];
}

/** The image-update package (packaging/image-update/) and the image it carries, newer than every base of the test. */
const UPDATE_PKG = 'ovirt-node-ng-image-update';
const V4 = 'ovirt-node-ng-4.5.7-0.20250901.0';
const V4_PKG = `${UPDATE_PKG}-4.5.7-0.20250901.0`;
const BUILD_IMAGE_UPDATE = path.join(REPO, 'packaging/image-update/build-image-update.sh');

describe('the installed daemon under real systemd: activation, READY, watchdog, upgrade over the bus, polkit, journal', () => {
  let work = '';
  let images: ImageSet;
  let host: OvirtHost | undefined;
  const img: Record<string, string> = {};
  const times: Record<string, number> = {};
  let repoServer: http.Server | null = null;
  const repoRequests: string[] = [];

  beforeAll(async () => {
    expect(await fs.realpath('/proc/1/exe')).toMatch(/systemd$/);
    await fs.access(path.join(REPO, 'dist/src/daemon/main.js'));
    await cmd(['systemctl', 'stop', UNIT]);
    // the guest's /tmp is a tmpfs without user xattrs (the test images carry some): build on the root filesystem
    work = await fs.mkdtemp(path.join('/var/tmp', 'daemon-systemd-'));
    images = await imageSet(work);
    img['v1'] = (await images.image(NVR.v1)).imagePath;
    img['v2'] = (await images.image(NVR.v2, V2_CHANGES)).imagePath;
    host = await installOvirtHost({
      sysroot: '/', imagePath: img['v1'], trustedKey: path.join(images.key.trustedKeysDir, 'test.asc'),
      config: OVIRT_CONFIG, writeCmdline: false,
    });
  }, 20 * 60_000);

  afterAll(async () => {
    process.stderr.write(`daemon-systemd timings (ms): ${JSON.stringify(times)}\n`);
    await cmd(['systemctl', 'stop', UNIT, 'imgbased-automatic.service', 'imgbased-automatic.timer', BOOT_COMPLETE]);
    await new Promise((resolve) => (repoServer ? repoServer.close(resolve) : resolve(undefined)));
    await fs.rm(FAKE_CMDLINE, { force: true });
    await fs.rm(DROPIN_DIR, { recursive: true, force: true });
    await fs.rm(DBUS_TEST_CONF, { force: true });
    await cmd(['systemctl', 'daemon-reload']);
    await cmd(['systemctl', 'reload', 'dbus.service']);
    await host?.fx.cleanup();
    // imgbased's state outside /usr: config, state dir, boot entries and kernels of the test layers
    for (const p of ['/etc/imgbased', '/var/lib/imgbased', '/var/cache/imgbased', '/boot/loader', '/boot/grub2', '/run/imgbased']) {
      await fs.rm(p, { recursive: true, force: true });
    }
    for (const d of await fs.readdir('/boot').catch(() => [] as string[])) {
      if (d.startsWith('ovirt-node-ng-')) await fs.rm(path.join('/boot', d), { recursive: true, force: true });
    }
    if (work) await fs.rm(work, { recursive: true, force: true });
  }, 10 * 60_000);

  it('make install DESTDIR=/ PREFIX=/usr from the shared tree; systemd and the bus know the service, nothing runs', async () => {
    const t0 = Date.now();
    const r = await cmd(['make', '--no-print-directory', '-C', REPO, 'install', 'DESTDIR=/', 'PREFIX=/usr']);
    times['make install'] = Date.now() - t0;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    // noreplace: the host's config stays
    expect(r.stdout).toContain('keeping the existing');
    expect(await fs.readFile('/etc/imgbased/imgbased.conf', 'utf8')).toBe(OVIRT_CONFIG);
    await must('systemctl', 'daemon-reload');
    await fs.writeFile(DBUS_TEST_CONF, DBUS_TEST_LIMITS);
    await must('systemctl', 'reload', 'dbus.service');
    await must('systemd-tmpfiles', '--create', 'imgbased.conf');
    expect(((await fs.stat('/var/lib/imgbased')).mode & 0o777).toString(8)).toBe('700');
    expect(((await fs.stat('/var/lib/imgbased/images')).mode & 0o777).toString(8)).toBe('755');

    const unit = await show(UNIT, 'LoadState', 'ActiveState', 'FragmentPath');
    expect({ ...unit, FragmentPath: await fs.realpath(unit['FragmentPath'] ?? '') }).toEqual({
      LoadState: 'loaded', ActiveState: 'inactive', FragmentPath: `/usr/lib/systemd/system/${UNIT}`,
    });
    const activatable = busData(await must(...BUSCTL, '--json=short', 'call', 'org.freedesktop.DBus', '/org/freedesktop/DBus',
      'org.freedesktop.DBus', 'ListActivatableNames'), 'as');
    expect(Array.isArray(activatable) ? activatable[0] : undefined).toContain(BUS);
    const owned = busData(await must(...BUSCTL, '--json=short', 'call', 'org.freedesktop.DBus', '/org/freedesktop/DBus',
      'org.freedesktop.DBus', 'NameHasOwner', 's', BUS), 'b');
    expect(owned).toEqual([false]);
    // the installed launcher, found through PATH like an administrator would run it
    const help = await cmd(['nodectl', '--help']);
    expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/Usage: nodectl/);
  });

  it('imgbased init (the installed offline tool) makes the install base + layer, tagged as imgbased does', async () => {
    const t0 = Date.now();
    const r = await cmd(['imgbased', 'init', '--from', 'root']);
    times['imgbased init'] = Date.now() - t0;
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    const lvs = await lvsState();
    expect(Object.keys(lvs)).toEqual([NVR.v1, `${NVR.v1}+1`, 'root']);
    expect(lvs['root']).toMatchObject({ attr: 'Vri---tz-k', tags: [TAG.init] });
    expect(lvs[NVR.v1]).toMatchObject({ attr: 'Vri---tz-k', tags: [TAG.base], origin: 'root' });
    expect(lvs[`${NVR.v1}+1`]).toMatchObject({ attr: 'Vwi-a-tz--', tags: [TAG.layer], origin: NVR.v1 });
    expect(await bootEntries()).toEqual([`${NVR.v1}+1.conf`]);
  });

  it('the first call activates the daemon (dbus → systemd), which is active only after READY=1 and reports STATUS=', async () => {
    expect((await show(UNIT, 'ActiveState')).ActiveState).toBe('inactive');
    const t0 = Date.now();
    expect(await getString(OBJ, LAYERS, 'Version')).toBe(await nodeVersion());
    times['activation + first answer'] = Date.now() - t0;

    const s = await show(UNIT, 'ActiveState', 'SubState', 'Type', 'NotifyAccess', 'MainPID', 'StatusText', 'WatchdogUSec',
      'ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic');
    expect({ ActiveState: s['ActiveState'], SubState: s['SubState'], Type: s['Type'], NotifyAccess: s['NotifyAccess'], WatchdogUSec: s['WatchdogUSec'] })
      .toEqual({ ActiveState: 'active', SubState: 'running', Type: 'notify', NotifyAccess: 'main', WatchdogUSec: '30s' });
    // STATUS= from the daemon (src/daemon/main.ts: "idle" once it serves)
    expect(s['StatusText']).toBe('idle');
    // the launcher exec'd node: the main process IS node running the installed daemon
    const pid = Number(s['MainPID']);
    expect(pid).toBeGreaterThan(1);
    expect(await fs.realpath(`/proc/${pid}/exe`)).toBe(await fs.realpath(process.execPath));
    expect((await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')).toContain('/usr/lib/imgbased/dist/src/daemon/main.js');
    // Type=notify honoured: "active" was entered when READY=1 came, well after the exec (engine open, lvm discovery,
    // bus name). A Type=simple unit enters "active" at the exec itself.
    const started = Number(s['ExecMainStartTimestampMonotonic']);
    const active = Number(s['ActiveEnterTimestampMonotonic']);
    expect(started).toBeGreaterThan(0);
    times['exec → READY (systemd timestamps)'] = Math.round((active - started) / 1000);
    expect(active - started).toBeGreaterThan(200_000);
    // started by the bus, not by hand
    const dbusLog = (await journal('dbus.service')).map((e) => e.message);
    expect(dbusLog.some((m) => m.includes(`Activating via systemd: service name='${BUS}'`) && m.includes(`unit='${UNIT}'`))).toBe(true);
  });

  it('journald turns the daemon\'s <N> prefixes into PRIORITY (info = 6), and no raw prefix reaches the journal', async () => {
    const pid = (await show(UNIT, 'MainPID')).MainPID as string;
    const entries = await waitFor('the daemon\'s "serving" line in the journal', 30_000, async () => {
      const all = await journal(UNIT);
      return all.some((e) => e.pid === pid && e.message.includes(`serving ${BUS}`)) ? all : undefined;
    });
    const serving = entries.find((e) => e.pid === pid && e.message.includes(`serving ${BUS}`));
    expect(serving?.priority).toBe('6');
    expect(serving?.message).toMatch(/^imgbased \S+ serving org\.ovirt\.Node \(sysroot \/, lvm backend\)/);
    const fromDaemon = entries.filter((e) => e.pid === pid);
    expect(fromDaemon.length).toBeGreaterThan(0);
    expect(fromDaemon.filter((e) => /^<\d>/.test(e.message))).toEqual([]);
  });

  it('root: Upgrade over the system bus (polkit authorizes root) installs a new base and layer on dm-thin', async () => {
    const before = await lvsState();
    const pid = (await show(UNIT, 'MainPID')).MainPID;
    const out = await upgradeAsRoot(img['v2'] as string);
    times['upgrade over the bus'] = out.ms;
    if (out.state !== 'succeeded') {
      const err = await getProp(out.txn, TXN, 'Error', '(ss)').catch((e: unknown) => String(e));
      throw new Error(`upgrade ${out.state}: ${JSON.stringify(err)}\n${await journalText(UNIT)}`);
    }
    const lvs = await lvsState();
    // WriteMethod=auto on lvm with a base of the image's filesystem: a delta write (thin snapshot of v1's base, the
    // image's tree synchronised into it and verified against the image's manifest)
    expect(lvs[NVR.v2]).toMatchObject({ attr: 'Vri---tz-k', tags: [TAG.base], origin: NVR.v1 });
    const last = (await getProp(OBJ, LAYERS, 'LastTransaction', 'a{sv}')) as Record<string, { data?: unknown } | undefined>;
    expect(last['write-method']?.data).toBe('delta');
    expect(Number(last['bytes-written']?.data)).toBeGreaterThan(0);
    expect(await fs.stat(`/var/lib/imgbased/manifests/${NVR.v2}.json`)).toBeTruthy();
    expect(lvs[`${NVR.v2}+1`]).toMatchObject({ attr: 'Vwi-a-tz--', tags: [TAG.layer], origin: NVR.v2 });
    const { [NVR.v2]: _b, [`${NVR.v2}+1`]: _l, ...rest } = lvs;
    expect(rest).toEqual(before);

    expect(await bootEntries()).toEqual([`${NVR.v1}+1.conf`, `${NVR.v2}+1.conf`]);
    expect(await fs.readFile(`/boot/loader/entries/${NVR.v2}+1.conf`, 'utf8')).toContain(`img.bootid=${NVR.v2}+1`);
    // boot assessment: v2 boots once on trial (next_entry); saved_entry keeps the good layer
    expect(await grubenvList()).toEqual({ saved_entry: `${NVR.v1}+1`, next_entry: `${NVR.v2}+1` });
    expect(await getString(OBJ, LAYERS, 'DefaultLayer')).toBe(`${NVR.v2}+1`);
    expect(await getString(OBJ, LAYERS, 'TrialLayer')).toBe(`${NVR.v2}+1`);
    expect(await getString(out.txn, TXN, 'Initiator')).toMatch(/^uid 0\b/);
    // the same process did it, and is idle again
    const after = await show(UNIT, 'MainPID', 'StatusText', 'ActiveState');
    expect(after).toEqual({ MainPID: pid, StatusText: 'idle', ActiveState: 'active' });
    // every line of the transaction carries its id
    const id = out.txn.slice(out.txn.lastIndexOf('/') + 1);
    expect((await journal(UNIT)).filter((e) => e.message.includes(`transaction=${id}`)).length).toBeGreaterThan(0);
  });

  it('imgbased-boot-complete.service on the trial boot: gates on real units pass, the layer becomes the default', async () => {
    // What the trial boot looks like to the daemon: grub used next_entry up, the kernel runs with img.bootid=v2+1.
    await trialBoot(`${NVR.v2}+1`);
    await fs.writeFile('/etc/imgbased/imgbased.conf', `${OVIRT_CONFIG}[Boot]\nRequiredUnits=dbus.service systemd-journald.service\nGateTimeoutSec=30\n`);
    await must('systemctl', 'restart', UNIT);
    expect([await getString(OBJ, LAYERS, 'CurrentLayer'), await getString(OBJ, LAYERS, 'DefaultLayer')]).toEqual([`${NVR.v2}+1`, `${NVR.v1}+1`]);
    const t0 = Date.now();
    const r = await cmd(['systemctl', 'start', BOOT_COMPLETE]);
    times['boot-complete (gates pass)'] = Date.now() - t0;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await show(BOOT_COMPLETE, 'Result', 'ActiveState')).toEqual({ Result: 'success', ActiveState: 'active' });
    expect(await grubenvList()).toEqual({ saved_entry: `${NVR.v2}+1` });
    expect(await getString(OBJ, LAYERS, 'DefaultLayer')).toBe(`${NVR.v2}+1`);
    expect(await getString(OBJ, LAYERS, 'TrialLayer')).toBe('');
    expect(await journalText(BOOT_COMPLETE)).toContain(`Boot of ${NVR.v2}+1 confirmed: gates passed: dbus.service, systemd-journald.service active; health`);
    // ordered before boot-complete.target, pulled in by it and by multi-user.target once enabled (the preset enables it)
    const deps = await show(BOOT_COMPLETE, 'Before', 'After', 'UnitFileState', 'UnitFilePreset');
    expect(deps['Before']?.split(' ')).toContain('boot-complete.target');
    expect(deps['After']?.split(' ')).toEqual(expect.arrayContaining(['dbus.socket', 'multi-user.target']));
    expect(deps['UnitFilePreset']).toBe('enabled');
  });

  it('nobody: Upgrade is refused by polkit (NotAuthorized) and nothing changes', async () => {
    const img3 = (await images.image(NVR.v3)).imagePath;
    img['v3'] = img3;
    const before = { lvs: await lvsState(), entries: await bootEntries(), last: await getProp(OBJ, LAYERS, 'LastTransaction', 'a{sv}') };
    const r = await cmd([...NOBODY, ...BUSCTL, 'call', BUS, OBJ, LAYERS, 'Upgrade', 'sa{sv}', img3, '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('not authorized for org.ovirt.node.layers.upgrade');
    // the error name (busctl prints only the message)
    const agent = await callAsNobody('Upgrade', 'sa{sv}', [img3, {}]);
    expect(agent).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.NotAuthorized' });
    expect(await getProp(OBJ, LAYERS, 'ActiveTransaction', 'o')).toBe('/');
    const after = { lvs: await lvsState(), entries: await bootEntries(), last: await getProp(OBJ, LAYERS, 'LastTransaction', 'a{sv}') };
    expect(after).toEqual(before);
  });

  it('watchdog: a daemon that stops answering (SIGSTOP) is killed and restarted by systemd, and serves again', async () => {
    await fs.mkdir(DROPIN_DIR, { recursive: true });
    await fs.writeFile(WATCHDOG_DROPIN, '[Service]\nWatchdogSec=4s\n');
    await must('systemctl', 'daemon-reload');
    await must('systemctl', 'restart', UNIT);
    const s0 = await show(UNIT, 'MainPID', 'NRestarts', 'WatchdogUSec', 'ActiveState', 'StatusText');
    expect({ w: s0['WatchdogUSec'], a: s0['ActiveState'], st: s0['StatusText'] }).toEqual({ w: '4s', a: 'active', st: 'idle' });
    const pid0 = Number(s0['MainPID']);
    const n0 = Number(s0['NRestarts']);
    expect(pid0).toBeGreaterThan(1);
    // pings keep it alive: after more than one interval it is still the same process
    await sleep(6000);
    expect((await show(UNIT, 'MainPID')).MainPID).toBe(String(pid0));

    const tStop = Date.now();
    const stopMono = Number(process.hrtime.bigint() / 1000n); // CLOCK_MONOTONIC µs, like systemd's timestamps
    process.kill(pid0, 'SIGSTOP');
    const s1 = await waitFor('a new daemon process after the watchdog timeout', 180_000, async () => {
      const s = await show(UNIT, 'MainPID', 'NRestarts', 'ActiveState', 'SubState', 'ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic');
      const p = Number(s['MainPID']);
      return p > 1 && p !== pid0 && s['ActiveState'] === 'active' && s['SubState'] === 'running' ? s : undefined;
    }, 250);
    times['SIGSTOP → new daemon active (WatchdogSec=4s, RestartSec=2s)'] = Date.now() - tStop;
    expect(Number(s1['NRestarts'])).toBe(n0 + 1);
    expect(fsSync.existsSync(`/proc/${pid0}`)).toBe(false);
    expect(await getString(OBJ, LAYERS, 'Version')).toBe(await nodeVersion());
    times['SIGSTOP → answers again'] = Date.now() - tStop;
    expect(await getString(OBJ, LAYERS, 'DefaultLayer')).toBe(`${NVR.v2}+1`);
    const timeout = (await journal(UNIT)).find((e) => e.monotonic > stopMono && /Watchdog timeout \(limit 4s\)/.test(e.message));
    expect(timeout).toBeDefined();
    // where the time went (CLOCK_MONOTONIC): the timeout fires within WatchdogSec of the last ping (sent every 2 s)
    const fired = (timeout?.monotonic ?? 0) - stopMono;
    times['SIGSTOP → "Watchdog timeout"'] = Math.round(fired / 1000);
    times['"Watchdog timeout" → new exec (abort, RestartSec=2s)'] = Math.round((Number(s1['ExecMainStartTimestampMonotonic']) - (timeout?.monotonic ?? 0)) / 1000);
    times['new exec → READY'] = Math.round((Number(s1['ActiveEnterTimestampMonotonic']) - Number(s1['ExecMainStartTimestampMonotonic'])) / 1000);
    expect(fired).toBeGreaterThan(1_000_000);
    expect(fired).toBeLessThan(10_000_000);

    // back to the shipped unit
    await fs.rm(WATCHDOG_DROPIN, { force: true });
    await must('systemctl', 'daemon-reload');
    await must('systemctl', 'restart', UNIT);
    expect((await show(UNIT, 'WatchdogUSec')).WatchdogUSec).toBe('30s');
  });

  it('imgbased-automatic.service with AutomaticUpdatePolicy=stage stages the newest image of ImageDir', async () => {
    const built = await images.image(NVR.v3);
    for (const f of [built.imagePath, built.sha256Path, ...(built.sigPath ? [built.sigPath] : [])]) {
      await fs.copyFile(f, path.join('/var/lib/imgbased/images', path.basename(f)));
    }
    await fs.writeFile('/etc/imgbased/imgbased.conf', `${OVIRT_CONFIG}AutomaticUpdatePolicy=stage\n`);
    await must('systemctl', 'restart', UNIT);
    expect(await getString(OBJ, LAYERS, 'AutomaticUpdatePolicy')).toBe('stage');
    const before = await lvsState();
    const t0 = Date.now();
    const r = await cmd(['systemctl', 'start', 'imgbased-automatic.service']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    await waitFor(`DefaultLayer ${NVR.v3}+1`, 20 * 60_000, async () =>
      ((await getString(OBJ, LAYERS, 'DefaultLayer')) === `${NVR.v3}+1` ? true : undefined), 1000);
    times['automatic stage'] = Date.now() - t0;
    const lvs = await lvsState();
    expect(lvs[NVR.v3]).toMatchObject({ attr: 'Vri---tz-k', tags: [TAG.base] });
    expect(lvs[`${NVR.v3}+1`]).toMatchObject({ attr: 'Vwi-a-tz--', tags: [TAG.layer], origin: NVR.v3 });
    expect(lvs[`${NVR.v2}+1`]).toEqual(before[`${NVR.v2}+1`]);
    expect(await bootEntries()).toContain(`${NVR.v3}+1.conf`);
    const a = await show('imgbased-automatic.service', 'Result');
    expect(a['Result']).toBe('success');
  });
  it('a failing gate on the trial boot of v3: the unit fails, v3 is bad and v2 stays the default', async () => {
    expect(await grubenvList()).toEqual({ saved_entry: `${NVR.v2}+1`, next_entry: `${NVR.v3}+1` });
    await trialBoot(`${NVR.v3}+1`);
    await fs.writeFile('/etc/imgbased/imgbased.conf', `${OVIRT_CONFIG}[Boot]\nRequiredUnits=imgbased-vm-test-no-such.service\nGateTimeoutSec=3\n`);
    await must('systemctl', 'restart', UNIT);
    await cmd(['systemctl', 'stop', BOOT_COMPLETE]); // RemainAfterExit: start it afresh, as a boot does
    const r = await cmd(['systemctl', 'start', BOOT_COMPLETE]);
    expect(r.code).not.toBe(0);
    expect((await show(BOOT_COMPLETE, 'Result')).Result).toBe('exit-code');
    expect(await grubenvList()).toEqual({ saved_entry: `${NVR.v2}+1` });
    expect(await getString(OBJ, LAYERS, 'DefaultLayer')).toBe(`${NVR.v2}+1`);
    const why = 'required unit not active in time: imgbased-vm-test-no-such.service (inactive)';
    expect(await journalText(BOOT_COMPLETE)).toContain(`Boot of ${NVR.v3}+1 FAILED: ${why}.`);
    const layers = JSON.parse((await must('nodectl', '--json', 'layers'))) as Array<Record<string, unknown>>;
    expect(layers.find((l) => l['name'] === `${NVR.v3}+1`)).toMatchObject({ 'boot-state': 'bad', 'boot-state-reason': why });
    expect(layers.find((l) => l['name'] === `${NVR.v2}+1`)).toMatchObject({ 'boot-state': 'good' });
  });

  it('UpdateRepo= under the installed, hardened unit: dnf reaches a repository on 127.0.0.1, its cache is CacheDirectory=', async () => {
    // The shipped unit as installed: IP allowed (dnf), no IPAddressDeny=, the cache directory systemd made at start.
    await fs.rm(CMDLINE_DROPIN, { force: true }); // the guest's own kernel command line again, as before the trial boots
    await must('systemctl', 'daemon-reload');
    const u = await show(UNIT, 'RestrictAddressFamilies', 'IPAddressDeny', 'ProtectSystem', 'PrivateNetwork', 'CacheDirectory', 'CacheDirectoryMode');
    expect({
      RestrictAddressFamilies: (u['RestrictAddressFamilies'] ?? '').split(' ').sort().join(' '), IPAddressDeny: u['IPAddressDeny'] ?? '',
      ProtectSystem: u['ProtectSystem'], PrivateNetwork: u['PrivateNetwork'], CacheDirectory: u['CacheDirectory'], CacheDirectoryMode: u['CacheDirectoryMode'],
    }).toEqual({
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_NETLINK AF_UNIX', IPAddressDeny: '', ProtectSystem: 'strict', PrivateNetwork: 'no',
      CacheDirectory: 'imgbased', CacheDirectoryMode: '0700',
    });
    // Nothing asked a repository yet: /var/cache/imgbased is systemd's (CacheDirectory=), made at the unit's start.
    const cacheSt = await fs.stat('/var/cache/imgbased');
    expect({ dir: cacheSt.isDirectory(), mode: (cacheSt.mode & 0o777).toString(8) }).toEqual({ dir: true, mode: '700' });
    expect(await fs.readdir('/var/cache/imgbased')).toEqual([]);

    // The repository: the example image-update packages (rpmbuild) around an image newer than every base, published
    // with createrepo_c, served over HTTP on 127.0.0.1 by this test process.
    const t0 = Date.now();
    const v4 = await images.image(V4);
    img['v4'] = v4.imagePath;
    const repoDir = path.join(work, 'repo');
    await fs.mkdir(repoDir);
    const b = await pexec('sh', [BUILD_IMAGE_UPDATE, v4.imagePath, repoDir], { cwd: '/', env: { ...process.env, TMPDIR: work }, maxBuffer: 16 * 1024 * 1024 })
      .catch((e: { stderr?: string }) => { throw new Error(`build-image-update.sh failed: ${e.stderr ?? String(e)}`); });
    expect(b.stdout.trim().split('\n').map((f) => path.basename(f)).sort()).toEqual([
      `${UPDATE_PKG}-4.5.7-0.20250901.0.noarch.rpm`, `${UPDATE_PKG}-squashfs-4.5.7-0.20250901.0.noarch.rpm`]);
    await must('createrepo_c', '--quiet', repoDir);
    times['UpdateRepo: build + publish'] = Date.now() - t0;
    repoServer = await serveRepo(repoDir, repoRequests);
    const url = `http://127.0.0.1:${(repoServer.address() as AddressInfo).port}/`;
    await fs.writeFile('/etc/imgbased/imgbased.conf', `${OVIRT_CONFIG}UpdateRepo=${url}\n`);
    await must('systemctl', 'restart', UNIT);
    expect(await getString(OBJ, LAYERS, 'DefaultLayer')).toBe(`${NVR.v2}+1`);

    const t1 = Date.now();
    const r = await cmd(['nodectl', '--json', 'check-update']);
    times['UpdateRepo: nodectl check-update'] = Date.now() - t1;
    const journalOnFail = r.code === 0 && r.stdout.includes(V4_PKG) ? '' : await journalText(UNIT, 40);
    const answer: unknown = r.code === 0 ? JSON.parse(r.stdout) : r.stdout;
    expect({ code: r.code, answer, stderr: r.stderr, journal: journalOnFail })
      .toEqual({ code: 0, answer: { available: true, nvr: V4_PKG }, stderr: '', journal: '' });
    expect(await getProp(OBJ, LAYERS, 'UpdateAvailable', 'b')).toBe(true);
    expect(await getString(OBJ, LAYERS, 'AvailableVersion')).toBe(V4_PKG);
    // dnf fetched the metadata from the server (fresh each time: metadata_expire=0)...
    expect(repoRequests).toContain('GET /repodata/repomd.xml');
    // ...into the daemon's own cache under CacheDirectory=, not the host's /var/cache/dnf
    expect((await fs.readdir('/var/cache/imgbased')).sort()).toEqual(expect.arrayContaining(['dnf', 'dnf-state']));
    const dnfCache = await fs.readdir('/var/cache/imgbased/dnf');
    const repoCache = dnfCache.find((d) => d.startsWith('imgbased-updates-'));
    expect({ dnfCache, repoCache: repoCache !== undefined }).toEqual({ dnfCache, repoCache: true });
    expect(await fs.stat(path.join('/var/cache/imgbased/dnf', repoCache as string, 'repodata/repomd.xml'))).toBeTruthy();
    expect((await fs.readdir('/var/cache/dnf').catch(() => [] as string[])).filter((d) => d.startsWith('imgbased-updates'))).toEqual([]);
    expect((await show(UNIT, 'StatusText', 'ActiveState'))).toEqual({ StatusText: 'idle', ActiveState: 'active' });
  });

  it('imgbased-automatic.service (PrivateNetwork=yes itself) with policy stage: the daemon downloads the package from UpdateRepo and stages its image', async () => {
    expect(repoServer).not.toBeNull();
    const url = `http://127.0.0.1:${(repoServer?.address() as AddressInfo).port}/`;
    // The package is not rpm-signed here (no gpg in the guest): signatures of packages and images are the host tier's
    // (test/bus/update-repo.test.ts). This case is about the download, unpack and upgrade under the hardened unit.
    await fs.writeFile('/etc/imgbased/imgbased.conf',
      `${OVIRT_CONFIG.replace('RequireSignature=true', 'RequireSignature=false')}UpdateRepo=${url}\nAutomaticUpdatePolicy=stage\n`);
    await must('systemctl', 'restart', UNIT);
    expect(await getString(OBJ, LAYERS, 'AutomaticUpdatePolicy')).toBe('stage');
    const before = await lvsState();
    repoRequests.length = 0;
    const t0 = Date.now();
    // a oneshot: `nodectl upgrade --automatic` returns once the staging transaction has finished
    const r = await cmd(['systemctl', 'start', 'imgbased-automatic.service']);
    times['UpdateRepo: automatic stage'] = Date.now() - t0;
    const staged = r.code === 0 && (await getString(OBJ, LAYERS, 'DefaultLayer')) === `${V4}+1`;
    // "Nothing to do" (exit 0) when the daemon's dnf failed: show why
    const journalOnFail = staged ? '' : `${await journalText('imgbased-automatic.service', 20)}\n${await journalText(UNIT, 40)}`;
    expect({ code: r.code, stderr: r.stderr, staged, journal: journalOnFail }).toEqual({ code: 0, stderr: '', staged: true, journal: '' });
    expect((await show('imgbased-automatic.service', 'Result')).Result).toBe('success');
    expect(repoRequests).toContain(`GET /${UPDATE_PKG}-squashfs-4.5.7-0.20250901.0.noarch.rpm`);
    const lvs = await lvsState();
    expect(lvs[V4]).toMatchObject({ attr: 'Vri---tz-k', tags: [TAG.base] });
    expect(lvs[`${V4}+1`]).toMatchObject({ attr: 'Vwi-a-tz--', tags: [TAG.layer], origin: V4 });
    expect(lvs[`${NVR.v2}+1`]).toEqual(before[`${NVR.v2}+1`]);
    expect(await bootEntries()).toContain(`${V4}+1.conf`);
    // the downloaded package and the unpacked image are gone once the upgrade succeeded
    expect(await fs.readdir('/var/cache/imgbased/updates')).toEqual([]);
    const after = await cmd(['nodectl', '--json', 'check-update']);
    expect({ code: after.code, out: JSON.parse(after.stdout) as unknown }).toEqual({ code: 0, out: { available: false, nvr: '' } });
  });
});
