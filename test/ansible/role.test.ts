/**
 * The Ansible role ansible/roles/ovirt_node_layers, run by the real ansible-playbook (the shipped example playbook
 * ansible/playbooks/upgrade-nodes.yml) against the sandbox daemon on a private bus with the shipped bus policy and a
 * real polkitd: the role only runs `nodectl --json`, here pointed at the private bus through
 * ovirt_node_layers_environment. The host's "reboot" is ovirt_node_layers_reboot_command: the sandbox's Reboot()
 * (grub's choice becomes the running layer), then what imgbased-boot-complete.service runs at boot
 * (`nodectl boot-complete --wait`).
 *
 * One host through its life: check mode reports the update `nodectl check-update` found (v2, in the image directory)
 * and changes nothing; v2 is staged, booted on trial and assessed good, the role polling meanwhile (changed); re-runs
 * change nothing, without an image (check-update: nothing newer, nodectl upgrade is not asked) and with v2's path given
 * (check mode says the base is installed); an upgrade that fails (a missing image) fails the host with nodectl's exit
 * status and its JSON error; given images nodectl declines by error name (v2 under another file name: "already
 * installed"; an older image: NotNewer) are nothing to do, unless ovirt_node_layers_fail_when_not_newer; v3 published
 * while a VM runs: check mode, a run without an image and one with v3's path all fail naming the VM before anything is
 * staged (the host's snapshot is unchanged); v3 staged outside the role (the timer's "stage" policy) is not rebooted
 * into while the VM runs (check mode reports the staged layer and fails the same way); with the VM stopped and a health
 * gate that cannot pass ([Boot] RequiredUnits=vdsmd.service, not active in the sandbox), the re-run boots the staged
 * v3, imgbased marks it bad and puts v2 back as the default, the host fails with the daemon's reason, and the rollout
 * stops: the second host of the inventory (serial: [1, "25%"], max_fail_percentage: 0) never starts. Also:
 * --syntax-check of the playbook, and ansible-lint (Debian's, production profile). Every
 * nodectl call the role made, with its output, is kept in test-artifacts/ansible/nodectl-output.txt.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildTestImage } from '../../src/image/test-image-builder';
import { SANDBOX_LIBVIRT_XML, sandboxLibvirtXml } from '../../src/sandbox/sysroot';
import type { RunResult } from '../bus/harness';
import { eventually, PrivateBus, runCommand } from '../bus/harness';
import type { ImageSet } from '../helpers/host';
import { NVR, V2_CHANGES, sandboxHost, snapshotHost } from '../helpers/host';
import { stopChild } from '../../src/sandbox/snmpd';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const PLAYBOOK = path.join(REPO, 'ansible/playbooks/upgrade-nodes.yml');
const ROLES = path.join(REPO, 'ansible/roles');
const V2 = `${NVR.v2}+1`;
const V3 = `${NVR.v3}+1`;
/** Older than v2, newer than v1: an image nodectl refuses as not newer once v2 is installed. */
const NVR_OLD = 'ovirt-node-ng-4.5.4-0.20250201.0';
/** The verbs the role may run: read-only ones and the upgrade. */
const ROLE_VERBS = /^--json (info|layers|check|check-update|upgrade --wait)( |$)/;
const PLAYBOOK_TIMEOUT_MS = 240_000;
/** Every run's json report and stderr are kept here (CI artifacts; the directory is git-ignored). */
const ARTIFACTS = path.join(REPO, 'test-artifacts/ansible');

/** What the json stdout callback prints: one document with every play (one per serial batch), task and host. */
interface TaskResult {
  changed?: boolean;
  failed?: boolean;
  skipped?: boolean;
  msg?: unknown;
  /** Tries of a task with until/retries. */
  attempts?: number;
}
interface PlaybookReport {
  plays: Array<{ tasks: Array<{ task: { name: string }; hosts: Record<string, TaskResult> }> }>;
  stats: Record<string, { ok: number; changed: number; failures: number; unreachable: number; skipped: number }>;
}
interface Run {
  code: number | null;
  report: PlaybookReport;
  stderr: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseReport(r: RunResult): PlaybookReport {
  const doc: unknown = JSON.parse(r.stdout);
  if (!isRecord(doc) || !Array.isArray(doc['plays']) || !isRecord(doc['stats'])) {
    throw new Error(`ansible-playbook printed no json report (exit ${String(r.code)}): ${r.stdout}\n${r.stderr}`);
  }
  return doc as unknown as PlaybookReport;
}

/** The recap as ansible prints it ("ok=20 changed=0 … failed=0"), for failure messages and the docs. */
const recap = (run: Run): string => Object.entries(run.report.stats)
  .map(([host, s]) => `${host}: ok=${s.ok} changed=${s.changed} unreachable=${s.unreachable} failed=${s.failures} skipped=${s.skipped}`)
  .join('\n');

/** Every task result of one host: [task name, result]. */
const resultsOf = (run: Run, host: string): Array<[string, TaskResult]> => run.report.plays.flatMap((p) => p.tasks
  .filter((t) => t.hosts[host] !== undefined)
  .map((t): [string, TaskResult] => [t.task.name, t.hosts[host] ?? {}]));

/** POSIX shell single quotes. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;


describe('Ansible role ovirt_node_layers (real ansible-playbook, sandbox daemon)', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams | null = null;
  let daemonLog = '';
  let work: string;
  let baseConfig: string;

  async function stopDaemon(): Promise<void> {
    const d = daemon;
    daemon = null;
    if (d) await stopChild(d);
  }

  /** (Re)start the daemon (it reads imgbased.conf at start-up). */
  async function startDaemon(): Promise<void> {
    await stopDaemon();
    daemonLog = '';
    const d = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    d.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    daemon = d;
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }

  /** A property of org.ovirt.Node.Layers, read from the daemon with busctl (not through the role's nodectl). */
  async function prop(name: string): Promise<unknown> {
    const r = await bus.busctl('nobody', ['--json=short', 'get-property', 'org.ovirt.Node', '/org/ovirt/Node', 'org.ovirt.Node.Layers', name]);
    if (r.code !== 0) throw new Error(`busctl get-property ${name}: ${r.stderr}`);
    const v: unknown = JSON.parse(r.stdout);
    if (!isRecord(v)) throw new Error(`busctl get-property ${name}: ${r.stdout}`);
    return v['data'];
  }

  /** Each layer's boot-state and reason from the daemon's Layers property. */
  async function bootStates(): Promise<Record<string, { state: string; reason: string }>> {
    const layers = await prop('Layers');
    if (!Array.isArray(layers)) throw new Error('Layers is not an array');
    const field = (l: Record<string, unknown>, k: string): string => {
      const f = l[k];
      return isRecord(f) && typeof f['data'] === 'string' ? f['data'] : '';
    };
    return Object.fromEntries(layers.filter(isRecord).map((l) => [field(l, 'name'), {
      state: field(l, 'boot-state'), reason: field(l, 'boot-state-reason'),
    }]));
  }

  const setVms = (running: boolean): Promise<void> =>
    fs.writeFile(path.join(sysroot, SANDBOX_LIBVIRT_XML), sandboxLibvirtXml([{ name: 'engine-vm', running }]));

  /** The installed bases (nodectl --json info: layers' keys), read as nobody. */
  async function bases(): Promise<string[]> {
    const r = await bus.run('nobody', [process.execPath, NODECTL, '--json', 'info']);
    const info: unknown = JSON.parse(r.stdout);
    if (!isRecord(info) || !isRecord(info['layers'])) throw new Error(`nodectl --json info: ${r.stdout}`);
    return Object.keys(info['layers']);
  }

  /** Every finished transaction (nodectl --json history), read as nobody. */
  const history = async (): Promise<string> => (await bus.run('nobody', [process.execPath, NODECTL, '--json', 'history', '--limit', '0'])).stdout;

  /**
   * The role's nodectl: the real one, then a line "<exit status>\t<arguments>" in nodectl.log once it has finished;
   * each call and its stdout are also appended to the artifact nodectl-output.txt (real JSON for docs/FLEET.md).
   */
  const nodectlLog = (): string => path.join(work, 'nodectl.log');
  const nodectlWrapper = (): string => path.join(work, 'nodectl');

  /** Every nodectl call the role made so far: [exit status, arguments]. */
  async function nodectlCalls(): Promise<Array<[number, string]>> {
    const text = await fs.readFile(nodectlLog(), 'utf8').catch(() => '');
    return text.split('\n').filter((l) => l !== '').map((l): [number, string] => {
      const [code, args] = l.split('\t');
      return [Number(code), args ?? ''];
    });
  }

  /**
   * The sandbox "reboot": Reboot() boots what grub would (the trial layer's one-shot entry), then what
   * imgbased-boot-complete.service runs at boot, with its JSON and exit status kept for the test. 'later': the
   * assessment runs in the background once the role has polled `nodectl --json layers` after the "reboot" (and seen
   * the boot still on trial), as a boot's service may still run when ansible.builtin.reboot sees the host again: the
   * role must poll. The verdict is the daemon's business: exit 1 (marked bad) is a finished boot, not a failed reboot.
   */
  function rebootCommand(when: 'now' | 'later'): string {
    const out = path.join(work, 'boot-complete');
    const assess = `${process.execPath} ${NODECTL} --json boot-complete --wait > ${sq(`${out}.json`)} 2> ${sq(`${out}.err`)}; echo $? > ${sq(`${out}.rc`)}`;
    const reboot = `rm -f ${sq(`${out}.json`)} ${sq(`${out}.rc`)}`
      + ` && busctl --address=${sq(bus.address)} call org.ovirt.Node /org/ovirt/Node org.ovirt.Node.Sandbox Reboot`;
    if (when === 'now') return `${reboot} && { ${assess}; [ "$(cat ${sq(`${out}.rc`)})" -le 1 ]; }`;
    // Polls of the layers finished so far; wait (30 s at most) for one more, then assess.
    const polls = `$(grep -c "$(printf '\\t')--json layers$" ${sq(nodectlLog())})`;
    const waitForPoll = `n=${polls}; i=0; until [ ${polls} -gt "$n" ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done`;
    return `${reboot} && { setsid sh -c ${sq(`${waitForPoll}; ${assess}`)} < /dev/null > /dev/null 2>&1 & }`;
  }

  /** What the last "boot" assessed: nodectl boot-complete's JSON once it exited (and its exit status). */
  async function bootComplete(): Promise<{ code: number; json: unknown }> {
    const out = path.join(work, 'boot-complete');
    await eventually(async () => (await fs.readFile(`${out}.rc`, 'utf8').catch(() => '')).endsWith('\n'), 20_000, 100);
    return { code: Number((await fs.readFile(`${out}.rc`, 'utf8')).trim()), json: JSON.parse(await fs.readFile(`${out}.json`, 'utf8')) };
  }

  /** ansible-playbook with a clean configuration: nothing from /etc/ansible or ~, no retry files, the json callback. */
  async function playbook(label: string, inventory: string, extraVars: Record<string, unknown> = {}, opts: { check?: boolean } = {}): Promise<Run> {
    const env: Record<string, string> = {
      HOME: work,
      LC_ALL: 'C.UTF-8',
      ANSIBLE_CONFIG: path.join(work, 'ansible.cfg'),
      ANSIBLE_ROLES_PATH: ROLES,
      ANSIBLE_STDOUT_CALLBACK: 'json',
      ANSIBLE_RETRY_FILES_ENABLED: 'false',
      ANSIBLE_NOCOWS: 'true',
      ANSIBLE_NOCOLOR: 'true',
      ANSIBLE_LOCAL_TEMP: path.join(work, 'tmp'),
      ANSIBLE_REMOTE_TEMP: path.join(work, 'tmp'),
      ANSIBLE_GATHERING: 'explicit',
    };
    const r = await runCommand(['ansible-playbook', '-i', path.join(work, inventory), '-e', `@${path.join(work, 'vars.json')}`,
      '-e', JSON.stringify(extraVars), ...(opts.check === true ? ['--check'] : []), PLAYBOOK], { env, cwd: work, timeoutMs: PLAYBOOK_TIMEOUT_MS });
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await fs.writeFile(path.join(ARTIFACTS, `${label}.json`), r.stdout);
    await fs.writeFile(path.join(ARTIFACTS, `${label}.stderr`), r.stderr);
    return { code: r.code, report: parseReport(r), stderr: r.stderr };
  }

  beforeAll(async () => {
    await fs.access(NODECTL);
    await fs.rm(ARTIFACTS, { recursive: true, force: true });
    ({ dir, images, sysroot } = await sandboxHost('ansible'));
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    baseConfig = await fs.readFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), 'utf8');
    await startDaemon();

    work = path.join(dir, 'ansible');
    await fs.mkdir(path.join(work, 'tmp'), { recursive: true });
    await fs.writeFile(path.join(work, 'ansible.cfg'), '# empty: every setting comes from ANSIBLE_* in the test\n');
    const host = (name: string): string => `${name} ansible_connection=local ansible_python_interpreter=/usr/bin/python3`;
    await fs.writeFile(path.join(work, 'one-host'), `[ovirt_nodes]\n${host('node-a')}\n`);
    // Two names for the same (local) host: the rollout's canary batch and the next one.
    await fs.writeFile(path.join(work, 'two-hosts'), `[ovirt_nodes]\n${host('node-a')}\n${host('node-b')}\n`);
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await fs.writeFile(nodectlWrapper(), `#!/bin/sh
out=$(mktemp)
${sq(process.execPath)} ${sq(NODECTL)} "$@" > "$out"
rc=$?
cat "$out"
{ printf '$ nodectl %s   (exit %s)\\n' "$*" "$rc"; cat "$out"; } >> ${sq(path.join(ARTIFACTS, 'nodectl-output.txt'))}
rm -f "$out"
printf '%s\\t%s\\n' "$rc" "$*" >> ${sq(nodectlLog())}
exit $rc
`, { mode: 0o755 });
    await fs.writeFile(path.join(work, 'vars.json'), JSON.stringify({
      ansible_become: false, // the play says become: true; the test already runs as root (and has no sudo)
      ovirt_node_layers_nodectl: nodectlWrapper(),
      ovirt_node_layers_environment: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
      ovirt_node_layers_reboot_command: rebootCommand('now'),
      ovirt_node_layers_assessment_timeout: 30,
      ovirt_node_layers_assessment_delay: 1,
    }, null, 2));

    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    await fs.mkdir(imageDir, { recursive: true });
    await buildTestImage({ outDir: imageDir, nvr: NVR.v2, sign: images.key, ...V2_CHANGES });
  }, 180_000);

  afterAll(async () => {
    await stopDaemon();
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('the example playbook passes ansible-playbook --syntax-check', async () => {
    const r = await runCommand(['ansible-playbook', '--syntax-check', '-i', 'localhost,', PLAYBOOK], {
      env: { HOME: work, LC_ALL: 'C.UTF-8', ANSIBLE_CONFIG: path.join(work, 'ansible.cfg'), ANSIBLE_ROLES_PATH: ROLES, ANSIBLE_NOCOLOR: 'true' },
      cwd: work,
    });
    expect([r.code, r.stderr.replace(/\[WARNING\]: Could not match supplied host pattern, ignoring: ovirt_nodes\n/, '')]).toEqual([0, '']);
    expect(r.stdout).toContain('playbook: ');
  });

  it('ansible-lint (production profile) finds nothing in the role and the playbook', async () => {
    const r = await runCommand(['ansible-lint', '--offline', '--nocolor', PLAYBOOK, path.join(ROLES, 'ovirt_node_layers')], {
      env: { HOME: work, LC_ALL: 'C.UTF-8', ANSIBLE_ROLES_PATH: ROLES }, cwd: path.join(REPO, 'ansible'), timeoutMs: 120_000,
    });
    expect({ code: r.code, out: `${r.stdout}${r.stderr}` }).toEqual({ code: 0, out: expect.stringMatching(/Passed with production profile: 0 failure\(s\), 0 warning\(s\)/) });
  }, 150_000);

  it('check mode reports the update nodectl check-update found (v2) and changes nothing', async () => {
    const [snapshot, journal] = [await snapshotHost(sysroot), await history()];
    const run = await playbook('0-check-mode', 'one-host', {}, { check: true });
    expect({ code: run.code, recap: recap(run) }).toEqual({ code: 0, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=0 /) });
    const results = resultsOf(run, 'node-a');
    expect(results.find(([n]) => n === 'ovirt_node_layers : Report what a run would do (check mode)')?.[1].msg).toBe(
      `node-a runs ${NVR.v1}+1, the next boot starts ${NVR.v1}+1, the newest layer is ${NVR.v1}+1 (boot-state "good"). `
      + `Update available: ${NVR.v2} (nodectl check-update): a run would install it and reboot into it.`);
    // No VM runs: the gate before anything changes passed (it runs in check mode too); nothing was installed.
    expect(results.filter(([, r]) => r.changed === true || r.failed === true)).toEqual([]);
    expect(results.find(([n]) => n === 'ovirt_node_layers : Install a newer image (nodectl --json upgrade)')?.[1].skipped).toBe(true);
    expect(await snapshotHost(sysroot)).toEqual(snapshot);
    expect(await history()).toBe(journal);
    const calls = await nodectlCalls();
    expect(calls.filter(([, args]) => !/^--json (info|layers|check|check-update)$/.test(args))).toEqual([]);
    expect(calls.filter(([, args]) => args === '--json check-update')).toEqual([[0, '--json check-update']]);
  }, PLAYBOOK_TIMEOUT_MS + 10_000);

  it('first run: stages v2, reboots into it, waits for the boot assessment; v2 runs with boot-state good (changed)', async () => {
    const callsBefore = (await nodectlCalls()).length;
    const run = await playbook('1-first-run', 'one-host', { ovirt_node_layers_reboot_command: rebootCommand('later') });
    const results = resultsOf(run, 'node-a');
    expect({ code: run.code, recap: recap(run) }).toEqual({ code: 0, recap: expect.stringMatching(/^node-a: ok=\d+ changed=2 unreachable=0 failed=0 /) });
    expect(results.filter(([, r]) => r.changed === true).map(([n]) => n)).toEqual([
      'ovirt_node_layers : Install a newer image (nodectl --json upgrade)',
      'ovirt_node_layers : Reboot into the newest layer (ovirt_node_layers_reboot_command)',
    ]);
    expect(results.find(([n]) => n === 'ovirt_node_layers : Reboot into the newest layer (ansible.builtin.reboot)')?.[1].skipped).toBe(true);
    expect(results.find(([n]) => n === 'ovirt_node_layers : Report the layer the host runs')?.[1].msg)
      .toBe(`node-a runs the newest layer ${V2} (boot-state "good").`);
    // The daemon's view: v2 runs, is the default again after its trial, and its boot was good.
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([V2, V2, '']);
    expect((await bootStates())[V2]).toEqual({ state: 'good', reason: expect.any(String) });
    // The role polled while the boot was still on trial (the assessment waited for its first poll).
    const wait = results.find(([n]) => n.startsWith('ovirt_node_layers : Wait until imgbased has assessed'))?.[1];
    expect(wait?.attempts).toBeGreaterThan(1);
    expect(await bootComplete()).toEqual({ code: 0, json: expect.objectContaining({ layer: V2, verdict: 'good' }) });
    // The role talks to imgbased through `nodectl --json` only: it asked check-update, then staged.
    const calls = (await nodectlCalls()).slice(callsBefore);
    expect(calls.filter(([, args]) => !ROLE_VERBS.test(args))).toEqual([]);
    expect(calls.filter(([, args]) => /^--json (check-update|upgrade)/.test(args))).toEqual([[0, '--json check-update'], [0, '--json upgrade --wait']]);
  }, PLAYBOOK_TIMEOUT_MS + 10_000);

  it('re-runs on the up-to-date host change nothing: check-update finds nothing newer, or the given image is installed', async () => {
    const before = await history();
    const calls = (await nodectlCalls()).length;
    const v2Path = path.join(sysroot, 'var/lib/imgbased/images', `${NVR.v2}.squashfs.img`);
    for (const [label, extra] of [['2-rerun', {}], ['3-rerun-image', { ovirt_node_layers_image: v2Path }]] as const) {
      const run = await playbook(label, 'one-host', extra);
      expect({ extra, code: run.code, recap: recap(run) })
        .toEqual({ extra, code: 0, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=0 /) });
      const results = resultsOf(run, 'node-a');
      expect(results.filter(([, r]) => r.changed === true || r.failed === true)).toEqual([]);
      // Nothing to install either way: nodectl upgrade is not even asked.
      expect(results.find(([n]) => n === 'ovirt_node_layers : Install a newer image (nodectl --json upgrade)')?.[1].skipped).toBe(true);
      for (const reboot of ['Reboot into the newest layer (ansible.builtin.reboot)', 'Reboot into the newest layer (ovirt_node_layers_reboot_command)']) {
        expect(results.find(([n]) => n === `ovirt_node_layers : ${reboot}`)?.[1].skipped).toBe(true);
      }
    }
    // Check mode says so.
    const check = await playbook('3-rerun-image-check-mode', 'one-host', { ovirt_node_layers_image: v2Path }, { check: true });
    expect({ code: check.code, recap: recap(check) }).toEqual({ code: 0, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=0 /) });
    expect(resultsOf(check, 'node-a').find(([n]) => n === 'ovirt_node_layers : Report what a run would do (check mode)')?.[1].msg).toBe(
      `node-a runs ${V2}, the next boot starts ${V2}, the newest layer is ${V2} (boot-state "good"). `
      + `The base ${NVR.v2} of ${v2Path} is installed. A run would install nothing.`);
    expect([await prop('CurrentLayer'), await prop('DefaultLayer')]).toEqual([V2, V2]);
    // No transaction was started; check-update was asked once (without an image), upgrade never.
    expect(await history()).toBe(before);
    const rerunCalls = (await nodectlCalls()).slice(calls);
    expect(rerunCalls.filter(([, args]) => !/^--json (info|layers|check|check-update)$/.test(args))).toEqual([]);
    expect(rerunCalls.filter(([, args]) => args === '--json check-update')).toEqual([[0, '--json check-update']]);
  }, 3 * PLAYBOOK_TIMEOUT_MS + 10_000);

  it('a failing upgrade fails the host with nodectl\'s exit status and JSON error; nothing changes', async () => {
    const missing = path.join(dir, 'published', `${NVR.v3}.squashfs.img`); // not built yet
    const run = await playbook('4-upgrade-fails', 'one-host', { ovirt_node_layers_image: missing });
    expect({ code: run.code, recap: recap(run) }).toEqual({ code: 2, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=1 /) });
    const failed = resultsOf(run, 'node-a').filter(([, r]) => r.failed === true);
    expect(failed).toEqual([['ovirt_node_layers : Fail when the upgrade failed', expect.objectContaining({
      msg: `node-a: \`${nodectlWrapper()} --json upgrade --wait ${missing}\` exited 1 (failed: the transaction failed, `
        + `imgbased is unreachable, or a reboot was refused because VMs run): image ${missing} does not exist or is not a file `
        + `(org.ovirt.Node.Error.NotFound; hint: "nodectl layers" lists the layers and bases). The host still runs ${V2}.`,
    })]]);
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([V2, V2, '']);
  }, PLAYBOOK_TIMEOUT_MS + 10_000);

  it('a given image nodectl declines by error name: already installed (another file name), NotNewer (older) → ok; fail_when_not_newer fails', async () => {
    const published = path.join(dir, 'published');
    // v2 under a name that is not its NVR: the role cannot tell by the name, nodectl says "already installed".
    const renamed = await buildTestImage({ outDir: published, nvr: NVR.v2, sign: images.key, fileName: 'ovirt-node-current.squashfs.img' });
    const older = await buildTestImage({ outDir: published, nvr: NVR_OLD, sign: images.key });
    const basesBefore = await bases();
    const cases = [
      ['5-already-installed', { ovirt_node_layers_image: renamed.imagePath },
        `node-a: nothing to install from ${renamed.imagePath}: base ${NVR.v2} is already installed (org.ovirt.Node.Error.InvalidArgument).`],
      ['6-not-newer', { ovirt_node_layers_image: older.imagePath },
        `node-a: nothing to install from ${older.imagePath}: image ${NVR_OLD} is not newer than the installed base ${NVR.v2} `
        + '(org.ovirt.Node.Error.NotNewer).'],
    ] as const;
    for (const [label, extra, msg] of cases) {
      const run = await playbook(label, 'one-host', extra);
      expect({ label, code: run.code, recap: recap(run) })
        .toEqual({ label, code: 0, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=0 /) });
      const results = resultsOf(run, 'node-a');
      expect(results.filter(([, r]) => r.changed === true || r.failed === true)).toEqual([]);
      expect(results.find(([n]) => n === 'ovirt_node_layers : Report a given image that needs no install')?.[1].msg).toBe(msg);
      // nodectl was asked (exit 1: the transaction failed before changing anything) and the newest layer verified.
      expect((await nodectlCalls()).filter(([, args]) => args === `--json upgrade --wait ${extra.ovirt_node_layers_image}`))
        .toEqual([[1, `--json upgrade --wait ${extra.ovirt_node_layers_image}`]]);
      expect(results.find(([n]) => n === 'ovirt_node_layers : Report the layer the host runs')?.[1].msg)
        .toBe(`node-a runs the newest layer ${V2} (boot-state "good").`);
    }

    const run = await playbook('7-not-newer-fails', 'one-host', { ovirt_node_layers_image: older.imagePath, ovirt_node_layers_fail_when_not_newer: true });
    expect({ code: run.code, recap: recap(run) }).toEqual({ code: 2, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=1 /) });
    expect(resultsOf(run, 'node-a').filter(([, r]) => r.failed === true)).toEqual([['ovirt_node_layers : Fail when the upgrade failed', expect.objectContaining({
      msg: `node-a: \`${nodectlWrapper()} --json upgrade --wait ${older.imagePath}\` exited 1 (failed: the transaction failed, `
        + `imgbased is unreachable, or a reboot was refused because VMs run): image ${NVR_OLD} is not newer than the installed `
        + `base ${NVR.v2} (org.ovirt.Node.Error.NotNewer; hint: pass --allow-downgrade to install an older image on purpose). `
        + `The host still runs ${V2}.`,
    })]]);
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([V2, V2, '']);
    expect(await bases()).toEqual(basesBefore);
  }, 3 * PLAYBOOK_TIMEOUT_MS + 60_000);

  it('a running VM: check mode, a run without an image and one with v3\'s path all fail naming the VM before anything is staged', async () => {
    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    const v3 = await buildTestImage({ outDir: imageDir, nvr: NVR.v3, sign: images.key });
    await setVms(true);
    const [snapshot, journal, basesBefore] = [await snapshotHost(sysroot), await history(), await bases()];
    const calls = (await nodectlCalls()).length;
    const refused = `node-a: not installing ${NVR.v3}: 1 virtual machine(s) run: engine-vm. Migrate them (oVirt Engine: put `
      + `the host into maintenance) and run again; nothing was changed, the host runs ${V2}.`;
    for (const [label, extra, check] of [
      ['8-vm-running-check-mode', {}, true],
      ['9-vm-running', {}, false],
      ['10-vm-running-image', { ovirt_node_layers_image: v3.imagePath }, false],
    ] as const) {
      const run = await playbook(label, 'one-host', extra, { check });
      expect({ label, code: run.code, recap: recap(run) })
        .toEqual({ label, code: 2, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=1 /) });
      const results = resultsOf(run, 'node-a');
      expect(results.filter(([, r]) => r.failed === true)).toEqual([['ovirt_node_layers : Fail while virtual machines run', expect.objectContaining({ msg: refused })]]);
      if (check) {
        expect(results.find(([n]) => n === 'ovirt_node_layers : Report what a run would do (check mode)')?.[1].msg).toBe(
          `node-a runs ${V2}, the next boot starts ${V2}, the newest layer is ${V2} (boot-state "good"). `
          + `Update available: ${NVR.v3} (nodectl check-update): a run would install it and reboot into it.`);
      }
    }
    // The host is untouched: same volumes, boot entries, grubenv, boot states and journal; no v3 base, no transaction.
    expect(await snapshotHost(sysroot)).toEqual(snapshot);
    expect(await history()).toBe(journal);
    expect(await bases()).toEqual(basesBefore);
    expect(basesBefore).not.toContain(NVR.v3);
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([V2, V2, '']);
    expect((await nodectlCalls()).slice(calls).filter(([, args]) => !/^--json (info|layers|check|check-update)$/.test(args))).toEqual([]);
  }, 3 * PLAYBOOK_TIMEOUT_MS + 60_000);

  it('a layer staged outside the role (the timer\'s "stage" policy) is not rebooted into while a VM runs; it stays staged', async () => {
    // What `nodectl policy stage` + the timer do: stage the newest image of the image directory (v3).
    const staged = await bus.run('root', [process.execPath, NODECTL, '--json', 'upgrade', '--wait']);
    expect([staged.code, JSON.parse(staged.stdout)]).toEqual([0, expect.objectContaining({ result: 'staged', nvr: NVR.v3 })]);
    const check = await playbook('11-staged-vm-running-check-mode', 'one-host', {}, { check: true });
    expect(resultsOf(check, 'node-a').find(([n]) => n === 'ovirt_node_layers : Report what a run would do (check mode)')?.[1].msg).toBe(
      `node-a runs ${V2}, the next boot starts ${V3}, the newest layer is ${V3} (boot-state "trial"). `
      + `No image newer than every base (nodectl check-update). A run would reboot into the staged ${V3}.`);
    const run = await playbook('12-staged-vm-running', 'one-host');
    for (const r of [check, run]) {
      expect({ code: r.code, recap: recap(r) }).toEqual({ code: 2, recap: expect.stringMatching(/^node-a: ok=\d+ changed=0 unreachable=0 failed=1 /) });
      expect(resultsOf(r, 'node-a').filter(([, t]) => t.failed === true)).toEqual([['ovirt_node_layers : Fail while virtual machines run', expect.objectContaining({
        msg: `node-a: not rebooting into ${V3}: 1 virtual machine(s) run: engine-vm. Migrate them (oVirt Engine: put the host `
          + `into maintenance) and run again; ${V3} stays staged and boots at the next reboot.`,
      })]]);
    }
    // Staged on trial, not booted.
    expect([await prop('CurrentLayer'), await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([V2, V3, V3]);
  }, 2 * PLAYBOOK_TIMEOUT_MS + 60_000);

  it('a failing health gate: the re-run boots the staged v3, imgbased marks it bad, the host fails with the reason, the rollout stops', async () => {
    await setVms(false);
    await fs.writeFile(path.join(sysroot, 'etc/imgbased/imgbased.conf'), `${baseConfig}[Boot]\nRequiredUnits=vdsmd.service\nGateTimeoutSec=1\n`);
    await startDaemon();
    const run = await playbook('13-gate-fails', 'two-hosts');
    expect({ code: run.code, recap: recap(run) }).toEqual({ code: 2, recap: expect.stringMatching(/^node-a: ok=\d+ changed=1 unreachable=0 failed=1 [^\n]*$/) });
    // serial: [1, "25%"] with max_fail_percentage: 0 — the canary failed, so node-b's batch never started.
    expect(Object.keys(run.report.stats)).toEqual(['node-a']);
    expect(resultsOf(run, 'node-b')).toEqual([]);

    const states = await bootStates();
    expect(states[V3]?.state).toBe('bad');
    const reason = states[V3]?.reason ?? '';
    expect(reason).toContain('vdsmd.service');
    const failed = resultsOf(run, 'node-a').filter(([, r]) => r.failed === true);
    expect(failed).toEqual([['ovirt_node_layers : Fail when the boot of the newest layer was marked bad', expect.objectContaining({
      msg: `node-a: imgbased marked the boot of ${V3} bad: ${reason}. The next boot starts ${V2}; the host runs ${V3} until `
        + `its next reboot. Rollout stopped: fix the cause, then publish a newer image, or remove the bad base (reboot into ${V2}, `
        + `then \`nodectl remove-base ${NVR.v3}\`).`,
    })]]);
    expect(await bootComplete()).toEqual({ code: 1, json: expect.objectContaining({ layer: V3, verdict: 'bad', reason }) });
    // The daemon put the last good layer back as the default.
    expect([await prop('DefaultLayer'), await prop('TrialLayer')]).toEqual([V2, '']);
    expect((await nodectlCalls()).filter(([, args]) => !ROLE_VERBS.test(args))).toEqual([]);
  }, PLAYBOOK_TIMEOUT_MS + 10_000);
});
