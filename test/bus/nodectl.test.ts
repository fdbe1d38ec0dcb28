/**
 * nodectl against the running sandbox daemon on a private bus (shipped policy, real polkitd): human and JSON output,
 * exit codes, non-TTY progress lines, not-authorized as nobody, Busy, watch and cancel.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createSandbox } from '../../src/sandbox/sysroot';
import type { Caller } from './harness';
import { eventually, PrivateBus } from './harness';
import type { ImageSet } from '../helpers/host';
import { imageSet, NVR, tempDir, V2_CHANGES } from '../helpers/host';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');

describe('nodectl', () => {
  let dir: string;
  let images: ImageSet;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;

  const nodectl = async (who: Caller, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await bus.run(who, [process.execPath, NODECTL, ...args]);
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    await fs.access(NODECTL);
    dir = await tempDir('nodectl');
    await fs.chmod(dir, 0o755);
    images = await imageSet(dir);
    const sysroot = path.join(dir, 'sysroot');
    await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath,
      trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
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
    expect(text.stdout).toBe([
      'bootloader:', `  default: ${NVR.v1}+1`, '  entries:', `    ${NVR.v1}+1`, 'layers:', `  ${NVR.v1}:`, `    ${NVR.v1}+1`,
      `current_layer: ${NVR.v1}+1`, '',
    ].join('\n'));
    const json = await nodectl('nobody', ['--machine-readable', 'info']);
    expect(JSON.parse(json.stdout)).toEqual({
      bootloader: { default: `${NVR.v1}+1`, entries: [`${NVR.v1}+1`] }, layers: { [NVR.v1]: [`${NVR.v1}+1`] }, current_layer: `${NVR.v1}+1`,
    });
  });

  it('check prints Status and groups, --oneline the status only, exit 0 when healthy', async () => {
    const r = await nodectl('nobody', ['check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Status: OK\nThin storage \.\.\. OK\n  Checking available space in thinpool \.\.\. OK\n/);
    expect((await nodectl('nobody', ['check', '--oneline'])).stdout).toBe('Status: OK\n');
    expect(JSON.parse((await nodectl('nobody', ['--json', 'check'])).stdout).groups.Bootloader.status).toBe('OK');
  });

  it('usage errors exit 2 before touching the bus; --help documents the exit codes', async () => {
    expect((await nodectl('root', ['cleanup', '--keep', '0'])).code).toBe(2);
    expect((await nodectl('root', ['frobnicate'])).code).toBe(2);
    const help = await nodectl('nobody', ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/3 not authorized, 4 busy/);
  });

  it('nobody is refused with exit 3 and a hint', async () => {
    const r = await nodectl('nobody', ['rollback']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not authorized for org\.ovirt\.node\.layers\.rollback\nhint: run as root/);
  });

  it('upgrade follows the transaction with timestamped lines when not on a TTY; busy is exit 4; watch attaches', async () => {
    const v2 = await images.image(NVR.v2, { ...V2_CHANGES, extraMb: 48 });
    const upgrading = nodectl('granted', ['upgrade', v2.imagePath]);
    await eventually(async () => (await nodectl('nobody', ['--json', 'layers'])).code === 0
      && (await bus.busctl('root', ['get-property', 'org.ovirt.Node', '/org/ovirt/Node', 'org.ovirt.Node.Layers', 'ActiveTransaction'])).stdout.trim() !== 'o "/"', 20_000, 20);
    const busy = await nodectl('root', ['cleanup']);
    expect(busy.code).toBe(4);
    expect(busy.stderr).toMatch(/is running\nhint: follow it with "nodectl watch"/);
    const watched = nodectl('nobody', ['watch']);
    const r = await upgrading;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[\s*\d+%\] \S+: /m);
    expect(r.stderr).toMatch(/\[100%\] set-default: done/);
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
});
