#!/usr/bin/env node
/**
 * The sandbox demo (README: ./scripts/demo.sh): a private system bus with the SHIPPED bus policy, a real polkitd
 * with the SHIPPED .policy, and the imgbased daemon on the dir backend in ./sandbox/sysroot, seeded with demo images
 * from the test-image builder. It upgrades with a live progress bar, then serves the daemon's clients, bound to
 * 127.0.0.1 and unix sockets only: cockpit-ws with the Cockpit page (dist/cockpit/ovirt-node), snmpd as AgentX
 * master with the imgbased-snmp subagent, and prints how to reach them and the D-Bus API (busctl, nodectl). Ctrl-C
 * stops everything it started, by pid or process group (never by name), also when it comes during start-up.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { SingleBar } from 'cli-progress';
import * as dbus from 'dbus-next';
import { BUS_NAME, LAYERS_IFACE, MANAGER_PATH, TRANSACTION_IFACE } from '../dbus/api';
import { connectSystemBus } from '../dbus/connect';
import { buildTestImage, createTestSigningKey } from '../image/test-image-builder';
import { createSandbox } from './sysroot';
import { PrivateSystemBus } from './private-bus';
import { CockpitWs, COCKPIT_WS, tcpPortIsFree } from './cockpit-ws';
import { freeUdpPort, mibDirs, MODULE, runTool, Snmpd, SNMPD, stopChild } from './snmpd';

const REPO = path.resolve(__dirname, '../../..');
const NVR_INSTALLED = 'ovirt-node-ng-4.5.5-0.20250301.0';
const NVR_UPDATE = 'ovirt-node-ng-4.5.6-0.20250601.0';
/** Ports tried first, so that the printed commands stay the same from run to run; any free one otherwise. */
const COCKPIT_PORT = 9091;
const SNMP_PORT = 1161;
/** OVIRT-NODE-LAYERS-MIB::ovnCurrentLayer.0 */
const OID_CURRENT_LAYER = '.1.3.6.1.4.1.2312.13.2.1.1.3.0';

const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function plain(v: unknown): unknown {
  if (v instanceof dbus.Variant) return plain(v.value);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A word for a copy-and-paste shell line: quoted only when it has to be. */
function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
const shellLine = (argv: readonly string[]): string => argv.map(shellWord).join(' ');

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted (${signal})`);
  }
}

/**
 * What the demo started, and how to stop it. Ctrl-C (SIGINT) or SIGTERM at any time makes step() and track()
 * reject; stopAll() first waits for whatever track() was given to settle (everything that starts processes, so
 * nothing half-started is missed; each has its own time limit), then stops every registered thing in reverse order.
 */
class Lifetime {
  private readonly stops: Array<{ what: string; stop: () => Promise<void> }> = [];
  private readonly pending: Array<Promise<unknown>> = [];
  private signal: NodeJS.Signals | null = null;
  private readonly interrupted: Promise<never>;
  private readonly onSignal: (sig: NodeJS.Signals) => void;

  constructor() {
    let fire: (e: Interrupted) => void = () => undefined;
    this.interrupted = new Promise<never>((_, reject) => {
      fire = reject;
    });
    this.interrupted.catch(() => undefined); // observed through step() and untilInterrupted()
    this.onSignal = (sig) => {
      if (this.signal !== null) {
        say(`-- ${sig}: already stopping`);
        return;
      }
      this.signal = sig;
      fire(new Interrupted(sig));
    };
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  get wasInterrupted(): boolean {
    return this.signal !== null;
  }

  /** Await p unless interrupted first. */
  step<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.interrupted]);
  }

  /** Like step(), for work that starts processes: if interrupted, stopAll() waits for p to settle. */
  track<T>(p: Promise<T>): Promise<T> {
    this.pending.push(p.catch(() => undefined));
    return this.step(p);
  }

  /** Start something stoppable: registered for stopAll() as soon as it exists, even if interrupted meanwhile. */
  start<T extends { stop(): Promise<void> }>(what: string, p: Promise<T>): Promise<T> {
    return this.track(p.then((x) => {
      this.onStop(what, () => x.stop());
      return x;
    }));
  }

  onStop(what: string, stop: () => Promise<void>): void {
    this.stops.push({ what, stop });
  }

  /** Resolves on Ctrl-C/SIGTERM. */
  untilInterrupted(): Promise<NodeJS.Signals> {
    return this.interrupted.catch((e: unknown) => (e instanceof Interrupted ? e.signal : 'SIGTERM'));
  }

  async stopAll(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.all(this.pending).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 180_000))),
    ]);
    clearTimeout(timer);
    if (!settled) say('-- start-up steps did not settle in 3 minutes; stopping what is known');
    for (const { what, stop } of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (e) {
        process.stderr.write(`demo: stopping ${what}: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/** A proxy's method, or a clear error when the peer does not have it. */
function method(iface: dbus.ClientInterface, name: string): (...args: unknown[]) => Promise<unknown> {
  const fn: unknown = (iface as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw new Error(`${name} is not a method of the proxy`);
  return (...args) => (fn as (...a: unknown[]) => Promise<unknown>).apply(iface, args);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: run as root (loop mounts, polkitd, a private system bus)\n');
    return 2;
  }
  const work = path.resolve(process.argv[2] ?? 'sandbox');
  const sysroot = path.join(work, 'sysroot');
  const cockpitData = path.join(REPO, 'dist');
  const subagentJs = path.join(REPO, 'dist/src/snmp/main.js');
  const nodectlJs = path.join(REPO, 'dist/src/cli/nodectl.js');
  const agentxSocket = path.join(work, 'snmp/agentx-master');
  for (const [file, hint] of [[path.join(cockpitData, 'cockpit/ovirt-node/index.html'), 'scripts/build-cockpit.sh builds it'],
    [subagentJs, 'npx tsc -p tsconfig.build.json compiles it'], [COCKPIT_WS, 'scripts/setup.sh installs cockpit-ws'],
    [SNMPD, 'scripts/setup.sh installs snmpd']] as const) {
    await fs.access(file).catch(() => {
      throw new Error(`${file} is missing (${hint})`);
    });
  }
  if (Buffer.byteLength(agentxSocket) > 100) throw new Error(`${agentxSocket}: too long for a unix socket; use a shorter work dir`);

  const life = new Lifetime();
  const logFile = path.join(work, 'services.log');
  let code = 1;
  try {
    await life.step(fs.rm(work, { recursive: true, force: true }));
    await life.step(fs.mkdir(path.join(work, 'snmp'), { recursive: true }));

    say(`== imgbased sandbox in ${work}`);
    say('-- building signed demo images (squashfs with LiveOS/rootfs.img) with the test-image builder');
    const key = await life.step(createTestSigningKey(path.join(work, 'keys')));
    const installed = await life.track(buildTestImage({ outDir: path.join(work, 'images'), nvr: NVR_INSTALLED, sign: key }));
    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    say(`-- installing ${NVR_INSTALLED} as an oVirt install would, then imgbased init`);
    await life.track(createSandbox({ sysroot, installImage: installed.imagePath, trustedKeys: [path.join(key.trustedKeysDir, 'test.asc')] }));
    const update = await life.track(buildTestImage({ outDir: imageDir, nvr: NVR_UPDATE, sign: key, extraMb: 96 }));

    say('-- starting a private system bus (shipped policy) and polkitd (shipped actions)');
    const bus = await life.start('the private bus, polkitd, the daemon and the subagent', PrivateSystemBus.start({ repo: REPO, logFile }));
    const daemon = await life.track(bus.spawn([process.execPath, path.join(REPO, 'dist/src/daemon/main.js'), '--sysroot', sysroot, '--sandbox']));
    const daemonExit = new Promise<never>((_, reject) => daemon.once('exit', (exitCode, sig) => {
      say(`daemon exited (${String(exitCode ?? sig)})`);
      reject(new Error(`the daemon exited (${String(exitCode ?? sig)}); see ${logFile}`));
    }));
    daemonExit.catch(() => undefined); // observed where it matters
    await life.step(bus.waitForOwner(BUS_NAME, daemon));
    say(`-- imgbased daemon (pid ${String(daemon.pid)}) owns ${BUS_NAME}; logs in ${logFile}`);

    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    const c = connectSystemBus();
    c.on('error', (e: unknown) => say(`-- D-Bus connection: ${e instanceof Error ? e.message : String(e)}`));
    life.onStop('the D-Bus client', () => {
      c.disconnect();
      return Promise.resolve();
    });
    const obj = await life.step(c.getProxyObject(BUS_NAME, MANAGER_PATH));
    const layers = obj.getInterface(LAYERS_IFACE);
    const props = obj.getInterface('org.freedesktop.DBus.Properties');
    const get = async (name: string): Promise<unknown> => plain(await life.step(method(props, 'Get')(LAYERS_IFACE, name)));
    say(`   current layer: ${String(await get('CurrentLayer'))}`);

    say(`-- Upgrade(${path.relative(work, update.imagePath)}) over D-Bus`);
    const txPath: unknown = await life.step(method(layers, 'Upgrade')(update.imagePath, {}));
    if (typeof txPath !== 'string') throw new Error('Upgrade returned no transaction path');
    const tx = (await life.step(c.getProxyObject(BUS_NAME, txPath))).getInterface(TRANSACTION_IFACE);
    /** Show a transaction's progress as a bar until it finishes: [ok, error name, error message]. */
    const followBar = async (t: typeof tx): Promise<[boolean, string, string]> => {
      const bar = new SingleBar({
        format: ' {bar} {percentage}% | {step} | {message}',
        hideCursor: true,
        noTTYOutput: true,
        notTTYSchedule: 1000,
      });
      bar.start(100, 0, { step: 'queued', message: '' });
      return life.step(Promise.race([daemonExit, new Promise<[boolean, string, string]>((resolve) => {
        t.on('Progress', (percent: number, step: string, message: string) => bar.update(percent, { step, message }));
        t.on('Finished', (ok: boolean, name: string, message: string) => resolve([ok, name, message]));
      })])).finally(() => bar.stop());
    };
    const result = await followBar(tx);
    if (!result[0]) {
      say(`!! upgrade failed: ${result[1]}: ${result[2]}`);
    } else {
      say(`-- upgrade done: ${String(await get('TrialLayer'))} boots next on trial; the last good layer stays the saved default`);
      say(`-- sandbox Reboot(): booted ${String(await life.step(method(obj.getInterface('org.ovirt.Node.Sandbox'), 'Reboot')()))}`);
      say('-- CompleteBoot() — what imgbased-boot-complete.service runs on that boot: the health gates');
      const bootTx: unknown = await life.step(method(layers, 'CompleteBoot')({}));
      if (typeof bootTx !== 'string') throw new Error('CompleteBoot returned no transaction path');
      const bt = (await life.step(c.getProxyObject(BUS_NAME, bootTx))).getInterface(TRANSACTION_IFACE);
      const judged = await followBar(bt);
      const cur = ((await get('Layers')) as Array<Record<string, unknown>>).find((l) => l['current']);
      say(judged[0]
        ? `-- boot of ${String(cur?.['name'])}: ${String(cur?.['boot-state'])} (${String(cur?.['boot-state-reason'])}); default layer is now ${String(await get('DefaultLayer'))}`
        : `!! boot assessment failed: ${judged[1]}: ${judged[2]}`);
    }
    const current = String(await get('CurrentLayer'));
    for (const l of (await get('Layers')) as Array<Record<string, unknown>>) {
      say(`   layer ${String(l['name'])}${l['current'] ? ' (current)' : ''}${l['default'] ? ' (default)' : ''}${l['boot-state'] ? ` [${String(l['boot-state'])}]` : ''}`);
    }

    // SNMP: snmpd as AgentX master (UDP on 127.0.0.1, AgentX on a unix socket in the work dir) and the subagent.
    const mibs = mibDirs(REPO);
    const snmpPort = await life.step(freeUdpPort(SNMP_PORT));
    const snmpd = new Snmpd({ dir: path.join(work, 'snmp'), agentxSocket: `unix:${agentxSocket}`, port: snmpPort, mibDirs: mibs, logFile });
    life.onStop('snmpd', () => snmpd.stop());
    await life.step(snmpd.start());
    const subagent = await life.track(bus.spawn([process.execPath, subagentJs, '--master', `unix:${agentxSocket}`, '--config', '/dev/null']));
    life.onStop('imgbased-snmp', () => stopChild(subagent)); // before snmpd (the bus would stop it only after)
    const toolEnv = { MIBS: '', MIBDIRS: mibs.join(':'), SNMPCONFPATH: '/nonexistent', HOME: '/nonexistent' };
    const snmpEnd = Date.now() + 30_000;
    for (;;) {
      const r = await life.track(runTool(['snmpget', '-v2c', '-c', 'public', '-t', '0.5', '-r', '0', '-Oqv', `127.0.0.1:${snmpPort}`, OID_CURRENT_LAYER], toolEnv, 5000));
      if (r.code === 0 && r.stdout.includes(current)) break;
      if (subagent.exitCode !== null || subagent.signalCode !== null) throw new Error(`imgbased-snmp exited; see ${logFile}`);
      if (Date.now() > snmpEnd) throw new Error(`imgbased-snmp did not serve ovnCurrentLayer.0 in time (${r.stdout.trim()}${r.stderr.trim()}); see ${logFile}`);
      await life.step(sleep(200));
    }
    say(`-- snmpd (pid ${String(snmpd.pid)}) on udp 127.0.0.1:${snmpPort}, AgentX on ${agentxSocket}; imgbased-snmp subagent (pid ${String(subagent.pid)})`);

    // Cockpit: cockpit-ws + bridge serving dist/cockpit/ovirt-node, in their own process group.
    const wsOpts = { systemBus: bus.address, dataDir: cockpitData, logFile };
    const preferred = (await life.step(tcpPortIsFree(COCKPIT_PORT))) ? { port: COCKPIT_PORT } : {};
    const ws = await life.start('cockpit-ws', CockpitWs.start({ ...wsOpts, ...preferred }).catch((e: unknown) => {
      if (life.wasInterrupted || preferred.port === undefined) throw e;
      return CockpitWs.start(wsOpts); // the preferred port was taken meanwhile: any free one
    }));
    say(`-- cockpit-ws + cockpit-bridge (process group ${String(ws.pgid)}) on ${ws.origin}`);

    const snmpFlags = ['-v2c', '-c', 'public', '-M', mibs.join(':'), '-m', MODULE, `127.0.0.1:${snmpPort}`];
    say('\n== The daemon keeps serving its clients (127.0.0.1 and unix sockets only).');
    say('Cockpit page "Node Layers" (no login; ssh -L from elsewhere):');
    say(`   ${ws.url('ovirt-node')}`);
    say('SNMP (OVIRT-NODE-LAYERS-MIB through snmpd and imgbased-snmp):');
    say(`   ${shellLine(['snmpwalk', ...snmpFlags, `${MODULE}::ovirtNodeLayersMIB`])}`);
    say(`   ${shellLine(['snmpget', ...snmpFlags, `${MODULE}::ovnCurrentLayer.0`, `${MODULE}::ovnDefaultLayer.0`])}`);
    say('D-Bus (docs/API.md), in another shell:');
    say(`   export DBUS_SYSTEM_BUS_ADDRESS=${bus.address}`);
    say(`   busctl --system introspect ${BUS_NAME} ${MANAGER_PATH}`);
    say(`   busctl --system --json=pretty get-property ${BUS_NAME} ${MANAGER_PATH} ${LAYERS_IFACE} Layers`);
    say(`   busctl --system call ${BUS_NAME} ${MANAGER_PATH} ${LAYERS_IFACE} Rollback 'sa{sv}' '' 0`);
    say(`   busctl --system call ${BUS_NAME} ${MANAGER_PATH} ${LAYERS_IFACE} Check`);
    say(`   node ${nodectlJs} info        # or: layers, check, history, policy, upgrade --automatic, rollback, watch, cleanup`);
    say(`   node ${path.join(REPO, 'dist/src/cli/imgbased.js')} --sysroot ${sysroot} history   # the offline view`);
    say(`Started: daemon pid ${String(daemon.pid)}, snmpd pid ${String(snmpd.pid)}, imgbased-snmp pid ${String(subagent.pid)}, ` +
      `cockpit-ws process group ${String(ws.pgid)} (and dbus-daemon, polkitd); logs in ${logFile}`);
    say('Press Ctrl-C to stop cockpit-ws, snmpd, the subagent, the daemon, polkitd and the bus.');
    await Promise.race([life.untilInterrupted(), daemonExit.catch(() => undefined)]);
    code = result[0] ? 0 : 1;
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    say(`-- ${e.signal} during start-up`);
    code = 130;
  } finally {
    say('-- stopping everything the demo started');
    await life.stopAll();
  }
  return code;
}

void main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
