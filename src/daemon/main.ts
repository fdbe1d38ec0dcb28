#!/usr/bin/env node
/**
 * imgbased daemon — composition root. Started by systemd (Type=notify, BusName=org.ovirt.Node) or, in sandbox mode,
 * by hand against a private bus (DBUS_SYSTEM_BUS_ADDRESS) and a sysroot with the dir backend.
 *
 * Start-up order: open engine → host lock → recover an interrupted transaction → export objects → own the bus
 * name → READY=1. SIGTERM: STOPPING=1, cancel queued work, let the running transaction stop at a safe point
 * (it is undone), release the name, exit 0.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import * as dbus from 'dbus-next';
import { Engine } from '../engine';
import { ImgbasedError } from '../errors';
import type { Logger } from '../log';
import { acquireHostLock } from '../system/lock';
import { BUS_NAME } from '../dbus/api';
import { connectSystemBus } from '../dbus/connect';
import { PolkitAuthorizer } from '../dbus/polkit';
import { sandboxRebooter, sandboxUnits } from '../sandbox/sysroot';
import { SystemdUnits } from '../system/units';
import { LogindRebooter } from '../system/reboot';
import { libvirtGuard } from '../virt/guard';
import { Daemon } from './daemon';
import { createLogger } from './logger';
import { createNotifier } from './notify';


interface Args {
  sysroot: string;
  sandbox: boolean;
  verbose: boolean;
}

/** The package version, read once from package.json (two levels above dist/src/daemon, or src/daemon under jest). */
function version(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    const file = path.resolve(__dirname, rel);
    if (!fs.existsSync(file)) continue;
    const pkg: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    const v = typeof pkg === 'object' && pkg !== null ? (pkg as Record<string, unknown>)['version'] : undefined;
    if (typeof v === 'string') return v;
  }
  return '0';
}

export async function runDaemon(args: Args, log: Logger): Promise<number> {
  const notify = createNotifier(log);
  notify.status('starting');
  const engine = await Engine.open({ sysroot: args.sysroot, log });
  const lock = await acquireHostLock(engine.paths.stateDir, 'imgbased daemon');
  try {
    notify.status('recovering interrupted transactions');
    for (const r of await engine.recover()) log.warn(`recovered transaction ${r.id} (${r.kind}): ${r.state}`, { transaction: r.id });

    const bus = connectSystemBus();
    const daemon = new Daemon({
      engine, bus, authorizer: new PolkitAuthorizer(bus, log), log, version: version(), sandbox: args.sandbox,
      vmGuard: libvirtGuard({ uri: engine.config.libvirtUri }),
      rebooter: args.sandbox ? sandboxRebooter(engine) : new LogindRebooter(bus),
      unitStates: args.sandbox ? sandboxUnits(engine.paths.sysroot) : new SystemdUnits(bus),
    });
    await daemon.export();
    const reply = await bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
    if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
      log.error(`${BUS_NAME} is already owned on this bus (reply ${reply}); is another imgbased running?`);
      bus.disconnect();
      return 1;
    }
    notify.ready();
    notify.status('idle');
    log.info(`imgbased ${version()} serving ${BUS_NAME} (sysroot ${engine.paths.sysroot}, ${engine.backend.kind} backend)`);
    daemon.scheduler.on('changed', (job) => {
      if (!daemon.stopping) notify.status(job ? `running transaction ${job.snapshot.id} (${job.snapshot.kind})` : 'idle');
    });
    const stopWatchdog = notify.startWatchdog();
    daemon.startVmPolling();

    const code = await new Promise<number>((resolve) => {
      const stop = (signal: string): void => {
        log.info(`${signal}: stopping`);
        notify.stopping();
        // From here on no new transaction starts; the running one stops at its next safe point and is undone.
        daemon.shutdown();
        const active = daemon.scheduler.active;
        notify.status(active ? `stopping: cancelling transaction ${active.snapshot.id}` : 'stopping');
        for (const job of daemon.scheduler.all()) daemon.scheduler.cancel(job);
        void daemon.scheduler.idle().then(() => resolve(0));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      bus.on('error', (e: unknown) => {
        log.error(`bus connection failed: ${String(e)}`);
        resolve(1);
      });
    });
    stopWatchdog();
    daemon.close();
    await bus.releaseName(BUS_NAME).catch(() => 0);
    bus.disconnect();
    return code;
  } finally {
    await lock.release();
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('imgbased-daemon')
    .description('imgbased daemon: serves org.ovirt.Node on the system bus (started by systemd)')
    .option('--sysroot <dir>', 'host tree to manage (sandbox mode: a tree with the dir backend)', '/')
    .option('--sandbox', 'sandbox mode: also export org.ovirt.Node.Sandbox (Reboot) for demos and tests', false)
    .option('-v, --verbose', 'debug logging', false)
    .exitOverride();
  try {
    program.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const args = program.opts<Args>();
  const log = createLogger({ level: args.verbose ? 'debug' : 'info' });
  try {
    return await runDaemon(args, log);
  } catch (e) {
    log.error(e instanceof ImgbasedError ? e.message : `fatal: ${e instanceof Error ? e.stack : String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exit(code);
  });
}
