/**
 * One process at a time may change a host: the daemon holds the lock for its lifetime, the offline tool for a
 * command. The lock file lives in the state directory, which outlives a reboot, and names its owner as
 * `PID BOOT-ID START-TIME OWNER…`: a lock is stale — and taken over — when its owner is gone, which is when the host
 * has booted since it was taken (a power cut), or no process has that pid, or the process with that pid is another one
 * (a pid reused, in this boot or after a reboot: a lock holding only the pid let a stranger's pid keep the daemon from
 * starting after a power cut, found by the power-cut torture).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BusyError } from '../errors';

export interface HostLock {
  readonly file: string;
  release(): Promise<void>;
}

/** What a lock file says. Files written before boot id and start time were recorded hold `PID OWNER…` only. */
export interface LockOwner {
  readonly pid: number;
  readonly bootId: string | null;
  readonly startTime: string | null;
  readonly owner: string;
}

/** The facts about this host that decide whether a lock's owner still runs. */
export interface LockFacts {
  /** This boot's id; null when /proc does not tell. */
  readonly bootId: string | null;
  /** Boot time (ms since the epoch): a lock file last written before it is from an earlier boot. */
  readonly bootTimeMs: number;
  /** The lock file's mtime (ms since the epoch). */
  readonly lockMtimeMs: number;
  /**
   * Start time (clock ticks after boot, /proc/PID/stat field 22) of the process with the lock's pid; null: there is no
   * such process; UNREADABLE: there is one, but its stat cannot be read (another security domain): assumed the owner.
   */
  readonly startTimeOfPid: string | null;
}

export const UNREADABLE = '?';
const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function formatLock(o: LockOwner): string {
  return `${o.pid} ${o.bootId ?? '-'} ${o.startTime ?? '-'} ${o.owner}\n`;
}

/** Parse a lock file; null when it is not one (empty, garbage: a cut while it was being written). */
export function parseLock(text: string): LockOwner | null {
  const words = text.trim().split(/\s+/);
  const pid = Number(words[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const [, boot = '', start = ''] = words;
  // `-` where /proc could not tell the boot id or the start time; neither field: the old `PID OWNER…` format
  const ids = (BOOT_ID.test(boot) || boot === '-') && (/^\d+$/.test(start) || start === '-');
  return {
    pid,
    bootId: ids && boot !== '-' ? boot : null,
    startTime: ids && start !== '-' ? start : null,
    owner: words.slice(ids ? 3 : 1).join(' ') || 'another process',
  };
}

/** Whether the lock's owner is gone (pure). */
export function isStale(lock: LockOwner | null, facts: LockFacts): boolean {
  if (lock === null) return true;
  if (facts.startTimeOfPid === null) return true;
  if (lock.bootId !== null && facts.bootId !== null && lock.bootId !== facts.bootId) return true;
  if (lock.startTime !== null && facts.startTimeOfPid !== UNREADABLE) return lock.startTime !== facts.startTimeOfPid;
  // an old-format lock (or an owner whose start time cannot be read): only its age can tell a previous boot's
  return facts.lockMtimeMs < facts.bootTimeMs;
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** /proc/PID/stat field 22 (starttime); null when there is no such process, UNREADABLE when it cannot be read. */
export async function processStartTime(pid: number): Promise<string | null> {
  let stat: string | null;
  try {
    stat = await readIfExists(`/proc/${pid}/stat`);
  } catch {
    return alive(pid) ? UNREADABLE : null;
  }
  if (stat === null) return null;
  // the command name (field 2) is in parentheses and may hold spaces or parentheses: count after the last ')'
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19] ?? null;
}

async function bootId(): Promise<string | null> {
  const id = (await readIfExists('/proc/sys/kernel/random/boot_id').catch(() => null))?.trim() ?? '';
  return BOOT_ID.test(id) ? id : null;
}

async function bootTimeMs(): Promise<number> {
  const m = /^btime (\d+)$/m.exec(await fs.readFile('/proc/stat', 'utf8'));
  return m ? Number(m[1]) * 1000 : 0;
}

export async function acquireHostLock(stateDir: string, owner: string): Promise<HostLock> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, 'lock');
  const start = await processStartTime(process.pid);
  const me: LockOwner = { pid: process.pid, bootId: await bootId(), startTime: start === UNREADABLE ? null : start, owner };
  const mine = formatLock(me);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(file, 'wx', 0o600);
      await fh.writeFile(mine);
      await fh.close();
      return {
        file,
        release: async () => {
          if ((await readIfExists(file)) === mine) await fs.rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readIfExists(file);
    if (text === null) continue;
    const lock = parseLock(text);
    const mtime = (await fs.stat(file).catch(() => null))?.mtimeMs ?? 0;
    const facts: LockFacts = {
      bootId: me.bootId, bootTimeMs: await bootTimeMs(), lockMtimeMs: mtime,
      startTimeOfPid: lock ? await processStartTime(lock.pid) : null,
    };
    if (lock && !isStale(lock, facts)) {
      throw new BusyError(`${lock.owner} (pid ${lock.pid}) is changing this host`, {
        hint: 'wait for it to finish, or use nodectl to talk to the running daemon',
      });
    }
    // stale: its owner is gone. Removed only if it still says the same (another process may have taken it over).
    if ((await readIfExists(file)) === text) await fs.rm(file, { force: true });
  }
  throw new BusyError(`could not take the host lock ${file}`);
}
