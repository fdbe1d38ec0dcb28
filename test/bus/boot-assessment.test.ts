/**
 * Boot assessment through the daemon on a private system bus with polkit (sandbox mode, dir backend): an upgrade
 * puts the new layer on trial (grub's one-shot next_entry, saved_entry kept), the sandbox's Reboot() boots it the
 * way grub.cfg does, and CompleteBoot (what imgbased-boot-complete.service runs through `nodectl boot-complete`)
 * runs the health gates: passing moves the default, failing falls back to the old layer and says why; a reset
 * during the trial lands on the old layer. The grubenv is read back with the real grub-editenv (grub-common).
 * Sandbox unit states are files (src/sandbox/sysroot.ts: SANDBOX_UNITS_DIR).
 */
import { execFile } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SANDBOX_LIBVIRT_XML, sandboxLibvirtXml, setSandboxUnit } from '../../src/sandbox/sysroot';
import type { Caller, RemoteClient } from './harness';
import { eventually, PrivateBus } from './harness';
import { LAYERS, layersOps, NODE, ok, unwrap, v } from './wire';
import { NVR, sandboxHost, snapshotHost } from '../helpers/host';
import type { ImageSet } from '../helpers/host';
import { stopChild } from '../../src/sandbox/snmpd';

const execFileP = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const L1 = `${NVR.v1}+1`;
const L2 = `${NVR.v2}+1`;
const L3 = `${NVR.v3}+1`;

interface LayerRow {
  name: string;
  'boot-state': string;
  'boot-state-reason': string;
  'boot-state-changed': number;
  default: boolean;
  current: boolean;
}

describe('boot assessment: trial boot, health gates, fallback', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let baseConfig: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams | null = null;
  let root: RemoteClient;

  const { prop, call, finish } = layersOps(() => root);
  const reboot = async (): Promise<string> => String(unwrap(ok(await root.call({
    ...NODE, interface: 'org.ovirt.Node.Sandbox', member: 'Reboot', signature: '', body: [],
  }))[0]));
  const layers = async (): Promise<Record<string, LayerRow>> =>
    Object.fromEntries(((await prop('Layers')) as LayerRow[]).map((l) => [l.name, l]));
  const nodectl = async (who: Caller, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await bus.run(who, [process.execPath, NODECTL, ...args]);
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  /** The grubenv as the real grub-editenv lists it. */
  async function grubenv(): Promise<Record<string, string>> {
    const file = path.join(sysroot, 'boot/grub2/grubenv');
    expect((await fs.stat(file)).size).toBe(1024);
    const { stdout } = await execFileP('grub-editenv', [file, 'list']);
    return Object.fromEntries(stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  async function stopDaemon(): Promise<void> {
    const d = daemon;
    daemon = null;
    if (d) await stopChild(d);
  }

  async function startDaemon(boot: string): Promise<void> {
    await stopDaemon();
    await fs.writeFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), `${baseConfig}[Boot]\n${boot}`);
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }

  async function upgrade(nvr: string): Promise<void> {
    const img = await images.image(nvr);
    expect(await finish(String((await call('Upgrade', 'sa{sv}', [img.imagePath, {}]))[0]))).toBe('succeeded');
  }

  async function history(): Promise<Array<Record<string, unknown>>> {
    return (await call('GetHistory', 'u', [0]))[0] as Array<Record<string, unknown>>;
  }

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('boot-assessment'));
    baseConfig = await fs.readFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), 'utf8');
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    root = await bus.clientAs('root');
    await startDaemon('RequiredUnits=vdsmd.service libvirtd.service\nGateTimeoutSec=2\n');
  }, 180_000);

  afterAll(async () => {
    await stopDaemon();
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('the installed layer is good; nothing is on trial and boot-complete has nothing to confirm', async () => {
    expect((await layers())[L1]).toMatchObject({ 'boot-state': 'good', 'boot-state-reason': 'installed', current: true, default: true });
    expect(await prop('TrialLayer')).toBe('');
    const before = await snapshotHost(sysroot);
    const r = await nodectl('root', ['boot-complete']);
    expect(r).toMatchObject({ code: 0, stdout: `Nothing to confirm: ${L1} is not on trial (good).\n` });
    expect(await snapshotHost(sysroot)).toEqual({ ...before, journal: expect.anything() });
    expect((await history())[0]).toMatchObject({ kind: 'boot-complete', state: 'succeeded', request: { layer: '', verdict: 'none' } });
  });

  it('upgrade → trial: next_entry names the new layer once, saved_entry keeps the good one', async () => {
    await upgrade(NVR.v2);
    expect(await grubenv()).toEqual({ saved_entry: L1, next_entry: L2 });
    expect([await prop('DefaultLayer'), await prop('TrialLayer'), await prop('CurrentLayer')]).toEqual([L2, L2, L1]);
    const l = await layers();
    expect(l[L2]).toMatchObject({ 'boot-state': 'trial', 'boot-state-reason': 'waiting for its first boot', default: true });
    expect(l[L2]?.['boot-state-changed']).toBeGreaterThan(0);
    const info = JSON.parse((await nodectl('nobody', ['--json', 'info'])).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ trial_layer: L2, boot_states: { [L1]: { state: 'good' }, [L2]: { state: 'trial' } } });
    expect((await nodectl('nobody', ['layers'])).stdout).toBe(`${L1} [current] [good]\n${L2} [default] [trial: waiting for its first boot]\n`);
  });

  it('a reset during the trial lands on the old layer, and the unconfirmed trial is marked bad', async () => {
    expect(await reboot()).toBe(L2); // the trial boot: grub used next_entry up
    expect(await grubenv()).toEqual({ saved_entry: L1 });
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([L2, L1, L2]);
    expect((await layers())[L2]?.['boot-state-reason']).toBe('booted on trial: waiting for CompleteBoot (imgbased-boot-complete.service)');
    expect(await reboot()).toBe(L1); // reset before any confirmation
    expect(await prop('CurrentLayer')).toBe(L1);
    const r = await nodectl('root', ['--json', 'boot-complete']);
    expect(r.code).toBe(0); // the running layer (L1) is good
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: 'none', current_layer: L1, current_state: 'good', default_layer: L1 });
    expect((await layers())[L2]).toMatchObject({
      'boot-state': 'bad', 'boot-state-reason': `the host came back on ${L1} before the boot of ${L2} was confirmed`,
    });
    expect(await prop('TrialLayer')).toBe('');
    expect(await grubenv()).toEqual({ saved_entry: L1 });
  });

  it('a retried upgrade, trial boot, gates pass → good and the default moves', async () => {
    // Start over with v2: remove it, install it again.
    expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v2, {}]))[0]))).toBe('succeeded');
    await upgrade(NVR.v2);
    expect(await reboot()).toBe(L2);
    await setSandboxUnit(sysroot, 'vdsmd.service', 'active');
    await setSandboxUnit(sysroot, 'libvirtd.service', 'active');
    const r = await nodectl('root', ['boot-complete']);
    expect(r.stdout).toBe(`Boot of ${L2} confirmed: gates passed: vdsmd.service, libvirtd.service active; health ok. It is the default layer now.\n`);
    expect(r.code).toBe(0);
    expect(await grubenv()).toEqual({ saved_entry: L2 });
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([L2, L2, '']);
    expect((await layers())[L2]).toMatchObject({ 'boot-state': 'good' });
    const [h] = await history();
    expect(h).toMatchObject({ kind: 'boot-complete', state: 'succeeded', request: { layer: L2, verdict: 'good' } });
    expect(await reboot()).toBe(L2);
  });

  it('upgrade, trial boot, a gate fails → bad, the default falls back, the history says why', async () => {
    await upgrade(NVR.v3);
    expect(await grubenv()).toEqual({ saved_entry: L2, next_entry: L3 });
    expect(await reboot()).toBe(L3);
    await setSandboxUnit(sysroot, 'vdsmd.service', 'failed');
    const r = await nodectl('root', ['boot-complete']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`Boot of ${L3} FAILED: required unit vdsmd.service failed.\nDefault layer (boots next time): ${L2}\n`);
    expect(await grubenv()).toEqual({ saved_entry: L2 });
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([L3, L2, '']);
    expect((await layers())[L3]).toMatchObject({ 'boot-state': 'bad', 'boot-state-reason': 'required unit vdsmd.service failed' });
    const [h] = await history();
    expect(h).toMatchObject({
      kind: 'boot-complete', state: 'succeeded', request: { layer: L3, verdict: 'bad', reason: 'required unit vdsmd.service failed' },
      warnings: [`${L3} failed its boot assessment: required unit vdsmd.service failed`],
    });
    expect((await nodectl('nobody', ['history', '--limit', '1'])).stdout).toMatch(/boot-complete succeeded/);
    expect(await reboot()).toBe(L2); // RebootOnFailure=no: the next boot, whenever it comes, is the good layer
    // A second boot-complete on the good layer changes nothing and exits 0.
    expect((await nodectl('root', ['boot-complete'])).code).toBe(0);
  });

  it('a unit that never comes up fails the gate at the timeout', async () => {
    expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v3, {}]))[0]))).toBe('succeeded');
    await upgrade(NVR.v3);
    expect(await reboot()).toBe(L3);
    await setSandboxUnit(sysroot, 'vdsmd.service', 'activating');
    const started = Date.now();
    const r = await nodectl('root', ['--json', 'boot-complete']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000); // GateTimeoutSec=2
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      layer: L3, verdict: 'bad', reason: 'required unit not active in time: vdsmd.service (activating)', default_layer: L2,
    });
    expect(await reboot()).toBe(L2);
  });

  it('an external verdict (--verdict bad) is recorded as given; wrong options are named errors and change nothing', async () => {
    expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v3, {}]))[0]))).toBe('succeeded');
    await upgrade(NVR.v3);
    expect(await reboot()).toBe(L3);
    const before = await snapshotHost(sysroot);
    const bad = await root.call({ ...LAYERS, member: 'CompleteBoot', signature: 'a{sv}', body: [{ verdict: v('s', 'maybe') }] });
    expect(bad).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument' });
    const unknown = await root.call({ ...LAYERS, member: 'CompleteBoot', signature: 'a{sv}', body: [{ gates: v('b', false) }] });
    expect(unknown).toMatchObject({ ok: false, name: 'org.ovirt.Node.Error.InvalidArgument', message: expect.stringContaining('gates') });
    const denied = await nodectl('nobody', ['boot-complete', '--verdict', 'good']);
    expect(denied.code).toBe(3);
    expect(await snapshotHost(sysroot)).toEqual(before);
    expect((await nodectl('root', ['boot-complete', '--reason', 'x'])).code).toBe(2);
    const r = await nodectl('root', ['boot-complete', '--verdict', 'bad', '--reason', 'vdsm cannot reach the engine']);
    expect(r.code).toBe(1);
    expect((await layers())[L3]).toMatchObject({ 'boot-state': 'bad', 'boot-state-reason': 'vdsm cannot reach the engine' });
    expect(await grubenv()).toEqual({ saved_entry: L2 });
  });

  it('RebootOnFailure=yes reboots into the last good layer after a failed gate, unless a VM runs (a warning says why)', async () => {
    await startDaemon('RequiredUnits=vdsmd.service\nGateTimeoutSec=1\nRebootOnFailure=yes\n');
    await setSandboxUnit(sysroot, 'vdsmd.service', 'failed');
    const xml = path.join(sysroot, SANDBOX_LIBVIRT_XML);
    const retrial = async (): Promise<void> => {
      if ((await prop('CurrentLayer')) !== L2) expect(await reboot()).toBe(L2);
      expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v3, {}]))[0]))).toBe('succeeded');
      await upgrade(NVR.v3);
      expect(await reboot()).toBe(L3);
    };
    await retrial();
    await fs.writeFile(xml, sandboxLibvirtXml([{ name: 'engine-vm', running: true }]));
    const held = await nodectl('root', ['--json', 'boot-complete']);
    expect(held.code).toBe(1);
    expect(JSON.parse(held.stdout)).toMatchObject({
      verdict: 'bad', current_layer: L3, default_layer: L2,
      warnings: expect.arrayContaining([expect.stringMatching(/^reboot into the last good layer after .*: 1 virtual machine running \(engine-vm\); not rebooting$/)]),
    });
    expect(await prop('CurrentLayer')).toBe(L3);

    await retrial();
    await fs.writeFile(xml, sandboxLibvirtXml([{ name: 'engine-vm', running: false }]));
    const r = await nodectl('root', ['boot-complete']);
    expect(r.code).toBe(1);
    expect(await prop('CurrentLayer')).toBe(L2); // the sandbox's reboot: grub booted the saved default
  });

  it('rollback during a trial boot rejects the trial; Assessment=no makes upgrades the default at once', async () => {
    expect(await reboot()).toBe(L2);
    expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v3, {}]))[0]))).toBe('succeeded');
    await upgrade(NVR.v3);
    expect(await reboot()).toBe(L3);
    expect(await finish(String((await call('Rollback', 'sa{sv}', ['', {}]))[0]))).toBe('succeeded');
    expect((await layers())[L3]).toMatchObject({ 'boot-state': 'bad', 'boot-state-reason': `rolled back to ${L2} before its boot was confirmed` });
    expect([await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([L2, '']);
    expect(await reboot()).toBe(L2);

    await startDaemon('Assessment=no\n');
    expect(await finish(String((await call('RemoveBase', 'sa{sv}', [NVR.v3, {}]))[0]))).toBe('succeeded');
    await upgrade(NVR.v3);
    expect(await grubenv()).toEqual({ saved_entry: L3 });
    expect([await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([L3, '']);
    expect((await layers())[L3]?.['boot-state']).toBe('');
  });
});
