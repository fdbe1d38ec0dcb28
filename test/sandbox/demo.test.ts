/**
 * The README's main command, end to end (without the setup step): the demo builds images, starts a private bus,
 * polkitd and the daemon, upgrades over D-Bus, serves, and stops everything on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers/host';

const DEMO = path.resolve(__dirname, '../../dist/src/sandbox/demo.js');

it('runs the sandbox demo: upgrade with progress, serves, Ctrl-C stops everything', async () => {
  await fs.access(DEMO);
  const dir = await tempDir('demo');
  const work = path.join(dir, 'sandbox');
  try {
    const proc = spawn(process.execPath, [DEMO, work], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const end = Date.now() + 90_000;
    while (!out.includes('Press Ctrl-C') && proc.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(out).toContain('-- upgrade done: default layer is now ovirt-node-ng-4.5.6-0.20250601.0+1');
    expect(out).toMatch(/100% \| set-default/);
    expect(out).toContain('layer ovirt-node-ng-4.5.6-0.20250601.0+1 (current) (default)');
    const socket = /unix:path=(\S+)/.exec(out)?.[1] ?? '';
    await fs.access(socket);
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('daemon exited (0)');
    await expect(fs.access(socket)).rejects.toThrow(/ENOENT/);
    await expect(fs.access('/usr/share/polkit-1/actions/org.ovirt.node.layers.policy')).rejects.toThrow(/ENOENT/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}, 120_000);
