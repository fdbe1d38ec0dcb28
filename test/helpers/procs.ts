/**
 * Holding a transaction mid-way without timing assumptions: find the tool a test's own daemon runs (its direct
 * child, by /proc) and SIGSTOP it by pid; the daemon keeps answering D-Bus meanwhile.
 */
import { promises as fs } from 'node:fs';
import { eventually } from '../bus/harness';

/** The pids of the direct children of a process (any of its threads') whose argv satisfies the predicate. */
export async function childrenOf(ppid: number, match: (argv: string[]) => boolean): Promise<number[]> {
  const found: number[] = [];
  for (const tid of await fs.readdir(`/proc/${ppid}/task`).catch(() => [])) {
    const children = await fs.readFile(`/proc/${ppid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const pid of children.split(' ').filter((x) => x !== '').map(Number)) {
      const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter((x) => x !== '');
      if (match(argv)) found.push(pid);
    }
  }
  return found;
}

/** Whether a signal is pending for the process (or the process is gone). */
export async function pendingOrGone(pid: number, signal: number): Promise<boolean> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  if (status === null || /^State:\s+Z/m.test(status)) return true;
  const pending = [/^ShdPnd:\s+([0-9a-f]+)/m, /^SigPnd:\s+([0-9a-f]+)/m].map((re) => BigInt(`0x${re.exec(status)?.[1] ?? '0'}`));
  return pending.some((mask) => (mask & (1n << BigInt(signal - 1))) !== 0n);
}

/** The `cp` that writes a base with the tree method. */
export const isTreeWriteBase = (argv: string[]): boolean =>
  argv[0] === 'cp' && argv.includes('--no-target-directory') && argv.includes('--sparse=auto');

/** Wait for the daemon's base copy of an upgrade (method "tree") and stop it; returns its pid (SIGCONT it later). */
export async function holdBaseCopy(daemonPid: number, daemonLog: () => string): Promise<number> {
  let copy: number | undefined;
  await eventually(async () => {
    [copy] = await childrenOf(daemonPid, isTreeWriteBase);
    return copy !== undefined;
  }, 30_000, 1).catch(() => {
    throw new Error(`the upgrade never ran its base copy; daemon log:\n${daemonLog().slice(-3000)}`);
  });
  const held = copy ?? -1;
  process.kill(held, 'SIGSTOP');
  return held;
}

/** Let a held process go on (it may be gone already). */
export function release(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
}

/** Running (not zombie) processes whose argv mentions `text`, as "pid argv…"; this test process excluded. */
export async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const argv = (await fs.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0').filter((x) => x !== '');
    if (!argv.some((a) => a.includes(text))) continue;
    const status = await fs.readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    if (status !== '' && !/^State:\s+Z/m.test(status)) found.push(`${name} ${argv.join(' ')}`);
  }
  return found;
}

/** The processes still mentioning `text` after waiting up to `ms` for them to go (empty once all are gone). */
export async function leftMentioning(text: string, ms = 5_000): Promise<string[]> {
  let left: string[] = [];
  await eventually(async () => (left = await processesMentioning(text)).length === 0, ms).catch(() => undefined);
  return left;
}
