/**
 * nodectl's verbs as commander definitions: the parser, every `--help`, and (through VERB_DOCS) the man page
 * (man.ts renders man/nodectl.8 from these definitions, so the two cannot drift). Each action validates its
 * arguments before it connects (usage errors never reach the bus), then hands a function of the client to `run`.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Command } from 'commander';
import { Variant } from '../../dbus/light-bus';
import { NO_TRANSACTION, TRANSACTION_IFACE } from '../../dbus/api';
import type { NodeClient } from './client';
import { bool, BusUnreachableError, EXIT, NodectlError, plain, str } from './client';
import { follow } from './follow';
import type { AutomaticData, BootCompleteData } from './render';
import {
  checkData, infoData, isPolicy, motdData, motdUnreachable, parseCheckRows, parseHistory, parseLayers, policyData, POLICIES,
  renderAutomatic, renderBootComplete, renderCheck, renderHistory, renderInfo, renderLayers, renderMotd, renderPolicy,
} from './render';

export type Runner = (fn: (client: NodeClient) => Promise<number>) => void;

interface Global {
  json: boolean;
}

/** Examples (command, what it does) and extra paragraphs of one verb: its --help epilogue and its man page section. */
export interface VerbDoc {
  details?: string;
  examples: Array<[command: string, what: string]>;
}
export const VERB_DOCS = new WeakMap<Command, VerbDoc>();

export const EXIT_DOC: Array<[code: number, meaning: string]> = [
  [EXIT.ok, 'ok (for upgrade --automatic also: nothing to do)'],
  [EXIT.failed, 'failed (the transaction failed, imgbased is unreachable, a reboot was refused because VMs run)'],
  [EXIT.usage, 'usage error (bad arguments; nothing was asked of imgbased)'],
  [EXIT.notAuthorized, 'not authorized (polkit said no; nothing changed)'],
  [EXIT.busy, 'busy: another transaction runs (the message names it; --wait queues instead)'],
  [EXIT.checkProblems, 'check found problems (Status: WARN or FAILED)'],
  [EXIT.cancelled, 'cancelled, or detached with Ctrl-C (then the transaction keeps running)'],
];

export const ENV_DOC: Array<[name: string, meaning: string]> = [
  ['DBUS_SYSTEM_BUS_ADDRESS', 'the system bus to use (default unix:path=/var/run/dbus/system_bus_socket), e.g. a sandbox\'s private bus'],
  ['IMGBASED_SYSROOT', 'upgrade --from-package without a bus: the host tree the offline imgbased tool works on (default /)'],
];

export const CTRL_C_DOC = 'Ctrl-C while following a transaction on a terminal asks "Cancel the transaction (c) or detach and let it run (d)? [d]": '
  + 'c cancels it (what it did is undone; exit 130), d, Enter or a second Ctrl-C detach (exit 130; the transaction keeps '
  + 'running: "nodectl watch" follows it again). Without a terminal (scripts, pipes, cron) SIGINT detaches at once, never asks.';

/** Words of `text` in lines of at most `width` columns, each starting with `indent`. */
export function wrap(text: string, indent = '', width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

/** Two columns; a left cell wider than 36 puts its right cell on the next line. */
const pad = (rows: Array<[string, string]>, indent = '  '): string => {
  const w = Math.min(36, Math.max(...rows.map(([a]) => a.length)));
  return rows.map(([a, b]) => (a.length > w
    ? `${indent}${a}\n${wrap(b, `${indent}    `)}`
    : `${indent}${a.padEnd(w)}  ${wrap(b, ' '.repeat(indent.length + w + 2)).trimStart()}`)).join('\n');
};

function documented(cmd: Command, doc: VerbDoc): Command {
  VERB_DOCS.set(cmd, doc);
  const parts: string[] = [];
  if (doc.details) parts.push(`\n${wrap(doc.details)}`);
  if (doc.examples.length > 0) parts.push(`\nExamples:\n${pad(doc.examples.map(([c, w]) => [c, w]))}`);
  cmd.addHelpText('after', parts.join('\n'));
  return cmd;
}

const usage = (message: string): NodectlError => new NodectlError('', message, EXIT.usage);

function wholeNumber(min: number, flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw usage(`${flag} must be a whole number >= ${min}, got "${v}"`);
    return n;
  };
}

const out = (text: string): void => {
  process.stdout.write(text);
};

function printJson(data: unknown): void {
  out(JSON.stringify(data, null, 2) + '\n');
}

/** The transaction path a method returned. */
function txOf(reply: unknown[], member: string): string {
  const tx = reply[0];
  if (typeof tx !== 'string' || !tx.startsWith('/')) throw new NodectlError('', `${member} returned no transaction`, EXIT.failed);
  return tx;
}

async function startAndFollow(
  client: NodeClient, member: string, signature: string, body: unknown[], g: Global, summary: (c: NodeClient) => Promise<string>,
): Promise<number> {
  const txPath = txOf(await client.layers(member, signature, body), member);
  if (!g.json) process.stderr.write(`${member}: transaction ${path.basename(txPath)}\n`);
  const code = await follow(client, txPath, { quiet: g.json });
  if (code !== EXIT.ok) return code;
  if (g.json) printJson(await client.properties(txPath, TRANSACTION_IFACE));
  else out(await summary(client));
  return code;
}

const defaultLayerLine = async (c: NodeClient): Promise<string> =>
  `Default layer (boots next time): ${str((await c.properties())['DefaultLayer'], 'DefaultLayer', '')}\n`;

/** The warnings a finished transaction left in its history entry. */
async function warningsOf(c: NodeClient, txPath: string): Promise<string[]> {
  const w = (await historyOf(c, txPath))?.['warnings'];
  return Array.isArray(w) ? w.map((x: unknown) => String(x)) : [];
}

/** The history entry of a finished transaction (undefined when it is not among the newest 20). */
async function historyOf(c: NodeClient, txPath: string): Promise<Record<string, unknown> | undefined> {
  const id = path.basename(txPath);
  const [rows] = await c.layers('GetHistory', 'u', [20]);
  return parseHistory(plain(rows)).find((r) => r['id'] === id);
}

/** boot-complete: CompleteBoot, follow it, report the verdict; exit 1 when the running layer's boot is bad. */
async function bootComplete(c: NodeClient, o: { verdict?: string; reason?: string; wait?: boolean }, g: Global): Promise<number> {
  const opts: Record<string, Variant> = {};
  if (o.wait) opts['wait'] = new Variant('b', true);
  if (o.verdict !== undefined) opts['verdict'] = new Variant('s', o.verdict);
  if (o.reason !== undefined) opts['reason'] = new Variant('s', o.reason);
  const txPath = txOf(await c.layers('CompleteBoot', 'a{sv}', [opts]), 'CompleteBoot');
  if (!g.json) process.stderr.write(`CompleteBoot: transaction ${path.basename(txPath)}\n`);
  const code = await follow(c, txPath, { quiet: g.json });
  if (code !== EXIT.ok) return code;
  const entry = await historyOf(c, txPath);
  const request = entry?.['request'];
  const req: Record<string, unknown> = typeof request === 'object' && request !== null ? (request as Record<string, unknown>) : {};
  const props = await c.properties();
  const current = str(props['CurrentLayer'], 'CurrentLayer', '');
  const row = parseLayers(props['Layers'] ?? []).find((l) => l.name === current);
  const verdict = str(req['verdict'], 'request.verdict', 'none');
  const d: BootCompleteData = {
    layer: str(req['layer'], 'request.layer', ''),
    verdict: verdict === 'good' || verdict === 'bad' ? verdict : 'none',
    reason: str(req['reason'], 'request.reason', ''),
    default_layer: str(props['DefaultLayer'], 'DefaultLayer', ''),
    current_layer: current,
    current_state: row?.['boot-state'] ?? '',
    transaction: path.basename(txPath),
    warnings: Array.isArray(entry?.['warnings']) ? (entry['warnings'] as unknown[]).map((x) => String(x)) : [],
  };
  if (g.json) printJson(d);
  else out(renderBootComplete(d));
  return d.verdict === 'bad' || d.current_state === 'bad' ? EXIT.failed : EXIT.ok;
}

/** Did the call fail because no daemon can be reached at all (no bus, or org.ovirt.Node neither running nor activatable)? */
function noDaemon(e: unknown): boolean {
  return e instanceof BusUnreachableError
    || (e instanceof NodectlError && e.dbusName === 'org.freedesktop.DBus.Error.ServiceUnknown');
}

/** The offline engine (imgbased upgrade), for an install without a bus: its output and exit code become ours. */
function offlineUpgrade(image: string, why: string): Promise<number> {
  const sysroot = process.env['IMGBASED_SYSROOT'];
  const argv = [...(sysroot ? ['--sysroot', sysroot] : []), 'upgrade', '--skip-installed', image];
  process.stderr.write(`nodectl: imgbased cannot be reached (${why}); installing with the offline tool: imgbased ${argv.join(' ')}\n`);
  return new Promise((resolve) => {
    const child = spawn('imgbased', argv, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (e) => {
      process.stderr.write(`nodectl: cannot run the offline tool imgbased: ${e.message}\n`);
      resolve(EXIT.failed);
    });
    child.once('close', (code) => resolve(code === 0 ? EXIT.ok : code === EXIT.cancelled ? EXIT.cancelled : EXIT.failed));
  });
}

/**
 * upgrade --from-package IMAGE: what an image-update package's scriptlet runs. Queues behind a running transaction
 * (never Busy), follows it with plain lines (the package manager's output), succeeds with nothing to do when the
 * image is installed already (the timer staged it from the repository, or a reinstall), and falls back to the
 * offline tool when no daemon can be reached (a kickstart %post, a chroot).
 */
async function fromPackage(c: NodeClient, image: string, g: Global): Promise<number> {
  const opts = { wait: new Variant('b', true), 'skip-installed': new Variant('b', true) };
  let txPath: string;
  try {
    txPath = txOf(await c.layers('Upgrade', 'sa{sv}', [image, opts]), 'Upgrade');
  } catch (e) {
    if (noDaemon(e)) return offlineUpgrade(image, e instanceof Error ? e.message : String(e));
    throw e;
  }
  process.stderr.write(`nodectl: installing ${path.basename(image)} through imgbased: transaction ${path.basename(txPath)}\n`);
  const code = await follow(c, txPath, { quiet: g.json, lines: true });
  if (code !== EXIT.ok) return code;
  const warnings = await warningsOf(c, txPath);
  if (g.json) printJson({ ...(await c.properties(txPath, TRANSACTION_IFACE)), warnings });
  else out(warnings.length > 0 ? `${warnings.join('\n')}\n` : await defaultLayerLine(c));
  return EXIT.ok;
}

/** upgrade without IMAGE: AutomaticUpdateTrigger (the configured policy with --automatic; else "stage now"). */
async function automatic(c: NodeClient, o: { automatic?: boolean; wait?: boolean }, g: Global): Promise<number> {
  const before = policyData(await c.properties());
  const opts: Record<string, Variant> = o.automatic === true
    ? {}
    : { mode: new Variant('s', 'stage'), 'respect-window': new Variant('b', false) };
  if (o.wait) opts['wait'] = new Variant('b', true);
  const reply = await c.layers('AutomaticUpdateTrigger', 'a{sv}', [opts]);
  const available = bool(reply[0], 'AutomaticUpdateTrigger.available');
  const nvr = str(reply[1], 'AutomaticUpdateTrigger.nvr');
  const tx = str(reply[2], 'AutomaticUpdateTrigger.transaction');
  const policy = o.automatic === true ? before.policy : 'stage';
  const data: AutomaticData = {
    result: available ? 'update-available' : 'nothing-to-do', nvr, policy, maintenance_window: before.maintenance_window,
    transaction: tx === NO_TRANSACTION ? '' : path.basename(tx), warnings: [],
  };
  if (tx !== NO_TRANSACTION) {
    if (!g.json) process.stderr.write(`Installing ${nvr}: transaction ${path.basename(tx)}\n`);
    const code = await follow(c, tx, { quiet: g.json });
    if (code !== EXIT.ok) return code;
    data.warnings = await warningsOf(c, tx);
    data.result = policy === 'apply' && data.warnings.length === 0 ? 'applied' : 'staged';
  }
  if (g.json) printJson(data);
  else out(renderAutomatic(data));
  return EXIT.ok;
}

export function buildProgram(run: Runner): Command {
  const program = new Command('nodectl')
    .description('Manage the image layers of an oVirt Node host through the imgbased daemon (org.ovirt.Node on the system bus).\n'
      + 'nodectl itself never touches LVM or /boot; what you may do is decided by polkit.')
    .option('--json', 'print JSON (same keys as the text output)')
    .option('--machine-readable', 'print JSON (same as --json, as oVirt\'s nodectl spelled it)')
    .showHelpAfterError('(nodectl --help lists the verbs; nodectl VERB --help explains one)')
    .exitOverride()
    .addHelpText('after', `
Exit status:
${pad(EXIT_DOC.map(([c, m]) => [String(c), m]))}

Environment:
${pad(ENV_DOC)}

Ctrl-C:
${wrap(CTRL_C_DOC, '  ')}

Examples:
${pad([
    ['nodectl info', 'bootloader entries, layers, the current layer, running VMs'],
    ['nodectl check --oneline', 'Status: OK|WARN|FAILED'],
    ['nodectl upgrade', 'install the newest image (image directory or update repository) now'],
    ['nodectl rollback --reboot', 'boot the previous layer, rebooting now'],
    ['nodectl --json layers', 'every layer as JSON'],
  ])}

See nodectl(8) for more.`);
  const g = (): Global => {
    const o = program.opts<{ json?: boolean; machineReadable?: boolean }>();
    return { json: o.json === true || o.machineReadable === true };
  };

  documented(program.command('info')
    .description('bootloader entries, layers, the current layer and running VMs (oVirt nodectl\'s shape)')
    .action(() => run(async (c) => {
      const d = infoData(await c.properties());
      if (g().json) printJson(d);
      else out(renderInfo(d));
      return EXIT.ok;
    })), {
    details: 'The text and JSON keep oVirt nodectl\'s keys (bootloader, layers, current_layer); "vms" comes last: '
      + '"vms: 2 running", or "vms: unknown (libvirt: …)" when libvirt cannot tell. Anyone may run it.',
    examples: [['nodectl info', 'as text'], ['nodectl --machine-readable info', 'as JSON']],
  });

  documented(program.command('check')
    .description('health report: Status: OK|WARN|FAILED with its groups; exit 5 on problems')
    .option('--oneline', 'only the status line')
    .option('--deep', 'also compare every kept base with the manifest of its image (reads every file; needs polkit)')
    .action((o: { oneline?: boolean; deep?: boolean }) => run(async (c) => {
      const [status, rows] = o.deep ? await c.layers('CheckDeep', 'a{sv}', [{}]) : await c.layers('Check');
      const d = checkData(str(status, 'Check.status'), parseCheckRows(plain(rows)));
      if (g().json) printJson(d);
      else out(renderCheck(d, o.oneline === true));
      return d.status === 'OK' ? EXIT.ok : EXIT.checkProblems;
    })), {
    examples: [['nodectl check', 'every group and check'], ['nodectl check --oneline', 'Status: OK'],
      ['nodectl check --deep', 'and prove each base still equals its image'],
      ['nodectl --json check', 'as JSON']],
  });

  documented(program.command('layers')
    .description('every layer, oldest first, marking the current, default and pinned ones')
    .action(() => run(async (c) => {
      const layers = parseLayers((await c.properties())['Layers'] ?? []);
      if (g().json) printJson(layers);
      else out(renderLayers(layers));
      return EXIT.ok;
    })), {
    examples: [['nodectl layers', 'one layer a line'], ['nodectl --json layers', 'every key of every layer']],
  });

  documented(program.command('upgrade').argument('[image]', 'image file (squashfs with IMAGE.sha256 and IMAGE.sig beside it)')
    .description('install an image as a new base and layer that boots next time (no IMAGE: the newest one of the image directory or the update repository)')
    .option('--automatic', 'run the configured automatic update policy, inside the maintenance window (what the timer runs)')
    .option('--wait', 'queue behind a running transaction instead of failing with "busy"')
    .option('--allow-downgrade', 'install an IMAGE that is not newer than every base')
    .option('--from-package <image>', 'install the image an image-update package delivered (what its scriptlet runs): '
      + 'waits instead of "busy", prints progress as lines, succeeds when it is installed already, and uses the offline '
      + 'imgbased tool when no daemon can be reached')
    .action((image: string | undefined, o: { automatic?: boolean; wait?: boolean; allowDowngrade?: boolean; fromPackage?: string }) => {
      if (o.fromPackage !== undefined) {
        if (image !== undefined || o.automatic === true || o.allowDowngrade === true) {
          throw usage('upgrade --from-package takes no IMAGE, --automatic or --allow-downgrade');
        }
        const packaged = path.resolve(o.fromPackage);
        run((c) => fromPackage(c, packaged, g()));
        return;
      }
      if (o.automatic === true && image !== undefined) throw usage('upgrade --automatic takes no IMAGE');
      if (image === undefined && o.allowDowngrade) throw usage('--allow-downgrade needs an IMAGE');
      if (image === undefined) {
        run((c) => automatic(c, o, g()));
        return;
      }
      const opts: Record<string, Variant> = {};
      if (o.wait) opts['wait'] = new Variant('b', true);
      if (o.allowDowngrade) opts['allow-downgrade'] = new Variant('b', true);
      run((c) => startAndFollow(c, 'Upgrade', 'sa{sv}', [path.resolve(image), opts], g(), defaultLayerLine));
    }), {
    details: 'Without IMAGE nodectl stages the newest update now (AutomaticUpdateTrigger, mode "stage", '
      + 'maintenance window ignored). With --automatic it runs the configured policy (see "nodectl policy") and respects the '
      + 'maintenance window; it prints what happened (nothing to do, update available, staged, applied), follows a started '
      + 'transaction to its end, and exits 0 when there is nothing to do. The image directory (ImageDir=) and the update '
      + 'repository (UpdateRepo=: image-update packages, downloaded, signature-checked and unpacked by imgbased) are both '
      + 'searched. --from-package is for the %pre scriptlet of an image-update package (docs/UPDATES.md): it exits '
      + 'non-zero when the upgrade fails, so the package manager\'s transaction fails too; with no bus (kickstart %post, '
      + 'a chroot) or no imgbased to activate it runs "imgbased upgrade --skip-installed IMAGE" instead.',
    examples: [
      ['nodectl upgrade /var/lib/imgbased/images/ovirt-node-ng-4.5.6-0.20250601.0.squashfs.img', 'install this image'],
      ['nodectl upgrade', 'install the newest image (image directory or update repository) now'],
      ['nodectl upgrade --automatic', 'what the automatic-update timer runs'],
      ['nodectl upgrade --wait IMAGE', 'queue behind a running transaction'],
      ['nodectl upgrade --from-package /usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-4.5.6-0.20250601.0.squashfs.img',
        'what the image-update package runs'],
    ],
  });

  documented(program.command('rollback').argument('[layer]', 'the layer to boot (default: the one before the boot default)')
    .description('make an older layer the boot default')
    .option('--reboot', 'reboot into it once the rollback succeeded (refused while VMs run)')
    .option('--wait', 'queue behind a running transaction')
    .action((layer: string | undefined, o: { reboot?: boolean; wait?: boolean }) => {
      const opts: Record<string, Variant> = {};
      if (o.wait) opts['wait'] = new Variant('b', true);
      if (o.reboot) opts['reboot'] = new Variant('b', true);
      run((c) => startAndFollow(c, 'Rollback', 'sa{sv}', [layer ?? '', opts], g(), async (cl) =>
        `${await defaultLayerLine(cl)}${o.reboot ? 'Rebooting into it.\n' : ''}`));
    }), {
    details: 'With --reboot imgbased refuses up front (exit 1, org.ovirt.Node.Error.VMsRunning) while virtual machines run or '
      + 'libvirt cannot tell: stop or migrate them first ("virsh list" shows them).',
    examples: [
      ['nodectl rollback', 'boot the previous layer next time'],
      ['nodectl rollback ovirt-node-ng-4.5.5-0.20250301.0+1', 'boot this layer next time'],
      ['nodectl rollback --reboot', 'and reboot into it now'],
    ],
  });

  documented(program.command('cleanup')
    .description('remove old bases and their layers (never the current, default or pinned ones)')
    .option('--keep <n>', 'bases to keep (default: KeepBases= of imgbased.conf)', wholeNumber(1, '--keep'))
    .option('--wait', 'queue behind a running transaction')
    .action((o: { keep?: number; wait?: boolean }) => {
      const opts: Record<string, Variant> = {};
      if (o.wait) opts['wait'] = new Variant('b', true);
      if (o.keep !== undefined) opts['keep'] = new Variant('u', o.keep);
      run((c) => startAndFollow(c, 'Cleanup', 'a{sv}', [opts], g(), async () => 'Cleanup finished.\n'));
    }), {
    examples: [['nodectl cleanup', 'keep the configured number of bases'], ['nodectl cleanup --keep 1', 'keep only the newest']],
  });

  documented(program.command('remove-base').argument('<nvr>', 'the base to remove, e.g. ovirt-node-ng-4.5.4-0.20250101.0')
    .description('remove one base and its layers (not the running, default or a pinned one)')
    .option('--wait', 'queue behind a running transaction')
    .action((nvr: string, o: { wait?: boolean }) => {
      const opts: Record<string, Variant> = {};
      if (o.wait) opts['wait'] = new Variant('b', true);
      run((c) => startAndFollow(c, 'RemoveBase', 'sa{sv}', [nvr, opts], g(), async () => `Removed ${nvr}.\n`));
    }), {
    examples: [['nodectl remove-base ovirt-node-ng-4.5.4-0.20250101.0', 'remove this base and its layers']],
  });

  for (const pinned of [true, false]) {
    const verb = pinned ? 'pin' : 'unpin';
    documented(program.command(verb).argument('<layer>', `the layer to ${verb}`)
      .description(pinned ? 'protect a layer (and its base) from cleanup' : 'let cleanup remove a layer again')
      .action((layer: string) => run(async (c) => {
        await c.layers('Pin', 'sb', [layer, pinned]);
        if (g().json) printJson({ layer, pinned });
        else out(`${pinned ? 'Pinned' : 'Unpinned'} ${layer}${pinned ? ': cleanup keeps it and its base' : ''}.\n`);
        return EXIT.ok;
      })), {
      examples: [[`nodectl ${verb} ovirt-node-ng-4.5.5-0.20250301.0+1`, pinned ? 'keep this layer' : 'release it']],
    });
  }

  documented(program.command('history')
    .description('finished transactions, newest first')
    .option('--limit <n>', 'at most N (0 = all)', wholeNumber(0, '--limit'), 20)
    .action((o: { limit: number }) => run(async (c) => {
      const [rows] = await c.layers('GetHistory', 'u', [o.limit]);
      const data = parseHistory(plain(rows));
      if (g().json) printJson(data);
      else out(renderHistory(data));
      return EXIT.ok;
    })), {
    examples: [['nodectl history --limit 5', 'the last five'], ['nodectl --json history', 'with steps and warnings']],
  });

  documented(program.command('watch')
    .description('follow the running transaction until it ends (from any terminal)')
    .action(() => run(async (c) => {
      const active = str((await c.properties())['ActiveTransaction'], 'ActiveTransaction', NO_TRANSACTION);
      if (active === NO_TRANSACTION) {
        out('No transaction is running.\n');
        return EXIT.ok;
      }
      process.stderr.write(`Following transaction ${path.basename(active)}\n`);
      return follow(c, active, { quiet: g().json });
    })), {
    details: 'Exits with the transaction\'s outcome: 0 succeeded, 1 failed, 130 cancelled (or detached with Ctrl-C).',
    examples: [['nodectl watch', 'attach to what another terminal (or the timer) started']],
  });

  documented(program.command('cancel')
    .description('cancel the running transaction (what it did is undone)')
    .action(() => run(async (c) => {
      const active = str((await c.properties())['ActiveTransaction'], 'ActiveTransaction', NO_TRANSACTION);
      if (active === NO_TRANSACTION) {
        out('No transaction is running.\n');
        return EXIT.ok;
      }
      await c.call(active, TRANSACTION_IFACE, 'Cancel', '', []);
      out(`Cancel requested for ${path.basename(active)}.\n`);
      return EXIT.ok;
    })), {
    examples: [['nodectl cancel', 'stop the running upgrade; its new base and layer are removed again']],
  });

  documented(program.command('motd')
    .description('a short status for login banners; always exits 0, quickly')
    .action(() => run(async (c) => {
      // A login must never hang or fail on us: at most MOTD_TIMEOUT_MS, then a one-line notice, exit 0 regardless.
      let data;
      try {
        data = await Promise.race([motd(c), new Promise<never>((_r, reject) => {
          setTimeout(() => reject(new Error('imgbased did not answer in time')), MOTD_TIMEOUT_MS).unref();
        })]);
      } catch (e) {
        data = motdUnreachable(e instanceof NodectlError && e.dbusName === 'org.freedesktop.DBus.Error.ServiceUnknown'
          ? 'imgbased is not running' : `imgbased is not reachable: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (g().json) printJson(data);
      else out(renderMotd(data));
      return EXIT.ok;
    })), {
    details: 'For /etc/motd.d or a profile.d script: "  node status: OK|DEGRADED" and "  See `nodectl check` for more '
      + 'information" as oVirt printed them, then the current layer, the layer booting next (when different), an available '
      + 'update and a running transaction. When imgbased cannot be reached within 3 s it prints one line '
      + '("  node status: unknown (…)") and still exits 0; it never prints to stderr.',
    examples: [['nodectl motd', 'the banner'], ['nodectl motd > /run/motd.d/50-nodectl', 'refresh a motd file']],
  });

  documented(program.command('check-update')
    .description('is an image newer than every base in the image directory or the update repository? (changes nothing)')
    .action(() => run(async (c) => {
      const reply = await c.layers('AutomaticUpdateTrigger', 'a{sv}', [{ mode: new Variant('s', 'check') }]);
      const d = { available: bool(reply[0], 'AutomaticUpdateTrigger.available'), nvr: str(reply[1], 'AutomaticUpdateTrigger.nvr') };
      if (g().json) printJson(d);
      else out(d.available ? `Update available: ${d.nvr} (\`nodectl upgrade\` installs it).\n` : 'No image newer than every base.\n');
      return EXIT.ok;
    })), {
    details: 'Asks imgbased to look (AutomaticUpdateTrigger, mode "check") in ImageDir= and, when configured, UpdateRepo= '
      + '(a dnf repository of image-update packages; the NVR shown is then the package\'s): it sets UpdateAvailable and AvailableVersion and '
      + 'installs nothing, whatever the automatic update policy. JSON: {"available": true|false, "nvr": "…"}. Exit 0 either way.',
    examples: [['nodectl check-update', 'one line'], ['nodectl --json check-update', 'for scripts and Ansible']],
  });

  documented(program.command('boot-complete')
    .description('confirm or reject the boot of the running layer (what imgbased-boot-complete.service runs at boot)')
    .option('--verdict <verdict>', 'record "good" or "bad" instead of running the health gates (an external health check)')
    .option('--reason <text>', 'with --verdict: the words recorded')
    .option('--wait', 'queue behind a running transaction instead of failing with "busy"')
    .action((o: { verdict?: string; reason?: string; wait?: boolean }) => {
      if (o.verdict !== undefined && o.verdict !== 'good' && o.verdict !== 'bad') throw usage(`--verdict must be good or bad, got "${o.verdict}"`);
      if (o.reason !== undefined && o.verdict === undefined) throw usage('--reason needs --verdict');
      run((c) => bootComplete(c, o, g()));
    }), {
    details: 'After an upgrade the new layer is on trial: grub boots it once (next_entry) while the last good layer stays '
      + 'the saved default. On that boot, imgbased runs the health gates of [Boot] in imgbased.conf (RequiredUnits= active, '
      + '"nodectl check" not FAILED, within GateTimeoutSec=): passing makes the layer the default ("good"); failing marks it '
      + '"bad", puts the last good layer back as the default and records why (nodectl history), rebooting into it only with '
      + 'RebootOnFailure=yes and no VMs running. A trial the host left unconfirmed (it came back on the old layer) is marked '
      + 'bad too. Exits 0 when the running layer is good or nothing was on trial, 1 when it is bad.',
    examples: [
      ['nodectl boot-complete', 'run the health gates now (normally done by imgbased-boot-complete.service)'],
      ['nodectl boot-complete --verdict bad --reason "vdsm cannot reach the engine"', 'reject this boot: the last good layer boots next'],
      ['nodectl --json boot-complete', 'layer, verdict, reason, default_layer as JSON'],
    ],
  });

  documented(program.command('policy').argument('[policy]', `the new policy: ${POLICIES.join(', ')}`)
    .description('show the automatic update policy and maintenance window, or set the policy')
    .action((policy: string | undefined) => {
      if (policy !== undefined && !isPolicy(policy)) throw usage(`policy must be one of ${POLICIES.join(', ')}, got "${policy}"`);
      run(async (c) => {
        if (policy !== undefined) await c.layers('SetAutomaticUpdatePolicy', 's', [policy]);
        const d = policyData(await c.properties());
        if (g().json) printJson(d);
        else out(renderPolicy(d));
        return EXIT.ok;
      });
    }), {
    details: 'none: off; check: look for newer images (UpdateAvailable); stage: also install them (they boot next time); '
      + 'apply: also reboot into them when no VMs run. Stage and apply start only inside MaintenanceWindow= of imgbased.conf.',
    examples: [['nodectl policy', 'show it'], ['nodectl policy stage', 'install updates automatically, reboot by hand']],
  });

  return program;
}

export const MOTD_TIMEOUT_MS = 3000;

async function motd(c: NodeClient): Promise<ReturnType<typeof motdData>> {
  const props = await c.properties();
  const active = str(props['ActiveTransaction'], 'ActiveTransaction', NO_TRANSACTION);
  let tx: { id: string; kind: string; percent: number } | null = null;
  if (active !== NO_TRANSACTION) {
    const t = await c.properties(active, TRANSACTION_IFACE).catch(() => ({} as Record<string, unknown>));
    tx = { id: path.basename(active), kind: String(t['Kind'] ?? 'transaction'), percent: Number(t['Percent'] ?? 0) };
  }
  return motdData(props, tx);
}

/** For the man page and tests: every verb with its Option objects. */
export function verbs(program: Command): Command[] {
  return program.commands.filter((c) => c.name() !== 'help');
}
