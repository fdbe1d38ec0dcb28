/** imgbased-snmp settings: master socket syntax, the config file (every key consumed or refused), precedence. */
import { parseMasterAddress } from '../../src/snmp/agentx-session';
import { ConfigError, parseConfigFile, resolveConfig } from '../../src/snmp/config';

describe('snmp config', () => {
  it('parses snmpd\'s agentXSocket forms', () => {
    expect(parseMasterAddress('/var/agentx/master')).toEqual({ kind: 'unix', path: '/var/agentx/master' });
    expect(parseMasterAddress('unix:/run/agentx')).toEqual({ kind: 'unix', path: '/run/agentx' });
    expect(parseMasterAddress('tcp:127.0.0.1:705')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 705 });
    expect(parseMasterAddress('localhost:7050')).toEqual({ kind: 'tcp', host: 'localhost', port: 7050 });
    expect(parseMasterAddress('tcp:[::1]:705')).toEqual({ kind: 'tcp', host: '::1', port: 705 });
    expect(parseMasterAddress('705')).toEqual({ kind: 'tcp', host: 'localhost', port: 705 });
    for (const bad of ['unix:relative', 'tcp:host', 'tcp:h:70000', 'udp:1.2.3.4:705', '']) expect(() => parseMasterAddress(bad)).toThrow();
  });

  it('reads key = value lines with comments; refuses unknown keys and bad values with the line number', () => {
    expect(parseConfigFile('# comment\n\nmaster = tcp:127.0.0.1:705  # inline\npool-usage-threshold=80\n', 'f')).toEqual({
      master: { kind: 'tcp', host: '127.0.0.1', port: 705 }, poolUsageThreshold: 80,
    });
    expect(() => parseConfigFile('mastr = /x\n', 'f')).toThrow(/f:1: unknown key "mastr"/);
    expect(() => parseConfigFile('\npool-usage-threshold = 0\n', 'f')).toThrow(ConfigError);
    expect(() => parseConfigFile('pool-usage-threshold = 101\n', 'f')).toThrow(/f:1/);
    expect(() => parseConfigFile('just words\n', 'f')).toThrow(/key = value/);
  });

  it('defaults < file < command line; the default master is EL\'s /var/agentx/master', () => {
    expect(resolveConfig({}, {})).toEqual({ master: { kind: 'unix', path: '/var/agentx/master' }, poolUsageThreshold: 90 });
    const file = parseConfigFile('master = /a\npool-usage-threshold = 70\n', 'f');
    expect(resolveConfig(file, {})).toEqual({ master: { kind: 'unix', path: '/a' }, poolUsageThreshold: 70 });
    expect(resolveConfig(file, { master: 'tcp:127.0.0.1:1', poolUsageThreshold: '60' })).toEqual({
      master: { kind: 'tcp', host: '127.0.0.1', port: 1 }, poolUsageThreshold: 60,
    });
  });
});
