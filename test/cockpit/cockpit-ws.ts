/**
 * A real cockpit-ws serving the page without login: `cockpit-ws --no-tls --address 127.0.0.1 --port P
 * --local-session=cockpit-bridge`, under dbus-run-session (the bridge starts a session bus that would otherwise
 * outlive it), with DBUS_SYSTEM_BUS_ADDRESS at the private bus and XDG_DATA_DIRS at the directory holding
 * cockpit/ovirt-node. The bridge runs as the user cockpit-ws runs as (root, or nobody via setpriv).
 *
 * dbus-run-session does not pass SIGTERM on to its child, so the whole thing runs in its own process group, which
 * stop() signals by its id (-pgid): only what this helper started.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';

export const COCKPIT_WS = '/usr/lib/cockpit/cockpit-ws';

export interface CockpitWsOptions {
  /** Private system bus address (unix:path=…). */
  systemBus: string;
  /** A directory with cockpit/<package>/ inside (prepended to XDG_DATA_DIRS). */
  dataDir: string;
  /** Run as this uid/gid (setpriv); default: the test's user (root). */
  user?: { uid: number; gid: number; home: string };
}

async function freePort(): Promise<number> {
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

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', () => resolve(0));
    req.setTimeout(2_000, () => req.destroy());
  });
}

export class CockpitWs {
  private log = '';

  private constructor(private readonly proc: ChildProcess, readonly port: number) {
    proc.stdout?.on('data', (b: Buffer) => (this.log = (this.log + b.toString()).slice(-20_000)));
    proc.stderr?.on('data', (b: Buffer) => (this.log = (this.log + b.toString()).slice(-20_000)));
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The page alone (no shell): /cockpit/@localhost/<package>/index.html. */
  url(pkg: string): string {
    return `${this.origin}/cockpit/@localhost/${pkg}/index.html`;
  }

  output(): string {
    return this.log;
  }

  static async start(opts: CockpitWsOptions): Promise<CockpitWs> {
    const port = await freePort();
    const ws = [COCKPIT_WS, '--no-tls', '--address', '127.0.0.1', '--port', String(port), '--local-session=cockpit-bridge'];
    const argv = ['dbus-run-session', '--', ...ws];
    const asUser = opts.user ? ['setpriv', `--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, '--clear-groups', '--'] : [];
    const [cmd, ...args] = [...asUser, ...argv];
    if (cmd === undefined) throw new Error('cockpit-ws: empty argv');
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
    const ws1 = new CockpitWs(proc, port);
    const end = Date.now() + 20_000;
    while ((await get(`${ws1.origin}/cockpit/@localhost/manifests.json`)) !== 200) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`cockpit-ws exited: ${ws1.log}`);
      if (Date.now() > end) {
        await ws1.stop();
        throw new Error(`cockpit-ws did not answer on ${ws1.origin}: ${ws1.log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return ws1;
  }

  async stop(): Promise<void> {
    const pid = this.proc.pid;
    if (pid === undefined || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    const signalGroup = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-pid, sig);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: the group is already gone
      }
    };
    signalGroup('SIGTERM');
    const timer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
    // dbus-run-session's session bus and the bridge are in the same group; make sure none is left.
    signalGroup('SIGKILL');
  }
}
