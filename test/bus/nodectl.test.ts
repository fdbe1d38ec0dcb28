/**
 * nodectl against the running sandbox daemon on a private bus (shipped policy, real polkitd): every verb, human and
 * JSON output, exit codes, non-TTY progress lines, not-authorized as nobody (nothing changed), Busy naming the
 * transaction, watch and cancel, upgrade without IMAGE and --automatic, rollback --reboot refused while a VM runs,
 * motd (also with no daemon), policy, and the bash completion run in bash against the daemon.
 * Terminal behaviour (bar, Ctrl-C prompt, watch from a second terminal) is in nodectl-tty.test.ts.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SANDBOX_LIBVIRT_XML, sandboxLibvirtXml } from '../../src/sandbox/sysroot';
import { buildTestImage } from '../../src/image/test-image-builder';
import type { Caller } from './harness';
import { eventually, PrivateBus, runCommand } from './harness';
import type { ImageSet } from '../helpers/host';
import { NVR, V2_CHANGES, sandboxHost } from '../helpers/host';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const COMPLETION = path.join(REPO, 'completion/nodectl');
const VMS_LINE = /^vms: (\d+ running|unknown \(libvirt: .*\))$/m;

describe('nodectl', () => {
  let dir: string;
  let images: ImageSet;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let sysroot: string;

  const nodectl = async (who: Caller, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await bus.run(who, [process.execPath, NODECTL, ...args]);
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    await fs.access(NODECTL);
    ({ dir, images, sysroot } = await sandboxHost('nodectl'));
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }, 120_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    await bus?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('info keeps oVirt nodectl\'s shape, as text and JSON; anyone may read', async () => {
    const text = await nodectl('nobody', ['info']);
    expect(text.code).toBe(0);
    expect(text.stdout.replace(VMS_LINE, 'vms: …')).toBe([
      'bootloader:', `  default: ${NVR.v1}+1`, '  entries:', `    ${NVR.v1}+1`, 'layers:', `  ${NVR.v1}:`, `    ${NVR.v1}+1`,
      `current_layer: ${NVR.v1}+1`, 'vms: …', '',
    ].join('\n'));
    const json = await nodectl('nobody', ['--machine-readable', 'info']);
    const d = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(Object.keys(d)).toEqual(['bootloader', 'layers', 'current_layer', 'vms', 'trial_layer', 'boot_states']);
    expect(d).toMatchObject({
      bootloader: { default: `${NVR.v1}+1`, entries: [`${NVR.v1}+1`] }, layers: { [NVR.v1]: [`${NVR.v1}+1`] }, current_layer: `${NVR.v1}+1`,
    });
    expect(d['vms']).toEqual({ available: expect.any(Boolean), running: expect.any(Array), message: expect.any(String) });
    expect(JSON.parse((await nodectl('nobody', ['info', '--json'])).stdout)).toEqual(d); // global option after the verb
  });

  it('check prints Status and groups, --oneline the status only, exit 0 when healthy', async () => {
    const r = await nodectl('nobody', ['check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Status: OK\nThin storage \.\.\. OK\n  Checking available space in thinpool \.\.\. OK\n/);
    expect((await nodectl('nobody', ['check', '--oneline'])).stdout).toBe('Status: OK\n');
    // --deep also verifies the bases (polkit: an administrator's call); v1 was installed without a manifest
    expect((await nodectl('nobody', ['check', '--deep'])).code).toBe(3);
    const deep = await nodectl('granted', ['check', '--deep']);
    expect(deep.code).toBe(0);
    expect(deep.stdout).toContain(`Bases ... OK\n  ${NVR.v1} ... OK\n`);
    expect(JSON.parse((await nodectl('nobody', ['--json', 'check'])).stdout).groups.Bootloader.status).toBe('OK');
  });

  it('usage errors exit 2 before touching the bus; --help documents the exit codes', async () => {
    expect((await nodectl('root', ['cleanup', '--keep', '0'])).code).toBe(2);
    expect((await nodectl('root', ['frobnicate'])).code).toBe(2);
    const help = await nodectl('nobody', ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/\n {2}3 +not authorized .*\n {2}4 +busy/);
  });

  it('nobody is refused with exit 3 and a hint', async () => {
    const r = await nodectl('nobody', ['rollback']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not authorized for org\.ovirt\.node\.layers\.rollback\nhint: run as root/);
    // --json: the error is JSON on stdout as well, with the D-Bus name and the exit code
    const j = await nodectl('nobody', ['--json', 'rollback']);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toEqual({
      error: { name: 'org.ovirt.Node.Error.NotAuthorized', message: expect.stringContaining('not authorized'), hint: expect.stringMatching(/^run as root/), exit_code: 3 },
    });
  });

  it('upgrade follows the transaction with timestamped lines when not on a TTY; busy is exit 4; watch attaches', async () => {
    const v2 = await images.image(NVR.v2, { ...V2_CHANGES, extraMb: 48 });
    const upgrading = nodectl('granted', ['upgrade', v2.imagePath]);
    await eventually(async () => (await nodectl('nobody', ['--json', 'layers'])).code === 0
      && (await bus.busctl('root', ['get-property', 'org.ovirt.Node', '/org/ovirt/Node', 'org.ovirt.Node.Layers', 'ActiveTransaction'])).stdout.trim() !== 'o "/"', 20_000, 20);
    const busy = await nodectl('root', ['cleanup']);
    expect(busy.code).toBe(4);
    expect(busy.stderr).toMatch(/^nodectl: transaction t\w+ \(upgrade\) is running\nhint: follow it with "nodectl watch"/);
    const watched = nodectl('nobody', ['watch']);
    const r = await upgrading;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[\s*\d+%\] \S+: /m);
    expect(r.stderr).toMatch(/\[100%\] start-trial: done/);
    expect((await watched).code).toBe(0);
    expect((await nodectl('nobody', ['layers'])).stdout).toContain(`${NVR.v2}+1 [default]`);
    const hist = await nodectl('nobody', ['history', '--limit', '2']);
    expect(hist.stdout).toMatch(/upgrade\s+succeeded/);
  }, 120_000);

  it('cancel stops a running upgrade (exit 130 for the one that was following it)', async () => {
    const v3 = await images.image(NVR.v3, { extraMb: 64 });
    const upgrading = nodectl('root', ['upgrade', v3.imagePath]);
    await eventually(async () => (await bus.busctl('root', ['get-property', 'org.ovirt.Node', '/org/ovirt/Node', 'org.ovirt.Node.Layers', 'ActiveTransaction'])).stdout.trim() !== 'o "/"', 20_000, 20);
    expect((await nodectl('nobody', ['cancel'])).code).toBe(3);
    const c = await nodectl('root', ['cancel']);
    expect(c.code).toBe(0);
    const r = await upgrading;
    expect(r.code).toBe(130);
    expect((await nodectl('nobody', ['layers'])).stdout).not.toContain(NVR.v3);
  }, 120_000);
  it('motd: oVirt\'s status lines for anyone, exit 0; one line and exit 0 when the bus is not there', async () => {
    const r = await nodectl('nobody', ['motd']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}node status: (OK|DEGRADED)\n {2}See `nodectl check` for more information\n {2}current layer: \S+\+1\n/);
    const gone = await bus.run('nobody', [process.execPath, NODECTL, 'motd'], { env: { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/no-such-socket` } });
    expect([gone.code, gone.stderr]).toEqual([0, '']);
    expect(gone.stdout).toMatch(/^ {2}node status: unknown \(imgbased is not reachable: .*\)\n$/);
    expect(JSON.parse((await nodectl('nobody', ['--json', 'motd'])).stdout)).toMatchObject({ status: expect.stringMatching(/^(OK|DEGRADED)$/) });
  });

  it('policy: anyone reads it, nobody cannot set it (exit 3, unchanged), a granted user can; bad values are usage errors', async () => {
    expect((await nodectl('nobody', ['policy'])).stdout).toMatch(/^policy: none \(automatic updates are off\)\nmaintenance window: /);
    const refused = await nodectl('nobody', ['policy', 'apply']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/hint: run as root/);
    expect(JSON.parse((await nodectl('nobody', ['--json', 'policy'])).stdout)).toEqual({ policy: 'none', maintenance_window: expect.any(String) });
    expect((await nodectl('granted', ['policy', 'bogus'])).code).toBe(2);
    const set = await nodectl('granted', ['policy', 'check']);
    expect([set.code, set.stdout.split('\n')[0]]).toEqual([0, 'policy: check (look for newer images only)']);
    expect((await nodectl('granted', ['policy', 'none'])).code).toBe(0);
  });

  it('upgrade --automatic: nothing to do (exit 0), update available under "check"; upgrade without IMAGE stages the newest', async () => {
    const none = await nodectl('granted', ['upgrade', '--automatic']);
    expect([none.code, none.stdout]).toEqual([0, 'Nothing to do: the automatic update policy is "none" (`nodectl policy` changes it).\n']);
    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    await fs.mkdir(imageDir, { recursive: true });
    await buildTestImage({ outDir: imageDir, nvr: NVR.v3, sign: images.key });
    // check-update looks whatever the policy ("none" here) and installs nothing
    expect(JSON.parse((await nodectl('granted', ['--json', 'check-update'])).stdout)).toEqual({ available: true, nvr: NVR.v3 });
    expect((await nodectl('granted', ['check-update'])).stdout).toBe(`Update available: ${NVR.v3} (\`nodectl upgrade\` installs it).\n`);
    expect((await nodectl('granted', ['policy', 'check'])).code).toBe(0);
    const avail = await nodectl('granted', ['upgrade', '--automatic']);
    expect([avail.code, avail.stdout]).toEqual([0, `Update available: ${NVR.v3} (not installed: the policy is "check"; \`nodectl upgrade\` installs it now).\n`]);
    expect(JSON.parse((await nodectl('granted', ['--json', 'upgrade', '--automatic'])).stdout))
      .toEqual({ result: 'update-available', nvr: NVR.v3, policy: 'check', maintenance_window: '', transaction: '', warnings: [] });
    expect((await nodectl('nobody', ['motd'])).stdout).toContain(`  update available: ${NVR.v3} (\`nodectl upgrade\`)`);
    expect((await nodectl('nobody', ['upgrade'])).code).toBe(3);
    const staged = await nodectl('granted', ['upgrade']);
    expect(staged.code).toBe(0);
    expect(staged.stderr).toMatch(new RegExp(`^Installing ${NVR.v3}: transaction t\\w+\n`));
    expect(staged.stdout).toBe(`Staged: ${NVR.v3} boots next time.\n`);
    expect((await nodectl('nobody', ['layers'])).stdout).toContain(`${NVR.v3}+1 [default]`);
    expect((await nodectl('granted', ['policy', 'none'])).code).toBe(0);
  }, 120_000);

  it('pin, unpin and remove-base: nobody is refused and nothing changes; pinned bases stay', async () => {
    const layersBefore = (await nodectl('nobody', ['layers'])).stdout;
    expect(layersBefore).toContain(`${NVR.v2}+1\n`);
    expect((await nodectl('nobody', ['pin', `${NVR.v2}+1`])).code).toBe(3);
    expect((await nodectl('nobody', ['remove-base', NVR.v2])).code).toBe(3);
    expect((await nodectl('nobody', ['layers'])).stdout).toBe(layersBefore);
    expect(JSON.parse((await nodectl('granted', ['--json', 'pin', `${NVR.v2}+1`])).stdout)).toEqual({ layer: `${NVR.v2}+1`, pinned: true });
    expect((await nodectl('nobody', ['layers'])).stdout).toContain(`${NVR.v2}+1 [pinned]`);
    const pinned = await nodectl('granted', ['remove-base', NVR.v2]);
    expect(pinned.code).not.toBe(0);
    expect((await nodectl('nobody', ['layers'])).stdout).toContain(`${NVR.v2}+1 [pinned]`);
    const unpin = await nodectl('granted', ['unpin', `${NVR.v2}+1`]);
    expect([unpin.code, unpin.stdout]).toEqual([0, `Unpinned ${NVR.v2}+1.\n`]);
    const missing = await nodectl('granted', ['remove-base', 'ovirt-node-ng-9.9.9-0.20990101.0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/hint: "nodectl layers" lists the layers and bases/);
    const removed = await nodectl('granted', ['remove-base', NVR.v2]);
    expect([removed.code, removed.stdout]).toEqual([0, `Removed ${NVR.v2}.\n`]);
    expect((await nodectl('nobody', ['layers'])).stdout).not.toContain(NVR.v2);
  }, 120_000);

  it('rollback --reboot is refused while a VM runs (exit 1 with a hint, nothing changed); info counts the VMs', async () => {
    const xml = path.join(sysroot, SANDBOX_LIBVIRT_XML);
    await fs.writeFile(xml, sandboxLibvirtXml([{ name: 'sandbox-vm', running: true }]));
    const before = (await nodectl('nobody', ['layers'])).stdout;
    const r = await nodectl('granted', ['rollback', '--reboot']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sandbox-vm[\s\S]*\nhint: stop or migrate the VMs first \(`virsh list` shows them\)/);
    expect((await nodectl('nobody', ['layers'])).stdout).toBe(before);
    await nodectl('nobody', ['check']); // Check asks libvirt afresh and refreshes VirtualMachines
    expect((await nodectl('nobody', ['info'])).stdout).toMatch(/\nvms: 1 running\n$/);
    await fs.writeFile(xml, sandboxLibvirtXml([{ name: 'sandbox-vm', running: false }]));
    const ok = await nodectl('granted', ['rollback', '--reboot']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Default layer \(boots next time\): \S+\nRebooting into it\.\n$/);
  }, 120_000);

  it('bash completion: verbs, options per verb, layer and base names from the daemon, image files', async () => {
    const bin = path.join(dir, 'bin');
    await fs.mkdir(bin, { recursive: true });
    await fs.writeFile(path.join(bin, 'nodectl'), `#!/bin/sh\nexec ${process.execPath} ${NODECTL} "$@"\n`, { mode: 0o755 });
    await fs.mkdir(path.join(dir, 'imgs'), { recursive: true });
    for (const f of ['a.squashfs.img', 'a.squashfs.img.sha256', 'a.squashfs.img.sig']) await fs.writeFile(path.join(dir, 'imgs', f), '');
    const script = `shopt -s extglob; source ${COMPLETION}; complete -p nodectl
t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _nodectl nodectl "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"; echo "\${COMPREPLY[*]}"; }
t nodectl ''; t nodectl re; t nodectl --json ro; t nodectl cleanup --; t nodectl rollback ''; t nodectl remove-base ''; t nodectl pin ovirt
t nodectl upgrade ${dir}/imgs/; t nodectl policy s; t nodectl rollback x ''`;
    const env = { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: dir };
    const r = await bus.run('root', ['bash', '--norc', '--noprofile', '-c', script], { env });
    expect(r.stderr).toBe('');
    const layers = JSON.parse((await nodectl('nobody', ['--json', 'layers'])).stdout) as Array<{ name: string; base: string }>;
    const names = layers.map((l) => l.name).join(' ');
    const bases = [...new Set(layers.map((l) => l.base))].join(' ');
    expect(r.stdout.split('\n')).toEqual([
      'complete -F _nodectl nodectl',
      'info check layers upgrade rollback cleanup remove-base pin unpin history watch cancel motd policy check-update boot-complete help',
      'remove-base', 'rollback', '--keep --wait --json --machine-readable --help', names, bases, names,
      `${dir}/imgs/a.squashfs.img`, 'stage', '', '',
    ]);
    // A dead bus: nothing offered, nothing printed, no hang.
    const dead = await bus.run('root', ['bash', '--norc', '--noprofile', '-c', script], { env: { ...env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/none` } });
    expect(dead.stderr).toBe('');
    expect(dead.stdout.split('\n')[5]).toBe(''); // rollback ''
  }, 60_000);
});
