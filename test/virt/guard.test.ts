/**
 * The running-VMs guard against libvirt's built-in test driver (no libvirtd needed) and against endpoints that
 * fail or hang. The guard spawns the compiled probe, so this needs `npm run build` (dist/src/virt/libvirt-probe.js).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { VMsRunningError } from '../../src/errors';
import { sandboxLibvirtXml } from '../../src/sandbox/sysroot';
import {
  assertRebootAllowed,
  describeRunning,
  libvirtGuard,
  parseProbeOutput,
  probePath,
  type VmReport,
} from '../../src/virt/guard';

const FIXTURES = path.resolve(__dirname, '../fixtures/libvirt');
const fixtureUri = (name: string): string => `test://${path.join(FIXTURES, name)}`;

function report(running: string[], available = true, message = 'x'): VmReport {
  return { available, running, message, checkedAt: Date.now() };
}

describe('libvirtGuard against the libvirt test driver', () => {
  it('uses the compiled probe of the repository build', () => {
    expect(probePath()).toBe(path.resolve(__dirname, '../../dist/src/virt/libvirt-probe.js'));
    expect(fs.existsSync(probePath())).toBe(true);
  });

  it('test:///default has one running domain, "test"', async () => {
    const before = Date.now();
    const r = await libvirtGuard({ uri: 'test:///default' }).report();
    expect(r).toEqual({
      available: true,
      running: ['test'],
      message: '1 virtual machine runs: test',
      checkedAt: expect.any(Number),
    });
    expect(r.checkedAt).toBeGreaterThanOrEqual(before);
    expect(r.checkedAt).toBeLessThanOrEqual(Date.now());
  });

  it('lists exactly the running domains of a fixture, sorted, not the shut-off one', async () => {
    const r = await libvirtGuard({ uri: fixtureUri('running-and-stopped.xml') }).report();
    expect(r.available).toBe(true);
    expect(r.running).toEqual(['db vm with space', 'engine-vm']);
    expect(r.message).toBe('2 virtual machines run: db vm with space, engine-vm');
  });

  it('counts a paused domain as running (a reboot would kill it too)', async () => {
    const r = await libvirtGuard({ uri: fixtureUri('paused.xml') }).report();
    expect(r).toMatchObject({ available: true, running: ['paused-vm'] });
  });

  it('reports available with no names when only shut-off domains exist', async () => {
    const r = await libvirtGuard({ uri: fixtureUri('none-running.xml') }).report();
    expect(r).toMatchObject({ available: true, running: [], message: 'no virtual machines run' });
  });

  it('shares one probe between concurrent reports, and probes again afterwards', async () => {
    const g = libvirtGuard({ uri: 'test:///default' });
    const [a, b] = await Promise.all([g.report(), g.report()]);
    expect(a).toBe(b);
    const c = await g.report();
    expect(c).not.toBe(a);
    expect(c.running).toEqual(['test']);
  });

  it('a fresh report never takes the answer of a probe that started before it: a VM started meanwhile is seen', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgbased-guard-'));
    try {
      const xml = path.join(dir, 'host.xml');
      fs.writeFileSync(xml, sandboxLibvirtXml([{ name: 'engine-vm', running: false }]));
      const g = libvirtGuard({ uri: `test://${xml}` });
      const early = g.report(); // the poller's probe, under way
      fs.writeFileSync(xml, sandboxLibvirtXml([{ name: 'engine-vm', running: true }]));
      const [shared, fresh] = await Promise.all([g.report(), g.report({ fresh: true })]);
      expect(shared).toBe(await early); // joined the probe under way
      expect(fresh).not.toBe(shared);
      expect(fresh.running).toEqual(['engine-vm']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('measures the cost of one report', async () => {
    const g = libvirtGuard({ uri: 'test:///default' });
    await g.report(); // warm the page cache
    const n = 5;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) expect((await g.report()).running).toEqual(['test']);
    const per = (performance.now() - t0) / n;
    // Informational (shared CI cores vary): a node start-up plus the addon load, far below the default timeout.
    console.log(`libvirt guard: ${per.toFixed(0)} ms per report (test:///default, mean of ${n})`);
    expect(per).toBeLessThan(2000);
  });
});

describe('libvirtGuard when libvirt cannot answer', () => {
  it('a socket that does not exist: unavailable, naming the URI and the reason', async () => {
    const uri = 'qemu+unix:///system?socket=/nonexistent/sock';
    const r = await libvirtGuard({ uri }).report();
    expect(r.available).toBe(false);
    expect(r.running).toEqual([]);
    expect(r.message).toContain(`libvirt is not reachable at ${uri} (`);
    expect(r.message).toMatch(/\/nonexistent\/sock.*No such file or directory/);
  });

  it('a test-driver file that does not exist: unavailable with the driver error', async () => {
    const uri = fixtureUri('no-such-fixture.xml');
    const r = await libvirtGuard({ uri }).report();
    expect(r.available).toBe(false);
    expect(r.message).toContain(`libvirt is not reachable at ${uri} (`);
    expect(r.message).toContain('no-such-fixture.xml');
  });

  it('an endpoint that accepts and never answers: unavailable within the timeout', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-guard-'));
    const sock = path.join(dir, 'hang.sock');
    const conns: net.Socket[] = [];
    const server = net.createServer((s) => {
      conns.push(s);
      s.on('data', () => undefined); // read, never answer
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const uri = `qemu+unix:///system?socket=${sock}`;
      const t0 = Date.now();
      const r = await libvirtGuard({ uri, timeoutMs: 1500 }).report();
      const took = Date.now() - t0;
      expect(r.available).toBe(false);
      expect(r.message).toBe(`libvirt is not reachable at ${uri} (no answer within 1500 ms)`);
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(4000);
      expect(conns.length).toBe(1); // the probe did connect: it hung on the answer, not on the socket
    } finally {
      for (const c of conns) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseProbeOutput', () => {
  it('accepts a result or an error line, rejects anything else', () => {
    expect(parseProbeOutput('{"ok":true,"running":["a"]}\n')).toEqual({ names: ['a'] });
    expect(parseProbeOutput('{"ok":false,"error":"boom"}')).toEqual({ error: 'boom' });
    expect(parseProbeOutput('')).toHaveProperty('error');
    expect(parseProbeOutput('garbage')).toHaveProperty('error');
    expect(parseProbeOutput('null')).toHaveProperty('error');
    expect(parseProbeOutput('{"ok":true,"running":[1]}')).toHaveProperty('error');
    expect(parseProbeOutput('{"ok":true}')).toHaveProperty('error');
    expect(parseProbeOutput('{"ok":false}')).toHaveProperty('error');
  });
});

describe('assertRebootAllowed', () => {
  it('throws VMsRunningError listing the running machines', () => {
    const r = report(['a', 'b'], true, describeRunning(['a', 'b']));
    expect(() => assertRebootAllowed(r, 'upgrade')).toThrow(VMsRunningError);
    expect(() => assertRebootAllowed(r, 'upgrade')).toThrow('cannot reboot for upgrade: 2 virtual machines run: a, b');
    try {
      assertRebootAllowed(r, 'upgrade');
    } catch (e) {
      expect(e).toBeInstanceOf(VMsRunningError);
      expect((e as VMsRunningError).dbusName).toBe('org.ovirt.Node.Error.VMsRunning');
      expect((e as VMsRunningError).hint).toMatch(/shut down or migrate/);
    }
    expect(() => assertRebootAllowed(report(['solo']), 'rollback')).toThrow(
      'cannot reboot for rollback: 1 virtual machine runs: solo',
    );
  });

  it('throws VMsRunningError with the reason when libvirt is unavailable', async () => {
    const uri = 'qemu+unix:///system?socket=/nonexistent/sock';
    const r = await libvirtGuard({ uri }).report();
    let err: unknown;
    try {
      assertRebootAllowed(r, 'rollback');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VMsRunningError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^cannot reboot for rollback: libvirt is not reachable at ${uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ` +
          `\\(.*No such file or directory\\); refusing because running virtual machines cannot be ruled out$`,
      ),
    );
  });

  it('passes when libvirt answered and nothing runs', async () => {
    expect(() => assertRebootAllowed(report([]), 'upgrade')).not.toThrow();
    const r = await libvirtGuard({ uri: fixtureUri('none-running.xml') }).report();
    expect(() => assertRebootAllowed(r, 'upgrade')).not.toThrow();
  });

  it('refuses for real running domains from libvirt', async () => {
    const r = await libvirtGuard({ uri: fixtureUri('running-and-stopped.xml') }).report();
    expect(() => assertRebootAllowed(r, 'upgrade to x')).toThrow(
      'cannot reboot for upgrade to x: 2 virtual machines run: db vm with space, engine-vm',
    );
  });
});
