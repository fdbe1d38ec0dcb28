/**
 * A NOTIFY_SOCKET for the daemon, as systemd provides one: a python3 SOCK_DGRAM listener with SO_PASSCRED records
 * every datagram with its sender's pid/uid and a wall-clock timestamp (ms since the epoch, comparable to Date.now()).
 *
 * With `checkOwner` (a bus address and a name) the listener, on READY=1, freezes the sender (SIGSTOP), asks the bus
 * whether the name has an owner, and lets it go (SIGCONT): the answer is about the moment READY=1 was sent, not
 * about a moment after the daemon could have caught up. Shared by test/bus/daemon-notify.test.ts and bench/api.ts.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

const LISTENER = `
import json, os, signal, socket, struct, subprocess, sys, time
sock_path, address, name = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sock_path)
os.chmod(sock_path, 0o666)
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    t = time.time() * 1000.0
    pid = uid = -1
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack("iII", payload[:12])
    text = data.decode(errors="replace")
    rec = {"t": t, "pid": pid, "uid": uid, "data": text}
    if address and "READY=1" in text.split("\\n") and pid > 0:
        os.kill(pid, signal.SIGSTOP)
        try:
            r = subprocess.run(["busctl", "--address=" + address, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameHasOwner", "s", name], capture_output=True, text=True)
            rec["ownerAtReady"] = r.stdout.strip() == "b true"
            rec["ownerCheck"] = (r.stdout + r.stderr).strip()
        finally:
            os.kill(pid, signal.SIGCONT)
    print(json.dumps(rec), flush=True)
`;

export interface Datagram {
  /** Receive time, ms since the epoch. */
  t: number;
  pid: number;
  uid: number;
  /** The datagram text (one assignment per line). */
  data: string;
  /** With checkOwner, on READY=1: did the name have an owner while the sender was frozen? */
  ownerAtReady?: boolean;
  ownerCheck?: string;
}

export class NotifyListener {
  readonly received: Datagram[] = [];
  private waiters: Array<() => void> = [];

  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly socketPath: string) {}

  /** Listen on `<dir>/notify.sock`. `checkOwner`: verify at READY=1 that `name` is owned on the bus at `address`. */
  static async start(dir: string, checkOwner?: { address: string; name: string }): Promise<NotifyListener> {
    const sock = path.join(dir, 'notify.sock');
    const proc = spawn('/usr/bin/python3', ['-c', LISTENER, sock, checkOwner?.address ?? '', checkOwner?.name ?? ''], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    const listener = new NotifyListener(proc, sock);
    let stderr = '';
    proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    await new Promise<void>((resolve, reject) => {
      let listening = false;
      readline.createInterface({ input: proc.stdout }).on('line', (line) => {
        const v = JSON.parse(line) as Record<string, unknown>;
        if (v['listening'] === true) {
          listening = true;
          resolve();
          return;
        }
        listener.received.push(v as unknown as Datagram);
        const w = listener.waiters;
        listener.waiters = [];
        for (const f of w) f();
      });
      proc.once('exit', (code) => {
        if (!listening) reject(new Error(`notify listener exited (${String(code)}): ${stderr}`));
      });
      proc.once('error', reject);
    });
    return listener;
  }

  /** Datagram lines (assignments) from `pid`, in arrival order, each with the datagram's time. */
  lines(pid?: number): Array<{ t: number; line: string; d: Datagram }> {
    return this.received
      .filter((d) => pid === undefined || d.pid === pid)
      .flatMap((d) => d.data.split('\n').filter(Boolean).map((line) => ({ t: d.t, line, d })));
  }

  /** The first datagram (already received or future) satisfying pred. */
  async waitFor(pred: (d: Datagram) => boolean, timeoutMs = 10_000): Promise<Datagram> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit !== undefined) return hit;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a datagram; received: ${JSON.stringify(this.received.map((d) => d.data))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    await gone;
  }
}
