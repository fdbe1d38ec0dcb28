/**
 * Power-cut torture (issue 11), the guest half. Started at EVERY boot of the campaign guest by the image's runner
 * (test/vm/build-image.sh: imgbased-vm-runner.service → ctl/cmd.sh), it picks up where the campaign is:
 *
 *   first boot  install the daemon (`make install DESTDIR=/ PREFIX=/usr`), an oVirt-like host on the LVM disk with
 *               /boot and /var/lib/imgbased on their own LVs of the campaign's filesystem (ext4|xfs), `imgbased init`,
 *               an admin marker in /etc, one uninterrupted upgrade (two bases, and the expected upgrade duration)
 *   each run    start the run's operation through the daemon over the system bus (busctl: Upgrade, Rollback, Cleanup),
 *               then cut the power: `sysrq` → after the run's delay `echo b > /proc/sysrq-trigger` (no sync);
 *               `reset` → tell the host (arm file), which sends QMP `system_reset` after the delay
 *   after a cut read the journal as the cut left it (before anything starts the daemon), start the daemon (it recovers
 *               before READY=1), snapshot, judge OLD/NEW/BROKEN against the snapshot taken before the run and the
 *               transaction's journaled plan, write the result row, then a follow-up upgrade that must succeed (and
 *               read as NEW), whose snapshot is the next run's "before"
 *
 * Everything the campaign must remember goes to the ctl share (9p, cache=none: a write() is on the host when it
 * returns), never to the guest's disks, whose durability is what is being tested. A BROKEN run stops the campaign
 * (exit 3): the host keeps the disks and the console log as they are.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { openImage } from '../../../src/image/inspect';
import { isInternalLv, LV_FIELDS, parseLvsReport, REPORT_ARGS } from '../../../src/storage/lvm-report';
import type { JournalRecord } from '../../../src/transaction/types';
import { judge, stepAtCut, type Judgement, type LayerCheck, type LvInfo, type Snapshot, type TxnFacts } from './classify';
import { parseResults, type RunResult } from './report';
import type { CutKind, PlannedRun, Progress, TortureOp } from './schedule';
import { addSample, cutDelayMs, expectedMs } from './schedule';

const pexec = promisify(execFile);
const REPO = path.resolve(__dirname, '../../../..');
const CTL = process.env['TORTURE_CTL'] ?? '/run/imgbased-vm';
const DISK = process.env['IMGBASED_VM_DISK'] ?? '/dev/disk/by-id/virtio-imgbased-lvm';
const VG = 'onn';
const POOL = 'pool00';
const BOOT_LV = 'torture_boot';
const STATE_LV = 'torture_state';
const STATE_DIR = '/var/lib/imgbased';
const IMAGE_DIR = '/var/tmp/torture-images';
const MNT = '/run/torture-mnt';
const MARKER = 'torture-marker';
const NVR_FILE = 'usr/share/imgbase/build/meta/nvr';
const BUS = 'org.ovirt.Node';
const OBJ = '/org/ovirt/Node';
const LAYERS = 'org.ovirt.Node.Layers';
const TXN = 'org.ovirt.Node.Transaction';
const BUSCTL = ['busctl', '--system', '--timeout=300'];

/** Written by the host driver (driver.ts) before the first boot. */
export interface CampaignPlan {
  readonly label: string;
  readonly fs: 'ext4' | 'xfs';
  readonly seed: number;
  readonly runs: readonly PlannedRun[];
  /** Signed test images, oldest first: [0] is installed, [1] the setup upgrade, then two per run at most. */
  readonly images: ReadonlyArray<{ nvr: string; path: string }>;
  readonly trustedKey: string;
  /** Keys of images added when the campaign was extended (trustedKey first). */
  readonly trustedKeys?: readonly string[];
  /** First guesses of each operation's duration (ms), used until the campaign has measured it (AgentState.samples). */
  readonly expectedMs: Readonly<Record<TortureOp, number>>;
  /** The images add var/lib/torture/image-<NVR> (campaigns planned before that have none: not checked). */
  readonly varFiles?: boolean;
}

/** The campaign's progress, on the ctl share. */
export interface AgentState {
  phase: Progress['phase'];
  /** The run to start (ready) or being judged (cut). */
  run: number;
  nextImage: number;
  /** The expectation the latest cut was drawn over (for the log; computed from samples). */
  expectedMs: Record<TortureOp, number>;
  /** Measured durations per operation, from the call to the daemon's recorded finish (ms; the latest few). */
  samples?: Partial<Record<TortureOp, number[]>>;
  /** phase cut: what was started; t0 = just before the call was sent (Date.now()), which the cut's delay counts from. */
  cut?: { op: TortureOp; cut: CutKind; delayMs: number; txn: string; image: string | null; startedAt: string; t0: number };
}

// ---------------------------------------------------------------------------------------------------------------
// small tools

function log(msg: string): void {
  const line = `[torture ${new Date().toISOString()}] ${msg}\n`;
  process.stderr.write(line);
  void fs.appendFile(path.join(CTL, 'agent.log'), line).catch(() => undefined);
}

/** A line on the serial console (and in the guest journal), so the host's console log shows where each run is. */
async function kmsg(msg: string): Promise<void> {
  await fs.appendFile('/dev/kmsg', `<2>torture: ${msg}\n`).catch(() => undefined);
}

interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cmd(argv: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  try {
    const r = await pexec(file, args, {
      cwd: opts.cwd ?? '/', maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 0,
      env: { ...process.env, LC_ALL: 'C', SYSTEMD_COLORS: '0', LVM_SUPPRESS_FD_WARNINGS: '1' },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

async function must(...argv: string[]): Promise<string> {
  const r = await cmd(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Write a file on the ctl share completely (9p cache=none: on the host once this returns). */
async function putCtl(rel: string, text: string): Promise<void> {
  const p = path.join(CTL, rel);
  await fs.mkdir(path.dirname(p), { recursive: true });
  const tmp = `${p}.tmp`;
  const h = await fs.open(tmp, 'w');
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, p);
}

async function readJson<T>(p: string): Promise<T | null> {
  try {
    return JSON.parse(await fs.readFile(p, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function saveState(s: AgentState): Promise<void> {
  await putCtl('state.json', JSON.stringify(s, null, 1) + '\n');
}

// ---------------------------------------------------------------------------------------------------------------
// bus

function busData(stdout: string): unknown {
  const v = JSON.parse(stdout) as { data?: unknown };
  return v.data;
}

async function getProp(objPath: string, iface: string, prop: string): Promise<unknown> {
  const out = busData(await must(...BUSCTL, '--json=short', 'call', BUS, objPath, 'org.freedesktop.DBus.Properties', 'Get', 'ss', iface, prop));
  const [variant] = Array.isArray(out) ? (out as unknown[]) : [];
  return (variant as { data?: unknown } | undefined)?.data;
}

/** Start an operation over the bus; the transaction id. */
async function startOp(op: TortureOp, image: string | null): Promise<string> {
  const call = op === 'upgrade' ? ['Upgrade', 'sa{sv}', image ?? '', '0']
    : op === 'rollback' ? ['Rollback', 'sa{sv}', '', '0']
      : ['Cleanup', 'a{sv}', '1', 'keep', 'u', '1'];
  const data = busData(await must(...BUSCTL, '--json=short', 'call', BUS, OBJ, LAYERS, ...call));
  const txn = Array.isArray(data) ? data[0] : undefined;
  if (typeof txn !== 'string' || !txn.startsWith('/org/ovirt/Node/Transaction/')) throw new Error(`${op} returned ${JSON.stringify(data)}`);
  return txn.slice(txn.lastIndexOf('/') + 1);
}

async function waitTxn(id: string, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await getProp(`/org/ovirt/Node/Transaction/${id}`, TXN, 'State').catch(() => undefined);
    if (s === 'succeeded' || s === 'failed' || s === 'cancelled') return s;
    if (Date.now() > end) throw new Error(`transaction ${id} did not finish in ${timeoutMs} ms`);
    await sleep(1000);
  }
}

/** Activate the daemon (it recovers before it answers) and wait until it is idle. */
async function daemonUp(): Promise<void> {
  const end = Date.now() + 10 * 60_000;
  for (;;) {
    const t = await getProp(OBJ, LAYERS, 'ActiveTransaction').catch((e: unknown) => e);
    if (t === '/') return;
    if (Date.now() > end) throw new Error(`the daemon did not come up idle: ${String(t)}`);
    await sleep(2000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// snapshots

async function lvs(): Promise<Record<string, LvInfo>> {
  const recs = parseLvsReport(await must('lvs', ...REPORT_ARGS, '-o', LV_FIELDS.join(','), VG));
  return Object.fromEntries(recs.filter((r) => !isInternalLv(r)).sort((a, b) => a.name.localeCompare(b.name))
    .map((r) => [r.name, { attr: r.attrString, tags: [...r.tags].sort(), origin: r.origin, size: r.sizeBytes }]));
}

async function listDir(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).sort();
}

async function sha256(p: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(p)).digest('hex');
}

/** /etc of a mounted tree as path → "kind mode uid:gid size sha256|target". */
async function etcManifest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const n of await listDir(path.join(root, rel))) {
      const r = path.join(rel, n);
      const p = path.join(root, r);
      const st = await fs.lstat(p);
      const head = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out[r] = `dir ${head} 0 -`;
        await walk(r);
      } else if (st.isFile()) out[r] = `file ${head} ${st.size} ${await sha256(p)}`;
      else if (st.isSymbolicLink()) out[r] = `link ${head} 0 ${await fs.readlink(p)}`;
      else out[r] = `other ${head} 0 -`;
    }
  };
  await walk('');
  return out;
}

async function fsTypeOf(dev: string): Promise<string> {
  return (await cmd(['blkid', '-p', '-s', 'TYPE', '-o', 'value', dev])).stdout.trim();
}

/** Mount read-only (replaying the log, as a boot would), read, unmount, then fsck without changing anything. */
async function checkLayer(name: string): Promise<LayerCheck> {
  const dev = `/dev/${VG}/${name}`;
  const mnt = path.join(MNT, name);
  await fs.mkdir(mnt, { recursive: true });
  const type = await fsTypeOf(dev);
  const m = await cmd(['mount', '-o', type === 'xfs' ? 'ro,nouuid' : 'ro', dev, mnt]);
  if (m.code !== 0) return { fsckOk: false, fsckOutput: m.stderr, nvr: null, marker: null, etc: {}, error: `mount: ${m.stderr.trim()}` };
  let nvr: string | null = null;
  let marker: string | null = null;
  let etc: Record<string, string> = {};
  let error: string | undefined;
  try {
    nvr = (await fs.readFile(path.join(mnt, NVR_FILE), 'utf8').catch(() => null))?.trim() ?? null;
    marker = await fs.readFile(path.join(mnt, 'etc', MARKER), 'utf8').catch(() => null);
    etc = await etcManifest(path.join(mnt, 'etc'));
  } catch (e) {
    error = `read: ${String(e)}`;
  } finally {
    await must('umount', mnt);
  }
  const f = type === 'xfs' ? await cmd(['xfs_repair', '-n', dev]) : await cmd(['e2fsck', '-fn', dev]);
  return { fsckOk: f.code === 0, fsckOutput: f.code === 0 ? '' : `${f.stdout}\n${f.stderr}`.slice(-2000), nvr, marker, etc, ...(error ? { error } : {}) };
}

async function daemonMounts(): Promise<string[]> {
  const pid = Number((await cmd(['systemctl', 'show', 'imgbased.service', '-p', 'MainPID', '--value'])).stdout.trim());
  const argv = pid > 0 ? ['nsenter', '-t', String(pid), '-m', 'findmnt', '-rn', '-o', 'TARGET'] : ['findmnt', '-rn', '-o', 'TARGET'];
  return (await cmd(argv)).stdout.split('\n').filter((t) => t.startsWith('/run/imgbased/'));
}

async function tempFiles(): Promise<string[]> {
  const r = await cmd(['find', '/boot', STATE_DIR, '-xdev', '-name', '.*.tmp-*']);
  return r.stdout.split('\n').filter(Boolean).sort();
}

let checkVar = false;

export async function snapshot(): Promise<Snapshot> {
  const lv = await lvs();
  const entries: Record<string, string> = {};
  for (const f of (await listDir('/boot/loader/entries')).filter((x) => x.endsWith('.conf'))) {
    entries[f] = await fs.readFile(path.join('/boot/loader/entries', f), 'utf8');
  }
  const bootDirs: Record<string, string[]> = {};
  for (const d of (await listDir('/boot')).filter((x) => /\+\d+$/.test(x))) {
    const lines: string[] = [];
    for (const f of await listDir(path.join('/boot', d))) lines.push(`${f} ${(await fs.lstat(path.join('/boot', d, f))).size}`);
    bootDirs[d] = lines;
  }
  const grubenv = await fs.readFile('/boot/grub2/grubenv', 'latin1').catch(() => '(none)');
  const journal = (await listDir(path.join(STATE_DIR, 'journal'))).filter((f) => f.endsWith('.json'));
  const layers: Record<string, LayerCheck> = {};
  for (const [name, info] of Object.entries(lv)) {
    if (info.tags.includes('imgbased:layer') && /\+\d+$/.test(name)) layers[name] = await checkLayer(name);
  }
  const varFiles: Record<string, string> = {};
  for (const f of await listDir('/var/lib/torture')) varFiles[f] = await fs.readFile(path.join('/var/lib/torture', f), 'utf8').catch((e: unknown) => `(${String(e)})`);
  return {
    lvs: lv, entries, bootDirs, grubenv, journal, tempFiles: await tempFiles(), mounts: await daemonMounts(), layers,
    ...(checkVar ? { varFiles } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// setup (first boot)

async function mkfs(fsType: string, dev: string): Promise<void> {
  if (fsType === 'xfs') await must('mkfs.xfs', '-q', '-f', dev);
  else await must('mkfs.ext4', '-q', '-F', '-E', 'discard', dev);
}

async function stageImage(plan: CampaignPlan, index: number): Promise<string> {
  const img = plan.images[index];
  if (!img) throw new Error(`the campaign has no image #${index} (built ${plan.images.length})`);
  await fs.rm(IMAGE_DIR, { recursive: true, force: true });
  await fs.mkdir(IMAGE_DIR, { recursive: true });
  const dest = path.join(IMAGE_DIR, path.basename(img.path));
  for (const suffix of ['', '.sha256', '.sig']) await fs.copyFile(img.path + suffix, dest + suffix);
  await must('sync');
  return dest;
}

async function trustKeys(plan: CampaignPlan): Promise<void> {
  await fs.mkdir('/etc/imgbased/trusted.d', { recursive: true });
  for (const [i, k] of (plan.trustedKeys ?? [plan.trustedKey]).entries()) {
    await fs.copyFile(k, `/etc/imgbased/trusted.d/${i === 0 ? 'test' : `test${i + 1}`}.asc`);
  }
}

/** The campaign was extended (driver.ts extend): install the daemon from the current tree, trust the new key. */
async function reinstall(plan: CampaignPlan): Promise<void> {
  const mi = await cmd(['make', '--no-print-directory', '-C', REPO, 'install', 'DESTDIR=/', 'PREFIX=/usr']);
  if (mi.code !== 0) throw new Error(`make install: ${mi.stderr}`);
  await must('systemctl', 'daemon-reload');
  await trustKeys(plan);
  await must('sync');
  await fs.rm(path.join(CTL, 'reinstall'));
  log('reinstalled the daemon from the current tree (campaign extended)');
}

async function setup(plan: CampaignPlan): Promise<AgentState> {
  const t0 = Date.now();
  log(`setup: ${plan.label}, fs ${plan.fs}, ${plan.runs.length} runs, ${plan.images.length} images`);
  const mi = await cmd(['make', '--no-print-directory', '-C', REPO, 'install', 'DESTDIR=/', 'PREFIX=/usr']);
  if (mi.code !== 0) throw new Error(`make install: ${mi.stderr}`);
  log(`setup: make install done (${Math.round((Date.now() - t0) / 1000)} s)`);
  // Nothing may start the daemon before the agent has read the journal as the cut left it.
  await must('systemctl', 'mask', 'imgbased-boot-complete.service', 'imgbased-automatic.timer', 'imgbased-automatic.service');
  // Under emulation the daemon takes ~20 s to READY=1, close to dbus-daemon's 25 s activation timeout.
  await fs.writeFile('/etc/dbus-1/system.d/zz-imgbased-torture.conf',
    '<busconfig>\n  <limit name="service_start_timeout">300000</limit>\n</busconfig>\n');
  await must('systemctl', 'daemon-reload');
  await must('systemctl', 'reload', 'dbus.service');

  // The "installer": VG onn, thin pool00, root thin LV with image #0, /boot and /var/lib/imgbased on their own LVs
  await must('udevadm', 'settle');
  await cmd(['wipefs', '-qa', DISK]);
  await must('pvcreate', '-qy', DISK);
  await must('vgcreate', '-q', VG, DISK);
  await must('lvcreate', '-qy', '--type', 'thin-pool', '-L', '4g', '--poolmetadatasize', '16m', '-n', POOL, VG);
  await must('lvchange', '-q', '--errorwhenfull', 'y', `${VG}/${POOL}`);
  // mkfs.xfs refuses filesystems below 300 MB
  await must('lvcreate', '-qy', '--thin', '--virtualsize', plan.fs === 'xfs' ? '512m' : '256m', '-n', 'root', `${VG}/${POOL}`);
  await mkfs(plan.fs, `/dev/${VG}/root`);
  // /boot is a plain LV (a partition on a real host); the state dir a thin LV like oVirt Node's /var
  await must('lvcreate', '-qy', '-L', '512m', '-n', BOOT_LV, VG);
  await mkfs(plan.fs, `/dev/${VG}/${BOOT_LV}`);
  await must('lvcreate', '-qy', '--thin', '--virtualsize', '1g', '-n', STATE_LV, `${VG}/${POOL}`);
  await mkfs(plan.fs, `/dev/${VG}/${STATE_LV}`);
  const fstab = await fs.readFile('/etc/fstab', 'utf8');
  const lines = [
    `/dev/${VG}/${BOOT_LV} /boot ${plan.fs} defaults,nofail,x-systemd.device-timeout=180 0 0`,
    `/dev/${VG}/${STATE_LV} ${STATE_DIR} ${plan.fs} defaults,nofail,x-systemd.device-timeout=180 0 0`,
  ];
  await fs.writeFile('/etc/fstab', `${fstab.trimEnd()}\n${lines.join('\n')}\n`);
  await must('systemctl', 'daemon-reload');
  for (const d of ['/boot', STATE_DIR]) {
    await fs.mkdir(d, { recursive: true });
    await must('mount', d);
  }
  await fs.chmod(STATE_DIR, 0o700);
  await must('sync');
  log(`setup: LVM layout done (${Math.round((Date.now() - t0) / 1000)} s)`);

  await fs.mkdir('/run/imgbased', { recursive: true });
  const first = await stageImage(plan, 0);
  const image = await openImage({ imagePath: first, workDir: '/run/imgbased' });
  const scratch = path.join(MNT, 'install');
  await fs.mkdir(scratch, { recursive: true });
  try {
    await must('mount', `/dev/${VG}/root`, scratch);
    await must('cp', '-a', '--', `${image.root}/.`, scratch);
    await must('cp', '-a', '--', `${image.root}/var/.`, '/var');
    await must('umount', scratch);
  } finally {
    await image.close();
  }
  await fs.mkdir('/etc/imgbased/trusted.d', { recursive: true });
  await fs.writeFile('/etc/imgbased/imgbased.conf',
    `[Storage]\nBackend=lvm\nVolumeGroup=${VG}\nThinPool=${POOL}\n[Upgrade]\nRequireSignature=true\n[Boot]\nAssessment=no\n`);
  await trustKeys(plan);
  const init = await cmd(['imgbased', 'init', '--from', 'root']);
  if (init.code !== 0) throw new Error(`imgbased init: ${init.stderr}`);
  log(`setup: imgbased init done (${Math.round((Date.now() - t0) / 1000)} s)`);

  // the administrator's change on the running layer, carried forward by every upgrade
  const layer = `${plan.images[0]?.nvr ?? ''}+1`;
  await must('mount', `/dev/${VG}/${layer}`, scratch);
  await fs.writeFile(path.join(scratch, 'etc', MARKER), `changed by the admin of ${plan.label}\n`);
  await must('umount', scratch);
  await must('sync');

  const state: AgentState = { phase: 'ready', run: 1, nextImage: 1, expectedMs: { ...plan.expectedMs } };
  await daemonUp();
  const img = await stageImage(plan, state.nextImage++);
  const t1 = Date.now();
  const id = await startOp('upgrade', img);
  const end = await waitTxn(id, 30 * 60_000);
  if (end !== 'succeeded') throw new Error(`the setup upgrade ${id} ${end}`);
  measured(state, 'upgrade', await historyOf(id), t1);
  log(`setup upgrade took ${state.samples?.upgrade?.[0] ?? '?'} ms`);
  await putCtl('snap/after-0.json', JSON.stringify(await snapshot()));
  await saveState(state);
  log(`setup done in ${Math.round((Date.now() - t0) / 1000)} s`);
  return state;
}

// ---------------------------------------------------------------------------------------------------------------
// runs

async function startRun(plan: CampaignPlan, state: AgentState): Promise<never> {
  const r = plan.runs[state.run - 1];
  if (!r) throw new Error(`no run ${state.run}`);
  const image = r.op === 'upgrade' ? await stageImage(plan, state.nextImage++) : null;
  state.expectedMs[r.op] = expectedMs(state.samples?.[r.op], plan.expectedMs[r.op]);
  const delayMs = cutDelayMs(r, state.expectedMs[r.op]);
  await kmsg(`run ${r.run} ${r.op}, ${r.cut} after ${delayMs} ms`);
  log(`run ${r.run}: ${r.op}${image ? ` ${path.basename(image)}` : ''}, cut ${r.cut} after ${delayMs} ms (${r.fraction} of ${state.expectedMs[r.op]} ms)`);
  const t0 = Date.now();
  state.phase = 'cut';
  state.cut = { op: r.op, cut: r.cut, delayMs, txn: '', image, startedAt: new Date(t0).toISOString(), t0 };
  await saveState(state); // before the call: a cut from here on is judged after the reboot
  if (r.cut === 'reset') {
    // the host cuts: it sends system_reset delayMs after it saw this, counting (like sysrq below) from before the call
    await putCtl(`arm-${r.run}.json`, JSON.stringify({ run: r.run, delayMs, op: r.op }) + '\n');
  }
  // the call runs while the cut's clock runs: a short operation (a rollback) can be cut before the call returns
  void startOp(r.op, image).then(async (txn) => {
    if (!state.cut) return;
    state.cut.txn = txn;
    await saveState(state);
  }, (e: unknown) => log(`run ${r.run}: the call failed: ${String(e)}`));
  if (r.cut === 'sysrq') {
    await sleep(Math.max(0, delayMs - (Date.now() - t0)));
    await fs.writeFile('/proc/sysrq-trigger', 'b');
  }
  // waiting for the host's reset (or the sysrq reboot to take effect)
  for (;;) await sleep(60_000);
}

async function journalRecords(dir: string): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for (const f of (await listDir(dir)).filter((x) => x.endsWith('.json') && !x.startsWith('.'))) {
    const r = await readJson<JournalRecord>(path.join(dir, f)).catch(() => null);
    if (r) out.push(r);
  }
  return out;
}

/** The transaction of kind `op` the daemon created at or after `t0` (ms), oldest first: the run's, if it got that far. */
function startedSince(records: readonly JournalRecord[], op: TortureOp, t0: number): JournalRecord | undefined {
  // a second of slack: createdAt has ms precision but the agent took t0 a moment before the call
  return records.filter((r) => r.kind === op && Date.parse(r.createdAt) >= t0 - 1000)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0];
}

async function historyOf(id: string): Promise<JournalRecord | null> {
  return id ? readJson<JournalRecord>(path.join(STATE_DIR, 'history', `${id}.json`)).catch(() => null) : null;
}

/** Learn the operation's duration on this machine: from `t0` (just before the call) to the finish the daemon recorded. */
function measured(state: AgentState, op: TortureOp, h: JournalRecord | null, t0: number): void {
  const end = h?.finishedAt ? Date.parse(h.finishedAt) : NaN;
  if (!Number.isFinite(end)) return;
  state.samples = { ...state.samples, [op]: addSample(state.samples?.[op], end - t0) };
}

function resultRow(plan: CampaignPlan, state: AgentState, step: string, j: Judgement, recovered: boolean, followUp: string, seconds: number, daemonRestarts: number): RunResult {
  const c = state.cut;
  return {
    run: state.run, fs: plan.fs, op: c?.op ?? 'upgrade', cut: c?.cut ?? 'sysrq', delayMs: c?.delayMs ?? 0, step,
    verdict: j.verdict, history: j.history, recovered, followUp, tempFiles: j.tempFiles, seconds, reasons: j.reasons, daemonRestarts,
  };
}

async function appendResult(row: RunResult): Promise<void> {
  const h = await fs.open(path.join(CTL, 'results.jsonl'), fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT);
  try {
    await h.write(JSON.stringify(row) + '\n');
    await h.sync();
  } finally {
    await h.close();
  }
}

/** After the reboot: recover, judge, follow up. Returns false when the campaign must stop (BROKEN). */
async function judgeRun(plan: CampaignPlan, state: AgentState): Promise<boolean> {
  const c = state.cut;
  if (!c) throw new Error('phase cut without cut facts');
  // a judged run has two rows in results.jsonl: follow-up pending, then its outcome
  const judged = parseResults(await fs.readFile(path.join(CTL, 'results.jsonl'), 'utf8').catch(() => '')).filter((r) => r.run === state.run);
  const last = judged[judged.length - 1];
  if (last?.followUp === 'pending') return resumeFollowUp(plan, state, last);
  const t0 = Date.now();
  await kmsg(`run ${state.run} judging`);
  const up = (await cmd(['systemctl', 'is-active', 'imgbased.service'])).stdout.trim();
  if (up === 'active' || up === 'activating') log(`run ${state.run}: WARNING the daemon was started before the journal was read`);
  for (const d of ['/boot', STATE_DIR]) {
    if ((await cmd(['findmnt', '-rn', d])).code !== 0) log(`run ${state.run}: ${d} is not mounted after the reboot`);
  }
  const atBoot = await journalRecords(path.join(STATE_DIR, 'journal'));
  await putCtl(`runs/${state.run}/journal-at-boot.json`, JSON.stringify(atBoot, null, 1));
  // the cut can come before the call returned the transaction's path: then the daemon's own records name it
  let id = c.txn || (startedSince(atBoot, c.op, c.t0)?.id ?? '');
  await daemonUp();
  if (!id) {
    id = startedSince(await journalRecords(path.join(STATE_DIR, 'history')), c.op, c.t0)?.id ?? '';
    if (id) log(`run ${state.run}: the cut came before the call returned; the daemon recorded it as ${id}`);
  }
  // the daemon's log of this boot (its start-up recovery), kept with the run
  const jl = await cmd(['journalctl', '-b', '-u', 'imgbased.service', '-o', 'short-monotonic', '--no-pager']);
  await putCtl(`runs/${state.run}/daemon-journal.txt`, jl.stdout + jl.stderr);
  const restarts = Number((await cmd(['systemctl', 'show', '-p', 'NRestarts', '--value', 'imgbased.service'])).stdout.trim()) || 0;
  if (restarts > 0) log(`run ${state.run}: the daemon was restarted ${restarts} times before it served (daemon-journal.txt)`);
  const journalAtBoot = atBoot.find((r) => r.id === id) ?? null;
  const history = await historyOf(id);
  if (history && history.recovered !== true && history.state === 'succeeded') measured(state, c.op, history, c.t0);
  const unfinishedAfter = id !== '' && (await listDir(path.join(STATE_DIR, 'journal'))).includes(`${id}.json`);
  const facts: TxnFacts = { id, journalAtBoot, history, unfinishedAfter };
  const pre = await readJson<Snapshot>(path.join(CTL, 'snap', `after-${state.run - 1}.json`));
  if (!pre) throw new Error(`no snapshot before run ${state.run}`);
  const post = await snapshot();
  await putCtl(`runs/${state.run}/post.json`, JSON.stringify(post));
  if (history) await putCtl(`runs/${state.run}/history.json`, JSON.stringify(history, null, 1));
  const j = judge(pre, post, facts);
  const step = stepAtCut(facts);
  const seconds = Math.round((Date.now() - t0) / 1000);
  log(`run ${state.run}: ${c.op} ${c.cut} +${c.delayMs} ms at ${step}: ${j.verdict} (history ${j.history})${j.reasons.length ? `: ${j.reasons.join('; ')}` : ''}`);
  const row = resultRow(plan, state, step, j, history?.recovered === true, 'pending', seconds, restarts);
  await appendResult(row);
  await kmsg(`run ${state.run} ${j.verdict} at ${step}`);
  if (j.verdict === 'BROKEN') return false;
  return followUpUpgrade(plan, state, post, row);
}

/**
 * Run N's follow-up upgrade did not finish: the host stopped qemu (a campaign interrupted and resumed with --dir) or
 * the agent failed during it. For the host that is one more power cut: the interrupted upgrade is judged against the run's
 * recovered state (runs/N/post.json) like any cut — OLD or NEW, never BROKEN. NEW is the follow-up done; after OLD
 * it runs again. The run's own verdict (already in results.jsonl) stands; the extra judgement goes to
 * runs/N/follow-up-cut.json.
 */
async function resumeFollowUp(plan: CampaignPlan, state: AgentState, row: RunResult): Promise<boolean> {
  const c = state.cut;
  if (!c) throw new Error('phase cut without cut facts');
  log(`run ${state.run}: its follow-up upgrade did not finish before the campaign stopped (resumed): judging that cut too`);
  const pre = await readJson<Snapshot>(path.join(CTL, 'runs', String(state.run), 'post.json'));
  if (!pre) throw new Error(`no snapshot after run ${state.run}'s recovery`);
  const ownId = c.txn || ((await readJson<JournalRecord>(path.join(CTL, 'runs', String(state.run), 'history.json')))?.id ?? '');
  const atBoot = await journalRecords(path.join(STATE_DIR, 'journal'));
  await daemonUp();
  // the follow-up is the latest upgrade created since the run started that is not the run's own transaction
  const rec = [...atBoot, ...(await journalRecords(path.join(STATE_DIR, 'history')))]
    .filter((r) => r.kind === 'upgrade' && r.id !== ownId && Date.parse(r.createdAt) >= c.t0 - 1000)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt)).pop();
  const id = rec?.id ?? '';
  const history = await historyOf(id);
  const unfinishedAfter = id !== '' && (await listDir(path.join(STATE_DIR, 'journal'))).includes(`${id}.json`);
  const post = await snapshot();
  const facts: TxnFacts = { id, journalAtBoot: atBoot.find((r) => r.id === id) ?? null, history, unfinishedAfter };
  const j = judge(pre, post, facts);
  const step = stepAtCut(facts);
  await putCtl(`runs/${state.run}/follow-up-cut.json`, JSON.stringify({ id, step, ...j }, null, 1));
  log(`run ${state.run}: the interrupted follow-up upgrade ${id || '(no record)'} at ${step}: ${j.verdict} (history ${j.history})` +
    `${j.reasons.length ? `: ${j.reasons.join('; ')}` : ''}`);
  if (j.verdict === 'BROKEN') {
    await appendResult({ ...row, followUp: `interrupted follow-up BROKEN: ${j.reasons.join('; ')}` });
    return false;
  }
  if (j.verdict === 'NEW' && history?.state === 'succeeded') {
    // it went through (or was rolled forward): that is the follow-up, judged NEW against the run's recovered state
    state.nextImage++; // the image state.json (saved before the run) points at is the one it staged
    await putCtl(`snap/after-${state.run}.json`, JSON.stringify(post));
    log(`run ${state.run}: follow-up upgrade succeeded (interrupted after it went through)`);
    await appendResult({ ...row, followUp: 'succeeded' });
    return true;
  }
  return followUpUpgrade(plan, state, post, row); // OLD: nothing of it is left, its image is staged again
}

/** The follow-up upgrade after a run's recovery: must succeed and read as NEW against the recovered state `post`. */
async function followUpUpgrade(plan: CampaignPlan, state: AgentState, post: Snapshot, row: RunResult): Promise<boolean> {
  let followUp = 'succeeded';
  const img = await stageImage(plan, state.nextImage++);
  const t1 = Date.now();
  try {
    const fid = await startOp('upgrade', img);
    const end = await waitTxn(fid, 30 * 60_000);
    const after = await snapshot();
    if (end !== 'succeeded') followUp = `upgrade ${end}`;
    else {
      const fh = await readJson<JournalRecord>(path.join(STATE_DIR, 'history', `${fid}.json`));
      const fj = judge(post, after, { id: fid, journalAtBoot: null, history: fh, unfinishedAfter: false });
      if (fj.verdict !== 'NEW') followUp = `not NEW: ${fj.reasons.join('; ')}`;
      else measured(state, 'upgrade', fh, t1);
    }
    await putCtl(`snap/after-${state.run}.json`, JSON.stringify(after));
  } catch (e) {
    followUp = `error: ${String(e)}`;
  }
  log(`run ${state.run}: follow-up upgrade ${followUp} in ${Math.round((Date.now() - t1) / 1000)} s`);
  await appendResult({ ...row, followUp });
  return followUp === 'succeeded';
}

export async function main(): Promise<number> {
  const plan = await readJson<CampaignPlan>(path.join(CTL, 'plan.json'));
  if (!plan) throw new Error(`no plan.json in ${CTL}`);
  checkVar = plan.varFiles === true;
  let state = await readJson<AgentState>(path.join(CTL, 'state.json'));
  await kmsg(`agent up, phase ${state?.phase ?? 'setup'} run ${state?.run ?? 0}`);
  if (state === null) state = await setup(plan);
  else if (await fs.access(path.join(CTL, 'reinstall')).then(() => true, () => false)) await reinstall(plan);
  if (state.phase === 'done' || state.phase === 'stopped') return state.phase === 'done' ? 0 : 3;
  for (;;) {
    if (state.phase === 'cut') {
      const ok = await judgeRun(plan, state);
      delete state.cut;
      if (!ok) {
        state.phase = 'stopped';
        await saveState(state);
        log(`run ${state.run}: stopping the campaign (disks and console kept by the host)`);
        return 3;
      }
      state.run++;
      state.phase = 'ready';
      await saveState(state);
    }
    if (state.run > plan.runs.length) {
      state.phase = 'done';
      await saveState(state);
      await kmsg('campaign done');
      return 0;
    }
    await startRun(plan, state);
  }
}

if (require.main === module) {
  main().then((rc) => process.exit(rc), async (e: unknown) => {
    log(`agent failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    await putCtl('agent-error.txt', String(e instanceof Error ? e.stack ?? e.message : e)).catch(() => undefined);
    process.exit(2);
  });
}
