/**
 * systemd/imgbased-snmp.service: `systemd-analyze verify` with an empty stderr (parse problems are only warnings
 * with rc 0), its offline security exposure, and the settings the subagent relies on. Same approach as
 * test/systemd/units.test.ts: the launcher is not installed on a build host, so a drop-in in a temp unit dir replaces
 * ExecStart= with a stub; everything else is the shipped file.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const UNIT = 'imgbased-snmp.service';

let dir = '';
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-snmp-unit-'));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function analyze(content: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const unitDir = await fs.mkdtemp(path.join(dir, 'units-'));
  const stub = path.join(unitDir, 'imgbased-snmp-stub');
  await fs.writeFile(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await fs.writeFile(path.join(unitDir, UNIT), content);
  await fs.mkdir(path.join(unitDir, `${UNIT}.d`));
  await fs.writeFile(path.join(unitDir, `${UNIT}.d`, 'exec-stub.conf'), `[Service]\nExecStart=\nExecStart=${stub}\n`);
  try {
    const { stdout, stderr } = await execFileP('systemd-analyze', [...args, path.join(unitDir, UNIT)], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', SYSTEMD_UNIT_PATH: `${unitDir}:`, SYSTEMD_LOG_COLOR: '0' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const shipped = (): Promise<string> => fs.readFile(path.join(REPO, 'systemd', UNIT), 'utf8');

/** "[Section] key" → values, comments ignored. */
function keys(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) section = line;
    else if (line && !line.startsWith('#')) {
      const i = line.indexOf('=');
      const k = `${section} ${line.slice(0, i)}`;
      out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
    }
  }
  return out;
}

describe('systemd/imgbased-snmp.service', () => {
  it('passes systemd-analyze verify with an empty stderr', async () => {
    expect(await analyze(await shipped(), ['verify', '--man=no'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('the check catches a typo (the stub drop-in hides nothing else)', async () => {
    const r = await analyze((await shipped()).replace('ProtectHome=yes', 'ProtectHom=yes'), ['verify', '--man=no']);
    expect(r.stderr).toMatch(/Unknown key 'ProtectHom'/);
  });

  it('keeps its offline security exposure low (≤ 2.5)', async () => {
    const r = await analyze(await shipped(), ['security', '--offline=true', '--threshold=25', '--no-pager']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = /Overall exposure level for imgbased-snmp\.service: (\d+\.\d)/.exec(r.stdout);
    process.stdout.write(`imgbased-snmp.service exposure: ${m?.[1] ?? '?'}\n`);
    expect(Number(m?.[1])).toBeLessThanOrEqual(2.5);
  });

  it('is a notify service after snmpd and the bus, with watchdog, restart and the shipped launcher', async () => {
    const k = keys(await shipped());
    const one = (key: string): string | undefined => k.get(key)?.at(-1);
    expect(one('[Service] Type')).toBe('notify');
    expect(one('[Service] NotifyAccess')).toBe('main');
    expect(k.get('[Service] ExecStart')).toEqual(['/usr/libexec/imgbased/imgbased-snmp']);
    expect(one('[Service] WatchdogSec')).toMatch(/^\d+s$/);
    expect(one('[Service] Restart')).toBe('on-failure');
    expect(k.get('[Unit] After')?.join(' ').split(/\s+/)).toEqual(expect.arrayContaining(['snmpd.service', 'dbus.socket']));
    expect(k.has('[Unit] Requires') && k.get('[Unit] Requires')?.join(' ').includes('snmpd')).toBe(false); // reconnects instead
    expect(one('[Service] CapabilityBoundingSet')).toBe('');
    expect(one('[Service] ProtectSystem')).toBe('strict');
    expect(one('[Service] MemoryDenyWriteExecute')).toBe('no'); // V8's JIT
    expect(one('[Install] WantedBy')).toBe('multi-user.target');
  });
});
