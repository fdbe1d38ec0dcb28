/**
 * The README's main command, end to end (without the setup step): the demo builds images, starts a private bus,
 * polkitd and the daemon, upgrades over D-Bus, serves its clients (cockpit-ws with the Cockpit page, snmpd with the
 * imgbased-snmp subagent), and stops everything it started on Ctrl-C — also when Ctrl-C comes during start-up.
 *
 * What it started is found without names: by the pids and the process group it prints, and by scanning /proc for
 * processes whose command line, environment or cwd point into its work dir or its private bus directory.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers/host';

const DEMO = path.resolve(__dirname, '../../dist/src/sandbox/demo.js');
const NEW_LAYER = 'ovirt-node-ng-4.5.6-0.20250601.0+1';
const POLKIT_POLICY = '/usr/share/polkit-1/actions/org.ovirt.node.layers.policy';


interface Demo {
  proc: ChildProcessWithoutNullStreams;
  out: () => string;
  exited: Promise<number | null>;
  /** Wait until the output contains `text` (or the demo exits, or time runs out); returns the output. */
  waitFor: (text: string, timeoutMs: number) => Promise<string>;
  /** SIGINT if still running, and wait for the exit (SIGKILL after 60 s). */
  stop: () => Promise<void>;
}

function startDemo(work: string): Demo {
  const proc = spawn(process.execPath, [DEMO, work], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  // Waiters are checked on every chunk, so a test can act the moment a line appears.
  const waiters = new Set<() => void>();
  const append = (b: Buffer): void => {
    out += b.toString();
    for (const w of [...waiters]) w();
  };
  proc.stdout.on('data', append);
  proc.stderr.on('data', append);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    out: () => out,
    exited,
    waitFor: (text, timeoutMs) => new Promise<string>((resolve) => {
      const finish = (): void => {
        waiters.delete(check);
        clearTimeout(timer);
        resolve(out);
      };
      const check = (): void => {
        if (out.includes(text)) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      waiters.add(check);
      void exited.then(finish);
      check();
    }),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGINT');
      const t = setTimeout(() => proc.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(t);
    },
  };
}

interface ProcInfo {
  pid: number;
  pgrp: number;
  state: string;
  cmdline: string;
}

async function readProc(pid: number): Promise<ProcInfo | null> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp …": comm may contain spaces and parentheses, so parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
    return { pid, state: rest[0] ?? '?', pgrp: Number(rest[2]), cmdline };
  } catch {
    return null; // gone meanwhile
  }
}

async function allPids(): Promise<number[]> {
  return (await fs.readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Live (non-zombie) processes whose cmdline, environment or cwd mention one of `needles`. */
async function processesPointingInto(needles: readonly string[]): Promise<ProcInfo[]> {
  const found: ProcInfo[] = [];
  for (const pid of await allPids()) {
    if (pid === process.pid) continue;
    const texts = await Promise.all([
      fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
      fs.readFile(`/proc/${pid}/environ`, 'utf8').catch(() => ''),
      fs.readlink(`/proc/${pid}/cwd`).catch(() => ''),
    ]);
    if (!texts.some((t) => needles.some((n) => t.includes(n)))) continue;
    const info = await readProc(pid);
    if (info && info.state !== 'Z') found.push(info);
  }
  return found;
}

async function groupMembers(pgid: number): Promise<ProcInfo[]> {
  const infos = await Promise.all((await allPids()).map(readProc));
  return infos.filter((i): i is ProcInfo => i !== null && i.pgrp === pgid && i.state !== 'Z');
}

async function alive(pid: number): Promise<boolean> {
  const info = await readProc(pid);
  return info !== null && info.state !== 'Z';
}

/** The words of a printed command line: plain words and '…' quoted ones (what the demo's shellLine produces). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /\s*((?:[^\s']+|'[^']*')+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    words.push((m[1] ?? '').replace(/'([^']*)'/g, '$1'));
  }
  return words;
}

function run(argv: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command line');
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The one printed line that starts (after indentation) with `command `. */
function printedCommand(out: string, command: string): string[] {
  const lines = out.split('\n').filter((l) => l.trimStart().startsWith(`${command} `));
  expect(lines).toHaveLength(1);
  return shellWords(lines[0] ?? '');
}

/** The private bus directory, from the environment of the demo's processes that point into its work dir. */
async function busDirOf(work: string): Promise<string> {
  for (const p of await processesPointingInto([work])) {
    const env = await fs.readFile(`/proc/${p.pid}/environ`, 'utf8').catch(() => '');
    const m = /(?:^|\0)DBUS_SYSTEM_BUS_ADDRESS=unix:path=([^\0]+)\/system_bus_socket/.exec(env);
    if (m?.[1]) return m[1];
  }
  throw new Error(`no process of the demo in ${work} has DBUS_SYSTEM_BUS_ADDRESS`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

it('runs the sandbox demo: upgrade with progress, serves its clients, Ctrl-C stops everything', async () => {
  await fs.access(DEMO);
  const dir = await tempDir('demo');
  const work = path.join(dir, 'sandbox');
  const demo = startDemo(work);
  try {
    const t0 = Date.now();
    const out = await demo.waitFor('Press Ctrl-C', 170_000);
    process.stdout.write(`demo serving after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    expect(out).toContain('-- upgrade done: ovirt-node-ng-4.5.6-0.20250601.0+1 boots next on trial');
    expect(out).toMatch(/100% \| start-trial/);
    expect(out).toMatch(/-- boot of ovirt-node-ng-4.5.6-0.20250601.0\+1: good \(gates passed: health (ok|warn)\); default layer is now ovirt-node-ng-4.5.6-0.20250601.0\+1/);
    expect(out).toContain('layer ovirt-node-ng-4.5.6-0.20250601.0+1 (current) (default) [good]');
    expect(out).toContain('Press Ctrl-C');
    const socket = /unix:path=(\S+)/.exec(out)?.[1] ?? '';
    await fs.access(socket);
    const busDir = path.dirname(socket);

    // The nodectl and busctl lines are there.
    expect(out).toMatch(/node \S+\/dist\/src\/cli\/nodectl\.js info .*policy.*upgrade --automatic.*rollback.*watch/);
    expect(out).toContain(`export DBUS_SYSTEM_BUS_ADDRESS=unix:path=${socket}`);
    expect(out).toMatch(/busctl --system introspect org\.ovirt\.Node \/org\/ovirt\/Node/);

    // Cockpit: the printed page URL serves the page, its module and the package manifest (the bridge found it).
    const url = /http:\/\/127\.0\.0\.1:\d+\/cockpit\/@localhost\/ovirt-node\/index\.html/.exec(out)?.[0] ?? '';
    expect(url).not.toBe('');
    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>Node Layers</title>');
    expect(html).toContain('<script type="module" src="index.js">');
    const js = await fetch(new URL('index.js', url));
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type') ?? '').toMatch(/javascript/);
    await js.arrayBuffer();
    const manifests: unknown = await (await fetch(new URL('/cockpit/@localhost/manifests.json', url))).json();
    const pkg = isRecord(manifests) ? manifests['ovirt-node'] : undefined;
    const menu = isRecord(pkg) ? pkg['menu'] : undefined;
    const index = isRecord(menu) ? menu['index'] : undefined;
    expect(isRecord(index) ? index['label'] : undefined).toBe('Node Layers');

    // SNMP: the printed commands, as printed, see the current layer by its MIB name.
    const get = await run(printedCommand(out, 'snmpget'));
    expect(get.stderr).toBe('');
    expect(get.code).toBe(0);
    expect(get.stdout).toContain(`OVIRT-NODE-LAYERS-MIB::ovnCurrentLayer.0 = STRING: ${NEW_LAYER}`);
    expect(get.stdout).toContain(`OVIRT-NODE-LAYERS-MIB::ovnDefaultLayer.0 = STRING: ${NEW_LAYER}`);
    const walk = await run(printedCommand(out, 'snmpwalk'));
    expect(walk.stderr).toBe('');
    expect(walk.code).toBe(0);
    expect(walk.stdout).toContain(`OVIRT-NODE-LAYERS-MIB::ovnCurrentLayer.0 = STRING: ${NEW_LAYER}`);
    expect(walk.stdout).toContain(`OVIRT-NODE-LAYERS-MIB::ovnLayerName.2 = STRING: ${NEW_LAYER}`);
    expect(walk.stdout).toContain('OVIRT-NODE-LAYERS-MIB::ovnDaemonReachable.0 = INTEGER: true(1)');

    // What it started, by the pids and process group it printed, and by /proc.
    const started = /Started: daemon pid (\d+), snmpd pid (\d+), imgbased-snmp pid (\d+), cockpit-ws process group (\d+)/.exec(out);
    expect(started).not.toBeNull();
    const [daemonPid, snmpdPid, subagentPid, pgid] = (started ?? []).slice(1).map(Number) as [number, number, number, number];
    for (const pid of [daemonPid, snmpdPid, subagentPid]) expect(await alive(pid)).toBe(true);
    const group = await groupMembers(pgid);
    expect(group.some((p) => p.cmdline.startsWith('/usr/lib/cockpit/cockpit-ws --no-tls --address 127.0.0.1'))).toBe(true);
    expect(group.some((p) => p.cmdline.startsWith('cockpit-bridge'))).toBe(true);
    const before = await processesPointingInto([work, busDir]);
    for (const pid of [daemonPid, snmpdPid, subagentPid, ...group.map((p) => p.pid)]) {
      expect(before.map((p) => p.pid)).toContain(pid); // the scan sees all of them (and dbus-daemon, polkitd)
    }

    const t1 = Date.now();
    demo.proc.kill('SIGINT');
    expect(await demo.exited).toBe(0);
    process.stdout.write(`demo stopped ${((Date.now() - t1) / 1000).toFixed(1)} s after Ctrl-C\n`);
    expect(demo.out()).toContain('daemon exited (0)');
    for (const pid of [daemonPid, snmpdPid, subagentPid]) expect(await alive(pid)).toBe(false);
    expect(await groupMembers(pgid)).toEqual([]);
    expect(await processesPointingInto([work, busDir])).toEqual([]);
    await expect(fs.access(socket)).rejects.toThrow(/ENOENT/);
    await expect(fs.access(POLKIT_POLICY)).rejects.toThrow(/ENOENT/);
  } finally {
    await demo.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}, 300_000);

it('Ctrl-C during start-up stops what was started so far', async () => {
  await fs.access(DEMO);
  const dir = await tempDir('demo');
  const work = path.join(dir, 'sandbox');
  const demo = startDemo(work);
  try {
    // The bus dir is looked up early (a /proc scan takes a while); the signal goes out the moment snmpd and the
    // subagent are reported up, while cockpit-ws is being started.
    await demo.waitFor('-- imgbased daemon (pid', 170_000);
    const busDir = await busDirOf(work);
    await fs.access(busDir);
    const out = await demo.waitFor('-- snmpd (pid', 170_000);
    demo.proc.kill('SIGINT');
    expect(out).toContain('-- snmpd (pid');
    expect(out).not.toContain('unix:path='); // the serving lines are not printed yet
    expect(await demo.exited).toBe(130);
    expect(demo.out()).toContain('-- SIGINT during start-up');
    expect(demo.out()).not.toContain('Press Ctrl-C');
    expect(await processesPointingInto([work, busDir])).toEqual([]);
    await expect(fs.access(busDir)).rejects.toThrow(/ENOENT/);
    await expect(fs.access(POLKIT_POLICY)).rejects.toThrow(/ENOENT/);
  } finally {
    await demo.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}, 300_000);
