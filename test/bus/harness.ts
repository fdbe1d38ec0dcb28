/**
 * Real-component bus test harness: a private system-like dbus-daemon that enforces the SHIPPED bus policy
 * (dbus/*.conf), optionally a real polkitd with the SHIPPED actions (polkit/*.policy) and a JS rule granting them to a
 * test group, and helpers to run clients as root, as nobody, or as a polkit-granted non-root user.
 *
 *   const bus = await PrivateBus.start({ polkit: true });
 *   try { … await bus.run('nobody', ['busctl', '--address', bus.address, …]) … } finally { await bus.stop(); }
 *
 * Everything it starts listens on (or talks to) the private socket only and is stopped in stop(), by pid; the
 * files it puts into /usr/share/polkit-1/actions and /etc/polkit-1/rules.d carry this process's pid in their names,
 * are removed in stop() (and at process exit), and leftovers of dead test processes are removed at start.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as dbus from 'dbus-next';
import { privateBusConfig } from '../../src/sandbox/private-bus';
import { netSocketAddress } from '../../src/dbus/connect';

/** The repository root, from test/bus (jest) or dist/test/bus (compiled, e.g. bench/api). */
export const REPO = ((): string => {
  const up = path.resolve(__dirname, '../..');
  return path.basename(up) === 'dist' && fs.existsSync(path.join(up, '..', 'package.json')) ? path.dirname(up) : up;
})();
export const SYSTEM_CONF = '/usr/share/dbus-1/system.conf';
export const SYSTEM_D = '/usr/share/dbus-1/system.d';
export const POLKITD = '/usr/lib/polkit-1/polkitd';
export const POLKIT_ACTIONS_DIR = '/usr/share/polkit-1/actions';
export const POLKIT_RULES_DIR = '/etc/polkit-1/rules.d';
export const POLKIT_BUS_NAME = 'org.freedesktop.PolicyKit1';
/** The group the test polkit rule grants the project's actions to, and the non-root user in it. */
export const GRANTED_GROUP = 'imgbased-test-admins';
export const GRANTED_USER = 'imgbased-test-admin';
export const NOBODY_UID = 65534;
export const NOBODY_GID = 65534;
/** Prefix of the project's polkit action ids (the test rule grants every action below it). */
export const ACTION_PREFIX = 'org.ovirt.node.layers.';

const TAG = 'imgbased-test';
const CLIENT_AGENT = path.join(REPO, 'test/bus/client-agent.js');
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type Caller = 'root' | 'nobody' | 'granted';

export interface PrivateBusOptions {
  /** Start polkitd with the repo's .policy installed (default false). */
  polkit?: boolean;
  /** With polkit: also install the JS rule granting the project's actions to GRANTED_GROUP (default true). */
  grantRule?: boolean;
  /** More directories of bus policy *.conf files to include (e.g. src/sandbox for the Sandbox interface). */
  extraPolicyDirs?: readonly string[];
}

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  /** Kill the command (SIGKILL) after this long (default 60 s). */
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface UserIds {
  name: string;
  uid: number;
  gid: number;
}

/** A D-Bus message to send from a RemoteClient. Variants: {"$v": [sig, value]}; 64-bit: {"$n": "…"}. */
export interface CallSpec {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export type CallResult =
  | { ok: true; signature: string; body: unknown[] }
  | { ok: false; name: string; message: string };

export interface SignalRecord {
  sender: string;
  path: string;
  interface: string;
  member: string;
  signature: string;
  body: unknown[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Processes and files of every live harness in this process, for the process-exit safety net. */
const liveProcs = new Set<ChildProcess>();
const liveFiles = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of liveProcs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const f of liveFiles) fs.rmSync(f, { force: true });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove `<TAG>-<pid>-…` files left in `dir` by test processes that are gone. */
async function removeStale(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = new RegExp(`(?:^|[-.])${TAG}-(\\d+)-`).exec(n);
    const pid = m?.[1] === undefined ? NaN : Number(m[1]);
    if (Number.isInteger(pid) && !pidAlive(pid)) await fsp.rm(path.join(dir, n), { force: true });
  }
}

/** Run argv (async: a test process may host a bus service, so never block the loop). */
export function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('runCommand: empty argv'));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: BASE_PATH, LC_ALL: 'C', ...(opts.env ?? {}) },
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

async function mustRun(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const r = await runCommand(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.code ?? r.signal)}): ${r.stderr.trim()}`);
  return r;
}

async function getent(db: 'passwd' | 'group', name: string): Promise<string[] | undefined> {
  const r = await runCommand(['getent', db, name]);
  return r.code === 0 ? r.stdout.trim().split(':') : undefined;
}

/**
 * Create the group and user if missing. Several jest workers may race here: useradd/groupadd fail when another one
 * won (exit 9) or holds the lock (exit 10); both are retried until getent sees the entry.
 */
export async function ensureGrantedUser(): Promise<UserIds> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const group = await getent('group', GRANTED_GROUP);
    if (group === undefined) {
      await runCommand(['groupadd', '--system', GRANTED_GROUP]);
      continue;
    }
    const user = await getent('passwd', GRANTED_USER);
    if (user === undefined) {
      await runCommand(['useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
        '--gid', GRANTED_GROUP, GRANTED_USER]);
      continue;
    }
    const uid = Number(user[2]);
    const gid = Number(user[3]);
    const members = (group[3] ?? '').split(',').filter(Boolean);
    if (gid !== Number(group[2]) && !members.includes(GRANTED_USER)) {
      await runCommand(['usermod', '-a', '-G', GRANTED_GROUP, GRANTED_USER]);
      continue;
    }
    return { name: GRANTED_USER, uid, gid };
  }
  throw new Error(`could not create ${GRANTED_USER} in group ${GRANTED_GROUP}`);
}

export { privateBusConfig };

/** A JS polkit rule granting every project action to members of GRANTED_GROUP. */
export function grantRuleSource(): string {
  return `// Installed by imgbased's test harness (test/bus/harness.ts) for one test run; removed afterwards.
polkit.addRule(function (action, subject) {
  if (action.id.indexOf(${JSON.stringify(ACTION_PREFIX)}) === 0 && subject.isInGroup(${JSON.stringify(GRANTED_GROUP)})) {
    return polkit.Result.YES;
  }
});
`;
}

/** A connected client process running as some user; its unique name is known once it is up. */
export class RemoteClient {
  private nextId = 1;
  private readonly pending = new Map<number, (r: CallResult) => void>();
  private readonly signalWaiters: Array<{ pred: (s: SignalRecord) => boolean; resolve: (s: SignalRecord) => void }> = [];
  readonly signals: SignalRecord[] = [];
  private stderr = '';

  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly uniqueName: string) {}

  static async start(argv: readonly string[], env: Record<string, string>): Promise<RemoteClient> {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('RemoteClient: empty argv');
    const proc = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    liveProcs.add(proc);
    proc.once('exit', () => liveProcs.delete(proc));
    let client: RemoteClient | undefined;
    let stderr = '';
    proc.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (client) client.stderr += b.toString();
    });
    const lines = readline.createInterface({ input: proc.stdout });
    return new Promise<RemoteClient>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`client did not connect in time: ${stderr}`));
      }, 15_000);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        if (client === undefined) reject(new Error(`client exited (${String(code)}) before connecting: ${stderr}`));
        client?.failPending(`client exited (${String(code)}): ${client.stderr}`);
      });
      lines.on('line', (line) => {
        const msg: unknown = JSON.parse(line);
        if (!isRecord(msg)) return;
        if (client === undefined) {
          if (typeof msg['name'] === 'string') {
            clearTimeout(timer);
            client = new RemoteClient(proc, msg['name']);
            client.stderr = stderr;
            resolve(client);
          }
          return;
        }
        client.onLine(msg);
      });
    });
  }

  private onLine(msg: Record<string, unknown>): void {
    const sig = msg['signal'];
    if (isRecord(sig)) {
      const rec: SignalRecord = {
        sender: String(sig['sender']), path: String(sig['path']), interface: String(sig['interface']),
        member: String(sig['member']), signature: String(sig['signature'] ?? ''), body: Array.isArray(sig['body']) ? sig['body'] : [],
      };
      this.signals.push(rec);
      for (let i = this.signalWaiters.length - 1; i >= 0; i--) {
        const w = this.signalWaiters[i];
        if (w !== undefined && w.pred(rec)) {
          this.signalWaiters.splice(i, 1);
          w.resolve(rec);
        }
      }
      return;
    }
    const id = msg['id'];
    if (typeof id !== 'number') return;
    const done = this.pending.get(id);
    if (done === undefined) return;
    this.pending.delete(id);
    if (msg['ok'] === true) {
      done({ ok: true, signature: String(msg['signature'] ?? ''), body: Array.isArray(msg['body']) ? msg['body'] : [] });
    } else {
      done({ ok: false, name: String(msg['name']), message: String(msg['message']) });
    }
  }

  private failPending(reason: string): void {
    for (const done of this.pending.values()) done({ ok: false, name: 'harness.ClientExited', message: reason });
    this.pending.clear();
  }

  private request(req: Record<string, unknown>): Promise<CallResult> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return Promise.resolve({ ok: false, name: 'harness.ClientExited', message: this.stderr });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.proc.stdin.write(JSON.stringify({ id, ...req }) + '\n');
    });
  }

  /** Send a method call and wait for its reply or error. */
  call(spec: CallSpec): Promise<CallResult> {
    return this.request({ op: 'call', msg: { ...spec, signature: spec.signature ?? '', body: spec.body ?? [] } });
  }

  /** AddMatch(rule); matching signals are collected in `signals` from then on. */
  async addMatch(rule: string): Promise<void> {
    const r = await this.request({ op: 'match', rule });
    if (!r.ok) throw new Error(`AddMatch failed: ${r.name}: ${r.message}`);
  }

  /** The first signal (already received or future) satisfying pred. */
  waitForSignal(pred: (s: SignalRecord) => boolean, timeoutMs = 10_000): Promise<SignalRecord> {
    const seen = this.signals.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a signal')), timeoutMs);
      this.signalWaiters.push({ pred, resolve: (s) => { clearTimeout(timer); resolve(s); } });
    });
  }

  /** Ask the bus to give this connection `name` (RequestName, DO_NOT_QUEUE). */
  requestName(name: string): Promise<CallResult> {
    return this.call({
      destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
      member: 'RequestName', signature: 'su', body: [name, 4],
    });
  }

  /** Disconnect and wait for the process to end. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  }
}

export class PrivateBus {
  /** The bus address (`unix:path=…`) clients use. */
  readonly address: string;
  /** Environment for clients: DBUS_SYSTEM_BUS_ADDRESS set to the private bus (plus a sane PATH and locale). */
  readonly env: Record<string, string>;
  /** The polkit-granted non-root user (set when started with polkit). */
  granted: UserIds | undefined;

  private readonly procs: ChildProcessWithoutNullStreams[] = [];
  private readonly files: string[] = [];
  private readonly clients = new Set<RemoteClient>();
  private readonly connections: dbus.MessageBus[] = [];
  private readonly logs = new Map<string, string>();
  private stopped = false;

  private constructor(readonly dir: string, readonly socketPath: string) {
    this.address = `unix:path=${socketPath}`;
    this.env = { PATH: BASE_PATH, LC_ALL: 'C', DBUS_SYSTEM_BUS_ADDRESS: this.address };
  }

  static async start(opts: PrivateBusOptions = {}): Promise<PrivateBus> {
    if (process.getuid?.() !== 0) throw new Error('PrivateBus: the bus tests run as root');
    installExitHook();
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `${TAG}-bus-`));
    // mkdtemp makes it 0700: non-root callers must reach the socket.
    await fsp.chmod(dir, 0o755);
    const bus = new PrivateBus(dir, path.join(dir, 'system_bus_socket'));
    try {
      await bus.startDbus(opts.extraPolicyDirs ?? []);
      if (opts.polkit === true) {
        bus.granted = await ensureGrantedUser();
        await bus.installPolkitFiles(opts.grantRule ?? true);
        await bus.startPolkit();
      }
      return bus;
    } catch (e) {
      await bus.stop();
      throw e;
    }
  }

  private track(name: string, proc: ChildProcessWithoutNullStreams): void {
    this.procs.push(proc);
    liveProcs.add(proc);
    this.logs.set(name, '');
    const add = (b: Buffer): void => {
      this.logs.set(name, (this.logs.get(name) ?? '') + b.toString());
    };
    proc.stderr.on('data', add);
    proc.once('exit', () => liveProcs.delete(proc));
  }

  private async startDbus(extraDirs: readonly string[]): Promise<void> {
    const conf = privateBusConfig(await fsp.readFile(SYSTEM_CONF, 'utf8'), this.socketPath,
      [SYSTEM_D, path.join(REPO, 'dbus'), ...extraDirs.map((d) => path.resolve(REPO, d))]);
    const confPath = path.join(this.dir, 'system.conf');
    await fsp.writeFile(confPath, conf);
    const proc = spawn('dbus-daemon', [`--config-file=${confPath}`, '--nofork', '--nopidfile', '--print-address=1'], {
      env: { PATH: BASE_PATH, LC_ALL: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.track('dbus-daemon', proc);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`dbus-daemon did not start: ${this.log('dbus-daemon')}`)), 10_000);
      proc.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`dbus-daemon exited (${String(code)}): ${this.log('dbus-daemon')}`));
      });
      proc.once('error', reject);
    });
  }

  private async installPolkitFiles(grantRule: boolean): Promise<void> {
    await removeStale(POLKIT_ACTIONS_DIR);
    await removeStale(POLKIT_RULES_DIR);
    const unique = `${TAG}-${process.pid}-${path.basename(this.dir)}`;
    for (const name of await fsp.readdir(path.join(REPO, 'polkit'))) {
      if (!name.endsWith('.policy')) continue;
      // "<action file>.<unique>.policy": polkitd reads every *.policy; the name says who put it there.
      const dest = path.join(POLKIT_ACTIONS_DIR, `${name.replace(/\.policy$/, '')}.${unique}.policy`);
      await this.installFile(dest, await fsp.readFile(path.join(REPO, 'polkit', name), 'utf8'));
    }
    if (grantRule) {
      await fsp.mkdir(POLKIT_RULES_DIR, { recursive: true });
      await this.installFile(path.join(POLKIT_RULES_DIR, `49-${unique}.rules`), grantRuleSource());
    }
  }

  private async installFile(dest: string, content: string): Promise<void> {
    this.files.push(dest);
    liveFiles.add(dest);
    await fsp.writeFile(dest, content, { mode: 0o644 });
  }

  private async startPolkit(): Promise<void> {
    const proc = spawn(POLKITD, ['--no-debug'], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.track('polkitd', proc);
    proc.stdout.on('data', (b: Buffer) => this.logs.set('polkitd', (this.logs.get('polkitd') ?? '') + b.toString()));
    const conn = this.connect();
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`polkitd exited (${proc.exitCode}): ${this.log('polkitd')}`);
      const reply = await conn.call(new dbus.Message({
        destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
        member: 'NameHasOwner', signature: 's', body: [POLKIT_BUS_NAME],
      }));
      if (reply?.body[0] === true) return;
      if (Date.now() > deadline) throw new Error(`polkitd did not take ${POLKIT_BUS_NAME}: ${this.log('polkitd')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** What a started process (dbus-daemon, polkitd) wrote to stderr/stdout — for failure messages. */
  log(name: 'dbus-daemon' | 'polkitd'): string {
    return this.logs.get(name) ?? '';
  }

  /** An in-process dbus-next connection as root (closed in stop()). */
  connect(): dbus.MessageBus {
    const conn = dbus.sessionBus({ busAddress: netSocketAddress(this.address) });
    this.connections.push(conn);
    return conn;
  }

  /** argv prefixed to run as `who` (setpriv; the granted user gets its groups from the group database). */
  argvAs(who: Caller, argv: readonly string[]): string[] {
    switch (who) {
      case 'root':
        return [...argv];
      case 'nobody':
        return ['setpriv', `--reuid=${NOBODY_UID}`, `--regid=${NOBODY_GID}`, '--clear-groups', '--', ...argv];
      case 'granted': {
        const u = this.granted;
        if (u === undefined) throw new Error('PrivateBus: the granted user exists only with { polkit: true }');
        return ['setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--', ...argv];
      }
    }
  }

  /** Run a command as `who` with DBUS_SYSTEM_BUS_ADDRESS pointing at this bus. */
  run(who: Caller, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return runCommand(this.argvAs(who, argv), { ...opts, env: { ...this.env, ...(opts.env ?? {}) } });
  }

  /** `busctl --address=<this bus> …args` as `who`. */
  busctl(who: Caller, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.run(who, ['busctl', `--address=${this.address}`, ...args], opts);
  }

  /** Spawn a long-running process as `who` on this bus (e.g. the daemon); stop() kills it if still running. */
  spawnAs(who: Caller, argv: readonly string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
    const [cmd, ...args] = this.argvAs(who, argv);
    if (cmd === undefined) throw new Error('spawnAs: empty argv');
    const proc = spawn(cmd, args, { env: { ...this.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.procs.push(proc);
    liveProcs.add(proc);
    proc.once('exit', () => liveProcs.delete(proc));
    return proc;
  }

  /** A connected dbus-next client process running as `who` (closed in stop()). */
  async clientAs(who: Caller): Promise<RemoteClient> {
    const client = await RemoteClient.start(this.argvAs(who, [process.execPath, CLIENT_AGENT, this.address]),
      { ...this.env, NODE_PATH: path.join(REPO, 'node_modules') });
    this.clients.add(client);
    return client;
  }

  /** polkit CheckAuthorization(system-bus-name subject, action) asked by root; true when authorized. */
  async checkAuthorization(subjectUniqueName: string, actionId: string): Promise<{ authorized: boolean; challenge: boolean }> {
    const conn = this.connect();
    const reply = await conn.call(new dbus.Message({
      destination: POLKIT_BUS_NAME, path: '/org/freedesktop/PolicyKit1/Authority', interface: 'org.freedesktop.PolicyKit1.Authority',
      member: 'CheckAuthorization', signature: '(sa{sv})sa{ss}us',
      body: [['system-bus-name', { name: new dbus.Variant('s', subjectUniqueName) }], actionId, {}, 0, ''],
    }));
    const result: unknown = reply?.body[0];
    if (!Array.isArray(result) || typeof result[0] !== 'boolean' || typeof result[1] !== 'boolean') {
      throw new Error(`CheckAuthorization: unexpected reply ${String(result)}`);
    }
    return { authorized: result[0], challenge: result[1] };
  }

  /** Stop everything this bus started (clients, polkitd, dbus-daemon), remove installed files and the temp dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.clients) await c.close().catch(() => undefined);
    for (const conn of this.connections) conn.disconnect();
    // last started first: the daemon under test, polkitd, then the bus itself
    for (const proc of [...this.procs].reverse()) await stopProcess(proc);
    for (const f of this.files) {
      await fsp.rm(f, { force: true });
      liveFiles.delete(f);
    }
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. Only ever our own child, by its pid. */
async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

/** Wait for `pred` to hold (polling), e.g. for polkitd to pick up a changed rule. */
export async function eventually(pred: () => Promise<boolean> | boolean, timeoutMs = 5_000, stepMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export { mustRun };
