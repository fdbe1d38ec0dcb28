/**
 * The example image-update package (packaging/image-update/) built with rpmbuild and installed with rpm into a
 * scratch tree (its own rpmdb, --relocate /usr/share), its %pre talking to the sandbox daemon on a private bus with
 * polkit: the upgrade happens and a second client sees its progress; a corrupt image fails the RPM transaction and
 * leaves the host as it was; a reinstall has nothing to do; without a bus the offline tool installs it.
 */
import { promises as fs } from 'node:fs';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import type { RemoteClient } from '../bus/harness';
import { eventually, PrivateBus, runCommand } from '../bus/harness';
import { ok, unwrap } from '../bus/wire';
import type { ImageSet } from '../helpers/host';
import { NVR, sandboxHost, snapshotHost } from '../helpers/host';
import { stopChild } from '../../src/sandbox/snmpd';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const BUILD = path.join(REPO, 'packaging/image-update/build-image-update.sh');
const NODE = { destination: 'org.ovirt.Node', path: '/org/ovirt/Node' };
const PKG = 'ovirt-node-ng-image-update';

describe('image-update package → %pre → imgbased', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams | null = null;
  let daemonLog = '';
  let root: RemoteClient;
  let bin: string;
  let rpms: string;
  let share: string;
  let dbpath: string;

  const prop = async (name: string): Promise<unknown> =>
    unwrap(ok(await root.call({
      ...NODE, interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: ['org.ovirt.Node.Layers', name],
    }))[0]);
  const bases = async (): Promise<string[]> => ((await prop('Bases')) as Array<{ name: string }>).map((b) => b.name);

  /** Build the two packages around an image; returns [main, squashfs]. */
  async function build(image: string, out: string): Promise<string[]> {
    const r = await runCommand(['sh', BUILD, image, out], { timeoutMs: 120_000 });
    // (bash sources ~/.bashrc when its stdin is a socket, as Node's pipes are: noise on stderr is no failure)
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    return r.stdout.trim().split('\n').sort();
  }

  /** rpm -Uvh into the scratch tree: scriptlets find nodectl/imgbased (wrappers) first on their PATH. */
  const rpm = (files: string[], env: Record<string, string>, extra: string[] = []): ReturnType<typeof runCommand> =>
    runCommand(['rpm', `--dbpath=${dbpath}`, '--nodeps', `--relocate=/usr/share=${share}`,
      `--define=_install_script_path ${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, '-Uvh', ...extra, ...files], { env, timeoutMs: 120_000 });

  async function startDaemon(): Promise<void> {
    const d = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    d.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    daemon = d;
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('image-update'));
    bin = path.join(dir, 'bin');
    rpms = path.join(dir, 'rpms');
    share = path.join(dir, 'share');
    dbpath = path.join(dir, 'rpmdb');
    await fs.mkdir(bin);
    for (const [tool, js] of [['nodectl', 'dist/src/cli/nodectl.js'], ['imgbased', 'dist/src/cli/imgbased.js']] as const) {
      await fs.writeFile(path.join(bin, tool), `#!/bin/sh\nexec ${process.execPath} ${path.join(REPO, js)} "$@"\n`, { mode: 0o755 });
    }
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    root = await bus.clientAs('root');
    await startDaemon();
  }, 180_000);

  afterAll(async () => {
    const d = daemon;
    daemon = null;
    if (d) await stopChild(d);
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('installing the package upgrades through the daemon; a second client follows the progress', async () => {
    const [main, squashfs] = await build((await images.image(NVR.v2)).imagePath, path.join(rpms, 'v2'));
    expect(path.basename(main ?? '')).toBe(`${PKG}-4.5.5-0.20250301.0.noarch.rpm`);
    expect(path.basename(squashfs ?? '')).toBe(`${PKG}-squashfs-4.5.5-0.20250301.0.noarch.rpm`);
    await root.addMatch("type='signal',interface='org.ovirt.Node.Transaction',member='Progress'");

    const r = await rpm([main ?? '', squashfs ?? ''], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });

    expect(r.stdout + r.stderr).toMatch(/installing ovirt-node-ng-4\.5\.5-0\.20250301\.0\.squashfs\.img through imgbased: transaction t/);
    expect(r.stderr).toMatch(/\[\s*\d+%\] write-base: /); // the daemon's progress, in rpm's output
    expect(r.stdout).toMatch(/Default layer \(boots next time\): ovirt-node-ng-4\.5\.5-0\.20250301\.0\+1/);
    expect(r.code).toBe(0);
    expect(await bases()).toEqual([NVR.v1, NVR.v2]);
    expect(await prop('DefaultLayer')).toBe(`${NVR.v2}+1`);
    expect(root.signals.filter((s) => s.member === 'Progress').length).toBeGreaterThan(2);
    const q = await runCommand(['rpm', `--dbpath=${dbpath}`, '-q', PKG, `${PKG}-squashfs`]);
    expect(q.stdout.trim().split('\n')).toEqual([`${PKG}-4.5.5-0.20250301.0.noarch`, `${PKG}-squashfs-4.5.5-0.20250301.0.noarch`]);

    // Installing it again (the timer may have staged it first) has nothing to do and succeeds.
    const again = await rpm([main ?? '', squashfs ?? ''], { DBUS_SYSTEM_BUS_ADDRESS: bus.address }, ['--replacepkgs']);
    expect(again.stdout).toMatch(/ovirt-node-ng-4\.5\.5-0\.20250301\.0 is installed already/);
    expect(again.code).toBe(0);
    expect(await bases()).toEqual([NVR.v1, NVR.v2]);
  }, 240_000);

  it('a corrupt image fails the RPM transaction with a clear message and changes nothing', async () => {
    const bad = await images.image(NVR.v3, { corrupt: 'image-bytes', fileName: `${NVR.v3}.squashfs.img` });
    const [main, squashfs] = await build(bad.imagePath, path.join(rpms, 'v3-bad'));
    const before = await snapshotHost(sysroot);

    const r = await rpm([main ?? '', squashfs ?? ''], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });

    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nodectl: checksum mismatch for ovirt-node-ng-4\.5\.6-0\.20250601\.0\.squashfs\.img/);
    expect(r.stderr).toMatch(/the upgrade to ovirt-node-ng-4\.5\.6-0\.20250601\.0\.squashfs\.img FAILED; the host is unchanged/);
    expect(r.stderr).toMatch(/%prein\(ovirt-node-ng-image-update-4\.5\.6-0\.20250601\.0\.noarch\) scriptlet failed/);
    expect(await snapshotHost(sysroot)).toEqual(before);
    // The main package is not installed, so the next dnf update tries again.
    const q = await runCommand(['rpm', `--dbpath=${dbpath}`, '-q', PKG]);
    expect(q.stdout.trim()).toBe(`${PKG}-4.5.5-0.20250301.0.noarch`);
  }, 240_000);

  it('without a bus (a kickstart %post) the offline tool installs the image', async () => {
    const d = daemon;
    daemon = null;
    if (d) await stopChild(d); // the offline tool takes the host lock the daemon holds
    const [main, squashfs] = await build((await images.image(NVR.v3, { fileName: `${NVR.v3}.squashfs.img`, outDir: path.join(dir, 'good') })).imagePath,
      path.join(rpms, 'v3'));

    // --replacepkgs: the -squashfs package of the failed attempt above is still installed (its main package is not).
    const r = await rpm([main ?? '', squashfs ?? ''], { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${path.join(dir, 'no-bus')}`, IMGBASED_SYSROOT: sysroot },
      ['--replacepkgs']);

    expect(r.stderr).toMatch(/imgbased cannot be reached \(cannot talk to the system bus.*\); installing with the offline tool/);
    expect(r.stdout).toMatch(/transaction t\S+ \(upgrade\): succeeded/);
    expect(r.code).toBe(0);
    await startDaemon();
    expect(await bases()).toEqual([NVR.v1, NVR.v2, NVR.v3]);
  }, 240_000);

  it('while another upgrade runs, the scriptlet waits for it instead of failing with Busy', async () => {
    const [v8, v9] = ['ovirt-node-ng-4.5.8-0.20251001.0', 'ovirt-node-ng-4.5.9-0.20251101.0'];
    // A bigger image keeps the first upgrade busy for a while.
    const big = await images.image(v8, { extraMb: 64 });
    const [main, squashfs] = await build((await images.image(v9)).imagePath, path.join(rpms, 'v9'));
    const [first] = unwrap(ok(await root.call({
      ...NODE, interface: 'org.ovirt.Node.Layers', member: 'Upgrade', signature: 'sa{sv}', body: [big.imagePath, {}],
    }))) as [string];
    expect(await prop('ActiveTransaction')).toBe(first);

    const r = await rpm([main ?? '', squashfs ?? ''], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });

    expect(r.stderr).not.toMatch(/Busy|busy/);
    expect(r.code).toBe(0);
    const [history] = unwrap(ok(await root.call({
      ...NODE, interface: 'org.ovirt.Node.Layers', member: 'GetHistory', signature: 'u', body: [2],
    }))) as [Array<{ id: string; state: string; 'started-at': number; 'finished-at': number; request: { image: string } }>];
    const [second, firstDone] = history;
    expect(firstDone?.id).toBe(path.basename(first));
    expect([firstDone?.state, second?.state]).toEqual(['succeeded', 'succeeded']);
    expect(second?.request.image).toBe(path.join(share, PKG, 'image', `${v9}.squashfs.img`));
    // The scriptlet's upgrade was accepted while the first ran (queued behind it), and started once it had finished.
    const accepted = daemonLog.indexOf(`transaction ${second?.id ?? '?'} (upgrade) accepted`);
    const firstFinished = daemonLog.indexOf(`transaction ${firstDone?.id ?? '?'} succeeded`);
    expect(accepted).toBeGreaterThan(-1);
    expect(firstFinished).toBeGreaterThan(accepted);
    expect(second?.['started-at']).toBeGreaterThanOrEqual(firstDone?.['finished-at'] ?? Infinity);
    expect(await prop('DefaultLayer')).toBe(`${v9}+1`);
  }, 240_000);
});
