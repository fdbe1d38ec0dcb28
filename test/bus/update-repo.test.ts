/**
 * A dnf repository as the source of updates (UpdateRepo=): signed image-update packages built with rpmbuild,
 * published with createrepo_c into a temp dir served on 127.0.0.1 (a static file server with byte ranges, as a
 * mirror's web server is), asked about by the daemon through dnf. The
 * check (nodectl check-update) sees a newer NVR published into the repository; stage (nodectl upgrade) downloads it
 * with progress, checks its RPM signature against trusted.d, unpacks the image and upgrades; a package signed by an
 * unknown key fails the transaction and changes nothing.
 */
import { promises as fs } from 'node:fs';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { RemoteClient } from './harness';
import { eventually, PrivateBus, runCommand } from './harness';
import { LAYERS, layersOps, ok, TX_IFACE, unwrap, v } from './wire';
import type { ImageSet } from '../helpers/host';
import { NVR, sandboxHost, snapshotHost } from '../helpers/host';
import { stopChild } from '../../src/sandbox/snmpd';
import { serveRepo } from '../helpers/repo-server';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
const BUILD = path.join(REPO, 'packaging/image-update/build-image-update.sh');
const PKG = 'ovirt-node-ng-image-update';
const V4 = 'ovirt-node-ng-4.5.7-0.20250901.0';
const V5 = 'ovirt-node-ng-4.5.8-0.20251001.0';

describe('UpdateRepo: image-update packages from a dnf repository', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let repo: string;
  let gnupg: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams | null = null;
  let daemonLog = '';
  let root: RemoteClient;
  let server: http.Server | null = null;
  const requests: string[] = [];

  const { prop } = layersOps(() => root);
  const bases = async (): Promise<string[]> => ((await prop('Bases')) as Array<{ name: string }>).map((b) => b.name);
  const nodectl = (args: string[]): ReturnType<PrivateBus['run']> => bus.run('root', [process.execPath, NODECTL, ...args], { timeoutMs: 120_000 });

  /** Build the packages of an image (signed with `gpgName` unless null) and publish them in the repository. */
  async function publish(image: string, gpgName: string | null, sidecars = true): Promise<void> {
    const r = await runCommand(['sh', BUILD, image, repo, ...(gpgName === null ? [] : [gpgName, gnupg])], {
      timeoutMs: 120_000, ...(sidecars ? {} : { env: { SIDECARS: 'no' } }),
    });
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    const c = await runCommand(['createrepo_c', '--quiet', '--update', repo]);
    expect({ code: c.code, stderr: c.stderr }).toEqual({ code: 0, stderr: '' });
  }

  async function gpgKey(name: string): Promise<string> {
    const email = `${name}@imgbased.invalid`;
    const env = { GNUPGHOME: gnupg };
    const g = await runCommand(['gpg', '--batch', '--passphrase', '', '--quick-gen-key', `imgbased ${name} <${email}>`, 'ed25519', 'sign', 'never'], { env });
    expect(g.code).toBe(0);
    return email;
  }

  beforeAll(async () => {
    await fs.access(DAEMON);
    ({ dir, images, sysroot } = await sandboxHost('update-repo'));
    repo = path.join(dir, 'repo');
    gnupg = path.join(dir, 'gnupg');
    await fs.mkdir(repo);
    await fs.mkdir(gnupg, { mode: 0o700 });
    const signer = await gpgKey('packages');
    const exported = await runCommand(['gpg', '--armor', '--export', signer], { env: { GNUPGHOME: gnupg } });
    await fs.writeFile(path.join(sysroot, 'etc/imgbased/trusted.d/packages.asc'), exported.stdout);
    await publish((await images.image(NVR.v2)).imagePath, signer);
    const conf = path.join(sysroot, 'etc/imgbased/imgbased.conf');
    const text = await fs.readFile(conf, 'utf8');
    expect(text.trimEnd().split('\n').filter((l) => l.startsWith('[')).pop()).toBe('[Upgrade]');
    server = await serveRepo(repo, requests);
    await fs.writeFile(conf, `${text}UpdateRepo=http://127.0.0.1:${(server.address() as AddressInfo).port}/\n`);
    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    root = await bus.clientAs('root');
    const d = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    d.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    daemon = d;
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
  }, 180_000);

  afterAll(async () => {
    const d = daemon;
    daemon = null;
    if (d) await stopChild(d);
    await bus?.stop();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('check-update sees the package newer than every base, and a newer NVR once it is published', async () => {
    const r = await nodectl(['--json', 'check-update']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual({ available: true, nvr: `${PKG}-4.5.5-0.20250301.0` });
    expect([await prop('UpdateAvailable'), await prop('AvailableVersion')]).toEqual([true, `${PKG}-4.5.5-0.20250301.0`]);

    await publish((await images.image(NVR.v3)).imagePath, 'packages@imgbased.invalid');
    const after = await nodectl(['check-update']);
    expect(after.stdout).toBe(`Update available: ${PKG}-4.5.6-0.20250601.0 (\`nodectl upgrade\` installs it).\n`);
    expect(await prop('AvailableVersion')).toBe(`${PKG}-4.5.6-0.20250601.0`);
    expect(await bases()).toEqual([NVR.v1]); // a check installs nothing
  }, 240_000);

  it('stage downloads the package with progress, checks its signature, unpacks the image and upgrades', async () => {
    await root.addMatch(`type='signal',interface='${TX_IFACE}',member='Progress'`);
    const r = await nodectl(['upgrade']);
    expect(r.stderr).toMatch(/\[\s*\d+%\] download-package: Downloading ovirt-node-ng-image-update-squashfs-4\.5\.6-0\.20250601\.0\.noarch/);
    expect(r.stdout).toMatch(/ovirt-node-ng-image-update-4\.5\.6-0\.20250601\.0/);
    expect(r.code).toBe(0);
    expect(await bases()).toEqual([NVR.v1, NVR.v3]);
    expect(await prop('DefaultLayer')).toBe(`${NVR.v3}+1`);
    expect([await prop('UpdateAvailable'), await prop('AvailableVersion')]).toEqual([false, '']);
    const downloads = root.signals.filter((s) => s.member === 'Progress' && s.body[1] === 'download-package');
    expect(downloads.length).toBeGreaterThan(0);
    const lastDl = unwrap(downloads[downloads.length - 1]?.body ?? []) as unknown[];
    expect(Number(lastDl[3])).toBeGreaterThan(0);
    expect(Number(lastDl[3])).toBe(Number(lastDl[4])); // every byte of the package
    // The unpacked image is gone again; dnf's cache stays (resumes).
    expect(await fs.readdir(path.join(sysroot, 'var/cache/imgbased/updates'))).toEqual([]);
    // Nothing newer now.
    expect(JSON.parse((await nodectl(['--json', 'check-update'])).stdout)).toEqual({ available: false, nvr: '' });
  }, 240_000);

  it('a package signed by an unknown key fails its transaction and changes nothing', async () => {
    const stranger = await gpgKey('stranger');
    await publish((await images.image(V4)).imagePath, stranger);
    const before = await snapshotHost(sysroot);
    const [available, nvr, tx] = unwrap(ok(await root.call({
      ...LAYERS, member: 'AutomaticUpdateTrigger', signature: 'a{sv}', body: [{ mode: v('s', 'stage'), 'respect-window': v('b', false) }],
    }))) as [boolean, string, string];
    expect([available, nvr]).toEqual([true, `${PKG}-4.5.7-0.20250901.0`]);
    await eventually(async () => !['queued', 'running'].includes(String(await prop('State', TX_IFACE, tx))), 60_000, 50);
    expect(await prop('State', TX_IFACE, tx)).toBe('failed');
    expect(await prop('Error', TX_IFACE, tx)).toEqual(['org.ovirt.Node.Error.VerificationFailed',
      expect.stringMatching(/package ovirt-node-ng-image-update-squashfs-4\.5\.7-0\.20250901\.0\.noarch\.rpm failed its signature check: it is signed by a key that is not in trusted\.d \(key ID [0-9a-f]+\)/)]);
    expect(await snapshotHost(sysroot)).toEqual(before);
    expect(await bases()).toEqual([NVR.v1, NVR.v3]);
    expect(daemonLog).toMatch(/fetching ovirt-node-ng-image-update-4\.5\.7-0\.20250901\.0 failed/);
  }, 240_000);

  it('the timer (policy stage) picks up a newer package, resuming a download that was cut off', async () => {
    await publish((await images.image(V5)).imagePath, 'packages@imgbased.invalid');
    const file = `${PKG}-squashfs-4.5.8-0.20251001.0.noarch.rpm`;
    // An earlier download stopped half-way (the daemon was stopped, the link dropped): its partial file is where
    // dnf download puts the package.
    const full = await fs.readFile(path.join(repo, file));
    const half = Math.floor(full.length / 2);
    const partial = path.join(sysroot, 'var/cache/imgbased/updates', file);
    await fs.writeFile(partial, full.subarray(0, half));
    // librepo marks a download in progress with this attribute, and resumes only files that carry it.
    expect((await runCommand(['setfattr', '-n', 'user.Librepo.DownloadInProgress', '-v', '1', partial])).code).toBe(0);
    ok(await root.call({ ...LAYERS, member: 'SetAutomaticUpdatePolicy', signature: 's', body: ['stage'] }));
    requests.length = 0;

    const r = await nodectl(['--json', 'upgrade', '--automatic']);

    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(expect.objectContaining({ result: 'staged', nvr: `${PKG}-4.5.8-0.20251001.0`, policy: 'stage' }));
    expect(requests).toContain(`GET /${file} bytes=${half}-`);
    expect(await bases()).toEqual(expect.arrayContaining([NVR.v3, V5]));
    expect(await prop('DefaultLayer')).toBe(`${V5}+1`);
  }, 240_000);

  it('a package like oVirt\'s own (the image without .sha256/.sig) installs: header digest and package signature', async () => {
    const v6 = 'ovirt-node-ng-4.5.9-0.20251101.0';
    await publish((await images.image(v6)).imagePath, 'packages@imgbased.invalid', false);
    const listing = await runCommand(['rpm', '-qpl', path.join(repo, `${PKG}-squashfs-4.5.9-0.20251101.0.noarch.rpm`)]);
    expect(listing.stdout.split('\n').filter((l) => l.includes('/image/'))).toEqual([`/usr/share/${PKG}/image/${v6}.squashfs.img`]);

    const r = await nodectl(['--json', 'upgrade']);

    expect({ code: r.code, stderr: r.code === 0 ? '' : `${r.stderr}\n${daemonLog.slice(-2000)}` }).toEqual({ code: 0, stderr: '' });
    expect(await bases()).toEqual(expect.arrayContaining([v6]));
    expect(await prop('DefaultLayer')).toBe(`${v6}+1`);
    // the history says what vouched for the image
    const [last] = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, unknown>>;
    expect((last?.['request'] as Record<string, unknown> | undefined)?.['packageSignature']).toMatch(/Signature, key ID [0-9a-f]+: OK/);
  }, 240_000);

  it('an unreachable repository is logged and does not hide an image of ImageDir', async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = null;
    const v9 = await images.image('ovirt-node-ng-4.6.0-0.20260101.0');
    const imageDir = path.join(sysroot, 'var/lib/imgbased/images');
    await fs.mkdir(imageDir, { recursive: true });
    for (const f of [v9.imagePath, `${v9.imagePath}.sha256`, `${v9.imagePath}.sig`]) await fs.copyFile(f, path.join(imageDir, path.basename(f)));

    const r = await nodectl(['--json', 'check-update']);

    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ available: true, nvr: 'ovirt-node-ng-4.6.0-0.20260101.0' });
    expect(daemonLog).toMatch(/update check: asking the repository http:\/\/127\.0\.0\.1:\d+\/ failed/);
  }, 240_000);
});
