/**
 * Fuzzing the running daemon (compiled, sandbox sysroot, private system-like bus with the SHIPPED policy, real
 * polkitd): ≥ 10,000 random malformed calls from several concurrent clients (root, nobody, the polkit-granted user)
 * — wrong signatures, wrong variant types, unknown option keys, huge strings (1 MB), path traversal and non-images
 * as image paths (existing files, directories, FIFOs, /dev and /proc files, symlink loops, over-long names), bad
 * NVRs and layer names, bad object paths for Cancel, random members and interfaces, Properties Get/GetAll/Set
 * with junk. A seeded PRNG makes a failure reproducible: FUZZ_SEED=<n> (the seed is printed), FUZZ_CALLS=<n>.
 *
 * Every reply is a success or a NAMED error of the org.ovirt.Node.Error.* / org.freedesktop.DBus.Error.* families —
 * never dbus-next's generic ServiceError, never Error.Failed (the daemon's "unexpected"), never a timeout; every
 * transaction the fuzz managed to start ends with a named error other than Failed; the daemon stays up, logs no
 * unexpected failure, and the host snapshot (volumes, boot entries, grubenv, journal) is unchanged.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Caller, CallResult, CallSpec, RemoteClient } from './harness';
import { eventually, mustRun, PrivateBus, REPO } from './harness';
import { NVR, snapshotHost, sandboxHost } from '../helpers/host';
import { prng } from '../helpers/prng';

const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const DEST = 'org.ovirt.Node';
const MANAGER = '/org/ovirt/Node';
const LAYERS = 'org.ovirt.Node.Layers';
const TX = 'org.ovirt.Node.Transaction';
const PROPS = 'org.freedesktop.DBus.Properties';
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);
const CALLS = Number(process.env['FUZZ_CALLS'] ?? 10_000);
const CALL_TIMEOUT_MS = 20_000;
const MB = 1024 * 1024;


type Wire = unknown;

class Gen {
  constructor(private readonly r: () => number, private readonly paths: readonly string[]) {}

  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  /** Strings: empty, short junk, control characters (no NUL: the bus rejects those itself), unicode, huge. */
  str(): string {
    const k = this.int(100);
    if (k < 1) return 'x'.repeat(MB); // 1 MB
    if (k < 3) return 'é'.repeat(3000 + this.int(3000));
    if (k < 10) return '';
    if (k < 25) return this.pick(['..', '../../etc/shadow', '/../../etc/shadow', '%2e%2e/', '\u202e', '*', '$(reboot)', '`id`', ';', '\n', ' ']);
    if (k < 40) return Array.from({ length: 1 + this.int(20) }, () => String.fromCharCode(1 + this.int(0x7e))).join('');
    if (k < 50) return Array.from({ length: 1 + this.int(10) }, () => String.fromCodePoint(0xa0 + this.int(0x2ff00))).join('').replace(/[\ud800-\udfff]/g, '?');
    return this.pick(['ovirt-node-ng', 'ovirt-node-ng-4.5.4', 'ovirt-node-ng-4.5.4-0', '4.5.4-0.20250101.0+1', 'root', 'pool', 'a-b-c+', '+1', '-1-1', 'ovirt-node-ng-4.5.4-0.20250101.0+0', 'ovirt-node-ng-4.5.4-0.20250101.0+x', `${NVR.v1}+2`, `${NVR.v2}+1`, NVR.v3]);
  }

  /** Image paths: traversal, relative, non-images that exist, special files, over-long names. */
  imagePath(): string {
    return this.chance(0.7) ? this.pick(this.paths) : this.str();
  }

  objectPath(): string {
    const k = this.int(10);
    if (k < 2) return '/';
    if (k < 4) return '/org/ovirt/Node/Transaction';
    if (k < 6) return `/org/ovirt/Node/Transaction/t${'0'.repeat(14)}_${this.int(0xffffff).toString(16)}`;
    if (k < 7) return '/org/ovirt/Node/Transaction/' + 'a'.repeat(200 + this.int(2000));
    if (k < 8) return '/org/ovirt/Node/' + Array.from({ length: 1 + this.int(6) }, () => `n${this.int(100)}`).join('/');
    return this.pick(['/org/ovirt/Node', '/org', '/org/ovirt', '/org/ovirt/Node/Transaction/_', '/x/y/z']);
  }

  /** A random complete type (depth-limited). */
  type(depth = 0): string {
    const k = this.int(depth > 2 ? 12 : 18);
    if (k < 12) return 'sbyniqxtduog'[k] as string;
    if (k < 13) return 'v';
    if (k < 15) return `a${this.type(depth + 1)}`;
    if (k < 17) return `a{s${this.type(depth + 1)}}`;
    return `(${this.type(depth + 1)}${this.chance(0.5) ? this.type(depth + 1) : ''})`;
  }

  signature(): string {
    const n = this.int(4);
    return this.chance(0.5)
      ? this.pick(['', 's', 'u', 'b', 'a{sv}', 'sa{sv}', 'sb', 'bs', 'ss', 'su', 'ssv', 'sa{ss}', 'a{ss}', 'as', 'v', 'o', 'sa{sv}s', 'ssss'])
      : Array.from({ length: n }, () => this.type()).join('');
  }

  /** A value of one complete type, in the client agent's wire format. */
  value(t: string): Wire {
    const [v] = this.values(t);
    return v;
  }

  /** Values for a signature (a sequence of complete types). */
  values(sig: string): Wire[] {
    const out: Wire[] = [];
    let i = 0;
    while (i < sig.length) {
      const end = completeTypeEnd(sig, i);
      out.push(this.valueOf(sig.slice(i, end)));
      i = end;
    }
    return out;
  }

  private valueOf(t: string): Wire {
    switch (t[0]) {
      case 's': return this.str();
      case 'o': return this.objectPath();
      case 'g': return this.pick(['', 's', 'a{sv}', 'ai', '(ss)']);
      case 'b': return this.chance(0.5);
      case 'y': return this.int(256);
      case 'n': return this.int(65536) - 32768;
      case 'q': return this.int(65536);
      case 'i': return this.int(2 ** 32) - 2 ** 31;
      case 'u': return this.pick([0, 1, 2, 0xffffffff, this.int(2 ** 32)]);
      case 'x': return { $n: String(BigInt(this.int(2 ** 32)) - 2n ** 31n) };
      case 't': return { $n: this.pick(['0', '1', '18446744073709551615', String(this.int(2 ** 32))]) };
      case 'd': return this.pick([0, -1.5, 1e308, Math.PI]);
      case 'v': {
        const inner = this.type(2);
        return { $v: [inner, this.valueOf(inner)] };
      }
      case 'a': {
        if (t === 'ay') return { $b: Buffer.from(this.str().slice(0, 64)).toString('base64') };
        if (t[1] === '{') {
          const valueType = t.slice(3, -1);
          const o: Record<string, Wire> = {};
          for (let n = this.int(3); n > 0; n--) o[this.str().slice(0, 300)] = this.valueOf(valueType);
          return o;
        }
        const el = t.slice(1);
        return Array.from({ length: this.int(3) }, () => this.valueOf(el));
      }
      case '(': return this.values(t.slice(1, -1));
      default: throw new Error(`fuzz: no generator for ${t}`);
    }
  }

  /** a{sv} options: known keys with wrong (or right) types, unknown keys, junk keys. */
  options(): Record<string, Wire> {
    const o: Record<string, Wire> = {};
    for (let n = this.int(4); n > 0; n--) {
      const key = this.chance(0.6) ? this.pick(['wait', 'allow-downgrade', 'method', 'keep', 'mode', 'Wait', 'kepe', 'wait ', 'force', '']) : this.str().slice(0, this.chance(0.02) ? MB : 200);
      const k = this.int(10);
      let value: Wire;
      if (k < 3) value = { $v: ['b', this.chance(0.5)] };
      else if (k < 5) value = { $v: ['s', this.pick(['tree', 'blocks', 'check', 'stage', 'apply', 'none', 'TREE', ''])] };
      else if (k < 6) value = { $v: ['u', this.pick([0, 1, 100, 0xffffffff])] };
      else {
        const t = this.type(1);
        value = { $v: [t, this.valueOf(t)] };
      }
      o[key] = value;
    }
    return o;
  }

  /** One random call. */
  call(): CallSpec {
    const k = this.int(100);
    const m = (member: string, signature: string, body: Wire[], iface = LAYERS, p = MANAGER): CallSpec =>
      ({ destination: DEST, path: p, interface: iface, member, signature, body: body as unknown[] });
    // right signature, bad values
    if (k < 14) return m('Upgrade', 'sa{sv}', [this.imagePath(), this.chance(0.3) ? {} : this.options()]);
    if (k < 20) return m('Rollback', 'sa{sv}', [this.str(), this.options()]);
    if (k < 26) return m('RemoveBase', 'sa{sv}', [this.str(), this.options()]);
    if (k < 30) return m('Cleanup', 'a{sv}', [this.options()]);
    if (k < 34) return m('Pin', 'sb', [this.str(), this.chance(0.5)]);
    if (k < 37) return m('AutomaticUpdateTrigger', 'a{sv}', [this.options()]);
    if (k < 40) return m('SetAutomaticUpdatePolicy', 's', [this.pick(['None', 'apply ', 'stage\n', '', 'always', this.str()])]);
    if (k < 42) return m('GetHistory', 'u', [this.pick([0, 1, 5, 0xffffffff])]);
    if (k < 43) return m('Check', '', []);
    // wrong signatures on real members (of both interfaces, on both kinds of paths)
    if (k < 60) {
      const sig = this.signature();
      const member = this.pick(['Upgrade', 'Rollback', 'Cleanup', 'RemoveBase', 'Pin', 'Check', 'GetHistory', 'AutomaticUpdateTrigger', 'SetAutomaticUpdatePolicy', 'Cancel']);
      return m(member, sig, this.values(sig), member === 'Cancel' ? TX : LAYERS, this.chance(0.8) ? (member === 'Cancel' ? this.objectPath() : MANAGER) : this.objectPath());
    }
    // Cancel on bad object paths
    if (k < 68) return m('Cancel', '', [], TX, this.objectPath());
    // Properties with junk
    if (k < 84) {
      const p = this.chance(0.7) ? MANAGER : this.objectPath();
      const iface = this.pick([LAYERS, TX, 'org.ovirt.Node.Nope', '', 'x', this.str().slice(0, 255)]);
      const name = this.pick(['Layers', 'CurrentLayer', 'Version', 'State', 'Nope', '', this.str().slice(0, 1000)]);
      const j = this.int(4);
      if (j === 0) return m('Get', 'ss', [iface, name], PROPS, p);
      if (j === 1) return m('GetAll', 's', [iface], PROPS, p);
      if (j === 2) {
        const t = this.type(1);
        return m('Set', 'ssv', [iface, name, { $v: [t, this.valueOf(t)] }], PROPS, p);
      }
      const sig = this.signature();
      return m(this.pick(['Get', 'GetAll', 'Set']), sig, this.values(sig), PROPS, p);
    }
    // random members on allowed interfaces, random interfaces (the bus policy refuses those)
    if (k < 94) {
      const sig = this.signature();
      const iface = this.pick([LAYERS, TX, PROPS, 'org.freedesktop.DBus.Introspectable', 'org.freedesktop.DBus.Peer', 'org.ovirt.Node.Sandbox', 'org.ovirt.Node.Secret', 'org.freedesktop.DBus.ObjectManager']);
      const member = this.pick(['Reboot', 'Introspect', 'Ping', 'GetMachineId', 'GetManagedObjects', 'Upgrade2', 'upgrade', 'X', `M${this.int(1000)}`]);
      return m(member, sig, this.values(sig), iface, this.chance(0.5) ? MANAGER : this.objectPath());
    }
    // well-formed reads (the daemon must keep answering these in between)
    return m('Get', 'ss', [LAYERS, this.pick(['Layers', 'CurrentLayer', 'ActiveTransaction', 'Pool', 'LastTransaction'])], PROPS);
  }
}

/** End index of the complete type starting at sig[i]. */
function completeTypeEnd(sig: string, i: number): number {
  const c = sig[i];
  if (c === 'a') return completeTypeEnd(sig, i + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (sig[j] !== close) j = completeTypeEnd(sig, j);
    return j + 1;
  }
  return i + 1;
}

const NAMED = /^(org\.ovirt\.Node\.Error\.(InvalidArgument|NotAuthorized|Busy|NotFound|NoSpace|VerificationFailed|NotNewer|Cancelled)|org\.freedesktop\.DBus\.Error\.[A-Za-z]+)$/;

describe('fuzz: malformed calls against the running daemon', () => {
  let dir: string;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let daemonLog = '';
  let junk: string[] = [];

  const historyDir = (): string => path.join(sysroot, 'var/lib/imgbased/history');

  beforeAll(async () => {
    await fs.access(DAEMON);
    const host = await sandboxHost('fuzz');
    dir = host.dir;
    const images = host.images;
    sysroot = host.sysroot;
    // Things that exist but are not images — also in ImageDir, where AutomaticUpdateTrigger looks.
    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    const other = path.join(dir, 'not-images');
    await fs.mkdir(imageDir, { recursive: true });
    await fs.mkdir(other, { recursive: true });
    const text = path.join(imageDir, 'text.img');
    await fs.writeFile(text, 'not an image\n');
    await fs.writeFile(path.join(imageDir, 'empty.img'), '');
    await fs.mkdir(path.join(imageDir, 'dir.img'));
    const withSum = path.join(imageDir, 'with-checksum.img');
    await fs.writeFile(withSum, Buffer.alloc(1 << 20, 7));
    await mustRun(['sh', '-c', `cd ${imageDir} && sha256sum with-checksum.img > with-checksum.img.sha256`]);
    const badSum = path.join(other, 'bad-checksum.img');
    await fs.writeFile(badSum, 'junk');
    await fs.writeFile(`${badSum}.sha256`, 'this is not a digest\n');
    const fifo = path.join(other, 'fifo.img');
    await mustRun(['mkfifo', fifo]);
    await fs.writeFile(`${fifo}.sha256`, `${'0'.repeat(64)}  fifo.img\n`);
    const loop = path.join(other, 'loop.img');
    await fs.symlink(loop, loop);
    const dangling = path.join(other, 'dangling.img');
    await fs.symlink(path.join(other, 'missing'), dangling);
    const sigJunk = path.join(other, 'sig-junk.img');
    await fs.writeFile(sigJunk, 'x');
    await mustRun(['sh', '-c', `cd ${other} && sha256sum sig-junk.img > sig-junk.img.sha256 && echo garbage > sig-junk.img.sig`]);
    junk = [
      text, path.join(imageDir, 'empty.img'), path.join(imageDir, 'dir.img'), withSum, badSum, fifo, loop, dangling, sigJunk,
      '/../../etc/shadow', '/etc/shadow', '/etc', '/', '/dev/zero', '/dev/null', '/proc/self/status', '/proc/kmsg', '/proc/self/mem',
      'relative.img', './x.img', '../../etc/shadow', '', `${imageDir}/../../../../etc/shadow`, `${imageDir}/nope.img`,
      `/${'a'.repeat(300)}`, `/${'a/'.repeat(3000)}x`, `/${'x'.repeat(MB)}`, '/tmp/\n/evil', '/tmp/ünïcødé.img', `${text}/child`,
    ];
    bus = await PrivateBus.start({ polkit: true });
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot]);
    daemon.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    await eventually(async () => (await bus.busctl('root', ['status', DEST])).code === 0, 20_000, 100);
  }, 120_000);

  afterAll(async () => {
    if (process.env['FUZZ_DAEMON_LOG']) await fs.writeFile(process.env['FUZZ_DAEMON_LOG'], daemonLog);
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await gone;
    }
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it(`${CALLS} random malformed calls from concurrent root, nobody and granted clients → named errors only; the daemon stays up; the host is unchanged`, async () => {
    process.stdout.write(`fuzz seed ${SEED} (reproduce with FUZZ_SEED=${SEED})\n`);
    const before = await snapshotHost(sysroot);
    const historyBefore = new Set(await fs.readdir(historyDir()));
    const who: Caller[] = ['root', 'root', 'root', 'root', 'nobody', 'nobody', 'granted', 'granted'];
    const clients = await Promise.all(who.map((w) => bus.clientAs(w)));
    const PIPELINE = 4;
    const counts = new Map<string, number>();
    const bad: Array<{ who: Caller; call: string; result: string }> = [];
    let issued = 0;
    const t0 = Date.now();

    const describe = (c: CallSpec): string => JSON.stringify({ ...c, body: c.body }, (_k, x: unknown) =>
      typeof x === 'string' && x.length > 120 ? `${x.slice(0, 40)}…(${x.length} chars)` : x);

    const worker = async (client: RemoteClient, w: Caller, stream: number): Promise<void> => {
      const gen = new Gen(prng(SEED * 1000 + stream), junk);
      for (;;) {
        if (issued >= CALLS) return;
        issued++;
        const spec = gen.call();
        let timer: NodeJS.Timeout | undefined;
        const r: CallResult = await Promise.race([
          client.call(spec),
          new Promise<CallResult>((resolve) => {
            timer = setTimeout(() => resolve({ ok: false, name: 'fuzz.Timeout', message: `no reply in ${CALL_TIMEOUT_MS} ms` }), CALL_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        const key = r.ok ? `ok ${spec.interface}.${spec.member}` : r.name;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        if (process.env['FUZZ_TRACE'] && !r.ok && !NAMED.test(r.name)) process.stdout.write(`BAD ${w} ${describe(spec).slice(0, 400)} -> ${r.name}: ${r.message.slice(0, 300)}\n`);
        if (!r.ok && !NAMED.test(r.name)) bad.push({ who: w, call: describe(spec), result: `${r.name}: ${r.message.slice(0, 300)}` });
      }
    };
    await Promise.all(clients.flatMap((c, i) => Array.from({ length: PIPELINE }, (_x, j) => worker(c, who[i] as Caller, i * PIPELINE + j))));
    const ms = Date.now() - t0;
    process.stdout.write(`fuzz: ${issued} calls in ${ms} ms (${Math.round((issued * 1000) / ms)}/s)\n` +
      [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(6)}  ${k}`).join('\n') + '\n');
    expect(issued).toBeGreaterThanOrEqual(CALLS);
    expect(bad.slice(0, 20)).toEqual([]);

    // Queued work drains; the daemon still answers; nothing it started failed unexpectedly.
    const root = clients[0] as RemoteClient;
    const get = async (name: string): Promise<CallResult> =>
      root.call({ destination: DEST, path: MANAGER, interface: PROPS, member: 'Get', signature: 'ss', body: [LAYERS, name] });
    await eventually(async () => {
      const r = await get('ActiveTransaction');
      return r.ok && JSON.stringify(r.body) === JSON.stringify([{ $v: ['o', '/'] }]);
    }, 60_000, 200);
    expect(daemon.exitCode).toBeNull();
    expect(daemon.signalCode).toBeNull();
    expect((await get('CurrentLayer')).ok).toBe(true);
    expect(await snapshotHost(sysroot)).toEqual(before);

    const added = (await fs.readdir(historyDir())).filter((n) => !historyBefore.has(n));
    const outcomes = new Map<string, number>();
    const unexpected: string[] = [];
    for (const n of added) {
      const rec = JSON.parse(await fs.readFile(path.join(historyDir(), n), 'utf8')) as { kind: string; state: string; error?: { name: string; message: string }; request: unknown };
      const key = `${rec.kind} ${rec.state} ${rec.error?.name ?? ''}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (rec.state === 'failed' && (rec.error === undefined || !NAMED.test(rec.error.name))) {
        unexpected.push(`${key}: ${rec.error?.message.slice(0, 200)} ← ${JSON.stringify(rec.request).slice(0, 200)}`);
      }
    }
    process.stdout.write(`transactions started by the fuzz: ${added.length}\n` +
      [...outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(6)}  ${k}`).join('\n') + '\n');
    expect(unexpected.slice(0, 20)).toEqual([]);
    expect(daemonLog.split('\n').filter((l) => /failed unexpectedly|crashed|refreshing properties failed/.test(l)).map((l) => l.slice(0, 300))).toEqual([]);
  }, 180_000);

  it('a string with a NUL byte never reaches the daemon (the bus drops the sender); the daemon stays up', async () => {
    const evil = await bus.clientAs('root');
    const r = await evil.call({ destination: DEST, path: MANAGER, interface: LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: ['/tmp/a\u0000b', {}] });
    expect(r.ok).toBe(false);
    const good = await bus.clientAs('nobody');
    const v = await good.call({ destination: DEST, path: MANAGER, interface: PROPS, member: 'Get', signature: 'ss', body: [LAYERS, 'ActiveTransaction'] });
    expect(v).toEqual({ ok: true, signature: 'v', body: [{ $v: ['o', '/'] }] });
    expect(daemon.exitCode).toBeNull();
  });
});
