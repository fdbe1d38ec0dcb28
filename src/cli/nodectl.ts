#!/usr/bin/env node
/**
 * nodectl — the administrator's tool for oVirt Node layers. A thin D-Bus client of the imgbased daemon
 * (org.ovirt.Node): it never touches LVM or /boot. Only commander and dbus-next load at start-up; the progress bar
 * loads when a long command needs it.
 */
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { Variant } from 'dbus-next';
import { TRANSACTION_IFACE } from '../dbus/api';
import { EXIT, NodeClient, NodectlError, plain } from './nodectl/client';
import type { CheckRow, LayerRow } from './nodectl/render';
import { checkData, infoData, renderCheck, renderHistory, renderInfo, renderLayers } from './nodectl/render';

interface Global {
  json: boolean;
  machineReadable: boolean;
}

const out = (text: string): void => {
  process.stdout.write(text);
};

function printJson(data: unknown): void {
  out(JSON.stringify(data, null, 2) + '\n');
}

/** Follow a transaction to its end with a live bar (TTY) or timestamped lines; returns the exit code. */
async function follow(client: NodeClient, txPath: string, quiet: boolean): Promise<number> {
  const tty = process.stderr.isTTY === true && !quiet;
  let render: (percent: number, step: string, message: string, done: number, total: number) => void;
  let stop = (): void => undefined;
  if (tty) {
    const { SingleBar } = await import('cli-progress');
    const bar = new SingleBar({
      format: ' {bar} {percentage}% | {step} | {message} {bytes}| ETA {eta_formatted}',
      hideCursor: true,
      stream: process.stderr,
    });
    bar.start(100, 0, { step: '', message: '', bytes: '' });
    render = (percent, step, message, done, total) =>
      bar.update(percent, { step, message, bytes: total > 0 ? `${(done / 1048576).toFixed(0)}/${(total / 1048576).toFixed(0)} MiB ` : '' });
    stop = () => bar.stop();
  } else {
    let last = '';
    render = (percent, step, message) => {
      const line = `[${String(percent).padStart(3)}%] ${step}: ${message}`;
      if (line !== last && !quiet) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      last = line;
    };
  }
  const { finished } = await client.watch(txPath, render);
  process.once('SIGINT', () => {
    stop();
    process.stderr.write(`\nDetached; the transaction continues. Follow it with "nodectl watch", stop it with "nodectl cancel".\n`);
    client.close();
    process.exit(EXIT.cancelled);
  });
  const [ok, name, message] = await finished;
  stop();
  if (ok) return EXIT.ok;
  throw new NodectlError(name, message, name === 'org.ovirt.Node.Error.Cancelled' ? EXIT.cancelled : EXIT.failed);
}

async function startAndFollow(client: NodeClient, member: string, signature: string, body: unknown[], g: Global): Promise<number> {
  const [txPath] = await client.layers(member, signature, body);
  if (typeof txPath !== 'string') throw new NodectlError('', `${member} returned no transaction`, EXIT.failed);
  const code = await follow(client, txPath, g.json);
  if (g.json) printJson(await client.properties(txPath, TRANSACTION_IFACE));
  else out(`${member} finished: ${path.basename(txPath)}\n`);
  return code;
}

export function buildProgram(run: (fn: (client: NodeClient) => Promise<number>) => void): Command {
  const program = new Command('nodectl')
    .description('Manage the image layers of an oVirt Node host (through the imgbased daemon).')
    .option('--json', 'print JSON', false)
    .option('--machine-readable', 'print JSON (same as --json, as oVirt nodectl spelled it)', false)
    .exitOverride()
    .addHelpText('after', `
Exit status:
  0 ok, 1 failed, 2 usage error, 3 not authorized, 4 busy (another transaction runs),
  5 check found problems, 130 cancelled (or detached with Ctrl-C).

Examples:
  nodectl info                       bootloader entries, layers, the current layer
  nodectl check --oneline            Status: OK|WARN|FAILED
  nodectl upgrade /var/lib/imgbased/images/ovirt-node-ng-4.5.6.squashfs.img
  nodectl rollback                   boot the previous layer next time
  nodectl cleanup --keep 2           remove old bases

Talks to org.ovirt.Node on the system bus (DBUS_SYSTEM_BUS_ADDRESS overrides, e.g. for the sandbox).`);
  const g = (): Global => {
    const o = program.opts<Global>();
    return { json: o.json || o.machineReadable, machineReadable: o.machineReadable };
  };

  program.command('info').description('bootloader entries, layers and the current layer (oVirt nodectl shape)')
    .action(() => run(async (c) => {
      const d = infoData(await c.properties());
      if (g().json) printJson(d);
      else out(renderInfo(d));
      return EXIT.ok;
    }));

  program.command('check').description('health report: Status: OK|WARN|FAILED with groups; exit 5 on problems')
    .option('--oneline', 'only the status line', false)
    .action((o: { oneline: boolean }) => run(async (c) => {
      const [status, rows] = await c.layers('Check');
      const d = checkData(String(status), plain(rows) as CheckRow[]);
      if (g().json) printJson(d);
      else out(renderCheck(d, o.oneline));
      return d.status === 'OK' ? EXIT.ok : EXIT.checkProblems;
    }));

  program.command('layers').description('every layer, marking current, default and pinned')
    .action(() => run(async (c) => {
      const layers = (await c.properties())['Layers'] as LayerRow[];
      if (g().json) printJson(layers);
      else out(renderLayers(layers));
      return EXIT.ok;
    }));

  program.command('upgrade [image]')
    .description('install an image as a new base and layer (no IMAGE: the newest in the image directory)')
    .option('--wait', 'queue behind a running transaction instead of failing with "busy"', false)
    .option('--allow-downgrade', 'install an image that is not newer than every base', false)
    .addHelpText('after', '\nExample:\n  nodectl upgrade /var/lib/imgbased/images/ovirt-node-ng-4.5.6-0.20250601.0.squashfs.img')
    .action((image: string | undefined, o: { wait: boolean; allowDowngrade: boolean }) => run(async (c) => {
      const opts: Record<string, Variant> = { wait: new Variant('b', o.wait) };
      if (image === undefined) {
        const [available, nvr, tx] = await c.layers('AutomaticUpdateTrigger', 'a{sv}', [{ ...opts, mode: new Variant('s', 'stage') }]);
        if (available !== true || tx === '/') {
          if (g().json) printJson({ available: false });
          else out('No newer image in the image directory.\n');
          return EXIT.ok;
        }
        if (!g().json) out(`Upgrading to ${String(nvr)}\n`);
        return follow(c, String(tx), g().json);
      }
      if (o.allowDowngrade) opts['allow-downgrade'] = new Variant('b', true);
      return startAndFollow(c, 'Upgrade', 'sa{sv}', [path.resolve(image), opts], g());
    }));

  program.command('rollback [layer]').description('boot the previous layer (or LAYER) by default')
    .option('--wait', 'queue behind a running transaction', false)
    .action((layer: string | undefined, o: { wait: boolean }) => run((c) =>
      startAndFollow(c, 'Rollback', 'sa{sv}', [layer ?? '', { wait: new Variant('b', o.wait) }], g())));

  program.command('cleanup').description('remove old bases (never the current, default or pinned ones)')
    .option('--keep <n>', 'bases to keep', (v) => Number(v))
    .option('--wait', 'queue behind a running transaction', false)
    .action((o: { keep?: number; wait: boolean }) => {
      // Validate before connecting: bad usage never reaches the bus.
      const opts: Record<string, Variant> = { wait: new Variant('b', o.wait) };
      if (o.keep !== undefined) {
        if (!Number.isInteger(o.keep) || o.keep < 1) throw new NodectlError('', '--keep must be a whole number >= 1', EXIT.usage);
        opts['keep'] = new Variant('u', o.keep);
      }
      run((c) => startAndFollow(c, 'Cleanup', 'a{sv}', [opts], g()));
    });

  program.command('history').description('finished transactions, newest first')
    .option('--limit <n>', 'at most N', (v) => Number(v), 20)
    .action((o: { limit: number }) => run(async (c) => {
      const [rows] = await c.layers('GetHistory', 'u', [o.limit]);
      const data = plain(rows) as Array<Record<string, unknown>>;
      if (g().json) printJson(data);
      else out(renderHistory(data));
      return EXIT.ok;
    }));

  program.command('watch').description('follow the running transaction until it ends')
    .action(() => run(async (c) => {
      const active = String((await c.properties())['ActiveTransaction']);
      if (active === '/') {
        out('No transaction is running.\n');
        return EXIT.ok;
      }
      return follow(c, active, g().json);
    }));

  program.command('cancel').description('cancel the running transaction (what it did is undone)')
    .action(() => run(async (c) => {
      const active = String((await c.properties())['ActiveTransaction']);
      if (active === '/') {
        out('No transaction is running.\n');
        return EXIT.ok;
      }
      await c.call(active, TRANSACTION_IFACE, 'Cancel', '', []);
      out(`Cancel requested for ${path.basename(active)}.\n`);
      return EXIT.ok;
    }));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> = Promise.resolve(EXIT.ok);
  const program = buildProgram((fn) => {
    pending = (async () => {
      const client = NodeClient.connect();
      try {
        return await fn(client);
      } finally {
        client.close();
      }
    })();
  });
  try {
    await program.parseAsync(argv);
    return await pending;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (e instanceof NodectlError) {
      process.stderr.write(`nodectl: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
      return e.exitCode;
    }
    process.stderr.write(`nodectl: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
