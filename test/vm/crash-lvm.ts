/**
 * VM tier helpers for the crash matrices of the compiled offline tool on dm-thin (engine-lvm, delta-lvm): run
 * `imgbased` with a failpoint (SIGKILL at a step boundary) or kill it while a given child tool runs, `recover`, and
 * compare everything an upgrade may change on the host (lvs with origin/tags/attrs, boot entries, /boot, grubenv, the
 * journal, mounts, stored manifests, boot states). Plus small block-device probes of protected bases.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Engine } from '../../src/engine';
import { run } from '../../src/system/run';
import type { JournalRecord } from '../../src/transaction/types';
import { walk } from '../helpers/host';
import { MiB, sh } from './lvm-fixture';
import { lvsState, VG, type LvState } from './ovirt-host';

const pexec = promisify(execFile);

/** The compiled offline tool (scripts/test-vm.sh compiles on the host; the guest runs dist/). */
export const CLI = path.resolve(__dirname, '../../src/cli/imgbased.js');

/** IMGBASED_VM_CRASH=full: every boundary of the matrices (slow under TCG); default: a chosen subset. */
export const FULL_MATRIX = process.env['IMGBASED_VM_CRASH'] === 'full';

/** Everything an upgrade may change on an oVirt-like host of the VM tier, comparable with toEqual. */
export interface HostState {
  readonly lvs: Record<string, LvState>;
  /** loader/entries file name → contents. */
  readonly entries: Record<string, string>;
  readonly bootTree: string[];
  readonly grubenv: string;
  /** Files of the journal dir (the history excluded: it grows with every transaction). */
  readonly journal: string[];
  /** Mount points below the sysroot (image loop mounts, volume mounts): none at rest. */
  readonly mounts: string[];
  /** Stored image manifests (<stateDir>/manifests): file name → sha256 of its contents. */
  readonly manifests: Record<string, string>;
  /** boot-states.json without the times of change, '(none)' without the file. */
  readonly bootStates: unknown;
}

export async function hostState(sysroot: string): Promise<HostState> {
  const boot = path.join(sysroot, 'boot');
  const state = path.join(sysroot, 'var/lib/imgbased');
  const entries: Record<string, string> = {};
  for (const f of await walk(path.join(boot, 'loader/entries'))) {
    entries[f] = await fs.readFile(path.join(boot, 'loader/entries', f), 'utf8');
  }
  const manifests: Record<string, string> = {};
  for (const f of await walk(path.join(state, 'manifests'))) {
    const body = await fs.readFile(path.join(state, 'manifests', f)).catch(() => null); // a directory: no body
    manifests[f] = body === null ? '(dir)' : createHash('sha256').update(body).digest('hex');
  }
  let bootStates: unknown = '(none)';
  try {
    const raw = JSON.parse(await fs.readFile(path.join(state, 'boot-states.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    bootStates = Object.fromEntries(Object.entries(raw).map(([l, { changedAt: _t, ...rest }]) => [l, rest]));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return {
    lvs: await lvsState(),
    entries,
    bootTree: await walk(boot),
    grubenv: await fs.readFile(path.join(boot, 'grub2/grubenv'), 'latin1').catch(() => '(none)'),
    journal: (await walk(path.join(state, 'journal'))).filter((f) => !f.startsWith('history')),
    mounts: (await sh('findmnt', '-rn', '-o', 'TARGET')).split('\n').filter((t) => t.startsWith(sysroot + '/')),
    manifests,
    bootStates,
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderr: string;
}

/** Run the compiled offline tool on the sysroot, optionally with a failpoint (IMGBASED_FAILPOINTS). */
export async function cli(sysroot: string, args: readonly string[], failpoint?: string): Promise<CliResult> {
  try {
    const r = await pexec(process.execPath, [CLI, '--sysroot', sysroot, ...args], {
      env: { ...process.env, ...(failpoint ? { IMGBASED_FAILPOINTS: failpoint } : {}) },
      maxBuffer: 16 * MiB,
    });
    return { code: 0, signal: null, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; signal?: string; stderr?: string };
    return { code: err.code ?? null, signal: err.signal ?? null, stderr: err.stderr ?? '' };
  }
}

/** The pids of the processes whose parent is `ppid` and whose command name (comm) is `comm`. */
async function childrenNamed(ppid: number, comm: string): Promise<number[]> {
  const out: number[] = [];
  for (const d of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await fs.readFile(`/proc/${d}/stat`, 'latin1').catch(() => '');
    // pid (comm) state ppid ...: comm may hold blanks and parentheses, so split at the LAST ')'
    const close = stat.lastIndexOf(')');
    if (close < 0) continue;
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const ppidOf = Number(stat.slice(close + 2).split(' ')[1]);
    if (name === comm && ppidOf === ppid) out.push(Number(d));
  }
  return out;
}

const alive = (pid: number): Promise<boolean> => fs.access(`/proc/${pid}`).then(() => true, () => false);

/**
 * Run the offline tool and SIGKILL it (the tool only, as a failpoint does: its children are orphaned) while a child
 * named `comm` has been running for `afterMs`. Resolves with the result and whether that child was still running at
 * the kill (false: the tool finished, or the child ended before the kill — the case did not happen as intended).
 */
export async function killWhileChildRuns(
  sysroot: string, args: readonly string[], comm: string, afterMs: number,
): Promise<CliResult & { childRunning: boolean }> {
  const child = spawn(process.execPath, [CLI, '--sysroot', sysroot, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  let childRunning = false;
  const pid = child.pid;
  if (pid === undefined) throw new Error('the offline tool did not start');
  while (!done) {
    const [target] = await childrenNamed(pid, comm);
    if (target !== undefined) {
      if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
      childRunning = await alive(target);
      if (!done) child.kill('SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const r = await exited;
  return { code: r.code, signal: r.signal, stderr, childRunning };
}

/** The newest transaction record of the host's history. */
export async function lastRecord(sysroot: string): Promise<JournalRecord | undefined> {
  const [last] = await (await Engine.open({ sysroot })).history(1);
  return last;
}

/** Run fn on a protected base's block device, activated (-K) for the call only. */
export async function withBaseDevice<T>(name: string, fn: (dev: string) => Promise<T>): Promise<T> {
  await sh('lvchange', '-q', '--activate', 'y', '--ignoreactivationskip', `${VG}/${name}`);
  await run(['udevadm', 'settle']);
  try {
    return await fn(`/dev/${VG}/${name}`);
  } finally {
    await sh('lvchange', '-q', '--activate', 'n', `${VG}/${name}`);
  }
}

export async function blkidUuid(dev: string): Promise<string> {
  return (await sh('blkid', '-p', '-s', 'UUID', '-o', 'value', dev)).trim();
}

/** ext4 size in bytes from its superblock. */
export async function ext4Bytes(dev: string): Promise<number> {
  const out = await sh('dumpe2fs', '-h', dev);
  const num = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(out)?.[1]);
  return num('Block count') * num('Block size');
}
