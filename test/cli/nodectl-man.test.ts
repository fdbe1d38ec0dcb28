/**
 * nodectl's documentation and renderers without a bus: the committed man page is what the generator makes from the
 * commander definitions, names every verb and option, renders without groff warnings; every verb's --help has
 * examples; the bash completion knows every verb and option; the motd, info, policy and automatic renderers.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildProgram, VERB_DOCS, verbs } from '../../src/cli/nodectl/program';
import { renderMan } from '../../src/cli/nodectl/man';
import {
  infoData, motdData, motdUnreachable, policyData, renderAutomatic, renderInfo, renderMotd, renderPolicy, renderVms,
} from '../../src/cli/nodectl/render';

const REPO = path.resolve(__dirname, '../..');
const MAN = path.join(REPO, 'man/nodectl.8');
const COMPLETION = path.join(REPO, 'completion/nodectl');
const pexec = promisify(execFile);

const program = buildProgram(() => undefined);
const longOptions = (c: { options: readonly { long?: string | undefined }[] }): string[] =>
  c.options.map((o) => o.long ?? '').filter((l) => l !== '' && l !== '--help');

describe('nodectl man page', () => {
  it('is the generated one (regenerate: node dist/src/cli/nodectl/man.js --write)', async () => {
    expect(await fs.readFile(MAN, 'utf8')).toBe(renderMan());
  });

  it('names every verb commander knows, with its options, and every exit code', async () => {
    const page = await fs.readFile(MAN, 'utf8');
    const names = verbs(program).map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['info', 'check', 'upgrade', 'rollback', 'layers', 'cleanup', 'remove-base',
      'pin', 'unpin', 'history', 'cancel', 'watch', 'motd', 'policy']));
    for (const c of verbs(program)) {
      expect(page).toContain(`.SS "nodectl ${c.name().replace(/-/g, '\\-')}"`);
      for (const o of longOptions(c)) expect(page).toContain(`\\fB${o.replace(/-/g, '\\-')}`);
    }
    for (const code of ['0', '1', '2', '3', '4', '5', '130']) expect(page).toContain(`.TP\n\\fB${code}\\fR`);
    expect(page).toContain('DBUS_SYSTEM_BUS_ADDRESS');
  });

  it('renders with man and groff without a warning', async () => {
    const g = await pexec('groff', ['-man', '-ww', '-z', MAN]);
    expect(g.stderr).toBe('');
    const m = await pexec('man', ['-l', MAN], { env: { ...process.env, MANWIDTH: '100', MANPAGER: 'cat', PAGER: 'cat', LC_ALL: 'C.UTF-8' } });
    expect(m.stderr).toBe('');
    expect(m.stdout).toMatch(/nodectl remove-base \[--wait\] NVR/);
  });
});

describe('nodectl --help', () => {
  it('every verb has a description and examples; the top level lists exit codes, environment and Ctrl-C', () => {
    for (const c of verbs(program)) {
      expect(c.description()).not.toBe('');
      expect(VERB_DOCS.get(c)?.examples.length ?? 0).toBeGreaterThan(0);
      let help = '';
      c.configureOutput({ writeOut: (s) => (help += s) });
      c.outputHelp();
      expect(help).toMatch(/\nExamples:\n {2}nodectl /);
    }
    let top = '';
    program.configureOutput({ writeOut: (s) => (top += s) });
    program.outputHelp();
    expect(top).toMatch(/Exit status:\n {2}0 +ok/);
    expect(top).toMatch(/ {2}130 +cancelled, or detached with Ctrl-C/);
    expect(top).toMatch(/Environment:\n {2}DBUS_SYSTEM_BUS_ADDRESS/);
    expect(top.replace(/\s+/g, " ")).toMatch(/Without a terminal \(scripts, pipes, cron\) SIGINT detaches at once/);
  });
});

describe('nodectl bash completion', () => {
  it('knows every verb and each verb\'s options', async () => {
    const text = await fs.readFile(COMPLETION, 'utf8');
    const verbLine = /local verbs="([^"]*)"/.exec(text)?.[1]?.split(' ') ?? [];
    expect(verbLine.sort()).toEqual([...verbs(program).map((c) => c.name()), 'help'].sort());
    for (const c of verbs(program)) {
      const opts = longOptions(c);
      if (opts.length === 0) continue;
      const m = new RegExp(`\\n {8}${c.name()}\\) opts="([^"]*)"`).exec(text);
      expect([c.name(), (m?.[1] ?? '').split(' ').sort()]).toEqual([c.name(), opts.sort()]);
    }
    expect((await pexec('bash', ['-n', COMPLETION])).stderr).toBe('');
  });
});

describe('nodectl renderers', () => {
  const props = {
    Layers: [{ name: 'b-1+1', base: 'b-1', current: true, default: false, pinned: false, 'boot-entry': 'b-1+1' },
      { name: 'b-2+1', base: 'b-2', current: false, default: true, pinned: true, 'boot-entry': 'b-2+1' }],
    CurrentLayer: 'b-1+1', DefaultLayer: 'b-2+1', Health: 'warn', UpdateAvailable: true, AvailableVersion: 'b-3',
    AutomaticUpdatePolicy: 'stage', MaintenanceWindow: 'Sat,Sun 02:00-05:00',
    VirtualMachines: { available: true, running: ['vm1', 'vm2'], message: '' },
  };

  it('info appends "vms", "trial_layer" and "boot_states" after oVirt\'s keys', () => {
    const d = infoData(props);
    expect(Object.keys(d)).toEqual(['bootloader', 'layers', 'current_layer', 'vms', 'trial_layer', 'boot_states']);
    expect(renderInfo(d)).toMatch(/\ncurrent_layer: b-1\+1\nvms: 2 running\n$/);
    expect(renderVms({ available: false, running: [], message: 'connection refused' })).toBe('unknown (libvirt: connection refused)');
    expect(infoData({ ...props, VirtualMachines: undefined }).vms.available).toBe(false);
    expect(() => infoData({ ...props, Layers: [{ name: 3 }] })).toThrow(/unexpected reply from imgbased: Layers\[0\]\.name/);
  });

  it('motd: oVirt\'s two lines, then layer, next boot, update, transaction; one line when unreachable', () => {
    expect(renderMotd(motdData(props, { id: 't1', kind: 'upgrade', percent: 40 }))).toBe([
      '  node status: DEGRADED', '  See `nodectl check` for more information', '  current layer: b-1+1', '  next boot: b-2+1',
      '  update available: b-3 (`nodectl upgrade`)', '  running: upgrade t1, 40% (`nodectl watch`)', '',
    ].join('\n'));
    expect(renderMotd(motdData({ ...props, Health: 'ok', DefaultLayer: 'b-1+1', UpdateAvailable: false }, null)))
      .toBe('  node status: OK\n  See `nodectl check` for more information\n  current layer: b-1+1\n');
    expect(renderMotd(motdUnreachable('imgbased is not running'))).toMatch(/^ {2}node status: unknown \(imgbased is not running; .*\)\n$/);
  });

  it('policy and upgrade --automatic results', () => {
    expect(renderPolicy(policyData(props))).toBe('policy: stage (install newer images; they boot next time)\nmaintenance window: Sat,Sun 02:00-05:00\n');
    expect(renderPolicy(policyData({ AutomaticUpdatePolicy: 'none', MaintenanceWindow: '' }))).toMatch(/window: any time\n$/);
    const base = { nvr: 'b-3', policy: 'stage', maintenance_window: 'Sat 02:00-03:00', transaction: '', warnings: [] };
    expect(renderAutomatic({ ...base, result: 'nothing-to-do', nvr: '', policy: 'none' })).toMatch(/policy is "none"/);
    expect(renderAutomatic({ ...base, result: 'nothing-to-do', nvr: '' })).toMatch(/no image newer than every base/);
    expect(renderAutomatic({ ...base, result: 'update-available' })).toMatch(/b-3 \(not installed: outside the maintenance window Sat 02:00-03:00/);
    expect(renderAutomatic({ ...base, result: 'update-available', policy: 'check' })).toMatch(/the policy is "check"/);
    expect(renderAutomatic({ ...base, result: 'staged', warnings: ['not rebooted: 1 VM runs'] })).toBe('Staged: b-3 boots next time.\nwarning: not rebooted: 1 VM runs\n');
    expect(renderAutomatic({ ...base, result: 'applied' })).toMatch(/^Applied: b-3/);
  });
});
