/**
 * Real net-snmp tools for the SNMP tests and the bench: snmpd as AgentX master (src/sandbox/snmpd.ts, shared with
 * the sandbox demo) and snmptrapd as trap receiver, each a child of the test with a generated config in a temp dir,
 * bound to 127.0.0.1 (UDP) and a unix socket (AgentX) only, stopped by pid. And the command-line tools (snmpget,
 * snmpwalk, snmpbulkwalk, snmptable, snmptranslate) with MIBDIRS = the project's mibs/ + net-snmp's bundled SNMPv2
 * MIBs (Debian ships no IETF MIBs).
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freeUdpPort as freeUdpPortNear, mibDirs, MODULE, Snmpd as SandboxSnmpd, SNMPD, stopChild } from '../../src/sandbox/snmpd';
import type { SnmpdOptions as SandboxSnmpdOptions } from '../../src/sandbox/snmpd';
import { REPO, runCommand } from '../bus/harness';
import type { RunResult } from '../bus/harness';

export { MODULE, SNMPD };
export const SNMPTRAPD = '/usr/sbin/snmptrapd';
export const MIB_DIRS = mibDirs(REPO);
export const MIB_FILE = path.join(REPO, 'mibs/OVIRT-NODE-LAYERS-MIB.txt');
/** Environment for the command-line tools: our MIB plus SNMPv2-MIB (sysUpTime), nothing from /etc or ~. */
export const TOOL_ENV: Record<string, string> = {
  MIBDIRS: MIB_DIRS.join(':'),
  MIBS: `SNMPv2-MIB:${MODULE}`,
  SNMPCONFPATH: '/nonexistent',
  HOME: '/nonexistent',
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export function freeUdpPort(): Promise<number> {
  return freeUdpPortNear();
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

export type SnmpdOptions = Omit<SandboxSnmpdOptions, 'mibDirs'>;

/** snmpd as AgentX master with the repository's MIB directories. start() waits until it answers sysUpTime.0. */
export class Snmpd extends SandboxSnmpd {
  constructor(opts: SnmpdOptions) {
    super({ ...opts, mibDirs: MIB_DIRS });
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
