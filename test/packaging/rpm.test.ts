/**
 * packaging/build-rpm.sh builds the RPMs offline from the working tree (packaging/imgbased.spec: %build compiles the
 * native addons, the TypeScript, the Cockpit page and the SELinux module; %install is `make install`). Checks:
 * the package split (which package is arch-dependent, who requires whom), that every path the install target
 * installed is in exactly one package (and nothing else is packaged but the SELinux module, docs and state dirs),
 * the scriptlets (systemd units, tmpfiles, semodule), rpmlint with the project's filters (no errors), and an
 * install into a scratch rpm root (`rpm --root`) where the launchers, native addons and data files are in place.
 *
 * Slow: one full rpmbuild (about 1–2 minutes on an idle 2-core machine, several on a busy one).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { mustRunTool, runTool } from '../helpers/tool';

const REPO = path.resolve(__dirname, '../..');
const VERSION = '0.1.0';

const run = runTool;
const mustRun = mustRunTool;

interface PkgFile {
  path: string;
  dir: boolean;
  mode: string; // permission bits, octal
  flags: string; // rpm fflags: c (config), d (doc), g (ghost), n (noreplace) …
}

interface Pkg {
  name: string;
  arch: string;
  rpm: string;
  files: PkgFile[];
  requires: string[];
  scripts: string;
}

let work = '';
let outdir = '';
let manifest: string[] = [];
const pkgs = new Map<string, Pkg>();
let buildLog = '';

function pkg(name: string): Pkg {
  const p = pkgs.get(name);
  if (p === undefined) throw new Error(`no package ${name} (built: ${[...pkgs.keys()].join(', ')})`);
  return p;
}

async function readPkg(rpm: string): Promise<Pkg> {
  const [name = '', arch = ''] = (await mustRun('rpm', ['-qp', '--qf', '%{NAME} %{ARCH}', rpm])).split(' ');
  const fileLines = await mustRun('rpm', ['-qp', '--qf', '[%{FILEMODES:octal} %{FILEFLAGS:fflags} %{FILENAMES}\n]', rpm]);
  const files: PkgFile[] = [];
  for (const line of fileLines.split('\n')) {
    const m = /^(\d+) (\S*) (.+)$/.exec(line);
    if (!m?.[1] || m[3] === undefined) continue;
    const mode = parseInt(m[1], 8);
    files.push({ path: m[3], dir: (mode & 0o170000) === 0o040000, mode: (mode & 0o7777).toString(8).padStart(4, '0'), flags: m[2] ?? '' });
  }
  const requires = (await mustRun('rpm', ['-qp', '--requires', rpm])).split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const scripts = await mustRun('rpm', ['-qp', '--scripts', rpm]);
  return { name, arch, rpm, files, requires, scripts };
}

beforeAll(async () => {
  for (const tool of ['rpmbuild', 'rpmlint', 'rpm', 'npm', 'git']) await mustRun('sh', ['-c', `command -v ${tool}`]);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-rpm-test-'));
  outdir = path.join(work, 'rpms');
  const t0 = Date.now();
  const r = await run('packaging/build-rpm.sh', ['--topdir', path.join(work, 'top'), '--outdir', outdir, '--manifest', path.join(work, 'install.files')]);
  buildLog = `${r.stdout}\n${r.stderr}`;
  process.stdout.write(`build-rpm.sh: ${Math.round((Date.now() - t0) / 1000)} s (${/rpmbuild took \d+ s/.exec(buildLog)?.[0] ?? '?'})\n`);
  if (r.code !== 0) throw new Error(`packaging/build-rpm.sh failed (${r.code}):\n${buildLog.slice(-6000)}`);
  manifest = (await fs.readFile(path.join(work, 'install.files'), 'utf8')).split('\n').filter((l) => l !== '');
  for (const f of (await fs.readdir(outdir)).filter((n) => n.endsWith('.rpm'))) {
    const p = await readPkg(path.join(outdir, f));
    pkgs.set(p.name, p);
  }
}, 1_200_000);

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('the package split', () => {
  test('four packages: imgbased (arch-dependent: native addons), imgbased-snmp, cockpit-ovirt-node, imgbased-selinux (noarch)', () => {
    expect([...pkgs.keys()].sort()).toEqual(['cockpit-ovirt-node', 'imgbased', 'imgbased-selinux', 'imgbased-snmp']);
    expect(pkg('imgbased').arch).not.toBe('noarch');
    for (const n of ['imgbased-snmp', 'cockpit-ovirt-node', 'imgbased-selinux']) expect(pkg(n).arch).toBe('noarch');
  });

  test('the subpackages require the daemon of the same build; the daemon requires node and its tools', () => {
    for (const n of ['imgbased-snmp', 'cockpit-ovirt-node']) expect(pkg(n).requires).toContain(`imgbased = ${VERSION}-1`);
    expect(pkg('imgbased-snmp').requires).toContain('net-snmp');
    expect(pkg('cockpit-ovirt-node').requires).toContain('cockpit-bridge');
    const main = pkg('imgbased').requires;
    expect(main).toEqual(expect.arrayContaining(['nodejs >= 20', 'lvm2', 'dbus', 'polkit', 'dnf', 'dnf-plugins-core', 'rpm', 'tar']));
    // the native addons were compiled in %build: their shared-library needs are generated
    expect(main.some((r) => r.startsWith('libvirt.so'))).toBe(true);
    expect(main.some((r) => r.startsWith('libsystemd.so'))).toBe(true);
    expect(main.some((r) => /^\(imgbased-selinux = .* if selinux-policy-targeted\)$/.test(r))).toBe(true);
    expect(pkg('imgbased-selinux').requires).toContain('selinux-policy-targeted');
  });

  test('what goes where', () => {
    const owner = (p: string): string[] => [...pkgs.values()].filter((k) => k.files.some((f) => f.path === p)).map((k) => k.name);
    const expected: Record<string, string> = {
      '/usr/libexec/imgbased/imgbased-daemon': 'imgbased',
      '/usr/bin/nodectl': 'imgbased',
      '/usr/bin/imgbased': 'imgbased',
      '/usr/lib/imgbased/dist/src/daemon/main.js': 'imgbased',
      '/usr/lib/imgbased/dist/src/snmp/main.js': 'imgbased',
      '/usr/lib/systemd/system/imgbased.service': 'imgbased',
      '/usr/lib/systemd/system/imgbased-automatic.timer': 'imgbased',
      '/usr/share/dbus-1/system.d/org.ovirt.Node.conf': 'imgbased',
      '/usr/share/dbus-1/system-services/org.ovirt.Node.service': 'imgbased',
      '/usr/share/polkit-1/actions/org.ovirt.node.layers.policy': 'imgbased',
      '/usr/lib/tmpfiles.d/imgbased.conf': 'imgbased',
      '/etc/imgbased/imgbased.conf': 'imgbased',
      '/var/lib/imgbased': 'imgbased',
      '/usr/libexec/imgbased/imgbased-snmp': 'imgbased-snmp',
      '/usr/lib/systemd/system/imgbased-snmp.service': 'imgbased-snmp',
      '/usr/share/snmp/mibs/OVIRT-NODE-LAYERS-MIB.txt': 'imgbased-snmp',
      '/usr/share/cockpit/ovirt-node/manifest.json': 'cockpit-ovirt-node',
      '/usr/share/selinux/packages/targeted/imgbased.pp.bz2': 'imgbased-selinux',
      '/usr/share/selinux/devel/include/distributed/imgbased.if': 'imgbased-selinux',
    };
    for (const [p, name] of Object.entries(expected)) expect(`${p}: ${owner(p).join(',')}`).toBe(`${p}: ${name}`);
    const conf = pkg('imgbased').files.find((f) => f.path === '/etc/imgbased/imgbased.conf');
    expect(conf?.flags).toMatch(/c/);
    expect(conf?.flags).toMatch(/n/); // %config(noreplace)
    expect(pkg('imgbased').files.find((f) => f.path === '/var/lib/imgbased')?.mode).toBe('0700');
  });

  test('every path the install target installed is in exactly one package', () => {
    expect(manifest.length).toBeGreaterThan(100);
    // brp-compress gzips man pages after %install
    const packaged = new Map<string, string[]>();
    for (const k of pkgs.values()) {
      for (const f of k.files) packaged.set(f.path, [...(packaged.get(f.path) ?? []), k.name]);
    }
    const problems: string[] = [];
    for (const p of manifest) {
      const names = packaged.get(p) ?? packaged.get(`${p}.gz`) ?? [];
      if (names.length !== 1) problems.push(`${p}: in ${names.length === 0 ? 'no package' : names.join(' and ')}`);
    }
    expect(problems).toEqual([]);
  });

  test('nothing is packaged beyond the install target but the SELinux module, docs and the state dirs', () => {
    const installed = new Set(manifest.flatMap((p) => [p, `${p}.gz`]));
    // directories that lead to installed paths are fine
    const parents = new Set<string>();
    for (const p of manifest) for (let d = path.dirname(p); d !== '/'; d = path.dirname(d)) parents.add(d);
    const extra = [...pkgs.values()]
      .flatMap((k) => k.files)
      .filter((f) => !installed.has(f.path) && !(f.dir && parents.has(f.path)))
      .filter((f) => !f.flags.includes('d') && !f.path.startsWith('/usr/share/doc/'))
      .map((f) => f.path)
      .sort();
    expect(extra).toEqual([
      '/usr/share/selinux/devel/include/distributed/imgbased.if',
      '/usr/share/selinux/packages/targeted/imgbased.pp.bz2',
      '/var/lib/imgbased',
      '/var/lib/imgbased/images',
    ]);
  });

  test('no file is in two packages', () => {
    const seen = new Map<string, string>();
    const dup: string[] = [];
    for (const k of pkgs.values()) {
      for (const f of k.files) {
        if (f.dir) continue;
        const other = seen.get(f.path);
        if (other !== undefined) dup.push(`${f.path}: ${other} and ${k.name}`);
        seen.set(f.path, k.name);
      }
    }
    expect(dup).toEqual([]);
  });
});

describe('scriptlets', () => {
  test('imgbased: units through the systemd macros (or their fallback), tmpfiles, no restart of the daemon', () => {
    const s = pkg('imgbased').scripts;
    for (const unit of ['imgbased.service', 'imgbased-automatic.service', 'imgbased-automatic.timer']) expect(s).toContain(unit);
    expect(s).toMatch(/postinstall scriptlet[\s\S]*systemctl[\s\S]*preset/);
    expect(s).toMatch(/preuninstall scriptlet[\s\S]*disable --now/);
    expect(s).toContain('systemd-tmpfiles --create /usr/lib/tmpfiles.d/imgbased.conf');
    expect(s).not.toMatch(/try-restart[^\n]*imgbased\.service/);
  });

  test('imgbased-snmp: its unit, restarted on upgrade', () => {
    const s = pkg('imgbased-snmp').scripts;
    expect(s).toContain('imgbased-snmp.service');
    expect(s).toMatch(/try-restart imgbased-snmp\.service/);
  });

  test('imgbased-selinux: semodule installs the module after install, removes it on erase, relabels', () => {
    const s = pkg('imgbased-selinux').scripts;
    expect(s).toMatch(/postinstall scriptlet[\s\S]*semodule -n -X 200 -i \/usr\/share\/selinux\/packages\/targeted\/imgbased\.pp\.bz2/);
    expect(s).toMatch(/postuninstall scriptlet[\s\S]*semodule -n -X 200 -r imgbased/);
    expect(s).toMatch(/restorecon -R \/usr\/libexec\/imgbased/);
  });
});

describe('rpmlint', () => {
  test('no errors with packaging/imgbased.rpmlintrc (the spec and the four RPMs)', async () => {
    const rpms = [...pkgs.values()].map((k) => k.rpm);
    const r = await run('rpmlint', ['-r', path.join(REPO, 'packaging/imgbased.rpmlintrc'), path.join(REPO, 'packaging/imgbased.spec'), ...rpms]);
    const out = `${r.stdout}\n${r.stderr}`;
    const summary = /(\d+) packages and \d+ specfiles? checked; (\d+) errors, (\d+) warnings/.exec(out);
    process.stdout.write(`rpmlint: ${summary?.[0] ?? out.slice(-500)}\n`);
    expect(out.split('\n').filter((l) => / E: /.test(l))).toEqual([]);
    expect(summary?.[2]).toBe('0');
  }, 120_000);
});

describe('installed into a scratch rpm root', () => {
  let root = '';

  beforeAll(async () => {
    root = path.join(work, 'rpmroot');
    await fs.mkdir(root);
    await mustRun('rpm', ['--root', root, '--initdb']);
    await mustRun('rpm', ['-ivh', '--root', root, '--nodeps', '--noscripts', ...[...pkgs.values()].map((k) => k.rpm)]);
  }, 300_000);

  test('the rpm database knows the four packages and their files verify', async () => {
    const names = (await mustRun('rpm', ['--root', root, '-qa', '--qf', '%{NAME}\n'])).split('\n').filter((l) => l !== '').sort();
    expect(names).toEqual(['cockpit-ovirt-node', 'imgbased', 'imgbased-selinux', 'imgbased-snmp']);
    const verify = await run('rpm', ['--root', root, '-Va', '--nodeps', '--noscripts', '--nouser', '--nogroup']);
    expect(verify.stdout.trim()).toBe('');
  });

  test('launchers exec the system node on the installed code', async () => {
    const daemon = await fs.readFile(path.join(root, 'usr/libexec/imgbased/imgbased-daemon'), 'utf8');
    expect(daemon).toMatch(/^exec \/usr\/bin\/node \/usr\/lib\/imgbased\/dist\/src\/daemon\/main\.js "\$@"$/m);
    for (const l of ['usr/libexec/imgbased/imgbased-daemon', 'usr/libexec/imgbased/imgbased-snmp', 'usr/bin/nodectl', 'usr/bin/imgbased']) {
      expect(((await fs.stat(path.join(root, l))).mode & 0o777).toString(8)).toBe('755');
    }
  });

  test('the code runs from the installed tree: nodectl --help, and the native addons built in %build load', async () => {
    const app = path.join(root, 'usr/lib/imgbased');
    const help = await mustRun(process.execPath, [path.join(app, 'dist/src/cli/nodectl.js'), '--help']);
    expect(help).toMatch(/nodectl/);
    for (const addon of ['node_modules/sd-notify/build/Release/notify.node', 'node_modules/@unraid/libvirt/build/Release/libvirt.node']) {
      await mustRun(process.execPath, ['-e', `require(${JSON.stringify(path.join(app, addon))})`]);
    }
  });

  test('data files are at their system paths', async () => {
    for (const p of [
      'usr/lib/systemd/system/imgbased.service',
      'usr/lib/systemd/system/imgbased-automatic.timer',
      'usr/lib/systemd/system/imgbased-snmp.service',
      'usr/share/dbus-1/system.d/org.ovirt.Node.conf',
      'usr/share/dbus-1/system-services/org.ovirt.Node.service',
      'usr/share/polkit-1/actions/org.ovirt.node.layers.policy',
      'usr/share/bash-completion/completions/nodectl',
      'usr/share/snmp/mibs/OVIRT-NODE-LAYERS-MIB.txt',
      'usr/share/cockpit/ovirt-node/manifest.json',
      'usr/share/cockpit/ovirt-node/index.html',
      'usr/lib/tmpfiles.d/imgbased.conf',
      'etc/imgbased/imgbased.conf',
      'usr/share/selinux/packages/targeted/imgbased.pp.bz2',
    ]) {
      await expect(fs.access(path.join(root, p))).resolves.toBeUndefined();
    }
    // man pages: gzipped by brp-compress where the distribution's rpm does it (EL), as installed otherwise (Debian)
    const man = await Promise.all(['nodectl.8.gz', 'nodectl.8'].map((n) => fs.access(path.join(root, 'usr/share/man/man8', n)).then(() => n, () => '')));
    expect(man.filter((n) => n !== '')).toHaveLength(1);
    expect(((await fs.stat(path.join(root, 'var/lib/imgbased'))).mode & 0o777).toString(8)).toBe('700');
    expect((await fs.stat(path.join(root, 'etc/imgbased/trusted.d'))).isDirectory()).toBe(true);
    // the packaged SELinux module is the one selinux/ builds: a bzip2'd policy package
    const head = (await fs.readFile(path.join(root, 'usr/share/selinux/packages/targeted/imgbased.pp.bz2'))).subarray(0, 3);
    expect(head.toString('latin1')).toBe('BZh');
  });
});
