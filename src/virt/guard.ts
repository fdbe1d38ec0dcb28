/**
 * The running-VMs guard: before any reboot the daemon would trigger (the "apply" policy, `rollback --reboot`) it asks
 * libvirt which domains are active, and refuses while any are — or while libvirt cannot answer, because then running
 * virtual machines cannot be ruled out. It never assumes "no VMs". See docs/VM-GUARD.md.
 *
 * How libvirt is asked: each report() spawns `node libvirt-probe.js <uri>` (src/virt/libvirt-probe.ts) and validates
 * the one JSON line it prints. Reasons:
 *  - @unraid/libvirt is ESM-only; a dynamic import() from our CommonJS output works under node but not in jest's vm
 *    contexts. In a child process it is plain node in both cases.
 *  - The binding is a native addon: a crash or a call that never returns (libvirtd accepting a connection and never
 *    answering; a hung RPC cannot be cancelled through the binding) would take or block the daemon. A child is killed
 *    on a deadline (SIGKILL) and the report says "not reachable … (no answer within N ms)".
 *
 * Connection policy: a fresh connection per report (opened and closed by the probe, and the process ends anyway),
 * rather than a kept connection with reconnect. The binding has no lifecycle events, so a kept connection would only
 * save the connect (a few ms over the local socket) while adding stale-connection handling across libvirtd restarts
 * and keeping the native addon inside the daemon (where, measured, a pending libvirt call even makes process.exit()
 * hang). Reports are rare (before a reboot decision, a status poll); one costs a node start-up plus loading the addon,
 * ~180-300 ms on the 2 shared CI cores (the libvirt query itself ~3 ms; test/virt/guard.test.ts logs the figure).
 * Concurrent report() calls share one probe, unless the caller asks for a fresh one (a probe that starts after its
 * call: a decision to reboot, or Check(), must not take an answer libvirt gave before the caller asked).
 *
 * Where the probe is: beside this file when running compiled (dist/src/virt/libvirt-probe.js); when this file runs
 * from src/ (ts-jest), the compiled probe of the repository's build (<repo>/dist/src/virt/libvirt-probe.js) — so
 * tests need `npm run build` first, like the other tests that spawn dist/ programs. A missing probe is a report with
 * available:false, never an exception.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VMsRunningError } from '../errors';

export interface VmReport {
  /** True when libvirt answered; `running` is then the complete list of active domains. */
  readonly available: boolean;
  /** Names of the active (running, paused, …) domains, sorted and de-duplicated; empty when !available. */
  readonly running: readonly string[];
  /** Human-readable summary; when !available it names the URI and the reason. */
  readonly message: string;
  /** Date.now() when the check finished. */
  readonly checkedAt: number;
}

export interface VmGuard {
  /** Never throws: failures are `available: false` with a message. `fresh`: never join a probe already running. */
  report(opts?: { fresh?: boolean }): Promise<VmReport>;
}

export const DEFAULT_LIBVIRT_URI = 'qemu:///system';
export const DEFAULT_TIMEOUT_MS = 5000;
/** More than any real domain list; a probe printing more is treated as broken. */
const MAX_OUTPUT = 1 << 20;

/** The compiled probe: beside this file (dist/src/virt), or the repository's dist/ when this file runs from src/. */
export function probePath(): string {
  const beside = path.join(__dirname, 'libvirt-probe.js');
  if (fs.existsSync(beside)) return beside;
  return path.resolve(__dirname, '../../dist/src/virt/libvirt-probe.js');
}

/** "no virtual machines run" / "1 virtual machine runs: a" / "2 virtual machines run: a, b". */
export function describeRunning(running: readonly string[]): string {
  if (running.length === 0) return 'no virtual machines run';
  const what = running.length === 1 ? '1 virtual machine runs' : `${running.length} virtual machines run`;
  return `${what}: ${running.join(', ')}`;
}

function unavailable(uri: string, why: string): VmReport {
  return {
    available: false,
    running: [],
    message: `libvirt is not reachable at ${uri} (${why})`,
    checkedAt: Date.now(),
  };
}

function available(names: readonly string[]): VmReport {
  const running = [...new Set(names)].sort();
  return { available: true, running, message: describeRunning(running), checkedAt: Date.now() };
}

/** The probe's JSON line, validated. Returns the names, or the reason the answer is unusable. */
export function parseProbeOutput(stdout: string): { names: string[] } | { error: string } {
  const line = stdout.trim().split('\n').pop() ?? '';
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { error: `unreadable probe output: ${JSON.stringify(line.slice(0, 200))}` };
  }
  if (typeof v !== 'object' || v === null) return { error: 'probe output is not an object' };
  const o = v as Record<string, unknown>;
  if (o['ok'] === true) {
    const r = o['running'];
    if (!Array.isArray(r) || !r.every((n): n is string => typeof n === 'string')) {
      return { error: 'probe output has no list of domain names' };
    }
    return { names: r };
  }
  if (o['ok'] === false && typeof o['error'] === 'string') return { error: o['error'] };
  return { error: 'probe output has neither a result nor an error' };
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop()?.trim().slice(0, 300) ?? '';
}

function runProbe(uri: string, timeoutMs: number): Promise<VmReport> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: VmReport): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const probe = probePath();
    if (!fs.existsSync(probe)) {
      // Not a thrown error: the guard must still refuse, and say why.
      resolve(unavailable(uri, `libvirt probe ${probe} is missing; build with "npm run build"`));
      return;
    }
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LC_ALL: 'C',
      LANG: 'C',
    };
    // Session URIs (qemu:///session) locate their socket through these; the system URI needs neither.
    for (const k of ['HOME', 'XDG_RUNTIME_DIR'] as const) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    const child = spawn(process.execPath, [probe, uri, String(timeoutMs + 1000)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(unavailable(uri, `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (b: Buffer): void => {
      size += b.length;
      if (size > MAX_OUTPUT) {
        child.kill('SIGKILL');
        done(unavailable(uri, 'libvirt probe printed too much output'));
        return;
      }
      into.push(b);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.on('error', (e) => done(unavailable(uri, `cannot run the libvirt probe: ${e.message}`)));
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const parsed = parseProbeOutput(stdout);
      if ('names' in parsed && code === 0) return done(available(parsed.names));
      if ('error' in parsed && stdout.trim() !== '') return done(unavailable(uri, parsed.error));
      const how = signal !== null ? `signal ${signal}` : `exit ${code ?? '?'}`;
      const tail = lastLine(stderr);
      done(unavailable(uri, `libvirt probe failed (${how})${tail ? `: ${tail}` : ''}`));
    });
  });
}

export function libvirtGuard(opts: { uri: string; timeoutMs?: number }): VmGuard {
  const uri = opts.uri;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let inFlight: Promise<VmReport> | undefined;
  return {
    report(o: { fresh?: boolean } = {}): Promise<VmReport> {
      if (inFlight && o.fresh !== true) return inFlight;
      const p = runProbe(uri, timeoutMs)
        .catch((e: unknown) => unavailable(uri, e instanceof Error ? e.message : String(e)))
        .finally(() => {
          if (inFlight === p) inFlight = undefined;
        });
      inFlight = p;
      return p;
    },
  };
}

/**
 * Throws VMsRunningError unless the report shows libvirt answered and no domain is active.
 * `what` names the reboot's purpose, e.g. "upgrade to ovirt-node-ng-4.5.6-0.20250101.0".
 */
export function assertRebootAllowed(r: VmReport, what: string): void {
  if (!r.available) {
    throw new VMsRunningError(
      `cannot reboot for ${what}: ${r.message}; refusing because running virtual machines cannot be ruled out`,
      { hint: 'check that libvirtd runs (systemctl status libvirtd) and that LibvirtURI in [Upgrade] is right' },
    );
  }
  if (r.running.length > 0) {
    throw new VMsRunningError(`cannot reboot for ${what}: ${describeRunning(r.running)}`, {
      hint: 'shut down or migrate the virtual machines (virsh list), or put the host into maintenance, then retry',
    });
  }
}
