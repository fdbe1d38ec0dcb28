#!/usr/bin/env node
/**
 * imgbased-snmp — the AgentX subagent serving OVIRT-NODE-LAYERS-MIB (mibs/OVIRT-NODE-LAYERS-MIB.txt) through snmpd.
 * A D-Bus client of org.ovirt.Node (it never touches LVM); see docs/SNMP.md.
 *
 *   imgbased-snmp [--master unix:/var/agentx/master | tcp:127.0.0.1:705] [--config FILE]
 *                 [--pool-usage-threshold PCT] [--verbose]
 *
 * Started by systemd (systemd/imgbased-snmp.service, Type=notify): READY=1 once the daemon's state has been read
 * (reachable or not); the AgentX session is made, and re-made after snmpd restarts, in the background — snmpd may
 * start later. STATUS= tells whether it is registered with snmpd and whether the daemon is reachable.
 */
import * as fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import type { Logger } from '../log';
import { connectSystemBus } from '../dbus/connect';
import { createLogger } from '../daemon/logger';
import { createNotifier } from '../daemon/notify';
import { formatMasterAddress } from './agentx-session';
import type { SnmpConfig } from './config';
import { ConfigError, DEFAULT_CONFIG_FILE, parseConfigFile, resolveConfig } from './config';
import { Subagent } from './subagent';

interface Args {
  master?: string;
  config?: string;
  poolUsageThreshold?: string;
  verbose: boolean;
}

/** The settings: the config file (a missing default file is fine, a missing named one is not) and the options. */
export function loadConfig(args: Args): SnmpConfig {
  const file = args.config ?? DEFAULT_CONFIG_FILE;
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || args.config !== undefined) {
      throw new ConfigError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return resolveConfig(parseConfigFile(text, file), {
    ...(args.master !== undefined ? { master: args.master } : {}),
    ...(args.poolUsageThreshold !== undefined ? { poolUsageThreshold: args.poolUsageThreshold } : {}),
  });
}

export async function runSubagent(config: SnmpConfig, log: Logger): Promise<number> {
  const notify = createNotifier(log);
  notify.status('starting');
  const agent = new Subagent({
    master: config.master,
    settings: { poolUsageThreshold: config.poolUsageThreshold },
    connectBus: () => connectSystemBus(),
    log,
    onStatus: (s) => notify.status(s),
  });
  await agent.start();
  notify.ready();
  notify.status(agent.status());
  const stopWatchdog = notify.startWatchdog();
  log.info(`imgbased-snmp: serving OVIRT-NODE-LAYERS-MIB via ${formatMasterAddress(config.master)}`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  notify.stopping();
  stopWatchdog();
  await agent.stop();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('imgbased-snmp')
    .description('AgentX subagent: oVirt Node layers, pool usage, health and upgrades over SNMP (OVIRT-NODE-LAYERS-MIB)')
    .option('--master <socket>', 'AgentX master socket: unix:/path, /path, tcp:host:port (default /var/agentx/master)')
    .option('--config <file>', `settings file (default ${DEFAULT_CONFIG_FILE}, optional)`)
    .option('--pool-usage-threshold <percent>', 'send ovnPoolUsageHigh at or above this pool usage (default 90)')
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
  let config: SnmpConfig;
  try {
    config = loadConfig(args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    log.error(e.message);
    return 2;
  }
  try {
    return await runSubagent(config, log);
  } catch (e) {
    log.error(`fatal: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exit(code);
  });
}
