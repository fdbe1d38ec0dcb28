/**
 * A private system-like bus for sandbox mode: dbus-daemon with a copy of the system bus config (deny by default,
 * type system) listening on a socket we choose, including polkit's policy, the SHIPPED org.ovirt.Node policy and
 * the sandbox-only policy; and a real polkitd on it with the SHIPPED .policy. Everything started here is stopped
 * by stop(); processes are tracked by pid, never found by name.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError } from '../errors';
import { run } from '../system/run';

export const SYSTEM_CONF = '/usr/share/dbus-1/system.conf';
export const POLKITD = '/usr/lib/polkit-1/polkitd';
export const POLKIT_ACTIONS_DIR = '/usr/share/polkit-1/actions';
const POLICY_FILE = 'org.ovirt.node.layers.policy';

/** The system bus config, made private: our socket, no daemon-only settings, only the given policy dirs. */
export function privateBusConfig(systemConf: string, socketPath: string, policyDirs: readonly string[]): string {
  let conf = systemConf
    .replace(/<user>[^<]*<\/user>/g, '')
    .replace(/<fork\s*\/>/g, '')
    .replace(/<pidfile>[^<]*<\/pidfile>/g, '')
    .replace(/<syslog\s*\/>/g, '')
    .replace(/<keep_umask\s*\/>/g, '')
    .replace(/<standard_system_servicedirs\s*\/>/g, '')
    .replace(/<servicehelper>[^<]*<\/servicehelper>/g, '')
    .replace(/<servicedir>[^<]*<\/servicedir>/g, '')
    .replace(/<listen>[^<]*<\/listen>/g, `<listen>unix:path=${socketPath}</listen>`)
    .replace(/<include(?:dir)?\b[^>]*>[^<]*<\/include(?:dir)?>/g, '');
  const includes = policyDirs.map((d) => `  <includedir>${d}</includedir>\n`).join('');
  conf = conf.replace(/<\/busconfig>\s*$/, `${includes}</busconfig>\n`);
  for (const must of ['<type>system</type>', '<deny own="*"/>', '<deny send_type="method_call"/>', `unix:path=${socketPath}`]) {
    if (!conf.includes(must)) throw new FailedError(`private bus config lacks ${must} (did ${SYSTEM_CONF} change?)`);
  }
  if (/<user>|<fork|<pidfile>|<syslog/.test(conf)) throw new FailedError('private bus config still has daemon-only settings');
  return conf;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface PrivateSystemBusOptions {
  /** The repository (its dbus/ and polkit/ folders are what gets shipped). */
  repo: string;
  /** Where child process output goes. */
  logFile: string;
}

export class PrivateSystemBus {
  readonly address: string;
  private readonly procs: ChildProcess[] = [];
  private installedPolicy: string | null = null;

  private constructor(private readonly opts: PrivateSystemBusOptions, readonly dir: string) {
    this.socketPath = path.join(dir, 'system_bus_socket');
    this.address = `unix:path=${this.socketPath}`;
  }

  readonly socketPath: string;

  get env(): Record<string, string> {
    return { DBUS_SYSTEM_BUS_ADDRESS: this.address };
  }

  static async start(opts: PrivateSystemBusOptions): Promise<PrivateSystemBus> {
    // The socket must be reachable by polkitd (which drops to its own user) and by non-root callers, whatever the
    // permissions of the working directory's parents (/root is 0700): it lives in its own 0755 directory under /run.
    const dir = await fs.mkdtemp('/run/imgbased-sandbox-bus-');
    await fs.chmod(dir, 0o755);
    const bus = new PrivateSystemBus(opts, dir);
    try {
      await bus.startDbus();
      await bus.startPolkit();
      return bus;
    } catch (e) {
      await bus.stop();
      throw e;
    }
  }

  /** Spawn a tracked process with this bus in its environment; output appended to the log file. */
  async spawn(argv: readonly string[], env: Record<string, string> = {}): Promise<ChildProcess> {
    const [cmd, ...args] = argv;
    if (!cmd) throw new FailedError('spawn: empty argv');
    const log = await fs.open(this.opts.logFile, 'a');
    const proc = spawn(cmd, args, { env: { ...process.env, ...this.env, ...env }, stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    this.procs.push(proc);
    return proc;
  }

  async hasOwner(name: string): Promise<boolean> {
    try {
      await run(['busctl', `--address=${this.address}`, 'status', name]);
      return true;
    } catch {
      return false; // no owner yet (busctl exits non-zero)
    }
  }

  async waitForOwner(name: string, proc: ChildProcess, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await this.hasOwner(name))) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new FailedError(`${name}: its process exited (${proc.exitCode ?? proc.signalCode}); see ${this.opts.logFile}`);
      }
      if (Date.now() > end) throw new FailedError(`${name} did not appear on the bus in time; see ${this.opts.logFile}`);
      await sleep(100);
    }
  }

  private async startDbus(): Promise<void> {
    const conf = privateBusConfig(await fs.readFile(SYSTEM_CONF, 'utf8'), this.socketPath, [
      '/usr/share/dbus-1/system.d',
      path.join(this.opts.repo, 'dbus'),
      path.join(this.opts.repo, 'src/sandbox'),
    ]);
    const confFile = path.join(this.dir, 'system.conf');
    await fs.writeFile(confFile, conf);
    const proc = await this.spawn(['dbus-daemon', `--config-file=${confFile}`, '--nofork', '--nopidfile']);
    const end = Date.now() + 10_000;
    while (!(await fs.stat(this.socketPath).then(() => true, () => false))) {
      if (proc.exitCode !== null) throw new FailedError(`dbus-daemon exited; see ${this.opts.logFile}`);
      if (Date.now() > end) throw new FailedError('dbus-daemon did not create its socket in time');
      await sleep(50);
    }
  }

  private async startPolkit(): Promise<void> {
    // polkitd reads actions only from /usr/share/polkit-1/actions: install the shipped policy there (removed at stop).
    const shipped = await fs.readFile(path.join(this.opts.repo, 'polkit', POLICY_FILE), 'utf8');
    const target = path.join(POLKIT_ACTIONS_DIR, POLICY_FILE);
    const current = await fs.readFile(target, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (current !== shipped) {
      if (current !== null) throw new FailedError(`${target} exists with other content (an installed imgbased?); not touching it`);
      await fs.writeFile(target, shipped, { mode: 0o644 });
      this.installedPolicy = target;
    }
    const proc = await this.spawn([POLKITD, '--no-debug']);
    await this.waitForOwner('org.freedesktop.PolicyKit1', proc);
  }

  async stop(): Promise<void> {
    for (const p of [...this.procs].reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(5000).then(() => p.kill('SIGKILL'))]);
    }
    if (this.installedPolicy) await fs.rm(this.installedPolicy, { force: true });
    this.installedPolicy = null;
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
