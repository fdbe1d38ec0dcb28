/**
 * Benchmark: carryForwardEtc on a 20k-file /etc-like tree vs `rsync -a` of the same /etc into a fresh directory.
 * Build: npx tsc -p tsconfig.build.json; run (as root): node dist/bench/etc-carry.js [files=20000] [reps=3]
 * Prints one table measured in this run; the goal is carry/rsync ≤ 1.5. Not a test: nothing here asserts on time.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { carryForwardEtc, type EtcResult } from '../src/etc/carry-forward';
import { run } from '../src/system/run';
import { prng } from '../test/helpers/prng';


const IMAGE_TIME = new Date('2024-01-01T00:00:00Z');
const WORDS = 'option value enabled disabled path server port timeout include user group log level cache'.split(' ');

function text(rand: () => number, size: number): string {
  let s = '';
  while (s.length < size) {
    const w = WORDS[Math.floor(rand() * WORDS.length)] ?? 'x';
    s += rand() < 0.1 ? `# ${w} comment\n` : `${w}=${Math.floor(rand() * 1e6)}\n`;
  }
  return s.slice(0, size);
}

function fileSize(rand: () => number): number {
  const r = rand();
  if (r < 0.01) return 16384 + Math.floor(rand() * 49152);
  return 40 + Math.floor(Math.exp(rand() * Math.log(4000)));
}

interface Layout {
  files: string[];
  dirs: string[];
}

function accounts(n: number, extra: string[]): { passwd: string; group: string; shadow: string; gshadow: string } {
  const names = [...Array.from({ length: n }, (_, i) => `svc${i}`), ...extra];
  return {
    passwd: names.map((u, i) => `${u}:x:${900 - i}:${900 - i}::/var/lib/${u}:/sbin/nologin\n`).join(''),
    group: names.map((u, i) => `${u}:x:${900 - i}:\n`).join(''),
    shadow: names.map((u) => `${u}:!!:19000::::::\n`).join(''),
    gshadow: names.map((u) => `${u}:!::\n`).join(''),
  };
}

/** The old image's /usr/share/factory/etc: `files` regular files in ~1000 directories, plus symlinks. */
function buildFactory(root: string, files: number, rand: () => number): Layout {
  const layout: Layout = { files: [], dirs: [] };
  fs.mkdirSync(root, { recursive: true });
  const dirs = Math.max(1, Math.round(files / 20));
  for (let d = 0; d < dirs; d++) {
    const top = `d${d % 150}`;
    const rel = d < 150 ? top : `${top}/s${d}${rand() < 0.3 ? `/t${d}` : ''}`;
    fs.mkdirSync(path.join(root, rel), { recursive: true, mode: 0o755 });
    layout.dirs.push(rel);
  }
  for (let i = 0; i < files; i++) {
    const dir = layout.dirs[Math.floor(rand() * layout.dirs.length)] ?? '';
    const rel = `${dir}/f${i}.conf`;
    fs.writeFileSync(path.join(root, rel), text(rand, fileSize(rand)), { mode: rand() < 0.1 ? 0o600 : 0o644 });
    layout.files.push(rel);
    if (rand() < 0.03) fs.symlinkSync(`f${i}.conf`, path.join(root, `${dir}/l${i}`));
  }
  const acc = accounts(60, []);
  for (const [name, body] of Object.entries(acc)) fs.writeFileSync(path.join(root, name), body, { mode: 0o644 });
  for (const rel of [...layout.files, ...layout.dirs, 'passwd', 'group', 'shadow', 'gshadow']) {
    fs.utimesSync(path.join(root, rel), IMAGE_TIME, IMAGE_TIME);
  }
  return layout;
}

async function cpa(from: string, to: string): Promise<void> {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  await run(['cp', '-a', '--no-target-directory', from, to]);
}

/** ~5% user changes: 2% content edits, 0.5% same-size edits, 0.5% chmod, 1% added, 1% deleted. */
function userEdits(etc: string, layout: Layout, rand: () => number): void {
  for (const rel of layout.files) {
    const p = path.join(etc, rel);
    const r = rand();
    if (r < 0.02) fs.appendFileSync(p, 'user=edit\n');
    else if (r < 0.025) {
      const b = fs.readFileSync(p);
      b[0] = b[0] === 0x23 ? 0x24 : 0x23;
      fs.writeFileSync(p, b);
    } else if (r < 0.03) fs.chmodSync(p, 0o640);
    else if (r < 0.04) fs.rmSync(p);
    else if (r < 0.05) fs.writeFileSync(`${p}.local`, 'local=1\n');
  }
  fs.appendFileSync(path.join(etc, 'passwd'), 'alice:x:1000:1000::/home/alice:/bin/bash\n');
  fs.appendFileSync(path.join(etc, 'group'), 'alice:x:1000:\n');
}

/** ~5% upstream changes in the new image, plus two new system accounts. */
function upstreamEdits(factory: string, layout: Layout, rand: () => number): void {
  for (const rel of layout.files) {
    if (rand() < 0.05 && fs.existsSync(path.join(factory, rel))) {
      fs.writeFileSync(path.join(factory, rel), text(rand, fileSize(rand)));
    }
  }
  const acc = accounts(60, ['newsvc', 'other']);
  for (const [name, body] of Object.entries(acc)) fs.writeFileSync(path.join(factory, name), body);
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const files = Number(process.argv[2] ?? 20000);
  const reps = Number(process.argv[3] ?? 3);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'etc-carry-bench-'));
  try {
    const rand = prng(42);
    const oldRoot = path.join(work, 'old');
    const newTemplate = path.join(work, 'new-template');
    const t0 = process.hrtime.bigint();
    const layout = buildFactory(path.join(oldRoot, 'usr/share/factory/etc'), files, rand);
    await cpa(path.join(oldRoot, 'usr/share/factory/etc'), path.join(oldRoot, 'etc'));
    userEdits(path.join(oldRoot, 'etc'), layout, rand);
    await cpa(path.join(oldRoot, 'usr/share/factory/etc'), path.join(newTemplate, 'usr/share/factory/etc'));
    upstreamEdits(path.join(newTemplate, 'usr/share/factory/etc'), layout, rand);
    await cpa(path.join(newTemplate, 'usr/share/factory/etc'), path.join(newTemplate, 'etc'));
    const entries = (await run(['find', path.join(oldRoot, 'etc')])).stdout.split('\n').length - 2;
    console.log(`tree: ${entries} entries in old /etc (${files} factory files), built in ${ms(t0).toFixed(0)} ms`);

    const times: Record<string, number[]> = { rsyncA: [], rsyncAAXH: [], carry: [], carryFull: [] };
    let last: EtcResult | undefined;
    for (let i = 0; i < reps; i++) {
      for (const [key, flags] of [['rsyncA', '-a'], ['rsyncAAXH', '-aAXH']] as const) {
        const dst = path.join(work, `rsync-${key}-${i}`);
        const s = process.hrtime.bigint();
        await run(['rsync', flags, path.join(oldRoot, 'etc') + '/', dst + '/']);
        times[key]?.push(ms(s));
      }
      for (const [key, quickCheck] of [['carry', true], ['carryFull', false]] as const) {
        const newRoot = path.join(work, `new-${key}-${i}`);
        await cpa(newTemplate, newRoot);
        const s = process.hrtime.bigint();
        last = await carryForwardEtc({ oldRoot, newRoot, quickCheck });
        times[key]?.push(ms(s));
      }
    }
    const base = median(times.rsyncA ?? []);
    const rows: Array<[string, number]> = [
      ['rsync -a old/etc → fresh dir', base],
      ['rsync -aAXH old/etc → fresh dir', median(times.rsyncAAXH ?? [])],
      ['carryForwardEtc (quick check, default)', median(times.carry ?? [])],
      ['carryForwardEtc (quickCheck: false)', median(times.carryFull ?? [])],
    ];
    console.log(`\nmedian of ${reps} runs, ${os.cpus().length} CPUs, tmpdir ${os.tmpdir()}`);
    console.log(`${'what'.padEnd(42)} ${'ms'.padStart(9)} ${'÷ rsync -a'.padStart(11)}`);
    for (const [what, t] of rows) {
      console.log(`${what.padEnd(42)} ${t.toFixed(1).padStart(9)} ${(t / base).toFixed(2).padStart(11)}`);
    }
    if (last !== undefined) {
      const c = last.counts;
      console.log(
        `\nlast result: scanned ${c.scanned}, carried ${c.carried}, changed ${c.changed}, added ${c.added}, ` +
          `tookNew ${c.tookNew}, keptDeleted ${c.keptDeleted}, conflicts ${c.conflicts}, ` +
          `accounts +${last.accounts?.addedUsers.length ?? 0} users`,
      );
    }
    console.log(`goal carry ÷ rsync -a ≤ 1.5: ${median(times.carry ?? []) / base <= 1.5 ? 'met' : 'NOT met'}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
