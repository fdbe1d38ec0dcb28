/**
 * A real snmpd as AgentX master for the sandbox demo and the tests: a child process with a generated config in a
 * directory of the caller's, bound to 127.0.0.1 (UDP) and an AgentX socket the caller names (a unix socket, or
 * tcp:127.0.0.1:…), with its persistent state in that directory, stopped by pid. Plus the command-line tools'
 * settings that make the shipped MIB's names resolve: the project's mibs/ and net-snmp's bundled SNMPv2 MIBs
 * (Debian ships no IETF MIBs).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process';
import * as dgram from 'node:dgram';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export const SNMPD = '/usr/sbin/snmpd';
export const MODULE = 'OVIRT-NODE-LAYERS-MIB';

/** Where the net-snmp tools find OVIRT-NODE-LAYERS-MIB and what it imports (SNMPv2-SMI/TC/CONF), for a repository. */
export function mibDirs(repo: string): string[] {
  return [path.join(repo, 'mibs'), path.join(repo, 'node_modules/net-snmp/lib/mibs')];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A UDP port on 127.0.0.1 that was free a moment ago (or `preferred`, when given and free). */
export async function freeUdpPort(preferred = 0): Promise<number> {
  const bindTo = async (port: number): Promise<number> => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', () => resolve());
    });
    const got = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return got;
  };
  if (preferred !== 0) {
    try {
      return await bindTo(preferred);
    } catch {
      // taken: any free one
    }
  }
  return bindTo(0);
}

export interface ProbeResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One run of a command-line tool with a fixed environment (async; killed after timeoutMs). */
export function runTool(argv: readonly string[], env: Record<string, string>, timeoutMs = 30_000): Promise<ProbeResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('runTool: empty argv'));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s, and wait for the exit: one process, by its pid. */
export async function stopChild(p: ChildProcess): Promise<void> {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return; // never started, or gone
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

export interface SnmpdOptions {
  /** Its config (snmpd.conf), pid file and persistent directory (persist/) go here. */
  dir: string;
  /** snmpd's agentXSocket value, e.g. unix:/tmp/x/master or tcp:127.0.0.1:7050. */
  agentxSocket: string;
  /** UDP port of the SNMP agent (127.0.0.1). */
  port: number;
  /** Where trap2sink sends SNMPv2 traps (127.0.0.1), if any. */
  trapPort?: number;
  /** MIB directories for snmpd (MIBDIRS); see mibDirs(). */
  mibDirs: readonly string[];
  /** Also append snmpd's output to this file. */
  logFile?: string;
  /** How long start() waits for an answer (default 15 s). */
  timeoutMs?: number;
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
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SNMP_PERSISTENT_DIR: path.join(dir, 'persist'), MIBS: '', MIBDIRS: this.opts.mibDirs.join(':'), HOME: '/nonexistent' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = p;
    const spawnError = new Promise<Error>((r) => p.once('error', r));
    const logFile = this.opts.logFile;
    const take = (b: Buffer): void => {
      this.log += b.toString();
      if (logFile !== undefined) void fs.appendFile(logFile, b).catch(() => undefined);
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    const deadline = Date.now() + (this.opts.timeoutMs ?? 15_000);
    const toolEnv = { MIBS: '', MIBDIRS: this.opts.mibDirs.join(':'), SNMPCONFPATH: '/nonexistent', HOME: '/nonexistent' };
    try {
      for (;;) {
        if (p.pid === undefined) throw await spawnError;
        if (!this.running) throw new Error(`snmpd exited: ${this.log}`);
        const r = await runTool(['snmpget', '-v2c', '-c', 'public', '-t', '0.3', '-r', '0', '-On', `127.0.0.1:${port}`, '.1.3.6.1.2.1.1.3.0'], toolEnv, 5000);
        if (r.code === 0) return;
        if (Date.now() > deadline) throw new Error(`snmpd did not answer: ${this.log}\n${r.stderr}`);
        await sleep(100);
      }
    } catch (e) {
      await this.stop();
      throw e;
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
