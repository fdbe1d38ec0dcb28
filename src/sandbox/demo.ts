#!/usr/bin/env node
/**
 * The sandbox demo (README: ./scripts/demo.sh): a private system bus with the SHIPPED bus policy, a real polkitd
 * with the SHIPPED .policy, and the imgbased daemon on the dir backend in ./sandbox/sysroot, seeded with demo images
 * from the test-image builder. It upgrades with a live progress bar, then keeps serving until Ctrl-C, which stops
 * everything it started.
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

const REPO = path.resolve(__dirname, '../../..');
const NVR_INSTALLED = 'ovirt-node-ng-4.5.5-0.20250301.0';
const NVR_UPDATE = 'ovirt-node-ng-4.5.6-0.20250601.0';

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
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });

  say(`== imgbased sandbox in ${work}`);
  say('-- building signed demo images (squashfs with LiveOS/rootfs.img) with the test-image builder');
  const key = await createTestSigningKey(path.join(work, 'keys'));
  const installed = await buildTestImage({ outDir: path.join(work, 'images'), nvr: NVR_INSTALLED, sign: key });
  const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
  say(`-- installing ${NVR_INSTALLED} as an oVirt install would, then imgbased init`);
  await createSandbox({ sysroot, installImage: installed.imagePath, trustedKeys: [path.join(key.trustedKeysDir, 'test.asc')] });
  const update = await buildTestImage({ outDir: imageDir, nvr: NVR_UPDATE, sign: key, extraMb: 96 });

  say('-- starting a private system bus (shipped policy) and polkitd (shipped actions)');
  const bus = await PrivateSystemBus.start({ repo: REPO, logFile: path.join(work, 'services.log') });
  let client: dbus.MessageBus | null = null;
  const stopAll = async (): Promise<void> => {
    client?.disconnect();
    client = null;
    await bus.stop();
  };
  try {
    const daemon = await bus.spawn([process.execPath, path.join(REPO, 'dist/src/daemon/main.js'), '--sysroot', sysroot, '--sandbox']);
    await bus.waitForOwner(BUS_NAME, daemon);
    say(`-- imgbased daemon (pid ${daemon.pid}) owns ${BUS_NAME}; logs in ${path.join(work, 'services.log')}`);

    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    client = connectSystemBus();
    const obj = await client.getProxyObject(BUS_NAME, MANAGER_PATH);
    const layers = obj.getInterface(LAYERS_IFACE);
    const props = obj.getInterface('org.freedesktop.DBus.Properties');
    const get = async (name: string): Promise<unknown> => plain(await method(props, 'Get')(LAYERS_IFACE, name));
    say(`   current layer: ${String(await get('CurrentLayer'))}`);

    say(`-- Upgrade(${path.relative(work, update.imagePath)}) over D-Bus`);
    const txPath: unknown = await method(layers, 'Upgrade')(update.imagePath, {});
    if (typeof txPath !== 'string') throw new Error('Upgrade returned no transaction path');
    const tx = (await client.getProxyObject(BUS_NAME, txPath)).getInterface(TRANSACTION_IFACE);
    const bar = new SingleBar({
      format: ' {bar} {percentage}% | {step} | {message}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 1000,
    });
    bar.start(100, 0, { step: 'queued', message: '' });
    const result = await new Promise<[boolean, string, string]>((resolve) => {
      tx.on('Progress', (percent: number, step: string, message: string) => bar.update(percent, { step, message }));
      tx.on('Finished', (ok: boolean, name: string, message: string) => resolve([ok, name, message]));
    });
    bar.stop();
    if (!result[0]) {
      say(`!! upgrade failed: ${result[1]}: ${result[2]}`);
    } else {
      say(`-- upgrade done: default layer is now ${String(await get('DefaultLayer'))}`);
      say(`-- sandbox Reboot(): booted ${String(await method(obj.getInterface('org.ovirt.Node.Sandbox'), 'Reboot')())}`);
    }
    for (const l of (await get('Layers')) as Array<Record<string, unknown>>) {
      say(`   layer ${String(l['name'])}${l['current'] ? ' (current)' : ''}${l['default'] ? ' (default)' : ''}`);
    }

    say('\n== The daemon keeps serving. In another shell:');
    say(`   export DBUS_SYSTEM_BUS_ADDRESS=${bus.address}`);
    say(`   busctl --system introspect ${BUS_NAME} ${MANAGER_PATH}`);
    say(`   busctl --system --json=pretty get-property ${BUS_NAME} ${MANAGER_PATH} ${LAYERS_IFACE} Layers`);
    say(`   busctl --system call ${BUS_NAME} ${MANAGER_PATH} ${LAYERS_IFACE} Rollback 'sa{sv}' '' 0`);
    say(`   busctl --system call ${BUS_NAME} ${MANAGER_PATH} ${LAYERS_IFACE} Check`);
    say(`   node ${path.join(REPO, 'dist/src/cli/nodectl.js')} info        # or: check, layers, history, rollback, cleanup`);
    say(`   node ${path.join(REPO, 'dist/src/cli/imgbased.js')} --sysroot ${sysroot} history   # the offline view`);
    say('Press Ctrl-C to stop the daemon, polkitd and the bus.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      daemon.once('exit', (code) => {
        say(`daemon exited (${String(code)})`);
        resolve();
      });
    });
    return result[0] ? 0 : 1;
  } finally {
    say('-- stopping everything the demo started');
    await stopAll();
  }
}

void main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
