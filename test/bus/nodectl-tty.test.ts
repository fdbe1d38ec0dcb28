/**
 * nodectl on real terminals (tmux panes, i.e. ptys) against the sandbox daemon on a private bus: the live progress
 * bar, `watch` from a second terminal, the Ctrl-C prompt (c cancels, d and a second Ctrl-C detach), and SIGINT
 * without a terminal (detach at once, no prompt).
 *
 * To hold a transaction in the middle deterministically the test freezes the daemon (SIGSTOP to our own child, by
 * pid) once the first progress shows, and thaws it (SIGCONT) when the terminal side is done.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { eventually, PrivateBus, runCommand } from './harness';
import type { ImageSet } from '../helpers/host';
import { NVR, sandboxHost } from '../helpers/host';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const V4 = 'ovirt-node-ng-4.5.7-0.20250901.0';
const V5 = 'ovirt-node-ng-4.5.8-0.20251001.0';

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A private tmux server (its own socket, no user config); every window runs a shell command and keeps its output. */
class Tmux {
  constructor(readonly socket: string) {}

  private async tmux(args: string[]): Promise<string> {
    const r = await runCommand(['tmux', '-S', this.socket, '-f', '/dev/null', ...args]);
    if (r.code !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Run `command` (sh) in a new session `name`; it prints EXIT:<code> when it ends and stays for capture. */
  async start(name: string, command: string, env: Record<string, string>): Promise<void> {
    const envs = Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`).join(' ');
    // `trap : INT`: the pane's shell must outlive a Ctrl-C that nodectl handles (dash would exit after its child).
    const script = `trap : INT; env ${envs} ${command}; echo "EXIT:$?"; sleep 3600`;
    await this.tmux(['new-session', '-d', '-s', name, '-x', '200', '-y', '50', 'sh', '-c', script]);
  }

  async capture(name: string): Promise<string> {
    return this.tmux(['capture-pane', '-p', '-J', '-S', '-200', '-t', name]);
  }

  async keys(name: string, ...keys: string[]): Promise<void> {
    await this.tmux(['send-keys', '-t', name, ...keys]);
  }

  async waitFor(name: string, re: RegExp, timeoutMs = 30_000): Promise<string> {
    let text = '';
    try {
      await eventually(async () => re.test((text = await this.capture(name))), timeoutMs, 50);
    } catch (e) {
      const dbg = process.env['NODECTL_TEST_DEBUG'] ? (await runCommand(['sh', '-c', `ls -la ${path.dirname(this.socket)}; ps -eo pid,pgid,sid,args | grep -i [t]mux`])).stdout : '';
      throw new Error(`pane ${name} never matched ${String(re)} (${String(e)}):\n${text}\n${dbg}`);
    }
    return text;
  }

  async exitCode(name: string, timeoutMs = 60_000): Promise<number> {
    const text = await this.waitFor(name, /EXIT:\d+/, timeoutMs);
    return Number(/EXIT:(\d+)/.exec(text)?.[1]);
  }

  async kill(): Promise<void> {
    await runCommand(['tmux', '-S', this.socket, 'kill-server']);
  }
}

describe('nodectl on a terminal', () => {
  let dir: string;
  let images: ImageSet;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let tmux: Tmux;
  let daemonLog = '';
  const cmd = (...args: string[]): string => [process.execPath, NODECTL, ...args].map(shq).join(' ');
  const nodectl = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await bus.run('root', [process.execPath, NODECTL, ...args]);
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const freeze = (): boolean => daemon.kill('SIGSTOP');
  const thaw = (): boolean => daemon.kill('SIGCONT');

  beforeAll(async () => {
    await fs.access(NODECTL);
    if ((await runCommand(['sh', '-c', 'command -v tmux'])).code !== 0) throw new Error('tmux is required (apt-get install tmux)');
    const host = await sandboxHost('nodectl-tty');
    dir = host.dir;
    images = host.images;
    const sysroot = host.sysroot;
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    daemon.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
    tmux = new Tmux(path.join(dir, 'tmux.sock'));
  }, 120_000);

  afterAll(async () => {
    await tmux?.kill();
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGCONT');
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    await bus?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    thaw();
    if (process.env['NODECTL_TEST_DEBUG']) process.stderr.write(daemonLog.slice(-4000));
  });

  it('draws a live bar; `watch` in a second terminal follows the same transaction to its end', async () => {
    const v2 = await images.image(NVR.v2, { extraMb: 48 });
    await tmux.start('up2', cmd('upgrade', v2.imagePath), bus.env);
    await tmux.waitFor('up2', /\d+% \| \S+ \|/);
    // Hold the transaction while the second terminal starts (its calls queue up until the daemon thaws).
    freeze();
    await tmux.start('watch2', cmd('watch'), bus.env);
    await new Promise((r) => setTimeout(r, 1500));
    thaw();
    await tmux.waitFor('watch2', /Following transaction t\w+/);
    expect(await tmux.exitCode('up2')).toBe(0);
    expect(await tmux.exitCode('watch2')).toBe(0);
    const up = await tmux.capture('up2');
    expect(up).toMatch(/100% \| start-trial \| done/);
    expect(up).toContain(`Default layer (boots next time): ${NVR.v2}+1`);
    expect(up).not.toMatch(/^\d{4}-\d\d-\d\dT/m); // no timestamped lines on a terminal
    expect(await tmux.capture('watch2')).toMatch(/100% \| start-trial \| done/);
  }, 120_000);

  it('Ctrl-C asks; c cancels the transaction and exits 130 once it is cancelled', async () => {
    const v3 = await images.image(NVR.v3, { extraMb: 48 });
    await tmux.start('cancel', cmd('upgrade', v3.imagePath), bus.env);
    await tmux.waitFor('cancel', /\d+% \| \S+ \|/);
    freeze();
    await tmux.keys('cancel', 'C-c');
    await tmux.waitFor('cancel', /Cancel the transaction \(c\) or detach and let it run \(d\)\? \[d\] $/m);
    await tmux.keys('cancel', 'c');
    await tmux.waitFor('cancel', /\[d\] c$/m);
    thaw();
    expect(await tmux.exitCode('cancel')).toBe(130);
    expect(await tmux.capture('cancel')).toMatch(/Cancel requested for t\w+; waiting for it to stop[\s\S]*nodectl: .*cancel/i);
    expect((await nodectl(['layers'])).stdout).not.toContain(NVR.v3);
    expect((await nodectl(['history', '--limit', '1'])).stdout).toMatch(/upgrade\s+cancelled/);
  }, 120_000);

  it('Ctrl-C then d detaches (exit 130, the transaction goes on); a second Ctrl-C detaches too', async () => {
    for (const [name, key] of [['detach-d', 'd'], ['detach-cc', 'C-c']] as const) {
      const nvr = key === 'd' ? NVR.v3 : V4;
      const img = await images.image(nvr, { extraMb: 48 });
      await tmux.start(name, cmd('upgrade', img.imagePath), bus.env);
      await tmux.waitFor(name, /\d+% \| \S+ \|/);
      freeze();
      await tmux.keys(name, 'C-c');
      await tmux.waitFor(name, /\[d\] $/m);
      await tmux.keys(name, key);
      expect(await tmux.exitCode(name, 10_000)).toBe(130); // detaching needs no answer from the (frozen) daemon
      expect(await tmux.capture(name)).toContain('Detached; the transaction keeps running. Follow it with "nodectl watch"');
      thaw();
      const watched = await nodectl(['watch']);
      expect(watched.code).toBe(0);
      expect((await nodectl(['layers'])).stdout).toContain(`${nvr}+1 [default]`);
    }
  }, 180_000);

  it('without a terminal SIGINT detaches at once, never prompts (timestamped lines on stderr)', async () => {
    const img = await images.image(V5, { extraMb: 48 });
    const child = spawn(process.execPath, [NODECTL, 'upgrade', img.imagePath], { env: bus.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    await eventually(() => /^\d{4}-\d\d-\d\dT[\d:.]+Z \[\s*\d+%\] /m.test(stderr), 30_000, 20);
    freeze();
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    expect(await exited).toBe(130);
    clearTimeout(timer);
    expect(stderr).not.toContain('Cancel the transaction');
    expect(stderr).toContain('Detached; the transaction keeps running.');
    expect(stdout).toBe('');
    thaw();
    // The detached transaction runs to its end in the daemon.
    await eventually(async () => (await nodectl(['layers'])).stdout.includes(`${V5}+1 [default]`), 60_000, 200);
    expect((await nodectl(['history', '--limit', '1'])).stdout).toMatch(/upgrade\s+succeeded/);
  }, 120_000);
});
