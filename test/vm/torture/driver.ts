/**
 * Power-cut torture (issue 11), the host half: `scripts/torture-vm.sh` compiles the tree and runs this as root.
 *
 *   node dist/test/vm/torture/driver.js [--runs N | --short] [--fs ext4|xfs] [--seed S] [--dir DIR] [--cpus N] [--mem M]
 *
 * One campaign = one directory (default test-artifacts/torture/<fs>-s<seed>-<time>/) holding everything that must
 * outlive a run: the guest's root disk (a qcow2 overlay of the cached image, kept across runs, unlike run-in-vm.sh's
 * throw-away one), the LVM disk, the console log of every boot, the QMP socket, and the ctl share (plan, the agent's
 * state, snapshots, results). One qemu process lives for the whole campaign: the guest's reboots (sysrq-b) and the
 * host's `system_reset` restart the guest on the same disks, and the image's runner starts the agent at every boot.
 *
 * Disks use cache=writeback: qemu honours the guest's flushes. A `system_reset` or a sysrq-b reboot loses what the
 * guest kernel had not written to its virtual disks (page cache, unflushed dm-thin metadata, the ext4/xfs journal
 * tail): exactly what a power cut loses on a host whose disks honour flushes. What a lying or reordering drive cache
 * would lose is not modelled (docs/DURABILITY.md).
 *
 * At the end: results.csv (also copied to test-artifacts/torture/<label>.csv) and the summary table. Exit 0 when every
 * run is OLD or NEW, every follow-up upgrade succeeded and the daemon started at once after every cut; 1 otherwise
 * (a BROKEN run stops the campaign; its directory, disks and console log are kept). The disks are kept (a campaign can be extended with a larger --runs);
 * --clean deletes them after a campaign where every run passed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { buildTestImage, createTestSigningKey } from '../../../src/image/test-image-builder';
import { run } from '../../../src/system/run';
import type { CampaignPlan } from './agent';
import { formatSummary, parseResults, summarize, toCsv } from './report';
import { imagesNeeded, makeSchedule, parseSeed, shortSchedule, type PlannedRun, type Progress } from './schedule';

const REPO = path.resolve(__dirname, '../../../..');

interface Options {
  runs: number;
  /** --runs was given: a resumed campaign is extended to it (else it keeps the runs it has). */
  runsGiven: boolean;
  fs: 'ext4' | 'xfs';
  seed: number;
  dir: string;
  cache: string;
  cpus: number;
  mem: string;
  clean: boolean;
  /** CI's short campaign: shortSchedule() instead of the seeded one. */
  short: boolean;
  /** Seconds without a new arm/result/state before the campaign is declared stuck. */
  stall: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    runs: 50, runsGiven: false, fs: 'ext4', seed: Math.floor(Date.now() / 1000) % 100000, dir: '', cache: process.env['IMGBASED_VM_CACHE'] ?? '/var/cache/imgbased-vm',
    cpus: Number(process.env['VM_CPUS'] ?? 2), mem: process.env['VM_MEM'] ?? '2G', clean: false, short: false, stall: 1800,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--runs') {
      o.runs = Number(v());
      o.runsGiven = true;
    } else if (a === '--fs') {
      const f = v();
      if (f !== 'ext4' && f !== 'xfs') throw new Error('--fs ext4|xfs');
      o.fs = f;
    } else if (a === '--seed') o.seed = parseSeed(v());
    else if (a === '--dir') o.dir = path.resolve(v());
    else if (a === '--cache') o.cache = v();
    else if (a === '--cpus') o.cpus = Number(v());
    else if (a === '--mem') o.mem = v();
    else if (a === '--clean') o.clean = true;
    else if (a === '--short') o.short = true;
    else if (a === '--stall') o.stall = Number(v());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a positive integer');
  if (o.short) o.runs = shortSchedule().length;
  if (!o.dir) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    o.dir = path.join(REPO, 'test-artifacts/torture', `${o.fs}-${o.short ? 'short' : `s${o.seed}`}-${stamp}`);
  }
  return o;
}

function say(msg: string): void {
  process.stdout.write(`[torture ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

/** One QMP command on a fresh connection (greeting, qmp_capabilities, the command); resolves with the reply. */
export function qmp(socket: string, execute: string, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let buf = '';
    let stage = 0;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`QMP ${execute}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        if (stage === 0 && 'QMP' in msg) {
          stage = 1;
          c.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (stage === 1 && 'return' in msg) {
          stage = 2;
          c.write(JSON.stringify({ execute }) + '\n');
        } else if (stage === 2) {
          clearTimeout(timer);
          c.end();
          if ('error' in msg) reject(new Error(`QMP ${execute}: ${JSON.stringify(msg['error'])}`));
          else resolve(msg['return']);
        }
      }
    });
  });
}

function nvrOf(k: number): string {
  return `ovirt-node-ng-4.6.${k}-0.20260101.0`;
}

/** The campaign's signed images (built on the host: under emulation each would cost the guest much longer). */
async function buildImages(dir: string, from: number, count: number, fsType: 'ext4' | 'xfs', keyName = 'key'): Promise<{ images: CampaignPlan['images']; trustedKey: string }> {
  const keyDir = path.join(dir, keyName);
  await fs.mkdir(keyDir, { recursive: true });
  const key = await createTestSigningKey(keyDir);
  const images: Array<{ nvr: string; path: string }> = [];
  const t0 = Date.now();
  for (let k = from; k < count; k++) {
    const nvr = nvrOf(k);
    const built = await buildTestImage({
      outDir: path.join(dir, 'images'), nvr, sign: key, fsType,
      // every image changes a file, a factory /etc file and a few MiB of data: the delta write has work to do
      files: {
        'usr/lib/torture/index': `${k}\n`,
        // migrate-var copies it to the shared /var: a finished upgrade must leave it there, complete
        [`var/lib/torture/image-${nvr}`]: `${nvr}\n`,
        'usr/lib/torture/payload.bin': { kind: 'generated', sizeBytes: 3 * 1024 * 1024, compressibility: 0.3 },
      },
      etcFiles: { 'torture.conf': `image ${k}\n` },
    });
    images.push({ nvr, path: built.imagePath });
  }
  say(`built ${count - from} signed ${fsType} images in ${Math.round((Date.now() - t0) / 1000)} s`);
  return { images, trustedKey: path.join(key.trustedKeysDir, 'test.asc') };
}

/** Extra 9p shares for symlinks of the repo that point outside it (a worktree's node_modules): [tag, real path]. */
async function outsideLinks(): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const n of ['node_modules']) {
    const p = path.join(REPO, n);
    const st = await fs.lstat(p).catch(() => null);
    if (st?.isSymbolicLink()) out.push([`vmx${out.length}`, await fs.realpath(p)]);
  }
  return out;
}

function qemuArgs(o: Options, ctl: string, accel: string, extra: ReadonlyArray<[string, string]>): string[] {
  const kvm = accel === 'kvm';
  const append = 'root=/dev/vda rw fsck.mode=skip console=ttyS0,115200 panic=-1 quiet loglevel=4 imgbased.vm=run ' +
    'systemd.mask=serial-getty@ttyS0.service';
  return [
    '-machine', 'q35', '-accel', kvm ? 'kvm' : 'tcg,thread=multi,tb-size=512', '-cpu', kvm ? 'host,-arch-capabilities' : 'max',
    '-m', o.mem, '-smp', String(o.cpus), '-nodefaults', '-no-user-config', '-display', 'none',
    // no -no-reboot: the guest's reboots and system_reset restart it on the same disks
    '-chardev', `file,id=con,path=${path.join(o.dir, 'console.log')},append=on`, '-serial', 'chardev:con',
    '-qmp', `unix:${path.join(o.dir, 'qmp.sock')},server=on,wait=off`,
    '-kernel', path.join(o.cache, 'vmlinuz'), '-initrd', path.join(o.cache, 'initrd.img'), '-append', append,
    '-drive', `file=${path.join(o.dir, 'root.qcow2')},format=qcow2,if=none,id=root,cache=writeback,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=root,serial=imgbased-root',
    '-drive', `file=${path.join(o.dir, 'lvm.img')},format=raw,if=none,id=lvm,cache=writeback,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=lvm,serial=imgbased-lvm',
    '-virtfs', `local,path=${ctl},mount_tag=vmctl,security_model=none,id=vmctl`,
    '-virtfs', `local,path=${REPO},mount_tag=vmwork,security_model=none,id=vmwork`,
    ...extra.flatMap(([tag, p]) => ['-virtfs', `local,path=${p},mount_tag=${tag},security_model=none,id=${tag}`]),
    '-device', 'virtio-rng-pci', '-nic', 'none',
  ];
}

async function detectAccel(): Promise<string> {
  const env = process.env['VM_ACCEL'];
  if (env === 'kvm' || env === 'tcg') return env;
  const kmod = (await exists('/sys/module/kvm_intel')) || (await exists('/sys/module/kvm_amd'));
  return kmod && (await exists('/dev/kvm')) ? 'kvm' : 'tcg';
}

/** Console lines of one run (between the agent's kmsg markers), for a BROKEN run's directory. */
async function consoleOfRun(consoleLog: string, runNo: number): Promise<string> {
  const lines = (await fs.readFile(consoleLog, 'latin1').catch(() => '')).split('\n');
  const start = lines.findIndex((l) => l.includes(`torture: run ${runNo} `));
  return (start < 0 ? lines : lines.slice(Math.max(0, start - 5))).join('\n');
}

/**
 * More runs for an existing campaign (same seed: the schedule's first runs are the same), and the images the rest of
 * it needs (imagesNeeded: a resumed campaign can need more than planned), signed with a new key the agent trusts too;
 * the agent installs the daemon again from the current tree before it goes on. `progress`: the agent's state.json
 * (the whole document: a finished campaign's is written back as ready to go on).
 */
async function extend(o: Options, ctl: string, plan: CampaignPlan, runs: readonly PlannedRun[], need: number, progress: Progress | null): Promise<void> {
  if (JSON.stringify(runs.slice(0, plan.runs.length)) !== JSON.stringify(plan.runs)) throw new Error('the schedule does not extend the plan');
  let next: CampaignPlan = { ...plan, runs, varFiles: true };
  if (need > plan.images.length) {
    const keys = plan.trustedKeys ?? [plan.trustedKey];
    const built = await buildImages(o.dir, plan.images.length, need, plan.fs, `key${keys.length + 1}`);
    next = { ...next, images: [...plan.images, ...built.images], trustedKeys: [...keys, built.trustedKey] };
  }
  await fs.writeFile(path.join(ctl, 'plan.json'), JSON.stringify(next, null, 1) + '\n');
  await fs.writeFile(path.join(ctl, 'reinstall'), `${new Date().toISOString()}\n`);
  if (progress?.phase === 'done' && runs.length > plan.runs.length) {
    await fs.writeFile(path.join(ctl, 'state.json'), JSON.stringify({ ...progress, phase: 'ready' }, null, 1) + '\n');
  }
  await fs.writeFile(path.join(o.dir, 'schedule.csv'),
    ['run,op,cut,fraction', ...runs.map((r) => `${r.run},${r.op},${r.cut},${r.fraction}`)].join('\n') + '\n');
  say(`the campaign has ${runs.length} runs and ${next.images.length} images; the agent installs the daemon again from the current tree`);
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const ctl = path.join(o.dir, 'ctl');
  const label = path.basename(o.dir);
  await fs.mkdir(ctl, { recursive: true });

  if (!(await exists(path.join(ctl, 'plan.json')))) {
    say(`campaign ${label}: ${o.runs} runs, ${o.fs}, seed ${o.seed}, dir ${o.dir}`);
    const runs = o.short ? shortSchedule() : makeSchedule(o.seed, o.runs);
    const { images, trustedKey } = await buildImages(o.dir, 0, imagesNeeded(runs, null), o.fs);
    const plan: CampaignPlan = {
      label, fs: o.fs, seed: o.seed, runs, images, trustedKey,
      // first guesses (a quiet 2-CPU TCG host, session 5); the agent replaces them with what it measures
      expectedMs: { upgrade: 40_000, rollback: 1_000, cleanup: 5_000 },
      varFiles: true,
    };
    await fs.writeFile(path.join(ctl, 'plan.json'), JSON.stringify(plan, null, 1) + '\n');
    await fs.writeFile(path.join(o.dir, 'schedule.csv'),
      ['run,op,cut,fraction', ...runs.map((r) => `${r.run},${r.op},${r.cut},${r.fraction}`)].join('\n') + '\n');
  } else {
    const plan = JSON.parse(await fs.readFile(path.join(ctl, 'plan.json'), 'utf8')) as CampaignPlan;
    say(`campaign ${label} resumed: plan.json has ${plan.runs.length} runs (seed ${plan.seed}, ${plan.fs}), dir ${o.dir}`);
    o.seed = plan.seed;
    o.fs = plan.fs;
    const runs = o.runsGiven && o.runs > plan.runs.length && !o.short ? makeSchedule(plan.seed, o.runs) : plan.runs;
    o.runs = runs.length;
    const progress = await fs.readFile(path.join(ctl, 'state.json'), 'utf8').then((t) => JSON.parse(t) as Progress, () => null);
    const need = imagesNeeded(runs, progress);
    if (runs.length > plan.runs.length || need > plan.images.length) await extend(o, ctl, plan, runs, need, progress);
  }
  // what the image's runner sources and runs at every boot (see test/vm/build-image.sh)
  const extra = await outsideLinks();
  const mounts = extra.map(([tag, p]) =>
    `mkdir -p '${p}'; mountpoint -q '${p}' || mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose ${tag} '${p}'\n`).join('');
  await fs.writeFile(path.join(ctl, 'cmd.sh'),
    `set -e\n${mounts}cd '${REPO}'\nexport TORTURE_CTL=/run/imgbased-vm\nexec node dist/test/vm/torture/agent.js\n`);
  await fs.writeFile(path.join(ctl, 'env'), `VM_WORKDIR='${REPO}'\nVM_CMD_TIMEOUT=604800\nVM_9P_CACHE=loose\n`);
  await fs.rm(path.join(ctl, 'rc'), { force: true });
  await fs.rm(path.join(ctl, 'agent-error.txt'), { force: true }); // a resumed campaign's earlier failure

  if (!(await exists(path.join(o.dir, 'root.qcow2')))) {
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', path.join(o.cache, 'root.img'), path.join(o.dir, 'root.qcow2')]);
    await run(['truncate', '-s', '20G', path.join(o.dir, 'lvm.img')]);
  }

  const accel = await detectAccel();
  const pdeath = (await run(['setpriv', '--help']).then((r) => r.stdout.includes('pdeathsig'), () => false)) ? ['setpriv', '--pdeathsig', 'KILL'] : [];
  const argv = [...pdeath, 'qemu-system-x86_64', ...qemuArgs(o, ctl, accel, extra)];
  const qlog = await fs.open(path.join(o.dir, 'qemu.log'), 'a');
  const [bin, ...rest] = argv;
  const q: ChildProcess = spawn(bin as string, rest, { stdio: ['ignore', qlog.fd, qlog.fd] });
  let qemuExit: number | null | undefined;
  q.on('exit', (code) => {
    qemuExit = code;
  });
  const stop = (): void => {
    if (qemuExit === undefined && q.pid) process.kill(q.pid, 'SIGKILL');
  };
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    stop();
    process.exit(130);
  });
  say(`qemu pid ${q.pid} (${accel}, ${o.cpus} cpu, ${o.mem}, cache=writeback)`);

  const t0 = Date.now();
  let lastEvent = Date.now();
  // a resumed campaign: the cuts already made are not made again
  const armed = new Set<number>((await fs.readdir(ctl)).map((f) => /^reset-(\d+)\.json$/.exec(f)?.[1]).filter((x): x is string => x !== undefined).map(Number));
  let seen = 0;
  let stateText = '';
  let stuck = false;
  while (qemuExit === undefined) {
    await sleep(50); // the reset's delay counts from when the agent armed it: see the arm file soon
    for (const f of await fs.readdir(ctl).catch(() => [] as string[])) {
      const m = /^arm-(\d+)\.json$/.exec(f);
      if (!m || armed.has(Number(m[1]))) continue;
      const n = Number(m[1]);
      armed.add(n);
      lastEvent = Date.now();
      const arm = JSON.parse(await fs.readFile(path.join(ctl, f), 'utf8')) as { delayMs: number; op?: string; txn?: string };
      await sleep(arm.delayMs);
      const at = new Date().toISOString();
      await qmp(path.join(o.dir, 'qmp.sock'), 'system_reset');
      await fs.writeFile(path.join(ctl, `reset-${n}.json`), JSON.stringify({ run: n, delayMs: arm.delayMs, at }) + '\n');
      say(`run ${n}: system_reset ${arm.delayMs} ms after the ${arm.op ?? arm.txn ?? ''} call was sent`);
    }
    const results = parseResults(await fs.readFile(path.join(ctl, 'results.jsonl'), 'utf8').catch(() => ''));
    const done = results.filter((r) => r.followUp !== 'pending');
    if (results.length + done.length !== seen) {
      seen = results.length + done.length;
      lastEvent = Date.now();
      const r = results[results.length - 1];
      if (r) say(`run ${r.run}/${o.runs}: ${r.op} ${r.cut} +${r.delayMs} ms at ${r.step}: ${r.verdict} (history ${r.history}), follow-up ${r.followUp}${r.reasons.length ? ` — ${r.reasons.join('; ')}` : ''}`);
    }
    const st = await fs.readFile(path.join(ctl, 'state.json'), 'utf8').catch(() => '');
    if (st !== stateText) {
      stateText = st;
      lastEvent = Date.now();
    }
    if (Date.now() - lastEvent > o.stall * 1000) {
      say(`no progress for ${o.stall} s: stopping qemu (disks and console kept)`);
      stuck = true;
      stop();
      break;
    }
  }
  while (qemuExit === undefined) await sleep(200);
  await qlog.close();
  const rc = (await fs.readFile(path.join(ctl, 'rc'), 'utf8').catch(() => '')).trim();
  const minutes = ((Date.now() - t0) / 60000).toFixed(1);
  say(`qemu exited (${qemuExit}); agent status ${rc || '(none)'}; ${minutes} min`);
  const err = await fs.readFile(path.join(ctl, 'agent-error.txt'), 'utf8').catch(() => '');
  if (err) say(`agent error: ${err}`);

  const rows = parseResults(await fs.readFile(path.join(ctl, 'results.jsonl'), 'utf8').catch(() => ''));
  const csv = toCsv(rows);
  await fs.writeFile(path.join(o.dir, 'results.csv'), csv);
  await fs.writeFile(path.join(REPO, 'test-artifacts/torture', `${label}.csv`), csv);
  const summary = summarize(rows);
  const text = formatSummary(summary, `${label} (${minutes} min wall)`);
  await fs.writeFile(path.join(o.dir, 'summary.txt'), text);
  await fs.writeFile(path.join(REPO, 'test-artifacts/torture', `${label}.summary.txt`), text);
  process.stdout.write('\n' + text);

  for (const r of rows.filter((x) => x.verdict === 'BROKEN')) {
    const d = path.join(o.dir, `broken-run-${r.run}`);
    await fs.mkdir(d, { recursive: true });
    await fs.writeFile(path.join(d, 'console.log'), await consoleOfRun(path.join(o.dir, 'console.log'), r.run));
    await fs.writeFile(path.join(d, 'reasons.txt'), r.reasons.join('\n') + '\n');
  }
  const ok = !stuck && rc === '0' && rows.length === o.runs && summary.total.BROKEN === 0 && summary.followUpFailures === 0 &&
    summary.daemonStartFailures === 0;
  if (ok && o.clean) {
    await fs.rm(path.join(o.dir, 'lvm.img'), { force: true });
    await fs.rm(path.join(o.dir, 'root.qcow2'), { force: true });
    await fs.rm(path.join(o.dir, 'images'), { recursive: true, force: true });
  } else {
    say(`kept: ${o.dir} (lvm.img, root.qcow2, console.log, ctl/)${ok ? '' : ' for inspection'}`);
  }
  return ok ? 0 : 1;
}

if (require.main === module) {
  main().then((rc) => process.exit(rc), (e: unknown) => {
    process.stderr.write(`torture driver: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(2);
  });
}
