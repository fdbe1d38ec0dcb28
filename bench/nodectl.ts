/**
 * Benchmark of nodectl's start-up cost (run as root; not a test):
 *   npx tsc -p tsconfig.build.json && node dist/bench/nodectl.js [--runs N]
 *
 * Starts the compiled daemon in sandbox mode over a temp sysroot (dir backend) on a private system-like bus with the
 * SHIPPED bus policy (test/bus/harness.ts), then times, spawn to exit, N runs each (interleaved, so load on a shared
 * machine hits both alike; 2 warm-up runs each are dropped):
 *   - `nodectl info` (connect, Hello, GetAll, render)         vs `node -e 0`
 *   - `nodectl --json info`, `nodectl check --oneline`, `nodectl motd` and `nodectl --help` (no bus), for context
 * Goal (issue 5): median `nodectl info` ÷ median `node -e 0` ≤ 2.5.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createSandbox } from '../src/sandbox/sysroot';
import { eventually, PrivateBus, REPO } from '../test/bus/harness';
import { imageSet, NVR, tempDir } from '../test/helpers/host';
import { arg, runMain } from './common';

const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const GOAL = 2.5;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** Spawn → exit of argv, ms; fails when the exit code is not 0. */
async function timed(argv: readonly string[], env: Record<string, string>): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty argv');
  const t0 = process.hrtime.bigint();
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: 'ignore', env });
    p.once('exit', (c) => resolve(c));
    p.once('error', reject);
  });
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${String(code)}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const runs = Math.max(15, arg('runs', 21));
  if (process.getuid?.() !== 0) throw new Error('bench/nodectl runs as root (private system bus, sandbox)');
  await fs.access(DAEMON);
  await fs.access(NODECTL);
  const dir = await tempDir('bench-nodectl');
  let bus: PrivateBus | undefined;
  let daemon: ChildProcessWithoutNullStreams | undefined;
  try {
    await fs.chmod(dir, 0o755);
    const images = await imageSet(dir);
    const sysroot = path.join(dir, 'sysroot');
    await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    bus = await PrivateBus.start();
    const b = bus;
    daemon = b.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    await eventually(async () => (await b.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);

    const cases: Array<[label: string, argv: string[]]> = [
      ['node -e 0', [process.execPath, '-e', '0']],
      ['nodectl info', [process.execPath, NODECTL, 'info']],
      ['nodectl --json info', [process.execPath, NODECTL, '--json', 'info']],
      ['nodectl check --oneline', [process.execPath, NODECTL, 'check', '--oneline']],
      ['nodectl motd', [process.execPath, NODECTL, 'motd']],
      ['nodectl --help (no bus)', [process.execPath, NODECTL, '--help']],
    ];
    const times = new Map<string, number[]>(cases.map(([l]) => [l, []]));
    for (let i = 0; i < runs + 2; i++) {
      for (const [label, argv] of cases) {
        const ms = await timed(argv, b.env);
        if (i >= 2) times.get(label)?.push(ms);
      }
    }
    const base = median(times.get('node -e 0') ?? []);
    const f = (x: number, d = 0): string => x.toFixed(d);
    const rows: Array<[string, string, string, string]> = [['command', `median of ${runs} (ms)`, 'min (ms)', '÷ node -e 0']];
    for (const [label] of cases) {
      const xs = times.get(label) ?? [];
      rows.push([label, f(median(xs)), f(Math.min(...xs)), label === 'node -e 0' ? '1.00' : f(median(xs) / base, 2)]);
    }
    const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
    for (const [i, r] of rows.entries()) {
      process.stdout.write(r.map((c, j) => c.padEnd(w[j] ?? 0)).join('  ') + '\n');
      if (i === 0) process.stdout.write(w.map((x) => '-'.repeat(x)).join('  ') + '\n');
    }
    const ratio = median(times.get('nodectl info') ?? []) / base;
    process.stdout.write(`\n${ratio <= GOAL ? 'met   ' : 'MISSED'}  nodectl info ÷ node -e 0 = ${f(ratio, 2)} (goal ≤ ${GOAL})\n`);
  } finally {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const d = daemon;
      const gone = new Promise((r) => d.once('exit', r));
      d.kill('SIGTERM');
      await gone;
    }
    await bus?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

runMain(main);
