#!/usr/bin/env node
/**
 * `imgbased`: the offline engine tool. Used at install time (kickstart %post: `imgbased init`, no bus running), by
 * the test suite, and for recovery by hand. Day-to-day administration goes through the daemon and `nodectl`.
 */
import * as fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { evaluateHealth } from '../check/health';
import { gatherFacts } from '../check/facts';
import { Engine } from '../engine';
import { CancelledError, ImgbasedError } from '../errors';
import { stderrLogger } from '../log';
import { acquireHostLock } from '../system/lock';
import type { Outcome } from '../transaction/runner';
import type { ProgressEvent } from '../transaction/types';
import { installedBaseOf } from '../update/installed';

export const EXIT = { ok: 0, failed: 1, usage: 2, checkProblems: 5, cancelled: 130 } as const;

interface GlobalOpts {
  sysroot: string;
  json: boolean;
  verbose: boolean;
}

function print(json: boolean, data: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text());
}

function progressLine(e: ProgressEvent): void {
  const bytes = e.bytesTotal > 0 ? ` ${(e.bytesDone / 1048576).toFixed(0)}/${(e.bytesTotal / 1048576).toFixed(0)} MiB` : '';
  process.stderr.write(`${new Date().toISOString()} [${String(e.percent).padStart(3)}%] ${e.step}: ${e.message}${bytes}\n`);
}

/** Throttle progress lines to one per step change or per second. */
function progressPrinter(): (e: ProgressEvent) => void {
  let last = 0;
  let lastStep = '';
  return (e) => {
    const now = Date.now();
    if (e.step !== lastStep || now - last > 1000 || e.percent === 100) {
      last = now;
      lastStep = e.step;
      progressLine(e);
    }
  };
}

async function openEngine(g: GlobalOpts): Promise<Engine> {
  return Engine.open({ sysroot: g.sysroot, log: stderrLogger(g.verbose ? 'debug' : 'warn') });
}

/**
 * Mutating commands take the host lock (held until the process exits) and finish an interrupted transaction
 * first, as the daemon does at start-up.
 */
async function openForChange(g: GlobalOpts): Promise<Engine> {
  const engine = await openEngine(g);
  const lock = await acquireHostLock(engine.paths.stateDir, 'imgbased (offline tool)');
  process.once('exit', () => {
    try {
      fs.rmSync(lock.file, { force: true });
    } catch (e) {
      process.stderr.write(`imgbased: could not remove ${lock.file}: ${String(e)}\n`);
    }
  });
  for (const r of await engine.recover()) {
    process.stderr.write(`recovered interrupted transaction ${r.id} (${r.kind}): ${r.state}\n`);
  }
  return engine;
}

function report(g: GlobalOpts, outcome: Outcome): number {
  const r = outcome.record;
  print(g.json, r, () => {
    const lines = [`transaction ${r.id} (${r.kind}): ${r.state}`];
    if (r.error) lines.push(`error: ${r.error.name}: ${r.error.message}`);
    for (const w of r.warnings) lines.push(`warning: ${w}`);
    return lines.join('\n') + '\n';
  });
  if (!outcome.error) return EXIT.ok;
  return outcome.error instanceof CancelledError ? EXIT.cancelled : EXIT.failed;
}

function withAbort(): AbortController {
  const ac = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('cancelling…\n');
    ac.abort();
  });
  return ac;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('imgbased')
    .description('Offline image-layer engine for oVirt Node (install-time init, recovery, tests).\n' +
      'Administrators normally use nodectl, which talks to the imgbased daemon.')
    .option('--sysroot <dir>', 'operate on the host tree rooted at DIR', '/')
    .option('--json', 'print machine-readable JSON', false)
    .option('-v, --verbose', 'log debug details to stderr', false)
    .exitOverride()
    .addHelpText('after', `
Exit status: 0 ok, 1 failed, 2 usage error, 5 check found problems, 130 cancelled.
Failpoints for tests: IMGBASED_FAILPOINTS=before:<step>|after:<step>|during:<step>[=crash|error],...`);
  const g = (): GlobalOpts => program.opts<GlobalOpts>();

  program.command('layout').description('show bases, layers, the running layer and the boot default').action(async () => {
    const engine = await openEngine(g());
    const s = await engine.state();
    const data = {
      bases: s.layout.bases.map((b) => ({ name: b.name, layers: b.layers.map((l) => l.name) })),
      current_layer: s.current,
      default_layer: s.defaultLayer,
      pinned: [...s.pinned],
    };
    print(g().json, data, () => s.layout.bases.map((b) =>
      `${b.name}\n${b.layers.map((l) => ` └─${l.name}${l.name === s.current ? ' (current)' : ''}${l.name === s.defaultLayer ? ' (default)' : ''}`).join('\n')}\n`).join(''));
  });

  program.command('init')
    .description('initialise the layout from the installed root LV (offline, at install time)')
    .requiredOption('--from <lv>', 'the installed root volume')
    .option('--nvr <nvr>', 'NVR of the installed image (default: read from the volume)')
    .action(async (o: { from: string; nvr?: string }) => {
      setExit(report(g(), await (await openForChange(g())).init(o.from, o.nvr ?? null, { onProgress: progressPrinter() })));
    });

  program.command('upgrade <image>')
    .description('install an image (squashfs with LiveOS/rootfs.img) as a new base and layer')
    .option('--allow-downgrade', 'install even if the image is not newer than every base', false)
    .addOption(new Option('--method <method>', 'how to write the base').choices(['tree', 'blocks', 'delta']))
    .option('--keep <n>', 'bases to keep after the upgrade', (v) => Number(v))
    .option('--skip-installed', 'succeed with nothing to do when a base with the image\'s NVR exists already (image-update packages)', false)
    .action(async (image: string, o: { allowDowngrade: boolean; method?: 'tree' | 'blocks' | 'delta'; keep?: number; skipInstalled: boolean }) => {
      const engine = await openForChange(g());
      if (o.skipInstalled) {
        const installed = await installedBaseOf(engine, image);
        if (installed !== null) {
          print(g().json, { installed, changed: false }, () => `${installed} is installed already (base ${installed}); nothing to do\n`);
          setExit(EXIT.ok);
          return;
        }
      }
      const ac = withAbort();
      setExit(report(g(), await engine.upgrade(image, {
        allowDowngrade: o.allowDowngrade, signal: ac.signal, onProgress: progressPrinter(),
        ...(o.method ? { method: o.method } : {}), ...(o.keep !== undefined ? { keepBases: o.keep } : {}),
      })));
    });

  program.command('rollback [layer]').description('boot the previous layer (or LAYER) by default').action(async (layer?: string) => {
    setExit(report(g(), await (await openForChange(g())).rollback(layer ?? null)));
  });

  program.command('cleanup').description('remove old bases, keeping N (never the running, default or pinned ones)')
    .option('--keep <n>', 'bases to keep', (v) => Number(v))
    .action(async (o: { keep?: number }) => {
      setExit(report(g(), await (await openForChange(g())).cleanup(o.keep ?? null)));
    });

  program.command('remove-base <nvr>').description('remove one base and its layers').action(async (nvr: string) => {
    setExit(report(g(), await (await openForChange(g())).removeBase(nvr)));
  });

  program.command('recover').description('finish an interrupted transaction (undo it, or roll it forward)').action(async () => {
    const engine = await openEngine(g());
    const lock = await acquireHostLock(engine.paths.stateDir, 'imgbased recover');
    const done = await engine.recover();
    await lock.release();
    print(g().json, done, () => (done.length ? done.map((r) => `${r.id} (${r.kind}): ${r.state}\n`).join('') : 'nothing to recover\n'));
  });

  program.command('check').description('health report').action(async () => {
    const rep = evaluateHealth(await gatherFacts(await openEngine(g())));
    print(g().json, rep, () => `Status: ${rep.status.toUpperCase()}\n` +
      rep.results.map((x) => `  ${x.group}: ${x.name} ... ${x.status.toUpperCase()} (${x.reason})\n`).join(''));
    setExit(rep.status === 'ok' ? EXIT.ok : EXIT.checkProblems);
  });

  program.command('history').description('finished transactions, newest first')
    .option('--limit <n>', 'at most N entries', (v) => Number(v), 20)
    .action(async (o: { limit: number }) => {
      const h = await (await openEngine(g())).history(o.limit);
      print(g().json, h, () => h.map((r) => `${r.createdAt} ${r.id} ${r.kind} ${r.state}${r.error ? `: ${r.error.message}` : ''}\n`).join(''));
    });

  for (const [verb, pinned] of [['pin', true], ['unpin', false]] as const) {
    program.command(`${verb} <layer>`).description(`${pinned ? 'protect' : 'stop protecting'} a layer from cleanup`)
      .action(async (layer: string) => {
        await (await openEngine(g())).setPinned(layer, pinned);
      });
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (e instanceof ImgbasedError) {
      process.stderr.write(`imgbased: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
      return e.code === 'InvalidArgument' || e.code === 'InvalidName' ? EXIT.usage : EXIT.failed;
    }
    process.stderr.write(`imgbased: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
