/**
 * One process at a time may change a host: the daemon holds the lock for its lifetime, the offline tool for a
 * command. The lock file holds the owner's pid; a lock whose owner is gone (crash, kill -9) is taken over.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BusyError } from '../errors';

export interface HostLock {
  readonly file: string;
  release(): Promise<void>;
}

async function readOwner(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
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

export async function acquireHostLock(stateDir: string, owner: string): Promise<HostLock> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(file, 'wx', 0o600);
      await fh.writeFile(`${process.pid} ${owner}\n`);
      await fh.close();
      return {
        file,
        release: async () => {
          const text = await readOwner(file);
          if (text.startsWith(`${process.pid} `)) await fs.rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readOwner(file);
    const [pidText = '', who = 'another process'] = text.trim().split(' ');
    const pid = Number(pidText);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new BusyError(`${who} (pid ${pid}) is changing this host`, {
        hint: 'wait for it to finish, or use nodectl to talk to the running daemon',
      });
    }
    await fs.rm(file, { force: true }); // stale: its owner is gone
  }
  throw new BusyError(`could not take the host lock ${file}`);
}
