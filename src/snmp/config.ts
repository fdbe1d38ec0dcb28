/**
 * imgbased-snmp settings: defaults, then /etc/imgbased/snmp.conf (optional), then the command line.
 *
 * The file is `key = value` lines; `#` starts a comment. Keys: `master` (the AgentX socket, snmpd's agentXSocket
 * syntax) and `pool-usage-threshold` (percent, 1–100). Any other key is an error — a typo must not silently fall
 * back to a default.
 */
import { DEFAULT_MASTER, parseMasterAddress } from './agentx-session';
import type { MasterAddress } from './agentx-session';

export const DEFAULT_CONFIG_FILE = '/etc/imgbased/snmp.conf';
export const DEFAULT_POOL_USAGE_THRESHOLD = 90;

export interface SnmpConfig {
  master: MasterAddress;
  poolUsageThreshold: number;
}

export class ConfigError extends Error {}

export function parseThreshold(text: string, where: string): number {
  const n = /^\d{1,3}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(n >= 1 && n <= 100)) throw new ConfigError(`${where}: pool-usage-threshold must be a whole percent from 1 to 100, not "${text}"`);
  return n;
}

function masterFrom(text: string, where: string): MasterAddress {
  try {
    return parseMasterAddress(text);
  } catch (e) {
    throw new ConfigError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Partial settings from a config file's text. */
export function parseConfigFile(text: string, file: string): Partial<SnmpConfig> {
  const out: Partial<SnmpConfig> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${where}: expected "key = value"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case 'master':
        out.master = masterFrom(value, where);
        break;
      case 'pool-usage-threshold':
        out.poolUsageThreshold = parseThreshold(value, where);
        break;
      default:
        throw new ConfigError(`${where}: unknown key "${key}" (known: master, pool-usage-threshold)`);
    }
  });
  return out;
}

/** Defaults < file < command line. */
export function resolveConfig(file: Partial<SnmpConfig>, cli: { master?: string; poolUsageThreshold?: string }): SnmpConfig {
  return {
    master: cli.master !== undefined ? masterFrom(cli.master, '--master') : file.master ?? parseMasterAddress(DEFAULT_MASTER),
    poolUsageThreshold: cli.poolUsageThreshold !== undefined
      ? parseThreshold(cli.poolUsageThreshold, '--pool-usage-threshold')
      : file.poolUsageThreshold ?? DEFAULT_POOL_USAGE_THRESHOLD,
  };
}
