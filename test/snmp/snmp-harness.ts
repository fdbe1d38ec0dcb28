/**
 * Real net-snmp tools for the SNMP tests and the bench: snmpd as AgentX master and snmptrapd as trap receiver, each
 * a child of the test with a generated config in a temp dir, bound to 127.0.0.1 (UDP) and a unix socket (AgentX)
 * only, stopped by pid. And the command-line tools (snmpget, snmpwalk, snmpbulkwalk, snmptable, snmptranslate) with
 * MIBDIRS = the project's mibs/ + net-snmp's bundled SNMPv2 MIBs (Debian ships no IETF MIBs).
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as dgram from 'node:dgram';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { REPO, runCommand } from '../bus/harness';
import type { RunResult } from '../bus/harness';

export const SNMPD = '/usr/sbin/snmpd';
export const SNMPTRAPD = '/usr/sbin/snmptrapd';
export const MIB_DIRS = [path.join(REPO, 'mibs'), path.join(REPO, 'node_modules/net-snmp/lib/mibs')];
export const MIB_FILE = path.join(REPO, 'mibs/OVIRT-NODE-LAYERS-MIB.txt');
export const MODULE = 'OVIRT-NODE-LAYERS-MIB';
/** Environment for the command-line tools: our MIB plus SNMPv2-MIB (sysUpTime), nothing from /etc or ~. */
export const TOOL_ENV: Record<string, string> = {
  MIBDIRS: MIB_DIRS.join(':'),
  MIBS: `SNMPv2-MIB:${MODULE}`,
  SNMPCONFPATH: '/nonexistent',
  HOME: '/nonexistent',
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freeTcpPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** Run an SNMP command-line tool with TOOL_ENV. */
export function snmpTool(tool: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return runCommand([tool, ...args], { env: TOOL_ENV, timeoutMs });
}

async function stopChild(p: ChildProcessWithoutNullStreams): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

export interface SnmpdOptions {
  dir: string;
  /** snmpd's agentXSocket value, e.g. unix:/tmp/x/master or tcp:127.0.0.1:7050. */
  agentxSocket: string;
  /** UDP port of the SNMP agent (127.0.0.1). */
  port: number;
  /** Where trap2sink sends SNMPv2 traps (127.0.0.1), if any. */
  trapPort?: number;
}

/** snmpd as AgentX master. start() waits until it answers an SNMP GET of sysUpTime.0. */
export class Snmpd {
  private proc: ChildProcessWithoutNullStreams | undefined;
  log = '';

  constructor(readonly opts: SnmpdOptions) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    const { dir, agentxSocket, port, trapPort } = this.opts;
    const conf = path.join(dir, 'snmpd.conf');
    await fs.mkdir(path.join(dir, 'persist'), { recursive: true });
    await fs.writeFile(conf, [
      'master agentx',
      `agentXSocket ${agentxSocket}`,
      `agentaddress udp:127.0.0.1:${port}`,
      'rocommunity public 127.0.0.1',
      ...(trapPort !== undefined ? [`trap2sink 127.0.0.1:${trapPort} public`] : []),
      '',
    ].join('\n'));
    const p = spawn(SNMPD, ['-f', '-Lo', '-C', '-c', conf, '-p', path.join(dir, 'snmpd.pid')], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SNMP_PERSISTENT_DIR: path.join(dir, 'persist'), MIBS: '', MIBDIRS: MIB_DIRS.join(':'), HOME: '/nonexistent' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = p;
    p.stdout.on('data', (b: Buffer) => (this.log += b.toString()));
    p.stderr.on('data', (b: Buffer) => (this.log += b.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!this.running) throw new Error(`snmpd exited: ${this.log}`);
      const r = await snmpTool('snmpget', ['-v2c', '-c', 'public', '-t', '0.3', '-r', '0', '-On', `127.0.0.1:${port}`, '.1.3.6.1.2.1.1.3.0'], 5000);
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`snmpd did not answer: ${this.log}\n${r.stderr}`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p) await stopChild(p);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** snmptrapd printing every notification (numeric OIDs) on stdout; waitFor() polls what arrived. */
export class TrapReceiver {
  private proc: ChildProcessWithoutNullStreams | undefined;
  output = '';

  private constructor(readonly port: number) {}

  static async start(dir: string, port: number): Promise<TrapReceiver> {
    const t = new TrapReceiver(port);
    const conf = path.join(dir, 'snmptrapd.conf');
    await fs.mkdir(path.join(dir, 'trapd-persist'), { recursive: true });
    await fs.writeFile(conf, 'authCommunity log public\ndoNotFork yes\n');
    const p = spawn(SNMPTRAPD, ['-f', '-Lo', '-C', '-c', conf, '-p', path.join(dir, 'snmptrapd.pid'), '-On', `udp:127.0.0.1:${port}`], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SNMP_PERSISTENT_DIR: path.join(dir, 'trapd-persist'), ...TOOL_ENV },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    t.proc = p;
    p.stdout.on('data', (b: Buffer) => (t.output += b.toString()));
    p.stderr.on('data', (b: Buffer) => (t.output += b.toString()));
    const deadline = Date.now() + 10_000;
    while (!/NET-SNMP version/.test(t.output)) {
      if (p.exitCode !== null) throw new Error(`snmptrapd exited: ${t.output}`);
      if (Date.now() > deadline) throw new Error(`snmptrapd did not start: ${t.output}`);
      await sleep(50);
    }
    return t;
  }

  async waitFor(pred: (output: string) => boolean, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.output)) {
      if (Date.now() > deadline) throw new Error(`no such notification within ${timeoutMs} ms; received:\n${this.output}`);
      await sleep(50);
    }
    return this.output;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p) await stopChild(p);
  }
}
