/**
 * systemd/imgbased.service: `systemd-analyze verify` with an empty stderr (parse problems are only warnings with
 * rc 0), the offline security exposure, and the settings the daemon relies on.
 *
 * verify also checks that ExecStart= exists. The launcher is not installed on a build host, so the unit is copied
 * to a temp dir and a drop-in there replaces ExecStart= with a stub; everything else is the shipped file, so a typo
 * in it still fails. (The drop-in mechanism itself is proven by the "catches a typo" test below.)
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BUS_NAME } from '../../src/dbus/api';
import type { Analyzed } from '../helpers/systemd-analyze';
import { analyzeUnit } from '../helpers/systemd-analyze';

const execFileP = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const UNIT = 'imgbased.service';
const SHIPPED_EXEC = '/usr/libexec/imgbased/imgbased-daemon';

let dir = '';

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-units-'));
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** systemd-analyze ARGS on `content` installed as `name` (ExecStart= stubbed). */
const analyze = (name: string, content: string, args: readonly string[]): Promise<Analyzed> => analyzeUnit(dir, name, content, args);

const shipped = (): Promise<string> => fs.readFile(path.join(REPO, 'systemd', UNIT), 'utf8');

/** [Service] key → values, from the shipped file (comments and other sections ignored). */
function serviceKeys(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]' && line && !line.startsWith('#')) {
      const i = line.indexOf('=');
      const k = line.slice(0, i);
      out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
    }
  }
  return out;
}

describe('systemd/imgbased.service', () => {
  it('passes systemd-analyze verify with an empty stderr', async () => {
    const r = await analyze(UNIT, await shipped(), ['verify', '--man=no']);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('the check catches a typo in the shipped unit (the stub drop-in hides nothing else)', async () => {
    const broken = (await shipped()).replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes');
    const r = await analyze(UNIT, broken, ['verify', '--man=no']);
    expect(r.stderr).toMatch(/Unknown key 'NoNewPrivilege'/);
  });

  it('without the stub, verify names the launcher the package must install', async () => {
    const unitDir = await fs.mkdtemp(path.join(dir, 'bare-'));
    await fs.writeFile(path.join(unitDir, UNIT), await shipped());
    const r = await execFileP('systemd-analyze', ['verify', '--man=no', path.join(unitDir, UNIT)], { env: { PATH: '/usr/bin:/bin', SYSTEMD_UNIT_PATH: `${unitDir}:` } })
      .then(() => ({ stderr: '' }), (e: { stderr?: string }) => ({ stderr: e.stderr ?? '' }));
    expect(r.stderr).toContain(`Command ${SHIPPED_EXEC} is not executable`);
  });

  it('keeps its offline security exposure at or below 5.0 ("OK")', async () => {
    const r = await analyze(UNIT, await shipped(), ['security', '--offline=true', '--threshold=50', '--no-pager']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Overall exposure level for imgbased\.service: [0-4]\.\d|Overall exposure level for imgbased\.service: 5\.0/);
  });

  it('is a notify service on the bus name, with watchdog, restart and the shipped launcher', async () => {
    const keys = serviceKeys(await shipped());
    const one = (k: string): string | undefined => keys.get(k)?.at(-1);
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('main');
    expect(one('BusName')).toBe(BUS_NAME);
    expect(keys.get('ExecStart')).toEqual([SHIPPED_EXEC]);
    expect(one('WatchdogSec')).toMatch(/^\d+s$/);
    expect(one('Restart')).toBe('on-failure');
    expect(one('StateDirectory')).toBe('imgbased');
    expect(one('RuntimeDirectory')).toBe('imgbased');
    // what lvm, mount and the writers need
    expect(one('PrivateDevices')).toBe('no');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ReadWritePaths')?.split(/\s+/)).toEqual(expect.arrayContaining(['/boot', '/etc', '/var']));
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('MemoryDenyWriteExecute')).toBe('no'); // V8's JIT
    expect(keys.has('DeviceAllow')).toBe(false);
    expect(keys.has('ProtectClock')).toBe(false);
  });

  it('documents every setting of [Service] with a comment above its group', async () => {
    let section = '';
    let commented = false;
    const bare: string[] = [];
    for (const raw of (await shipped()).split('\n')) {
      const line = raw.trim();
      if (line.startsWith('[')) {
        section = line;
        commented = false;
      } else if (line === '') commented = false;
      else if (line.startsWith('#')) commented = true;
      else if (section === '[Service]' && !commented) bare.push(line);
    }
    expect(bare).toEqual([]);
  });
});

describe('systemd/imgbased-automatic.{service,timer}', () => {
  const AUTO = 'imgbased-automatic.service';
  const TIMER = 'imgbased-automatic.timer';
  const read = (name: string): Promise<string> => fs.readFile(path.join(REPO, 'systemd', name), 'utf8');

  it('the service passes verify, runs `nodectl upgrade --automatic` as a oneshot and is tightly confined', async () => {
    const unit = await read(AUTO);
    expect(await analyze(AUTO, unit, ['verify', '--man=no'])).toEqual({ code: 0, stdout: '', stderr: '' });
    const keys = serviceKeys(unit);
    expect(keys.get('Type')).toEqual(['oneshot']);
    expect(keys.get('ExecStart')).toEqual(['/usr/bin/nodectl upgrade --automatic']);
    expect(keys.get('SuccessExitStatus')).toEqual(['4']); // busy: the next run retries
    const sec = await analyze(AUTO, unit, ['security', '--offline=true', '--threshold=20', '--no-pager']);
    expect(sec.code).toBe(0);
    expect(sec.stdout).toMatch(/Overall exposure level for imgbased-automatic\.service: [01]\.\d|: 2\.0/);
  });

  it('the timer passes verify next to its service: on boot, daily, persistent, randomized, enabled by timers.target', async () => {
    const unitDir = await fs.mkdtemp(path.join(dir, 'timer-'));
    const stub = path.join(unitDir, 'nodectl-stub');
    await fs.writeFile(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    await fs.writeFile(path.join(unitDir, AUTO), await read(AUTO));
    await fs.mkdir(path.join(unitDir, `${AUTO}.d`));
    await fs.writeFile(path.join(unitDir, `${AUTO}.d`, 'exec-stub.conf'), `[Service]\nExecStart=\nExecStart=${stub}\n`);
    const timer = await read(TIMER);
    await fs.writeFile(path.join(unitDir, TIMER), timer);
    const r = await execFileP('systemd-analyze', ['verify', '--man=no', path.join(unitDir, TIMER)], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', SYSTEMD_UNIT_PATH: `${unitDir}:`, SYSTEMD_LOG_COLOR: '0' },
    }).then((x) => ({ stderr: x.stderr }), (e: { stderr?: string }) => ({ stderr: e.stderr ?? 'failed' }));
    expect(r.stderr).toBe('');
    const lines = timer.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual(expect.arrayContaining(['OnBootSec=1h', 'OnCalendar=daily', 'Persistent=true', 'RandomizedDelaySec=1h', 'WantedBy=timers.target']));
  });
});

describe('systemd/imgbased-boot-complete.service and the preset', () => {
  const UNIT_NAME = 'imgbased-boot-complete.service';
  const read = (name: string): Promise<string> => fs.readFile(path.join(REPO, 'systemd', name), 'utf8');

  it('passes verify, runs `nodectl boot-complete --wait` once per boot, before boot-complete.target, tightly confined', async () => {
    const unit = await read(UNIT_NAME);
    expect(await analyze(UNIT_NAME, unit, ['verify', '--man=no'])).toEqual({ code: 0, stdout: '', stderr: '' });
    const keys = serviceKeys(unit);
    expect(keys.get('Type')).toEqual(['oneshot']);
    expect(keys.get('RemainAfterExit')).toEqual(['yes']);
    expect(keys.get('ExecStart')).toEqual(['/usr/bin/nodectl boot-complete --wait']);
    const lines = unit.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual(expect.arrayContaining([
      'Before=boot-complete.target', 'After=multi-user.target', 'RequiredBy=boot-complete.target', 'WantedBy=multi-user.target',
    ]));
    const sec = await analyze(UNIT_NAME, unit, ['security', '--offline=true', '--threshold=20', '--no-pager']);
    expect(sec.code).toBe(0);
    expect(sec.stdout).toMatch(/Overall exposure level for imgbased-boot-complete\.service: [01]\.\d|: 2\.0/);
  });

  it('the preset enables it (a trial nobody confirms would fall back on the next reboot)', async () => {
    const preset = (await read('80-imgbased.preset')).split('\n').filter((l) => l && !l.startsWith('#'));
    expect(preset).toEqual([`enable ${UNIT_NAME}`]);
  });
});
