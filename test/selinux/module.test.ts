/**
 * The SELinux module (selinux/imgbased.{te,if,fc}) builds against the distribution's refpolicy headers, links into a
 * full policy (selinux-policy-default), and the linked policy has the rules the design needs: init and dbus-daemon
 * enter imgbased_t through the launcher, imgbased_t enters lvm_t even under NoNewPrivileges, owns its bus name,
 * chats with polkit, connects to libvirt, may JIT (execmem) and exec node; imgbased_snmp_t reaches snmpd over
 * AgentX; and what the domain must NOT do (network, ptrace) is absent. Its file contexts label exactly what the
 * install target installs.
 *
 * No side effects on the host: the policy store (/var/lib/selinux) and policy root (/etc/selinux) are copied into
 * a temp dir and semodule runs with `-p` (alternate root) and `-n` (no reload); the module is removed again with
 * `semodule -n -r`, which must leave no imgbased type behind. SELinux itself cannot be loaded on this kernel:
 * the policy is built and link-checked, not enforced (docs/PACKAGING.md).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { ToolResult as Result } from '../helpers/tool';
import { mustRunTool, runTool } from '../helpers/tool';

const REPO = path.resolve(__dirname, '../..');
const DEVEL_MAKEFILE = '/usr/share/selinux/devel/Makefile';
const POLICY_NAME = 'default'; // SELINUXTYPE of selinux-policy-default

const run = runTool;
const mustRun = mustRunTool;

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex');
}

/** Every path (files, symlinks and directories) below root, as absolute paths of the installed system. */
async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const ents = await fs.readdir(path.join(root, rel), { withFileTypes: true });
  for (const e of ents) {
    const r = `${rel}/${e.name}`;
    out.push(r);
    if (e.isDirectory()) out.push(...(await walk(root, r)));
  }
  return out;
}

interface FcEntry {
  regex: string;
  fileType: string; // '' (all), '--' (regular file), '-d' …
  type: string; // the SELinux type of the context
}

function parseFc(text: string): FcEntry[] {
  const out: FcEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const regex = fields[0];
    const ctx = fields[fields.length - 1];
    const m = /gen_context\(\w+:\w+:(\w+),s0\)/.exec(ctx ?? '');
    if (regex === undefined || m?.[1] === undefined) throw new Error(`selinux/imgbased.fc: cannot parse "${line}"`);
    out.push({ regex, fileType: fields.length === 3 ? (fields[1] ?? '') : '', type: m[1] });
  }
  return out;
}

let work = '';
let build: Result;
let pp = '';
let root = ''; // scratch policy root: ROOT/etc/selinux, ROOT/var/lib/selinux
let policyFile = '';
let fileContexts = '';
let hostPolicySum = '';
let hostPolicyFile = '';
let install: Result;
let dest = '';

beforeAll(async () => {
  for (const tool of ['make', 'checkmodule', 'semodule', 'sesearch', 'seinfo', 'matchpathcon']) {
    await mustRun('sh', ['-c', `command -v ${tool}`]);
  }
  await fs.access(DEVEL_MAKEFILE);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-selinux-'));

  // 1. build the module in a temp dir (the devel Makefile writes tmp/ beside the sources)
  const src = path.join(work, 'module');
  await fs.mkdir(src);
  for (const ext of ['te', 'if', 'fc']) await fs.copyFile(path.join(REPO, `selinux/imgbased.${ext}`), path.join(src, `imgbased.${ext}`));
  const t0 = Date.now();
  build = await run('make', ['-f', DEVEL_MAKEFILE, 'imgbased.pp'], src);
  process.stdout.write(`selinux module build: ${Date.now() - t0} ms\n`);
  pp = path.join(src, 'imgbased.pp');

  // 2. link it into a copy of the full policy (selinux-policy-default)
  hostPolicyFile = await firstPolicy(`/etc/selinux/${POLICY_NAME}/policy`);
  hostPolicySum = await sha256(hostPolicyFile);
  root = path.join(work, 'root');
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.mkdir(path.join(root, 'var/lib'), { recursive: true });
  await mustRun('cp', ['-a', '/etc/selinux', path.join(root, 'etc/')]);
  await mustRun('cp', ['-a', '/var/lib/selinux', path.join(root, 'var/lib/')]);
  if (build.code === 0) {
    const t1 = Date.now();
    await mustRun('semodule', ['-p', root, '-n', '-i', pp]);
    process.stdout.write(`semodule -n -i (link into the full policy): ${Date.now() - t1} ms\n`);
  }
  policyFile = await firstPolicy(path.join(root, `etc/selinux/${POLICY_NAME}/policy`));
  fileContexts = path.join(root, `etc/selinux/${POLICY_NAME}/contexts/files/file_contexts`);

  // 3. the install target's tree, for the file contexts
  dest = path.join(work, 'dest');
  install = await run('make', ['--no-print-directory', 'install', `DESTDIR=${dest}`, 'PREFIX=/usr']);
}, 600_000);

afterAll(async () => {
  server?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

async function firstPolicy(dir: string): Promise<string> {
  const names = (await fs.readdir(dir)).filter((n) => /^policy\.\d+$/.test(n)).sort();
  const last = names[names.length - 1];
  if (last === undefined) throw new Error(`no policy.N in ${dir}`);
  return path.join(dir, last);
}

/**
 * sesearch loads the whole policy and scans every rule on each run (seconds each). Instead one python process with
 * setools (the library behind sesearch, run by sesearch's own interpreter) loads it once, collects the rules of each
 * source type once (attributes included, targets expanded, as sesearch matches them) and answers sesearch-style
 * queries: one JSON line in, one JSON line out; the output lines are the ones sesearch prints.
 */
const SESEARCH_SERVER = `
import json, sys, setools
p = setools.SELinuxPolicy(sys.argv[1])
cache = {}
def rules_for(kind, source):
    # every rule of one kind whose source is (or is an attribute of) the source type, with the targets expanded
    if (kind, source) not in cache:
        rq = setools.TERuleQuery(p, ruletype=['type_transition'] if kind == 'T' else ['allow'], source=source)
        cache[(kind, source)] = [(r, {str(t) for t in r.target.expand()}, str(r.tclass), set(r.perms) if kind == 'A' else set())
                                 for r in rq.results()]
    return cache[(kind, source)]
for line in sys.stdin:
    q = json.loads(line)
    rules = sorted(str(r) for r, targets, cls, perms in rules_for(q['kind'], q['s'])
                   if (not q.get('t') or q['t'] in targets) and (not q.get('c') or q['c'] == cls)
                   and (not q.get('p') or q['p'] in perms))
    sys.stdout.write(json.dumps(rules) + '\\n')
    sys.stdout.flush()
`;

interface SesearchServer {
  ask(query: Record<string, string>): Promise<string>;
  close(): void;
}

function startSesearchServer(python: string, policy: string): SesearchServer {
  const child = spawn(python, ['-c', SESEARCH_SERVER, policy], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: Array<(line: string | Error) => void> = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.(line));
  // A query the policy cannot answer (e.g. an unknown type after a failed build) kills the server: fail every
  // pending and later query instead of waiting forever.
  let died: Error | null = null;
  child.on('exit', (code, signal) => {
    died = new Error(`the setools server exited (${code ?? signal ?? '?'}); its traceback is above`);
    for (const w of waiting.splice(0)) w(died);
  });
  let chain: Promise<unknown> = Promise.resolve();
  return {
    ask(query) {
      const answer = chain.then(
        () =>
          new Promise<string>((resolve, reject) => {
            if (died !== null) return reject(died);
            waiting.push((line) => {
              if (line instanceof Error) return reject(line);
              const rules = JSON.parse(line) as unknown;
              if (!Array.isArray(rules)) reject(new Error(`setools: unexpected answer ${line}`));
              else resolve(rules.map(String).join('\n'));
            });
            child.stdin.write(`${JSON.stringify(query)}\n`);
          }),
      );
      chain = answer.catch(() => undefined);
      return answer;
    },
    close() {
      child.stdin.end();
    },
  };
}

let server: SesearchServer | undefined;

/** sesearch -A|-T [-s S] [-t T] [-c C] [-p P]: the matching rules, one per line ('' for none). */
async function sesearch(args: readonly string[]): Promise<string> {
  const q: Record<string, string> = {};
  if (!args.includes('-s')) throw new Error('sesearch: every query names its source type (-s)');
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-A' || a === '-T') q.kind = a.slice(1);
    else if (a === '-s' || a === '-t' || a === '-c' || a === '-p') q[a.slice(1)] = args[++i] ?? '';
    else throw new Error(`sesearch: unsupported argument ${String(a)}`);
  }
  if (server === undefined) {
    const sesearchPath = (await mustRun('sh', ['-c', 'command -v sesearch'])).trim();
    const shebang = (await fs.readFile(sesearchPath, 'utf8')).split('\n')[0] ?? '';
    server = startSesearchServer(shebang.replace(/^#!\s*/, '').split(/\s+/)[0] ?? 'python3', policyFile);
  }
  return server.ask(q);
}

describe('build', () => {
  test('the module builds with the refpolicy devel Makefile, without warnings', () => {
    expect(build.stderr).not.toMatch(/error|warning/i);
    expect(build.code).toBe(0);
  });

  test('it is linked into the scratch policy, and the host policy is untouched', async () => {
    const list = await mustRun('semodule', ['-p', root, '-l']);
    expect(list.split('\n')).toContain('imgbased');
    expect((await mustRun('semodule', ['-l'])).split('\n')).not.toContain('imgbased');
    expect(await sha256(hostPolicyFile)).toBe(hostPolicySum);
  });
});

describe('the daemon domain imgbased_t', () => {
  test('systemd (init_t) and dbus-daemon enter imgbased_t by executing the launcher (imgbased_exec_t)', async () => {
    expect(await sesearch(['-T', '-s', 'init_t', '-t', 'imgbased_exec_t', '-c', 'process'])).toContain(
      'type_transition init_t imgbased_exec_t:process imgbased_t;',
    );
    expect(await sesearch(['-T', '-s', 'system_dbusd_t', '-t', 'imgbased_exec_t', '-c', 'process'])).toContain(
      'type_transition system_dbusd_t imgbased_exec_t:process imgbased_t;',
    );
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'imgbased_exec_t', '-c', 'file', '-p', 'entrypoint'])).toMatch(/entrypoint/);
    // imgbased.service has NoNewPrivileges=yes: the transition out of init_t needs nnp_transition too.
    expect(await sesearch(['-A', '-s', 'init_t', '-t', 'imgbased_t', '-c', 'process2', '-p', 'nnp_transition'])).toMatch(/nnp_transition/);
  });

  test('the launcher (sh) and node (bin_t) run inside imgbased_t, and V8 may JIT (execmem)', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'shell_exec_t', '-c', 'file', '-p', 'execute_no_trans'])).toMatch(/execute_no_trans/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'bin_t', '-c', 'file', '-p', 'execute_no_trans'])).toMatch(/execute_no_trans/);
    expect(await sesearch(['-T', '-s', 'imgbased_t', '-t', 'bin_t', '-c', 'process'])).toBe('');
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'imgbased_t', '-c', 'process', '-p', 'execmem'])).toMatch(/execmem/);
  });

  test('both domains may talk to systemd: sd_notify (READY=1, WATCHDOG=1) and the journal stream on stdout', async () => {
    for (const d of ['imgbased_t', 'imgbased_snmp_t']) {
      expect(await sesearch(['-A', '-s', d, '-t', 'init_runtime_t', '-c', 'sock_file', '-p', 'write'])).toMatch(/write/); // /run/systemd/notify
      expect(await sesearch(['-A', '-s', d, '-t', 'init_t', '-c', 'unix_dgram_socket', '-p', 'sendto'])).toMatch(/sendto/);
      expect(await sesearch(['-A', '-s', d, '-t', 'init_t', '-c', 'unix_stream_socket', '-p', 'write'])).toMatch(/write/);
    }
  });

  test('boot assessment: the daemon asks systemd over D-Bus for unit states (service status on units and the system)', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'init_t', '-c', 'dbus', '-p', 'send_msg'])).toMatch(/send_msg/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'systemd_unit_t', '-c', 'service', '-p', 'status'])).toMatch(/status/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'init_t', '-c', 'system', '-p', 'status'])).toMatch(/status/);
  });

  test('lvm2 runs in lvm_t, also under NoNewPrivileges, and can write its reports back', async () => {
    expect(await sesearch(['-T', '-s', 'imgbased_t', '-t', 'lvm_exec_t', '-c', 'process'])).toContain(
      'type_transition imgbased_t lvm_exec_t:process lvm_t;',
    );
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'lvm_t', '-c', 'process', '-p', 'transition'])).toMatch(/transition/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'lvm_t', '-c', 'process2', '-p', 'nnp_transition'])).toMatch(/nnp_transition/);
    expect(await sesearch(['-A', '-s', 'lvm_t', '-t', 'imgbased_t', '-c', 'unix_stream_socket', '-p', 'write'])).toMatch(/write/);
  });

  test('it owns org.ovirt.Node (acquire_svc) and chats with polkit both ways', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'system_dbusd_t', '-c', 'dbus', '-p', 'acquire_svc'])).toMatch(/acquire_svc/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'policykit_t', '-c', 'dbus', '-p', 'send_msg'])).toMatch(/send_msg/);
    expect(await sesearch(['-A', '-s', 'policykit_t', '-t', 'imgbased_t', '-c', 'dbus', '-p', 'send_msg'])).toMatch(/send_msg/);
  });

  test('its clients chat with it: administrators (unconfined_t, sysadm_t), the timer run (initrc_t), the SNMP subagent', async () => {
    for (const client of ['unconfined_t', 'sysadm_t', 'initrc_t', 'imgbased_snmp_t']) {
      expect(await sesearch(['-A', '-s', client, '-t', 'imgbased_t', '-c', 'dbus', '-p', 'send_msg'])).toMatch(/send_msg/);
      expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', client, '-c', 'dbus', '-p', 'send_msg'])).toMatch(/send_msg/);
    }
  });

  test('it connects to libvirtd (the running-VMs guard), behind the imgbased_connect_libvirt tunable', async () => {
    const out = await sesearch(['-A', '-s', 'imgbased_t', '-t', 'virtd_t', '-c', 'unix_stream_socket', '-p', 'connectto']);
    expect(out).toMatch(/connectto.*\[ imgbased_connect_libvirt \]:True/);
  });

  test('it manages /boot, its state and runtime dirs, reads its config, mounts file systems', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'boot_t', '-c', 'file', '-p', 'write'])).toMatch(/write/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'imgbased_var_lib_t', '-c', 'file', '-p', 'create'])).toMatch(/create/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'imgbased_runtime_t', '-c', 'dir', '-p', 'mounton'])).toMatch(/mounton/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'imgbased_conf_t', '-c', 'file', '-p', 'read'])).toMatch(/read/);
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'fs_t', '-c', 'filesystem', '-p', 'mount'])).toMatch(/mount/);
    expect(await sesearch(['-T', '-s', 'imgbased_t', '-t', 'var_lib_t', '-c', 'dir'])).toMatch(/imgbased_var_lib_t/);
  });

  test('it fetches from UpdateRepo= (dnf in its domain, /var/cache/imgbased), the network behind imgbased_update_repo', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-t', 'imgbased_cache_t', '-c', 'file', '-p', 'create'])).toMatch(/create/);
    expect(await sesearch(['-T', '-s', 'imgbased_t', '-t', 'var_t', '-c', 'dir'])).toMatch(/imgbased_cache_t "?imgbased"?;/);
    // the only ports it may connect to: http(s), http cache, DNS; each rule only while the tunable is on (default)
    const connect = (await sesearch(['-A', '-s', 'imgbased_t', '-c', 'tcp_socket', '-p', 'name_connect'])).split('\n').filter((l) => l !== '');
    expect(connect.length).toBeGreaterThan(0);
    for (const rule of connect) expect(rule).toMatch(/^allow imgbased_t (http_port_t|http_cache_port_t|dns_port_t):tcp_socket .*\[ imgbased_update_repo \]:True$/);
    expect(connect.join('\n')).toMatch(/http_port_t/);
  });

  test('what it must not do: no IP network beyond the update repository, no ptrace of other processes, no transition to arbitrary domains', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-c', 'tcp_socket', '-p', 'name_bind'])).toBe('');
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-c', 'udp_socket', '-p', 'name_bind'])).toBe('');
    expect(await sesearch(['-A', '-s', 'imgbased_t', '-c', 'process', '-p', 'ptrace'])).toBe('');
    const trans = await sesearch(['-A', '-s', 'imgbased_t', '-c', 'process', '-p', 'transition']);
    const targets = new Set([...trans.matchAll(/^allow imgbased_t (\S+):process/gm)].map((m) => m[1]));
    expect([...targets].sort()).toEqual(['lvm_t']);
  });
});

describe('the SNMP subagent domain imgbased_snmp_t', () => {
  test('systemd enters it through the imgbased-snmp launcher', async () => {
    expect(await sesearch(['-T', '-s', 'init_t', '-t', 'imgbased_snmp_exec_t', '-c', 'process'])).toContain(
      'type_transition init_t imgbased_snmp_exec_t:process imgbased_snmp_t;',
    );
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'imgbased_snmp_t', '-c', 'process', '-p', 'execmem'])).toMatch(/execmem/);
  });

  test('it connects to the AgentX master: the snmpd socket and TCP port 705 (agentx_port_t)', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'snmpd_t', '-c', 'unix_stream_socket', '-p', 'connectto'])).toMatch(/connectto/);
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'snmpd_var_lib_t', '-c', 'sock_file', '-p', 'write'])).toMatch(/write/);
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'agentx_port_t', '-c', 'tcp_socket', '-p', 'name_connect'])).toMatch(/name_connect/);
  });

  test('it cannot touch the host: no lvm, no /boot, no state of the daemon, no listening socket', async () => {
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'lvm_t', '-c', 'process', '-p', 'transition'])).toBe('');
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'boot_t', '-c', 'file', '-p', 'write'])).toBe('');
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-t', 'imgbased_var_lib_t'])).toBe('');
    expect(await sesearch(['-A', '-s', 'imgbased_snmp_t', '-c', 'tcp_socket', '-p', 'name_bind'])).toBe('');
  });
});

describe('file contexts', () => {
  let entries: FcEntry[] = [];
  let installed: string[] = [];
  let runtimePaths: string[] = [];

  beforeAll(async () => {
    entries = parseFc(await fs.readFile(path.join(REPO, 'selinux/imgbased.fc'), 'utf8'));
    if (install.code !== 0) throw new Error(`make install failed:\n${install.stdout}\n${install.stderr}`);
    installed = await walk(dest);
    // Paths made at run time: the tmpfiles.d entries and the units' StateDirectory=/RuntimeDirectory=.
    const tmpfiles = await fs.readFile(path.join(dest, 'usr/lib/tmpfiles.d/imgbased.conf'), 'utf8');
    runtimePaths = [...tmpfiles.matchAll(/^[dDvqQ]\s+(\S+)/gm)].map((m) => m[1] ?? '');
    const unitDir = path.join(dest, 'usr/lib/systemd/system');
    for (const unit of await fs.readdir(unitDir)) {
      const text = await fs.readFile(path.join(unitDir, unit), 'utf8');
      for (const m of text.matchAll(/^(State|Runtime|Cache)Directory=(.+)$/gm)) {
        for (const d of (m[2] ?? '').split(/\s+/).filter((x) => x !== '')) {
          if (m[1] === 'Runtime') runtimePaths.push(`/run/${d}`, `/var/run/${d}`);
          else runtimePaths.push(m[1] === 'State' ? `/var/lib/${d}` : `/var/cache/${d}`);
        }
      }
    }
    runtimePaths = runtimePaths.filter((p) => p !== '');
  });

  test('every .fc entry matches a path the install target installs or the system creates for imgbased', () => {
    const unmatched = entries.filter((e) => {
      const re = new RegExp(`^(?:${e.regex})$`);
      return !installed.some((p) => re.test(p)) && !runtimePaths.some((p) => re.test(p));
    });
    expect(unmatched.map((e) => e.regex)).toEqual([]);
  });

  test('the linked policy labels the installed tree as designed', async () => {
    const expected: Record<string, string> = {
      '/usr/libexec/imgbased/imgbased-daemon': 'imgbased_exec_t',
      '/usr/bin/imgbased': 'imgbased_exec_t',
      '/usr/libexec/imgbased/imgbased-snmp': 'imgbased_snmp_exec_t',
      '/usr/bin/nodectl': 'bin_t',
      '/etc/imgbased/imgbased.conf': 'imgbased_conf_t',
      '/etc/imgbased/trusted.d': 'imgbased_conf_t',
      '/var/lib/imgbased': 'imgbased_var_lib_t',
      '/var/lib/imgbased/images': 'imgbased_var_lib_t',
      '/run/imgbased': 'imgbased_runtime_t',
      '/var/cache/imgbased': 'imgbased_cache_t',
      '/var/cache/imgbased/updates/ovirt-node-ng-image-update-4.5.6-1.el9.noarch.rpm': 'imgbased_cache_t',
      '/usr/lib/systemd/system/imgbased.service': 'imgbased_unit_file_t',
      '/usr/lib/systemd/system/imgbased-automatic.timer': 'imgbased_unit_file_t',
      // node and the code stay in their ordinary types: executing them carries no transition
      '/usr/lib/imgbased/dist/src/daemon/main.js': 'lib_t',
    };
    for (const [p, type] of Object.entries(expected)) {
      if (!p.startsWith('/var/') && !p.startsWith('/run/')) expect(installed).toContain(p);
      const out = await mustRun('matchpathcon', ['-f', fileContexts, p]);
      expect(`${p} ${out.trim().split(/\s+/)[1]?.split(':')[2] ?? ''}`).toBe(`${p} ${type}`);
    }
  });

  test('the launchers get exec types: every installed launcher is labeled', async () => {
    const launchers = installed.filter((p) => /^\/usr\/libexec\/imgbased\/[^/]+$/.test(p));
    expect(launchers.length).toBeGreaterThan(0);
    for (const p of launchers) {
      const out = await mustRun('matchpathcon', ['-f', fileContexts, p]);
      expect(out).toMatch(/:imgbased(_snmp)?_exec_t:/);
    }
  });
});

describe('removal', () => {
  test('semodule -n -r removes the module and every imgbased type', async () => {
    await mustRun('semodule', ['-p', root, '-n', '-r', 'imgbased']);
    expect((await mustRun('semodule', ['-p', root, '-l'])).split('\n')).not.toContain('imgbased');
    const after = await firstPolicy(path.join(root, `etc/selinux/${POLICY_NAME}/policy`));
    const r = await run('seinfo', ['-t', 'imgbased_t', after]);
    expect(r.stdout).not.toMatch(/^\s+imgbased_t$/m);
    expect(await sha256(hostPolicyFile)).toBe(hostPolicySum);
  }, 300_000);
});
