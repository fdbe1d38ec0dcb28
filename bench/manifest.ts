/**
 * Benchmark: buildManifest (src/image/manifest.ts) on a base-like tree vs the plain tools over the same tree.
 * Build: npx tsc -p tsconfig.build.json; run as root:
 *   node dist/bench/manifest.js [--files 20000] [--max-kib 16] [--large 20] [--large-mb 8] [--rounds 3] [--warm]
 *
 * The tree: `files` regular files of 0…max-kib KiB in 200 directories, `large` files of large-mb MiB, 500 symlinks,
 * 200 hard links, and a security.selinux label on every entry (set in one `setfattr --restore`), like a real base.
 * Each round runs, as separate processes, timed from spawn to exit and with their peak RSS (GNU time's %M):
 *   buildManifest   this script in --child mode, concurrency 1, 2, 4, 8 (default: min(4, CPUs)): walk, hash, getfattr
 *   tar /dev/null   `tar -cf /dev/null .` (GNU tar skips reading file data when the archive is /dev/null)
 *   tar | cat       `tar --xattrs --xattrs-include=* --acls -cf - . | cat >/dev/null` (reads data and xattrs)
 *   sha256sum       `find . -type f -exec sha256sum {} + >/dev/null`
 * Page cache: dropped before every run when /proc/sys/vm/drop_caches is writable ("cold"), else (or with --warm)
 * warm runs after one warm-up pass. Prints the median of the rounds and ratios; then how the xattrs are read (xargs+getfattr, as
 * xattrs.ts does) against `getfattr -R` and one getfattr per file (timed on a sample, extrapolated).
 * Not a test: nothing here asserts on time.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import { buildManifest } from '../src/image/manifest';
import { readXattrs } from '../src/image/xattrs';
import { run } from '../src/system/run';
import { arg, runMain } from './common';

const KiB = 1024;
const MiB = 1024 * KiB;
const LABEL = 'system_u:object_r:usr_t:s0';

interface Tree {
  readonly root: string;
  readonly entries: string[];
  readonly bytes: number;
  readonly files: number;
}

/** Deterministic sizes: 0…maxKiB KiB, spread evenly. */
async function buildTree(root: string, files: number, maxKiB: number, large: number, largeMb: number): Promise<Tree> {
  const pool = randomBytes(maxKiB * KiB + 4096);
  const entries: string[] = ['.'];
  let bytes = 0;
  for (let d = 0; d < 200; d++) {
    await mkdir(join(root, `d${d}`), { recursive: true });
    entries.push(`./d${d}`);
  }
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < files; i++) {
    const size = Math.floor(((i * 7919) % 1000) / 1000 * maxKiB * KiB);
    const rel = `d${i % 200}/f${i}`;
    entries.push(`./${rel}`);
    bytes += size;
    writes.push(writeFile(join(root, rel), pool.subarray(i % 4096, (i % 4096) + size)));
    if (writes.length >= 64) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  await mkdir(join(root, 'large'));
  entries.push('./large');
  for (let i = 0; i < large; i++) {
    await writeFile(join(root, `large/blob${i}`), randomBytes(largeMb * MiB));
    entries.push(`./large/blob${i}`);
    bytes += largeMb * MiB;
  }
  for (let i = 0; i < 500; i++) {
    await symlink(`../d${(i + 1) % 200}/f${i}`, join(root, `d${i % 200}/l${i}`));
    entries.push(`./d${i % 200}/l${i}`);
  }
  for (let i = 0; i < 200; i++) {
    await link(join(root, `d${i % 200}/f${i}`), join(root, `d${(i + 7) % 200}/h${i}`));
    entries.push(`./d${(i + 7) % 200}/h${i}`);
  }
  const dump = entries.map((e) => `# file: ${e}\nsecurity.selinux=0s${Buffer.from(LABEL).toString('base64')}\n\n`).join('');
  const dumpFile = join(root, '..', 'labels.dump');
  await writeFile(dumpFile, dump);
  await run(['setfattr', '-h', `--restore=${dumpFile}`], { cwd: root });
  return { root, entries, bytes, files: files + large };
}

/** Drop the page cache when allowed; true when it was dropped. */
async function dropCaches(): Promise<boolean> {
  try {
    await run(['sync']);
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

interface Sample {
  readonly seconds: number;
  readonly rssKiB: number;
}

/** Run a shell command under GNU time: wall seconds (from spawn to exit) and peak RSS in KiB. */
async function timed(cmd: string, cwd: string): Promise<Sample> {
  const t0 = process.hrtime.bigint();
  const { stderr } = await run(['/usr/bin/time', '-f', 'RSS %M', 'sh', '-c', cmd], { cwd });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /RSS (\d+)\s*$/.exec(stderr);
  return { seconds, rssKiB: m ? Number(m[1]) : NaN };
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** --child ROOT: build the manifest in this process, print {entries, seconds}. */
async function child(root: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  const m = await buildManifest(root, { concurrency: arg('concurrency', 4) });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(`${JSON.stringify({ entries: m.entries.length, seconds })}\n`);
}

async function xattrStrategies(tree: Tree): Promise<void> {
  const rels = tree.entries.map((e) => (e === '.' ? '' : e.slice(2)));
  const t0 = process.hrtime.bigint();
  const attrs = await readXattrs(tree.root, rels);
  const xargs = Number(process.hrtime.bigint() - t0) / 1e9;
  const labelled = attrs.filter((a) => a.length > 0).length;
  const recursive = await timed(`getfattr -R -P -h -d -m - -e base64 --absolute-names ${shq(tree.root)} >/dev/null`, tree.root);
  const sample = tree.entries.slice(0, 1000);
  const perFile = await timed(`for f in ${sample.map(shq).join(' ')}; do getfattr -h -d -m - -e base64 -- "$f"; done >/dev/null`, tree.root);
  const extrapolated = (perFile.seconds * tree.entries.length) / sample.length;
  console.log(`\nreading the xattrs of all ${tree.entries.length} entries (${labelled} labelled), warm cache:`);
  console.log(`  ${'xargs -0 getfattr (readXattrs, as used)'.padEnd(44)} ${xargs.toFixed(3).padStart(8)} s`);
  console.log(`  ${'getfattr -R -P (one process, crosses mounts)'.padEnd(44)} ${recursive.seconds.toFixed(3).padStart(8)} s`);
  console.log(`  ${'one getfattr per entry (1000, extrapolated)'.padEnd(44)} ${extrapolated.toFixed(3).padStart(8)} s`);
}

async function main(): Promise<void> {
  const childAt = process.argv.indexOf('--child');
  if (childAt >= 0) return child(process.argv[childAt + 1] ?? '.');
  if (process.getuid?.() !== 0) throw new Error('run as root (security.* xattrs, drop_caches)');
  const files = arg('files', 20000);
  const maxKiB = arg('max-kib', 16);
  const large = arg('large', 20);
  const largeMb = arg('large-mb', 8);
  const rounds = arg('rounds', 3);
  const work = await mkdtemp('/var/tmp/imgbased-bench-manifest-');
  try {
    const root = join(work, 'tree');
    await mkdir(root);
    const b0 = process.hrtime.bigint();
    const tree = await buildTree(root, files, maxKiB, large, largeMb);
    console.log(
      `tree: ${files} files of 0–${maxKiB} KiB + ${large} × ${largeMb} MiB, 500 symlinks, 200 hard links, ${tree.entries.length} entries, ` +
        `${(tree.bytes / MiB).toFixed(0)} MiB, built in ${(Number(process.hrtime.bigint() - b0) / 1e9).toFixed(1)} s`,
    );
    const self = `${shq(process.execPath)} ${shq(process.argv[1] ?? '')} --child ${shq(root)}`;
    const byDefault = Math.min(4, os.availableParallelism());
    const manifestRuns = [1, 2, 4, 8].map((c): [string, string] => [
      `buildManifest (concurrency ${c}${c === byDefault ? ', default here' : ''})`,
      `${self} --concurrency ${c} >/dev/null`,
    ]);
    const methods: Array<[string, string]> = [
      ...manifestRuns,
      ['tar -cf /dev/null', 'tar -cf /dev/null .'],
      ['tar --xattrs --acls -cf - | cat', "tar --xattrs --xattrs-include='*' --acls -cf - . | cat >/dev/null"],
      ['find -exec sha256sum {} +', 'find . -type f -exec sha256sum {} + >/dev/null'],
    ];
    const cold = process.argv.includes('--warm') ? false : await dropCaches();
    if (!cold) for (const [, cmd] of methods) await timed(cmd, root); // warm-up pass
    const samples = new Map<string, Sample[]>(methods.map(([name]) => [name, []]));
    for (let r = 0; r < rounds; r++) {
      for (const [name, cmd] of methods) {
        if (cold) await dropCaches();
        samples.get(name)?.push(await timed(cmd, root));
      }
    }
    const sec = (name: string): number => median((samples.get(name) ?? []).map((x) => x.seconds));
    const tarNull = sec('tar -cf /dev/null');
    const tarPipe = sec('tar --xattrs --acls -cf - | cat');
    const sha = sec('find -exec sha256sum {} +');
    const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
    console.log(
      `\nmedian of ${rounds} rounds, ${os.cpus().length} CPUs, load average ${load}, Node ${process.version}, ` +
        `page cache: ${cold ? 'dropped before every run (cold)' : 'warm'}`,
    );
    console.log(`${'what'.padEnd(46)} ${'s'.padStart(8)} ${'÷ tar /dev/null'.padStart(16)} ${'÷ tar|cat'.padStart(10)} ${'÷ sha256sum'.padStart(12)} ${'peak RSS'.padStart(10)}`);
    for (const [name] of methods) {
      const s = sec(name);
      const rss = Math.max(...(samples.get(name) ?? []).map((x) => x.rssKiB));
      console.log(
        `${name.padEnd(46)} ${s.toFixed(3).padStart(8)} ${(s / tarNull).toFixed(2).padStart(16)} ${(s / tarPipe).toFixed(2).padStart(10)} ` +
          `${(s / sha).toFixed(2).padStart(12)} ${`${(rss / 1024).toFixed(0)} MiB`.padStart(10)}`,
      );
    }
    await xattrStrategies(tree);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

runMain(main);
