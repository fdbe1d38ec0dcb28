/**
 * The automatic update policy through the daemon on a private system bus with polkit (sandbox mode, dir backend):
 * the whole matrix none/check/stage/apply × virtual machines running or not × inside or outside the maintenance
 * window, as the timer drives it (AutomaticUpdateTrigger without a mode, after SetAutomaticUpdatePolicy). The VMs
 * come from a real libvirt (its test driver reading the sandbox's node XML, rewritten between cases); the sandbox's
 * "reboot" is what the daemon does instead of asking logind. Also: Rollback with "reboot", and libvirt unavailable.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { SANDBOX_LIBVIRT_XML, sandboxLibvirtXml } from '../../src/sandbox/sysroot';
import type { RemoteClient } from './harness';
import { eventually, PrivateBus } from './harness';
import { LAYERS, layersOps, NODE, ok, TX_IFACE, v } from './wire';
import { NVR, snapshotHost, sandboxHost } from '../helpers/host';
import type { ImageSet } from '../helpers/host';
import { stopChild } from '../../src/sandbox/snmpd';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const OLD = `${NVR.v1}+1`;
const NEW = `${NVR.v2}+1`;
const DAY = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** A window that contains now (every day, all day) or that does not (tomorrow only). */
const WINDOWS = { inside: '00:00-24:00', outside: `${DAY[(new Date().getDay() + 1) % 7] ?? 'Sun'} 00:00-24:00` } as const;

describe('automatic update policy × running VMs × maintenance window', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let baseConfig: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams | null = null;
  let daemonLog = '';
  let root: RemoteClient;

  const { prop, call, finish } = layersOps(() => root);

  const setVms = (running: boolean): Promise<void> =>
    fs.writeFile(path.join(sysroot, SANDBOX_LIBVIRT_XML), sandboxLibvirtXml([{ name: 'engine-vm', running }, { name: 'spare', running: false }]));

  async function stopDaemon(): Promise<void> {
    const d = daemon;
    daemon = null;
    if (d) await stopChild(d);
  }

  /** (Re)start the daemon with this maintenance window (the config is read at start-up). */
  async function startDaemon(window: string, extra = ''): Promise<void> {
    await stopDaemon();
    await fs.writeFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), `${baseConfig}MaintenanceWindow=${window}\n${extra}`);
    daemonLog = '';
    const d = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    d.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    daemon = d;
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }

  /** Back to "v1 installed, booted and default", whatever a case did (its reboot included). */
  async function restore(): Promise<void> {
    await setVms(false);
    if ((await prop('CurrentLayer')) === NEW) {
      expect(await finish(String((await call('Rollback', 'sa{sv}', [OLD, { reboot: v('b', true) }]))[0]))).toBe('succeeded');
    } else if ((await prop('DefaultLayer')) === NEW) {
      expect(await finish(String((await call('Rollback', 'sa{sv}', [OLD, {}]))[0]))).toBe('succeeded');
    }
    const bases = (await prop('Bases')) as Array<{ name: string }>;
    if (bases.some((b) => b.name === NVR.v2)) {
      expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v2, {}]))[0]))).toBe('succeeded');
    }
    expect([await prop('CurrentLayer'), await prop('DefaultLayer')]).toEqual([OLD, OLD]);
  }

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('automatic'));
    baseConfig = await fs.readFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), 'utf8');
    expect(baseConfig.trimEnd().split('\n').filter((l) => l.startsWith('[')).pop()).toBe('[Upgrade]');
    // The newer image waits in the image directory, with its .sha256 and .sig.
    const v2 = await images.image(NVR.v2);
    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    await fs.mkdir(imageDir, { recursive: true });
    for (const f of [v2.imagePath, `${v2.imagePath}.sha256`, `${v2.imagePath}.sig`]) await fs.copyFile(f, path.join(imageDir, path.basename(f)));
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    root = await bus.clientAs('root');
  }, 120_000);

  afterAll(async () => {
    await stopDaemon();
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  type Expect = 'nothing' | 'report' | 'staged' | 'rebooted' | 'staged-vms';
  const matrix: Array<[keyof typeof WINDOWS, 'none' | 'check' | 'stage' | 'apply', boolean, Expect]> = [];
  for (const w of ['inside', 'outside'] as const) {
    for (const policy of ['none', 'check', 'stage', 'apply'] as const) {
      for (const vms of [false, true]) {
        const expected: Expect = policy === 'none' ? 'nothing' : policy === 'check' || w === 'outside' ? 'report'
          : policy === 'stage' ? 'staged' : vms ? 'staged-vms' : 'rebooted';
        matrix.push([w, policy, vms, expected]);
      }
    }
  }

  let runningWindow = '';
  it.each(matrix)('window %s, policy %s, VMs running %p → %s', async (w, policy, vms, expected) => {
    if (runningWindow !== w) {
      await startDaemon(WINDOWS[w]);
      runningWindow = w;
      expect(await prop('MaintenanceWindow')).toBe(WINDOWS[w]);
    }
    await restore();
    await setVms(vms);
    await call('SetAutomaticUpdatePolicy', 's', [policy]);
    expect(await prop('AutomaticUpdatePolicy')).toBe(policy);
    const before = await snapshotHost(sysroot);
    const [historyBefore] = await call('GetHistory', 'u', [0]);

    const [available, nvr, tx] = await call('AutomaticUpdateTrigger', 'a{sv}', [{}]);

    if (expected === 'nothing' || expected === 'report') {
      expect([available, nvr, tx]).toEqual(expected === 'nothing' ? [false, '', '/'] : [true, NVR.v2, '/']);
      expect(await snapshotHost(sysroot)).toEqual(before);
      expect((await call('GetHistory', 'u', [0]))[0]).toEqual(historyBefore);
      if (expected === 'report') {
        expect([await prop('UpdateAvailable'), await prop('AvailableVersion')]).toEqual([true, NVR.v2]);
        if (policy !== 'check') expect(daemonLog).toMatch(/outside the maintenance window/);
      }
      return;
    }
    expect([available, nvr]).toEqual([true, NVR.v2]);
    expect(await finish(String(tx))).toBe('succeeded');
    const [[last]] = (await call('GetHistory', 'u', [1])) as [[{ initiator: string; warnings: string[]; kind: string }]];
    expect(last?.kind).toBe('upgrade');
    expect(last?.initiator).toMatch(new RegExp(`^automatic update \\(${policy}\\): uid 0 \\(:`));
    expect(String(await prop('Initiator', TX_IFACE, String(tx)))).toMatch(new RegExp(`^automatic update \\(${policy}\\): uid 0`));
    // The new layer is on trial: it boots next (DefaultLayer); once booted, a reset would fall back to OLD.
    expect(await prop('TrialLayer')).toBe(NEW);
    expect(await prop('DefaultLayer')).toBe(expected === 'rebooted' ? OLD : NEW);
    expect([await prop('UpdateAvailable'), await prop('AvailableVersion')]).toEqual([false, '']);
    if (expected === 'rebooted') {
      expect(await prop('CurrentLayer')).toBe(NEW);
      expect(last?.warnings).toEqual([]);
    } else {
      expect(await prop('CurrentLayer')).toBe(OLD);
      expect(last?.warnings).toEqual(expected === 'staged-vms'
        ? [`reboot into ${NVR.v2} (automatic update policy "apply"): 1 virtual machine running (engine-vm); not rebooting`]
        : []);
    }
  });

  it('VirtualMachines follows libvirt, and Check reports it', async () => {
    await startDaemon(WINDOWS.inside);
    runningWindow = 'inside';
    const vmRow = async (): Promise<unknown> => {
      const [, rows] = (await call('Check', '', [])) as [string, Array<[string, string, string, string]>];
      return rows.find((r) => r[0] === 'Virtualization');
    };
    // Check reuses a report younger than 5 s, so a change shows within that.
    await setVms(true);
    await eventually(async () => JSON.stringify(await vmRow()) === JSON.stringify(['Virtualization', 'running-vms', 'ok', '1 running: engine-vm']), 10_000, 500);
    expect(await prop('VirtualMachines')).toEqual({ available: true, running: ['engine-vm'], message: '' });
    await setVms(false);
    await eventually(async () => JSON.stringify(await vmRow()) === JSON.stringify(['Virtualization', 'running-vms', 'ok', 'none running']), 10_000, 500);
    expect(await prop('VirtualMachines')).toEqual({ available: true, running: [], message: '' });
  });

  it('Rollback with reboot: refused up front while a VM runs (nothing changes), reboots when none does', async () => {
    await restore();
    await setVms(false);
    await call('SetAutomaticUpdatePolicy', 's', ['stage']);
    expect(await finish(String((await call('AutomaticUpdateTrigger', 'a{sv}', [{}]))[2]))).toBe('succeeded');
    // now: v2 staged (default), v1 running; boot v2 first so there is something to roll back from
    await call('SetAutomaticUpdatePolicy', 's', ['none']);
    ok(await root.call({ ...NODE, interface: 'org.ovirt.Node.Sandbox', member: 'Reboot' }));
    expect(await prop('CurrentLayer')).toBe(NEW);

    await setVms(true);
    const before = await snapshotHost(sysroot);
    const refused = await root.call({ ...LAYERS, member: 'Rollback', signature: 'sa{sv}', body: ['', { reboot: v('b', true) }] });
    expect(refused).toEqual({ ok: false, name: 'org.ovirt.Node.Error.VMsRunning', message: expect.stringMatching(/1 virtual machine.*engine-vm/) });
    expect(await snapshotHost(sysroot)).toEqual(before);

    await setVms(false);
    expect(await finish(String((await call('Rollback', 'sa{sv}', ['', { reboot: v('b', true) }]))[0]))).toBe('succeeded');
    expect([await prop('CurrentLayer'), await prop('DefaultLayer')]).toEqual([OLD, OLD]);
  });

  it('libvirt unavailable: apply stages but does not reboot, and says why; Rollback with reboot is refused', async () => {
    await restore();
    await startDaemon(WINDOWS.inside, `LibvirtURI=test://${path.join(sysroot, 'etc/imgbased/no-such-libvirt.xml')}\n`);
    runningWindow = '';
    expect(await prop('VirtualMachines')).toMatchObject({ available: false, running: [] });
    await call('SetAutomaticUpdatePolicy', 's', ['apply']);
    const [, , tx] = await call('AutomaticUpdateTrigger', 'a{sv}', [{}]);
    expect(await finish(String(tx))).toBe('succeeded');
    const [[last]] = (await call('GetHistory', 'u', [1])) as [[{ warnings: string[] }]];
    expect(last?.warnings).toEqual([expect.stringMatching(/libvirt cannot tell whether virtual machines run .*; not rebooting/)]);
    expect([await prop('CurrentLayer'), await prop('DefaultLayer')]).toEqual([OLD, NEW]);
    const refused = await root.call({ ...LAYERS, member: 'Rollback', signature: 'sa{sv}', body: ['', { reboot: v('b', true) }] });
    expect(refused).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.VMsRunning', message: expect.stringMatching(/libvirt/) });
    await call('SetAutomaticUpdatePolicy', 's', ['none']);
  });
});
