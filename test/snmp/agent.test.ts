/**
 * imgbased-snmp end to end: the compiled subagent (dist/src/snmp/main.js) between the real sandbox daemon on a
 * private system bus (shipped policy, real polkitd) and a real snmpd as AgentX master on a unix socket, with
 * snmptrapd on loopback receiving what snmpd forwards (trap2sink). Queried with the net-snmp command-line tools and
 * the shipped MIB. The upgrades whose values and notifications are checked are run by the compiled nodectl
 * (dist/src/cli/nodectl.js), as an administrator would.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as dbus from 'dbus-next';
import * as snmp from 'net-snmp';
import { createSandbox } from '../../src/sandbox/sysroot';
import { eventually, PrivateBus, REPO } from '../bus/harness';
import { NotifyListener } from '../bus/notify-listener';
import type { ImageSet } from '../helpers/host';
import { imageSet, NVR, tempDir, V2_CHANGES } from '../helpers/host';
import { freeUdpPort, MODULE, sleep, Snmpd, snmpTool, TrapReceiver } from './snmp-harness';

const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const SUBAGENT = path.join(REPO, 'dist/src/snmp/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const ROOT_OID = '.1.3.6.1.4.1.2312.13.2';

describe('imgbased-snmp with snmpd, snmptrapd and the sandbox daemon', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let daemonLog = '';
  let subagent: ChildProcessWithoutNullStreams;
  let subagentLog = '';
  let snmpd: Snmpd;
  let traps: TrapReceiver;
  let port: number;
  let conn: dbus.MessageBus;
  let notify: NotifyListener;

  const target = (): string => `127.0.0.1:${port}`;
  const get = async (...names: string[]): Promise<string> => {
    const r = await snmpTool('snmpget', ['-v2c', '-c', 'public', '-Oqv', target(), ...names.map((n) => `${MODULE}::${n}`)]);
    if (r.code !== 0) throw new Error(`snmpget ${names.join(' ')}: ${r.stderr}\nsubagent:\n${subagentLog}`);
    return r.stdout.replace(/\n$/, '');
  };
  const props = async (): Promise<Record<string, unknown>> => {
    const reply = await conn.call(new dbus.Message({
      destination: 'org.ovirt.Node', path: '/org/ovirt/Node', interface: 'org.freedesktop.DBus.Properties', member: 'GetAll',
      signature: 's', body: ['org.ovirt.Node.Layers'],
    }));
    const all = reply?.body[0] as Record<string, dbus.Variant>;
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value as unknown]));
  };
  const startDaemon = async (): Promise<void> => {
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    daemon.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  };
  const stopDaemon = async (): Promise<void> => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return;
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
  };

  /**
   * `nodectl upgrade IMAGE`, the compiled CLI as root on the private bus: its transaction id as soon as it prints
   * it ("Upgrade: transaction ID" on stderr), and how it ended (it follows the transaction to its end).
   */
  const nodectlUpgrade = (image: string): { txId: Promise<string>; done: Promise<{ code: number | null; stderr: string }> } => {
    const proc = bus.spawnAs('root', [process.execPath, NODECTL, 'upgrade', image]);
    proc.stdin.end();
    let stderr = '';
    proc.stdout.resume();
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => proc.once('close', (code) => resolve({ code, stderr })));
    const txId = new Promise<string>((resolve, reject) => {
      proc.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        const m = /^Upgrade: transaction (\S+)$/m.exec(stderr);
        if (m?.[1]) resolve(m[1]);
      });
      void done.then(() => reject(new Error(`nodectl upgrade ended without naming its transaction:\n${stderr}`)));
    });
    return { txId, done };
  };

  beforeAll(async () => {
    await fs.access(SUBAGENT);
    await fs.access(NODECTL);
    dir = await tempDir('snmp');
    await fs.chmod(dir, 0o755);
    images = await imageSet(dir);
    sysroot = path.join(dir, 'sysroot');
    await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    conn = bus.connect();
    await startDaemon();
    port = await freeUdpPort();
    const trapPort = await freeUdpPort();
    traps = await TrapReceiver.start(dir, trapPort);
    snmpd = new Snmpd({ dir, agentxSocket: `unix:${path.join(dir, 'agentx-master')}`, port, trapPort });
    await snmpd.start();
    notify = await NotifyListener.start(dir);
    subagent = bus.spawnAs('root', [process.execPath, SUBAGENT, '--master', `unix:${path.join(dir, 'agentx-master')}`, '--config', '/dev/null', '--verbose'],
      { NOTIFY_SOCKET: notify.socketPath });
    subagent.stderr.on('data', (b: Buffer) => (subagentLog += b.toString()));
    await eventually(() => /registered .* with unix:/.test(subagentLog), 20_000, 50);
  }, 180_000);

  afterAll(async () => {
    if (subagent && subagent.exitCode === null) {
      const exited = new Promise((r) => subagent.once('exit', r));
      subagent.kill('SIGTERM');
      await exited;
    }
    await snmpd?.stop();
    await traps?.stop();
    await notify?.stop();
    if (daemon) await stopDaemon();
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const walk = async (tool: 'snmpwalk' | 'snmpbulkwalk', extra: string[] = []): Promise<string> => {
    const r = await snmpTool(tool, ['-v2c', '-c', 'public', ...extra, target(), ROOT_OID]);
    if (r.code !== 0 || r.stderr !== '') throw new Error(`${tool}: ${r.stderr}`);
    return r.stdout;
  };
  const layerRows = (p: Record<string, unknown>): Array<Record<string, unknown>> =>
    (p['Layers'] as Array<Record<string, dbus.Variant>>).map((d) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.value as unknown])));
  const pool = (p: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(p['Pool'] as Record<string, dbus.Variant>).map(([k, v]) => [k, v.value as unknown]));
  const last = (p: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(p['LastTransaction'] as Record<string, dbus.Variant>).map(([k, v]) => [k, v.value as unknown]));
  const truth = (b: unknown): string => (b === true ? 'true(1)' : 'false(2)');
  /** OvnBootState as snmpwalk prints it, from the daemon's "boot-state". */
  const bootStateLabel = (s: unknown): string => ({ '': 'notAssessed(1)', trial: 'trial(2)', good: 'good(3)', bad: 'bad(4)' } as Record<string, string>)[String(s)] ?? 'other(5)';

  /** A manager method as root over the private bus (dbus-next: variants as dbus.Variant). */
  const callLayers = async (member: string, signature: string, body: unknown[]): Promise<unknown[]> =>
    (await conn.call(new dbus.Message({ destination: 'org.ovirt.Node', path: '/org/ovirt/Node', interface: 'org.ovirt.Node.Layers', member, signature, body })))?.body ?? [];
  /** Wait until the transaction at `txPath` has ended; its State. */
  const ended = async (txPath: string): Promise<string> => {
    let state = '';
    await eventually(async () => {
      const reply = await conn.call(new dbus.Message({
        destination: 'org.ovirt.Node', path: txPath, interface: 'org.freedesktop.DBus.Properties', member: 'Get',
        signature: 'ss', body: ['org.ovirt.Node.Transaction', 'State'],
      }));
      state = String((reply?.body[0] as dbus.Variant).value);
      return ['succeeded', 'failed', 'cancelled'].includes(state);
    }, 60_000, 100);
    return state;
  };
  const sandboxReboot = async (): Promise<string> => {
    const reply = await conn.call(new dbus.Message({ destination: 'org.ovirt.Node', path: '/org/ovirt/Node', interface: 'org.ovirt.Node.Sandbox', member: 'Reboot' }));
    return String(reply?.body[0]);
  };
  /**
   * The boot assessment as the MIB serves it (snmpget -Oqv: ovnTrialLayer.0, ovnCurrentLayer.0, ovnDefaultLayer.0,
   * then per row its name, ovnLayerBootState and ovnLayerBootStateReason), and the same read from the daemon's
   * properties; equal once the subagent has caught up.
   */
  const bootAssessment = async (): Promise<{ snmp: string[]; daemon: string[] }> => {
    const p = await props();
    const rows = layerRows(p);
    const names = ['ovnTrialLayer.0', 'ovnCurrentLayer.0', 'ovnDefaultLayer.0',
      ...rows.flatMap((_l, i) => [`ovnLayerName.${i + 1}`, `ovnLayerBootState.${i + 1}`, `ovnLayerBootStateReason.${i + 1}`])];
    const r = await snmpTool('snmpget', ['-v2c', '-c', 'public', '-Oqv', '-Oe', target(), ...names.map((n) => `${MODULE}::${n}`)]);
    if (r.code !== 0) throw new Error(`snmpget: ${r.stderr}`);
    const num = (s: unknown): string => String({ '': 1, trial: 2, good: 3, bad: 4 }[String(s)] ?? 5);
    const daemon = [String(p['TrialLayer']), String(p['CurrentLayer']), String(p['DefaultLayer']),
      ...rows.flatMap((l) => [String(l['name']), num(l['boot-state']), String(l['boot-state-reason'])])];
    // -Oqv prints an empty string as "" (and quotes text with spaces): compare the unquoted values.
    const snmp = r.stdout.replace(/\n$/, '').split('\n').map((x) => x.replace(/^"(.*)"$/, '$1'));
    return { snmp, daemon };
  };
  const expectBootAssessment = async (): Promise<{ snmp: string[]; daemon: string[] }> => {
    let last: { snmp: string[]; daemon: string[] } = { snmp: [], daemon: [] };
    try {
      await eventually(async () => {
        last = await bootAssessment();
        return JSON.stringify(last.snmp) === JSON.stringify(last.daemon);
      }, 10_000, 100);
    } catch {
      expect(last.snmp).toEqual(last.daemon);
    }
    return last;
  };

  it('tells systemd READY=1, then STATUS= with the registration and the daemon\'s reachability', async () => {
    await notify.waitFor((d) => d.pid === subagent.pid && d.data.split('\n').includes('READY=1'));
    await notify.waitFor((d) => d.pid === subagent.pid && d.data.includes('STATUS=registered with the AgentX master; org.ovirt.Node reachable'));
  });

  it('snmpwalk of the subtree shows the daemon\'s values, named by the shipped MIB', async () => {
    const out = await walk('snmpwalk');
    const p = await props();
    const layers = layerRows(p);
    const pl = pool(p);
    const lt = last(p);
    const line = (name: string, value: string): string => `${MODULE}::${name} = ${value}\n`;
    expect(out).toContain(line('ovnDaemonReachable.0', 'INTEGER: true(1)'));
    expect(out).toContain(line('ovnDaemonVersion.0', `STRING: ${String(p['Version'])}`));
    expect(out).toContain(line('ovnCurrentLayer.0', `STRING: ${String(p['CurrentLayer'])}`));
    expect(out).toContain(line('ovnDefaultLayer.0', `STRING: ${String(p['DefaultLayer'])}`));
    expect(out).toContain(line('ovnHealthStatus.0', `INTEGER: ${String(p['Health'])}(1)`));
    expect(out).toContain(line('ovnLayerCount.0', `Gauge32: ${layers.length}`));
    expect(out).toContain(line('ovnPoolSize.0', `Gauge32: ${Number(BigInt(pl['size'] as bigint) / 1048576n)} MiB`));
    expect(out).toContain(line('ovnPoolDataPercent.0', `Gauge32: ${(Math.round(Number(pl['data-percent']) * 100) / 100).toFixed(2)} percent`));
    expect(out).toContain(line('ovnLastTxId.0', `STRING: ${String(lt['id'])}`));
    expect(out).toContain(line('ovnLastTxResult.0', 'INTEGER: succeeded(2)'));
    layers.forEach((l, i) => {
      expect(out).toContain(line(`ovnLayerName.${i + 1}`, `STRING: ${String(l['name'])}`));
      expect(out).toContain(line(`ovnLayerBase.${i + 1}`, `STRING: ${String(l['base'])}`));
      expect(out).toContain(line(`ovnLayerCurrent.${i + 1}`, `INTEGER: ${truth(l['current'])}`));
      expect(out).toContain(line(`ovnLayerSize.${i + 1}`, `Gauge32: ${Number(BigInt(l['size'] as bigint) / 1048576n)} MiB`));
    });
    expect(out).toContain(line('ovnTrialLayer.0', `STRING: ${String(p['TrialLayer'])}`));
    layers.forEach((l, i) => {
      expect(out).toContain(line(`ovnLayerBootState.${i + 1}`, `INTEGER: ${bootStateLabel(l['boot-state'])}`));
    });
    // every object of the MIB but the not-accessible index is there: 27 scalars + 9 columns × rows
    expect(out.trim().split('\n')).toHaveLength(27 + 9 * layers.length);
  });

  it('snmpbulkwalk returns the same as snmpwalk; snmpget and snmptable read single values and the table', async () => {
    const plain = await walk('snmpwalk');
    expect(await walk('snmpbulkwalk', ['-Cr7'])).toBe(plain);
    expect(await walk('snmpbulkwalk', ['-Cr50'])).toBe(plain);
    const p = await props();
    expect(await get('ovnCurrentLayer.0', 'ovnHealthStatus.0', 'ovnLayerName.1')).toBe(
      [String(p['CurrentLayer']), String(p['Health']), String(layerRows(p)[0]?.['name'])].join('\n'));
    const noInstance = await snmpTool('snmpget', ['-v2c', '-c', 'public', target(), `${MODULE}::ovnLayerName.99`, `${MODULE}::ovnCurrentLayer.1`]);
    expect(noInstance.stdout).toMatch(/ovnLayerName\.99 = No Such Instance/);
    expect(noInstance.stdout).toMatch(/ovnCurrentLayer\.1 = No Such Instance/);
    const table = await snmpTool('snmptable', ['-v2c', '-c', 'public', '-Cf', '|', '-Ci', target(), `${MODULE}::ovnLayerTable`]);
    expect(table.stderr).toBe('');
    const rows = table.stdout.trim().split('\n');
    expect(rows).toContain('index|ovnLayerName|ovnLayerKind|ovnLayerBase|ovnLayerCurrent|ovnLayerDefault|ovnLayerPinned|ovnLayerSize'
      + '|ovnLayerBootState|ovnLayerBootStateReason');
    const l0 = layerRows(p)[0] ?? {};
    // the installed layer's boot is good ("installed")
    expect(rows).toContain(`1|${String(l0['name'])}|layer|${String(l0['base'])}|true|true|false|${Number(BigInt(l0['size'] as bigint) / 1048576n)} MiB`
      + `|${String(l0['boot-state'])}|${String(l0['boot-state-reason'])}`);
    expect(l0['boot-state']).toBe('good');
    // the MIB is read-only: a set is refused
    const set = await snmpTool('snmpset', ['-v2c', '-c', 'public', target(), `${MODULE}::ovnCurrentLayer.0`, 's', 'x']);
    expect(set.code).not.toBe(0);
  });

  it('an upgrade via nodectl changes the values and snmptrapd receives ovnUpgradeFinished; a refused one ovnUpgradeFailed', async () => {
    const v2 = await images.image(NVR.v2, { ...V2_CHANGES, extraMb: 48 });
    const upgrade = nodectlUpgrade(v2.imagePath);
    const txId = await upgrade.txId;
    // while it runs, the active transaction is visible (from the transaction's properties and Progress signals)
    await eventually(async () => (await get('ovnActiveTxId.0', 'ovnActiveTxKind.0')) === `${txId}\nupgrade`, 30_000, 20);
    const out = await traps.waitFor((o) => o.includes(`${ROOT_OID}.0.1`) && o.includes(txId), 60_000);
    const finished = await upgrade.done;
    // boot assessment: the new layer's last step puts it on trial (it boots once; saved_entry stays the good layer)
    expect(finished).toEqual({ code: 0, stderr: expect.stringMatching(/\[100%\] start-trial: done/) });
    // the notification carries its OBJECTS with the new values
    expect(out).toContain(`${ROOT_OID}.1.5.1.0 = STRING: ${txId}`);
    expect(out).toContain(`${ROOT_OID}.1.5.2.0 = STRING: upgrade`);
    expect(out).toContain(`${ROOT_OID}.1.1.4.0 = STRING: ${NVR.v2}+1`);
    expect(await get('ovnDefaultLayer.0', 'ovnCurrentLayer.0', 'ovnLayerCount.0', 'ovnLastTxId.0', 'ovnLastTxKind.0', 'ovnLastTxResult.0', 'ovnActiveTxId.0'))
      .toBe([`${NVR.v2}+1`, `${NVR.v1}+1`, '2', txId, 'upgrade', 'succeeded', ''].join('\n'));
    expect(await get('ovnLayerName.2', 'ovnLayerDefault.2', 'ovnLayerDefault.1', 'ovnLayerCurrent.1')).toBe([`${NVR.v2}+1`, 'true', 'false', 'true'].join('\n'));

    // an image older than every base: NotNewer, recorded as a failed upgrade (nodectl exits 1 with its hint)
    const older = await images.image('ovirt-node-ng-4.5.3-0.20241201.0');
    const refused = nodectlUpgrade(older.imagePath);
    const failedId = await refused.txId;
    const out2 = await traps.waitFor((o) => o.includes(`${ROOT_OID}.0.2`) && o.includes(failedId), 60_000);
    expect(await refused.done).toEqual({ code: 1, stderr: expect.stringMatching(/^hint: pass --allow-downgrade/m) });
    expect(out2).toContain(`${ROOT_OID}.1.5.6.0 = STRING: org.ovirt.Node.Error.NotNewer`);
    expect(await get('ovnLastTxResult.0', 'ovnLastTxErrorName.0')).toBe(['failed', 'org.ovirt.Node.Error.NotNewer'].join('\n'));
  }, 120_000);

  it('boot assessment: the table follows upgrade → reboot → CompleteBoot; a boot reported bad sends ovnLayerBootFailed', async () => {
    const v1 = `${NVR.v1}+1`;
    const v2 = `${NVR.v2}+1`;
    const v3 = `${NVR.v3}+1`;
    // After the upgrade above, v2 waits for its one trial boot: it is the layer the next boot starts.
    let seen = await expectBootAssessment();
    expect(seen.snmp.slice(0, 3)).toEqual([v2, v1, v2]);
    expect(seen.snmp.slice(3)).toEqual([v1, '3', expect.any(String), v2, '2', expect.any(String)]);
    expect(await get('ovnLayerBootState.1', 'ovnLayerBootState.2')).toBe('good\ntrial');

    // The sandbox "reboot" boots it once: it runs on trial, and a reset would come back on v1.
    expect(await sandboxReboot()).toBe(v2);
    seen = await expectBootAssessment();
    expect(seen.snmp.slice(0, 3)).toEqual([v2, v2, v1]);
    expect(seen.snmp[7]).toBe('2');

    // CompleteBoot with the configured gates (none required in the sandbox but a health report that is not failed).
    const [confirmTx] = await callLayers('CompleteBoot', 'a{sv}', [{}]);
    expect(await ended(String(confirmTx))).toBe('succeeded');
    seen = await expectBootAssessment();
    expect(seen.snmp.slice(0, 3)).toEqual(['', v2, v2]);
    expect(seen.snmp.slice(6, 8)).toEqual([v2, '3']);
    expect(await get('ovnLastTxKind.0', 'ovnLastTxResult.0')).toBe('boot-complete\nsucceeded');
    expect(traps.output).not.toContain(`${ROOT_OID}.0.5 `);

    // The next image: upgrade, trial boot, and an external health check reports the boot bad.
    const img = await images.image(NVR.v3, { extraMb: 16 });
    // keep every base: the later tests still use the first layer (the default KeepBases would collect it)
    const [upTx] = await callLayers('Upgrade', 'sa{sv}', [img.imagePath, { keep: new dbus.Variant('u', 5) }]);
    expect(await ended(String(upTx))).toBe('succeeded');
    expect(await sandboxReboot()).toBe(v3);
    await expectBootAssessment();
    const reason = 'smoke test: vdsm did not answer in 120 s — see journalctl -u vdsmd';
    const [badTx] = await callLayers('CompleteBoot', 'a{sv}', [{ verdict: new dbus.Variant('s', 'bad'), reason: new dbus.Variant('s', reason) }]);
    expect(await ended(String(badTx))).toBe('succeeded');
    const out = await traps.waitFor((o) => o.includes(`${ROOT_OID}.0.5`) && o.includes(v3), 30_000);
    const trap = out.slice(out.indexOf(`= OID: ${ROOT_OID}.0.5`));
    // ovnLayerName.3 and ovnLayerBootStateReason.3 (the layer's row), then ovnCurrentLayer.0 and ovnDefaultLayer.0
    expect(trap).toContain(`${ROOT_OID}.1.6.1.2.3 = STRING: ${v3}`);
    expect(trap).toContain(`${ROOT_OID}.1.6.1.10.3 = STRING: ${reason}`);
    expect(trap).toContain(`${ROOT_OID}.1.1.3.0 = STRING: ${v3}`);
    expect(trap).toContain(`${ROOT_OID}.1.1.4.0 = STRING: ${v2}`);
    seen = await expectBootAssessment();
    expect(seen.snmp.slice(0, 3)).toEqual(['', v3, v2]);
    expect(seen.snmp.slice(9)).toEqual([v3, '4', reason]);
    expect(await get('ovnLayerBootState.3')).toBe('bad');
    // once per change: the same bad layer is not news again
    const count = (): number => traps.output.split(`= OID: ${ROOT_OID}.0.5`).length - 1;
    expect(count()).toBe(1);
    await callLayers('Pin', 'sb', [v3, true]);
    await eventually(async () => (await get('ovnLayerPinned.3')) === 'true', 10_000, 100);
    await callLayers('Pin', 'sb', [v3, false]);
    await eventually(async () => (await get('ovnLayerPinned.3')) === 'false', 10_000, 100);
    await sleep(300);
    expect(count()).toBe(1);
  }, 180_000);

  it('daemon restart: unreachable while down (values kept), then current again and still subscribed', async () => {
    const before = await get('ovnDefaultLayer.0');
    await stopDaemon();
    await eventually(async () => (await get('ovnDaemonReachable.0')) === 'false', 10_000, 100);
    expect(await get('ovnDefaultLayer.0')).toBe(before);
    await startDaemon();
    await eventually(async () => (await get('ovnDaemonReachable.0')) === 'true', 10_000, 100);
    // a change after the restart arrives through the new subscription (Pin emits PropertiesChanged)
    await conn.call(new dbus.Message({
      destination: 'org.ovirt.Node', path: '/org/ovirt/Node', interface: 'org.ovirt.Node.Layers', member: 'Pin',
      signature: 'sb', body: [`${NVR.v1}+1`, true],
    }));
    await eventually(async () => (await get('ovnLayerPinned.1')) === 'true', 10_000, 100);
    expect(await get('ovnDefaultLayer.0')).toBe(String((await props())['DefaultLayer']));
  }, 60_000);

  it('snmpd restart: the subagent re-registers within its back-off', async () => {
    const registrations = (): number => (subagentLog.match(/agentx: registered /g) ?? []).length;
    const n = registrations();
    await snmpd.stop();
    await sleep(300);
    const t0 = Date.now();
    await snmpd.start();
    await eventually(async () => {
      const r = await snmpTool('snmpget', ['-v2c', '-c', 'public', '-Oqv', '-t', '0.5', '-r', '0', target(), `${MODULE}::ovnCurrentLayer.0`], 5000);
      return r.code === 0 && !/No Such Object/.test(r.stdout);
    }, 15_000, 100);
    const ms = Date.now() - t0;
    process.stdout.write(`snmpd back (answering) → subtree served again after ${ms} ms\n`);
    expect(registrations()).toBe(n + 1);
    expect(ms).toBeLessThan(10_000 + 2_000); // the back-off's ceiling, plus slack for 2 busy cores
  }, 60_000);

  it('200 parallel GETs through snmpd are all answered, with the right values', async () => {
    const p = await props();
    const session = snmp.createSession('127.0.0.1', 'public', { port, version: snmp.Version2c, timeout: 10_000, retries: 0 });
    const oids = ['1.3.6.1.4.1.2312.13.2.1.1.3.0', '1.3.6.1.4.1.2312.13.2.1.6.1.2.1'];
    try {
      const t0 = Date.now();
      const results = await Promise.all(Array.from({ length: 200 }, () => new Promise<snmp.SessionVarbind[]>((resolve, reject) => {
        session.get(oids, (err, vbs) => (err ? reject(err) : resolve(vbs ?? [])));
      })));
      process.stdout.write(`200 parallel GETs answered in ${Date.now() - t0} ms\n`);
      expect(results).toHaveLength(200);
      for (const vbs of results) {
        expect(vbs.map((v) => (snmp.isVarbindError(v) ? snmp.varbindError(v) : String(v.value)))).toEqual([
          String(p['CurrentLayer']), String(layerRows(p)[0]?.['name']),
        ]);
      }
    } finally {
      session.close();
    }
  }, 60_000);

  it('SIGTERM: closes its AgentX session (snmpd forgets the subtree at once) and exits 0', async () => {
    const exited = new Promise<number | null>((r) => subagent.once('exit', (code) => r(code)));
    subagent.kill('SIGTERM');
    expect(await exited).toBe(0);
    const r = await snmpTool('snmpget', ['-v2c', '-c', 'public', target(), `${MODULE}::ovnCurrentLayer.0`]);
    expect(r.stdout).toMatch(/No Such Object/);
    process.stdout.write(`${/agentx: \d+ requests answered.*/.exec(subagentLog)?.[0] ?? subagentLog}\n`);
  });
});
