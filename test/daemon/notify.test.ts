/**
 * src/daemon/notify.ts against a real NOTIFY_SOCKET: a python3 SOCK_DGRAM listener with SO_PASSCRED (as systemd
 * listens) records every datagram with its sender's pid; a child node process uses the wrapper.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { statusLine, watchdogIntervalMs } from '../../src/daemon/notify';
import { REPO, transpileTo } from './transpile';

const LISTENER = `
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = uid = -1
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack("iII", payload[:12])
    print(json.dumps({"pid": pid, "uid": uid, "data": data.decode()}), flush=True)
`;

interface Datagram {
  pid: number;
  uid: number;
  data: string;
}

/** The child: uses the transpiled wrapper the way the daemon does. Its argv[2] selects the scenario. */
const CHILD = `
const { createNotifier } = require(process.env.NOTIFY_JS);
const log = {
  debug: (m) => process.stderr.write('debug: ' + m + '\\n'),
  info: (m) => process.stderr.write('info: ' + m + '\\n'),
  warn: (m) => process.stderr.write('warn: ' + m + '\\n'),
  error: (m) => process.stderr.write('error: ' + m + '\\n'),
};
const opts = process.argv[2] === 'no-addon' ? { addonModule: 'sd-notify-not-installed' } : {};
const n = createNotifier(log, opts);
createNotifier(log, opts); // a second notifier must not log again
process.stdout.write(JSON.stringify({ enabled: n.enabled, interval: n.watchdogInterval() }) + '\\n');
n.status('starting');
n.extendTimeout(90000);
n.ready();
n.status('running transaction 42\\nREADY=1');
const stop = n.startWatchdog();
setTimeout(() => {
  stop();
  n.watchdog();
  n.stopping();
  n.status('stopped');
}, 350);
`;

let dir = '';
let listener: ChildProcessWithoutNullStreams | undefined;
const received: Datagram[] = [];
let childJs = '';

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-notify-'));
  await transpileTo(dir, 'src/daemon/notify.ts');
  childJs = path.join(dir, 'child.js');
  await fs.writeFile(childJs, CHILD);
  const sock = path.join(dir, 'notify.sock');
  const proc = spawn('/usr/bin/python3', ['-c', LISTENER, sock], { stdio: ['pipe', 'pipe', 'pipe'] });
  listener = proc;
  await new Promise<void>((resolve, reject) => {
    const lines = readline.createInterface({ input: proc.stdout });
    let listening = false;
    lines.on('line', (line) => {
      const v: unknown = JSON.parse(line);
      if (typeof v !== 'object' || v === null) return;
      const o = v as Record<string, unknown>;
      if (o['listening'] === true) {
        listening = true;
        resolve();
      } else if (typeof o['pid'] === 'number' && typeof o['uid'] === 'number' && typeof o['data'] === 'string') {
        received.push({ pid: o['pid'], uid: o['uid'], data: o['data'] });
      }
    });
    proc.once('exit', (code) => { if (!listening) reject(new Error(`notify listener exited (${String(code)})`)); });
    proc.once('error', reject);
  });
});

afterAll(async () => {
  if (listener !== undefined && listener.exitCode === null) {
    const gone = new Promise((resolve) => listener?.once('exit', resolve));
    listener.kill('SIGTERM');
    await gone;
  }
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface ChildResult {
  pid: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function runChild(env: NodeJS.ProcessEnv, scenario = 'normal'): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childJs, scenario], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_PATH: path.join(REPO, 'node_modules'), NOTIFY_JS: path.join(dir, 'notify.js'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ pid: child.pid ?? -1, code, stdout, stderr }));
  });
}

/** Wait until the listener has seen `data` from `pid` (datagrams can trail the child's exit by a moment). */
async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out; received: ${JSON.stringify(received)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('sd_notify over a real NOTIFY_SOCKET', () => {
  it('delivers STATUS, EXTEND_TIMEOUT_USEC, READY=1, WATCHDOG=1 (at half the interval) and STOPPING=1 from the main pid', async () => {
    const sock = path.join(dir, 'notify.sock');
    const r = await runChild({ NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ enabled: true, interval: 200 });
    await until(() => received.some((d) => d.pid === r.pid && d.data.startsWith('STATUS=stopped')));
    const mine = received.filter((d) => d.pid === r.pid).map((d) => d.data.trim());
    // Every datagram carries the sender's credentials: the child itself (NotifyAccess=main accepts only those).
    expect(received.filter((d) => d.pid === r.pid).every((d) => d.uid === process.getuid?.())).toBe(true);
    const watchdogs = mine.filter((d) => d === 'WATCHDOG=1').length;
    const rest = mine.filter((d) => d !== 'WATCHDOG=1');
    expect(rest).toEqual([
      'STATUS=starting',
      'EXTEND_TIMEOUT_USEC=90000000',
      'READY=1',
      // the newline is folded: a status text cannot smuggle in another assignment
      'STATUS=running transaction 42 READY=1',
      'STOPPING=1',
      'STATUS=stopped',
    ]);
    // one at start, then every 100 ms for 350 ms, then the explicit one: 4 or 5 depending on timer jitter
    expect(watchdogs).toBeGreaterThanOrEqual(4);
    expect(watchdogs).toBeLessThanOrEqual(6);
  });

  it('is a silent no-op with one debug line when NOTIFY_SOCKET is unset', async () => {
    const before = received.length;
    const r = await runChild({ WATCHDOG_USEC: '200000' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ enabled: false, interval: 200 });
    expect(r.stderr.trim().split('\n')).toEqual(['debug: sd_notify: NOTIFY_SOCKET is not set (not started by systemd); notifications are off']);
    await new Promise((res) => setTimeout(res, 100));
    expect(received.length).toBe(before);
  });

  it('is a no-op that warns once when the addon cannot be loaded', async () => {
    const before = received.length;
    const r = await runChild({ NOTIFY_SOCKET: path.join(dir, 'notify.sock') }, 'no-addon');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ enabled: false, interval: 0 });
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warn: sd_notify: the sd-notify addon is unavailable \(Cannot find module 'sd-notify-not-installed'.*notifications are off$/);
    await new Promise((res) => setTimeout(res, 100));
    expect(received.length).toBe(before);
  });
});

describe('watchdogIntervalMs / statusLine', () => {
  it('reads WATCHDOG_USEC for this pid only', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 7)).toBe(30000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 7)).toBe(30000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7)).toBe(0);
    expect(watchdogIntervalMs({}, 7)).toBe(0);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'x' }, 7)).toBe(0);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '-5' }, 7)).toBe(0);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '999' }, 7)).toBe(0);
  });

  it('folds control characters and bounds the length', () => {
    expect(statusLine(' a\nb\r\tc\u0000d ')).toBe('a b c d');
    expect(statusLine('x'.repeat(5000))).toHaveLength(1024);
  });
});
