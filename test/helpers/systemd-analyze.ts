/**
 * `systemd-analyze` on a shipped unit without installing it: the unit goes into a fresh unit dir under `parent`
 * with a drop-in that replaces ExecStart= by a stub (the launcher is not installed on a build host); everything
 * else is the shipped file, so a typo in it still shows. The system's unit dirs follow ours (dbus.socket & co).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Analyzed {
  code: number;
  stdout: string;
  stderr: string;
}

export async function analyzeUnit(parent: string, name: string, content: string, args: readonly string[]): Promise<Analyzed> {
  const unitDir = await fs.mkdtemp(path.join(parent, 'units-'));
  const stub = path.join(unitDir, 'exec-stub');
  await fs.writeFile(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await fs.writeFile(path.join(unitDir, name), content);
  await fs.mkdir(path.join(unitDir, `${name}.d`));
  await fs.writeFile(path.join(unitDir, `${name}.d`, 'exec-stub.conf'), `[Service]\nExecStart=\nExecStart=${stub}\n`);
  try {
    const { stdout, stderr } = await execFileP('systemd-analyze', [...args, path.join(unitDir, name)], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', SYSTEMD_UNIT_PATH: `${unitDir}:`, SYSTEMD_LOG_COLOR: '0' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
