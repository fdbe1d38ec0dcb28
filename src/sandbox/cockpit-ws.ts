/**
 * A real cockpit-ws serving the Cockpit page without login, for the sandbox demo and the tests:
 * `cockpit-ws --no-tls --address 127.0.0.1 --port P --local-session=cockpit-bridge`, under dbus-run-session (the
 * bridge starts a session bus that would otherwise outlive it), with DBUS_SYSTEM_BUS_ADDRESS at the private bus and
 * XDG_DATA_DIRS at the directory holding cockpit/ovirt-node. The bridge runs as the user cockpit-ws runs as (root,
 * or another user via setpriv).
 *
 * dbus-run-session does not pass SIGTERM on to its child, so the whole thing runs in its own process group (its
 * id is the pid of the first process, `pgid`), which stop() signals by that id (-pgid): only what was started here,
 * never anything found by name.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';

export const COCKPIT_WS = '/usr/lib/cockpit/cockpit-ws';

export interface CockpitWsOptions {
  /** Private system bus address (unix:path=…). */
  systemBus: string;
  /** A directory with cockpit/<package>/ inside (prepended to XDG_DATA_DIRS). */
  dataDir: string;
  /** Run as this uid/gid (setpriv); default: the caller's user (root). */
  user?: { uid: number; gid: number; home: string };
  /** TCP port on 127.0.0.1; default: one that is free. */
  port?: number;
  /** Also append cockpit-ws's output to this file. */
  logFile?: string;
  /** How long to wait for it to answer (default 20 s). */
  timeoutMs?: number;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when a TCP port on 127.0.0.1 can be bound right now. */
export async function tcpPortIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', () => resolve(0));
    req.setTimeout(2_000, () => req.destroy());
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class CockpitWs {
  private log = '';
  private readonly exited: Promise<void>;

  private constructor(private readonly proc: ChildProcess, readonly port: number, private readonly logStream: WriteStream | null) {
    this.exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const take = (b: Buffer): void => {
      this.log = (this.log + b.toString()).slice(-20_000);
      logStream?.write(b);
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The process group everything started here runs in (the pid of dbus-run-session, or setpriv). */
  get pgid(): number | undefined {
    return this.proc.pid;
  }

  /** The page alone (no shell): /cockpit/@localhost/<package>/index.html. */
  url(pkg: string): string {
    return `${this.origin}/cockpit/@localhost/${pkg}/index.html`;
  }

  output(): string {
    return this.log;
  }

  private get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  static async start(opts: CockpitWsOptions): Promise<CockpitWs> {
    const port = opts.port ?? (await freeTcpPort());
    const ws = [COCKPIT_WS, '--no-tls', '--address', '127.0.0.1', '--port', String(port), '--local-session=cockpit-bridge'];
    const argv = ['dbus-run-session', '--', ...ws];
    const asUser = opts.user ? ['setpriv', `--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, '--clear-groups', '--'] : [];
    const [cmd, ...args] = [...asUser, ...argv];
    if (cmd === undefined) throw new Error('cockpit-ws: empty argv');
    const logStream = opts.logFile !== undefined ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
    logStream?.on('error', () => undefined); // the log is a convenience; never fail because of it
    const proc = spawn(cmd, args, {
      detached: true,
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        HOME: opts.user?.home ?? '/root',
        DBUS_SYSTEM_BUS_ADDRESS: opts.systemBus,
        XDG_DATA_DIRS: `${opts.dataDir}:/usr/local/share:/usr/share`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const spawnError = new Promise<Error>((r) => proc.once('error', r));
    const ws1 = new CockpitWs(proc, port, logStream);
    const end = Date.now() + (opts.timeoutMs ?? 20_000);
    try {
      while ((await getStatus(`${ws1.origin}/cockpit/@localhost/manifests.json`)) !== 200) {
        if (!ws1.running) throw new Error(`cockpit-ws exited: ${ws1.log}`);
        if (proc.pid === undefined) throw await spawnError;
        if (Date.now() > end) throw new Error(`cockpit-ws did not answer on ${ws1.origin}: ${ws1.log}`);
        await sleep(100);
      }
    } catch (e) {
      await ws1.stop(); // whatever of the group is still there (the session bus, the bridge)
      throw e;
    }
    return ws1;
  }

  private signalGroup(sig: NodeJS.Signals): void {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: the group is already gone
    }
  }

  async stop(): Promise<void> {
    if (this.proc.pid !== undefined) {
      if (this.running) {
        this.signalGroup('SIGTERM');
        const timer = setTimeout(() => this.signalGroup('SIGKILL'), 5_000);
        await this.exited;
        clearTimeout(timer);
      }
      // dbus-run-session's session bus, the bridge and its ssh-agent are in the same group; make sure none is left.
      this.signalGroup('SIGKILL');
    }
    const s = this.logStream;
    if (s && !s.closed) await new Promise<void>((r) => s.end(() => r()));
  }
}
