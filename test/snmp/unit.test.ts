/**
 * systemd/imgbased-snmp.service: `systemd-analyze verify` with an empty stderr (parse problems are only warnings
 * with rc 0), its offline security exposure, and the settings the subagent relies on. Same approach as
 * test/systemd/units.test.ts: the launcher is not installed on a build host, so a drop-in in a temp unit dir replaces
 * ExecStart= with a stub; everything else is the shipped file.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Analyzed } from '../helpers/systemd-analyze';
import { analyzeUnit } from '../helpers/systemd-analyze';

const REPO = path.resolve(__dirname, '../..');
const UNIT = 'imgbased-snmp.service';

let dir = '';
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-snmp-unit-'));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const analyze = (content: string, args: readonly string[]): Promise<Analyzed> => analyzeUnit(dir, UNIT, content, args);

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
