/**
 * `make install DESTDIR=<tmp> PREFIX=/usr` (scripts/install.sh) lays the built tree out as a package would:
 * the code with production node_modules only (native addons built), launchers that exec node, every data file the
 * tree has at its system path with package modes, systemd units that `systemd-analyze verify` accepts as installed,
 * a tmpfiles.d file that creates the state dirs, and an example config that documents the real defaults and is
 * never overwritten. Needs the compiled tree (scripts/setup.sh or `make build` runs tsc first).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { builtinModules } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_CONFIG, parseConfig } from '../../src/config/config';

const pexec = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const APP = '/usr/lib/imgbased';
const ENV = { ...process.env, LC_ALL: 'C', SYSTEMD_LOG_COLOR: '0' };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function runCmd(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  try {
    const r = await pexec(cmd, [...args], { cwd: opts.cwd ?? REPO, env: opts.env ?? ENV, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(() => true, () => false);
}

async function mode(p: string): Promise<string> {
  return ((await fs.stat(p)).mode & 0o7777).toString(8).padStart(4, '0');
}

/** Files (relative paths) below dir, recursively; [] when dir is missing. */
async function files(dir: string, rel = ''): Promise<string[]> {
  let ents: import('node:fs').Dirent[];
  try {
    ents = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of ents.sort((a, b) => a.name.localeCompare(b.name))) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await files(dir, r)));
    else out.push(r);
  }
  return out;
}

/** Names in REPO/dir matching re (the tree's optional parts are globbed, as install.sh does). */
async function treeFiles(dir: string, re: RegExp): Promise<string[]> {
  const names = await fs.readdir(path.join(REPO, dir)).catch(() => [] as string[]);
  return names.filter((n) => re.test(n)).sort();
}

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what}: not an object`);
  return v as Record<string, unknown>;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  return asRecord(JSON.parse(await fs.readFile(file, 'utf8')) as unknown, file);
}

/** One `Key=` value of an INI-like file (last wins), or undefined. */
function iniValue(text: string, key: string): string | undefined {
  let v: string | undefined;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${key}=(.*)$`).exec(line.trim());
    if (m) v = m[1];
  }
  return v;
}

let work = '';
let dest = '';
let install: Result;

beforeAll(async () => {
  await fs.access(path.join(REPO, 'dist/src/daemon/main.js')); // the compiled tree (scripts/setup.sh compiles it)
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-install-'));
  dest = path.join(work, 'root');
  install = await runCmd('make', ['--no-print-directory', 'install', `DESTDIR=${dest}`, 'PREFIX=/usr']);
}, 300_000);

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('make install DESTDIR=… PREFIX=/usr', () => {
  it('succeeds', () => {
    expect({ code: install.code, stderr: install.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('installs the compiled code (dist/src, no tests, benchmarks or source maps) and package.json', async () => {
    const built = (await files(path.join(REPO, 'dist/src'))).filter((f) => f.endsWith('.js'));
    const installed = (await files(path.join(dest, APP, 'dist'))).sort();
    expect(built.length).toBeGreaterThan(50);
    expect(installed).toEqual(built.map((f) => path.join('src', f)).sort());
    for (const f of ['src/daemon/main.js', 'src/cli/nodectl.js', 'src/engine.js']) {
      expect(await fs.readFile(path.join(dest, APP, 'dist', f), 'utf8')).toBe(await fs.readFile(path.join(REPO, 'dist', f), 'utf8'));
    }
    expect(await fs.readFile(path.join(dest, APP, 'package.json'), 'utf8')).toBe(await fs.readFile(path.join(REPO, 'package.json'), 'utf8'));
    expect(await mode(path.join(dest, APP, 'package.json'))).toBe('0644');
    expect(await mode(path.join(dest, APP, 'dist/src/daemon/main.js'))).toBe('0644');
  });

  describe('node_modules', () => {
    const nm = (): string => path.join(dest, APP, 'node_modules');

    it('holds every dependency, and every package the installed code requires', async () => {
      const pkg = await readJson(path.join(REPO, 'package.json'));
      const deps = Object.keys(asRecord(pkg['dependencies'], 'dependencies'));
      expect(deps).toEqual(expect.arrayContaining(['dbus-next', 'sd-notify', 'winston', 'commander', 'openpgp']));
      const missing: string[] = [];
      for (const d of deps) if (!(await exists(path.join(nm(), d, 'package.json')))) missing.push(d);
      expect(missing).toEqual([]);

      // bare specifiers of require("…") / import("…") in the installed JS: each resolves to an installed package
      const specs = new Set<string>();
      for (const f of await files(path.join(dest, APP, 'dist'))) {
        const js = await fs.readFile(path.join(dest, APP, 'dist', f), 'utf8');
        for (const m of js.matchAll(/\b(?:require|import)\("([^"./][^"]*)"\)/g)) {
          const s = m[1] as string;
          if (s.startsWith('node:')) continue;
          specs.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string));
        }
      }
      const builtin = new Set(builtinModules);
      const unresolved: string[] = [];
      for (const s of [...specs].filter((x) => !builtin.has(x))) {
        if (!(await exists(path.join(nm(), s, 'package.json')))) unresolved.push(s);
      }
      expect(specs.size).toBeGreaterThan(3);
      expect(unresolved).toEqual([]);
    });

    it('has no devDependencies (nor anything package-lock.json marks dev-only), no .bin and no hidden lockfile', async () => {
      for (const d of ['jest', 'typescript', 'ts-jest', '@types/jest', '@types/node', 'fast-xml-parser']) {
        expect({ d, present: await exists(path.join(nm(), d)) }).toEqual({ d, present: false });
      }
      const lock = asRecord((await readJson(path.join(REPO, 'package-lock.json')))['packages'], 'packages');
      const devOnly = Object.entries(lock).filter(([k, v]) => k !== '' && asRecord(v, k)['dev'] === true).map(([k]) => k);
      expect(devOnly.length).toBeGreaterThan(50);
      const leaked: string[] = [];
      for (const k of devOnly) if (await exists(path.join(dest, APP, k))) leaked.push(k);
      expect(leaked).toEqual([]);
      expect(await exists(path.join(nm(), '.bin'))).toBe(false);
      expect(await exists(path.join(nm(), '.package-lock.json'))).toBe(false);
    });

    it('carries the native addons built, and they load from the installed tree', async () => {
      for (const addon of ['sd-notify/build/Release/notify.node', '@unraid/libvirt/build/Release/libvirt.node']) {
        expect({ addon, present: await exists(path.join(nm(), addon)) }).toEqual({ addon, present: true });
      }
      const probe = [
        `const m = require(${JSON.stringify(path.join(nm(), 'sd-notify'))});`,
        "if (typeof m.ready !== 'function' || typeof m.watchdog !== 'function') throw new Error('sd-notify: no ready/watchdog');",
        `import(${JSON.stringify(path.join(nm(), '@unraid/libvirt', 'dist', 'index.js'))})`,
        "  .then((l) => { if (typeof l.Hypervisor !== 'function') throw new Error('libvirt: no Hypervisor'); console.log('ok'); })",
        '  .catch((e) => { console.error(String(e)); process.exit(1); });',
      ].join('\n');
      const r = await runCmd(process.execPath, ['-e', probe], { cwd: work });
      expect({ code: r.code, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ code: 0, stdout: 'ok', stderr: '' });
    });
  });

  describe('launchers', () => {
    const launchers: Record<string, { js: string; usage: RegExp }> = {
      '/usr/libexec/imgbased/imgbased-daemon': { js: 'dist/src/daemon/main.js', usage: /Usage: imgbased-daemon/ },
      '/usr/bin/nodectl': { js: 'dist/src/cli/nodectl.js', usage: /Usage: nodectl/ },
      '/usr/bin/imgbased': { js: 'dist/src/cli/imgbased.js', usage: /Usage: imgbased/ },
    };

    it.each(Object.keys(launchers))('%s: 0755 sh script that execs node on the installed JS (PREFIX hard-coded)', async (p) => {
      const l = launchers[p] as { js: string };
      const file = path.join(dest, p);
      expect(await mode(file)).toBe('0755');
      const text = await fs.readFile(file, 'utf8');
      expect(text.startsWith('#!/bin/sh\n')).toBe(true);
      const execs = text.split('\n').filter((x) => !x.startsWith('#') && x.trim() !== '');
      // exec: node replaces the shell, so node is the unit's main process (NotifyAccess=main)
      expect(execs).toEqual([`exec node ${APP}/${l.js} "$@"`]);
      expect(await exists(path.join(dest, APP, l.js))).toBe(true);
    });

    it.each(Object.keys(launchers))('%s --help runs from the installed tree (exit 0)', async (p) => {
      const l = launchers[p] as { usage: RegExp };
      // the launcher itself, with PREFIX pointed at DESTDIR (it hard-codes /usr/lib/imgbased)
      const text = (await fs.readFile(path.join(dest, p), 'utf8')).replaceAll(`${APP}/`, `${path.join(dest, APP)}/`);
      const copy = path.join(work, `launcher-${path.basename(p)}`);
      await fs.writeFile(copy, text, { mode: 0o755 });
      const r = await runCmd(copy, ['--help'], { cwd: work, env: { ...ENV, PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` } });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(l.usage);
    });

    it('imgbased-snmp exists exactly when the tree has the SNMP subagent', async () => {
      const has = await exists(path.join(REPO, 'dist/src/snmp/main.js'));
      const launcher = path.join(dest, '/usr/libexec/imgbased/imgbased-snmp');
      expect(await exists(launcher)).toBe(has);
      if (has) {
        expect(await mode(launcher)).toBe('0755');
        expect(await fs.readFile(launcher, 'utf8')).toContain(`\nexec node ${APP}/dist/src/snmp/main.js "$@"\n`);
      }
    });
  });

  describe('data files', () => {
    /** [source in the tree, installed path] for everything the tree has. */
    async function expected(): Promise<Array<[string, string]>> {
      const out: Array<[string, string]> = [];
      for (const f of await treeFiles('dbus', /\.conf$/)) out.push([`dbus/${f}`, `/usr/share/dbus-1/system.d/${f}`]);
      for (const f of await treeFiles('dbus', /\.service$/)) out.push([`dbus/${f}`, `/usr/share/dbus-1/system-services/${f}`]);
      for (const f of await treeFiles('dbus', /\.xml$/)) out.push([`dbus/${f}`, `/usr/share/dbus-1/interfaces/${f}`]);
      for (const f of await treeFiles('polkit', /\.policy$/)) out.push([`polkit/${f}`, `/usr/share/polkit-1/actions/${f}`]);
      for (const f of await treeFiles('polkit', /\.rules$/)) out.push([`polkit/${f}`, `/usr/share/polkit-1/rules.d/${f}`]);
      for (const f of await treeFiles('systemd', /\.(service|timer|socket|path)$/)) out.push([`systemd/${f}`, `/usr/lib/systemd/system/${f}`]);
      for (const f of await treeFiles('systemd', /\.preset$/)) out.push([`systemd/${f}`, `/usr/lib/systemd/system-preset/${f}`]);
      if (await exists(path.join(REPO, 'completion/nodectl'))) out.push(['completion/nodectl', '/usr/share/bash-completion/completions/nodectl']);
      for (const f of await treeFiles('man', /\.[1-8]$/)) out.push([`man/${f}`, `/usr/share/man/man${f.slice(-1)}/${f}`]);
      for (const f of await treeFiles('mibs', /\.txt$/)) out.push([`mibs/${f}`, `/usr/share/snmp/mibs/${f}`]);
      for (const f of await files(path.join(REPO, 'dist/cockpit/ovirt-node'))) {
        if (!f.endsWith('.map')) out.push([`dist/cockpit/ovirt-node/${f}`, `/usr/share/cockpit/ovirt-node/${f}`]);
      }
      out.push(['packaging/imgbased.tmpfiles', '/usr/lib/tmpfiles.d/imgbased.conf']);
      out.push(['packaging/imgbased.conf', '/etc/imgbased/imgbased.conf']);
      return out;
    }

    it('every data file of the tree is at its system path, 0644, byte for byte', async () => {
      const exp = await expected();
      // what the tree has today at least (the globs above must not pass vacuously)
      expect(exp.map(([, d]) => d)).toEqual(expect.arrayContaining([
        '/usr/share/dbus-1/system.d/org.ovirt.Node.conf',
        '/usr/share/dbus-1/system-services/org.ovirt.Node.service',
        '/usr/share/dbus-1/interfaces/org.ovirt.Node.Layers.xml',
        '/usr/share/polkit-1/actions/org.ovirt.node.layers.policy',
        '/usr/lib/systemd/system/imgbased.service',
      ]));
      const got: Array<{ d: string; mode: string; same: boolean }> = [];
      for (const [s, d] of exp) {
        const file = path.join(dest, d);
        const ok = await exists(file);
        got.push({
          d,
          mode: ok ? await mode(file) : 'missing',
          same: ok && (await fs.readFile(file)).equals(await fs.readFile(path.join(REPO, s))),
        });
      }
      expect(got).toEqual(exp.map(([, d]) => ({ d, mode: '0644', same: true })));
    });

    it('nothing else is installed outside /usr/lib/imgbased (no stray files)', async () => {
      const exp = new Set((await expected()).map(([, d]) => d.slice(1)));
      for (const l of ['usr/libexec/imgbased/imgbased-daemon', 'usr/bin/nodectl', 'usr/bin/imgbased']) exp.add(l);
      if (await exists(path.join(REPO, 'dist/src/snmp/main.js'))) exp.add('usr/libexec/imgbased/imgbased-snmp');
      const all = (await files(dest)).filter((f) => !f.startsWith(APP.slice(1) + '/'));
      expect(all.sort()).toEqual([...exp].sort());
      expect(await fs.readdir(path.join(dest, 'etc/imgbased/trusted.d'))).toEqual([]);
    });

    it('the D-Bus activation file names an installed unit that owns the same bus name', async () => {
      const act = await fs.readFile(path.join(dest, '/usr/share/dbus-1/system-services/org.ovirt.Node.service'), 'utf8');
      const unit = iniValue(act, 'SystemdService');
      expect(unit).toBe('imgbased.service');
      const unitText = await fs.readFile(path.join(dest, '/usr/lib/systemd/system', unit as string), 'utf8');
      expect(iniValue(unitText, 'BusName')).toBe(iniValue(act, 'Name'));
      const exec = iniValue(unitText, 'ExecStart') as string;
      expect(await mode(path.join(dest, exec))).toBe('0755');
    });

    it('systemd-analyze verify accepts every installed unit in the installed tree (empty stderr)', async () => {
      // a scratch root: the installed tree (hard links) plus the build host's own units (dbus.socket, local-fs.target…)
      // under /run/systemd/system; --root makes verify resolve ExecStart= and the units inside it
      const vroot = path.join(work, 'verify-root');
      expect((await runCmd('cp', ['-al', dest, vroot])).code).toBe(0);
      await fs.mkdir(path.join(vroot, 'run/systemd/system'), { recursive: true });
      expect((await runCmd('cp', ['-a', '/usr/lib/systemd/system/.', path.join(vroot, 'run/systemd/system')])).code).toBe(0);
      const units = (await fs.readdir(path.join(dest, 'usr/lib/systemd/system'))).sort();
      expect(units).toContain('imgbased.service');
      for (const u of units) {
        const r = await runCmd('systemd-analyze', ['verify', '--man=no', `--root=${vroot}`, u], { cwd: work });
        expect({ u, ...r }).toEqual({ u, code: 0, stdout: '', stderr: '' });
      }
      // the check is real: without the launcher, verify names it
      await fs.rm(path.join(vroot, 'usr/libexec/imgbased/imgbased-daemon'));
      const r = await runCmd('systemd-analyze', ['verify', '--man=no', `--root=${vroot}`, 'imgbased.service'], { cwd: work });
      expect(r.stderr).toContain('Command /usr/libexec/imgbased/imgbased-daemon is not executable');
    });

    it('the tmpfiles.d file creates /var/lib/imgbased 0700 and /var/lib/imgbased/images 0755', async () => {
      const root = path.join(work, 'tmpfiles-root');
      await fs.mkdir(root);
      const r = await runCmd('systemd-tmpfiles', ['--create', `--root=${root}`, path.join(dest, 'usr/lib/tmpfiles.d/imgbased.conf')], { cwd: work });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(await mode(path.join(root, 'var/lib/imgbased'))).toBe('0700');
      expect(await mode(path.join(root, 'var/lib/imgbased/images'))).toBe('0755');
    });
  });

  describe('/etc/imgbased/imgbased.conf', () => {
    it('is all comments, and uncommenting every setting gives exactly the built-in defaults', async () => {
      const text = await fs.readFile(path.join(dest, 'etc/imgbased/imgbased.conf'), 'utf8');
      expect(parseConfig(text)).toEqual(DEFAULT_CONFIG);
      const settings = text.split('\n').filter((l) => /^#[A-Z][A-Za-z]*=/.test(l));
      expect(settings.length).toBeGreaterThanOrEqual(9);
      const uncommented = text.split('\n').map((l) => (/^#[A-Z][A-Za-z]*=/.test(l) ? l.slice(1) : l)).join('\n');
      expect(parseConfig(uncommented, 'example')).toEqual(DEFAULT_CONFIG);
    });

    it('documents every key config.ts documents', async () => {
      const src = await fs.readFile(path.join(REPO, 'src/config/config.ts'), 'utf8');
      const doc = src.slice(0, src.indexOf('*/'));
      const keys = [...doc.matchAll(/^ \*\s+([A-Z][A-Za-z]+)=/gm)].map((m) => m[1] as string);
      expect(keys.length).toBeGreaterThanOrEqual(9);
      const text = await fs.readFile(path.join(REPO, 'packaging/imgbased.conf'), 'utf8');
      const documented = new Set([...text.matchAll(/^#([A-Z][A-Za-z]+)=/gm)].map((m) => m[1] as string));
      expect(keys.filter((k) => !documented.has(k))).toEqual([]);
    });

    it('is never overwritten by a later install (noreplace), and reinstalling over the tree works', async () => {
      const conf = path.join(dest, 'etc/imgbased/imgbased.conf');
      const mine = '[Storage]\nVolumeGroup=onn\n';
      await fs.writeFile(conf, mine);
      const again = await runCmd('make', ['--no-print-directory', 'install', `DESTDIR=${dest}`, 'PREFIX=/usr']);
      expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
      expect(again.stdout).toContain('keeping the existing');
      expect(await fs.readFile(conf, 'utf8')).toBe(mine);
      expect(await exists(path.join(dest, APP, 'dist/src/daemon/main.js'))).toBe(true);
    }, 300_000);
  });
});
