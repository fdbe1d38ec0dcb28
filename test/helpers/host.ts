/**
 * Test fixtures for engine tests: signed images, a sandbox sysroot, and a comparable snapshot of everything a
 * transaction may change (volumes with their flags, boot entries, /boot dirs, grubenv, boot states, journal).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BuildTestImageOptions, BuiltTestImage, TestSigningKey } from '../../src/image/test-image-builder';
import { buildTestImage, createTestSigningKey } from '../../src/image/test-image-builder';
import { createSandbox } from '../../src/sandbox/sysroot';
import { run } from '../../src/system/run';

export const NVR = {
  v1: 'ovirt-node-ng-4.5.4-0.20250101.0',
  v2: 'ovirt-node-ng-4.5.5-0.20250301.0',
  v3: 'ovirt-node-ng-4.5.6-0.20250601.0',
} as const;

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `imgbased-${prefix}-`));
}

export interface ImageSet {
  readonly key: TestSigningKey;
  readonly dir: string;
  image(nvr: string, extra?: Partial<BuildTestImageOptions>): Promise<BuiltTestImage>;
}

export async function imageSet(dir: string): Promise<ImageSet> {
  const key = await createTestSigningKey(dir);
  return {
    key,
    dir,
    image: (nvr, extra = {}) =>
      buildTestImage({ outDir: path.join(dir, 'images'), nvr, sign: key, ...extra }),
  };
}

/**
 * A sandbox host for the bus tier: a temp dir the other users of the tests may enter (polkitd, nobody), a signing
 * key and image builder, and a sysroot where v1 is installed and booted.
 */
export async function sandboxHost(prefix: string): Promise<{ dir: string; images: ImageSet; sysroot: string }> {
  const dir = await tempDir(prefix);
  await fs.chmod(dir, 0o755);
  const images = await imageSet(dir);
  const sysroot = path.join(dir, 'sysroot');
  await createSandbox({
    sysroot, installImage: (await images.image(NVR.v1)).imagePath,
    trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
  });
  return { dir, images, sysroot };
}

/** v2: an upstream change to an untouched file, and a new system account. */
export const V2_CHANGES: Partial<BuildTestImageOptions> = {
  etcFiles: {
    'ssh/sshd_config': 'PermitRootLogin no\nPasswordAuthentication no\n',
    passwd:
      'root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\nvdsm:x:36:36:Node Virtualization Manager:/var/lib/vdsm:/sbin/nologin\n' +
      'qemu:x:107:107:qemu user:/:/sbin/nologin\nsanlock:x:179:179:sanlock:/var/run/sanlock:/sbin/nologin\n',
    group: 'root:x:0:\nbin:x:1:\nkvm:x:36:qemu,vdsm\nqemu:x:107:\nsanlock:x:179:\n',
  },
  files: { 'var/lib/example/new-in-v2': 'added by v2\n', 'var/lib/example/config': 'state = v2 default\n' },
};

/** Every path below root, sorted, directories with a trailing slash ([] when root is missing). */
export async function walk(root: string, rel = ''): Promise<string[]> {
  let names: string[];
  try {
    names = (await fs.readdir(path.join(root, rel))).sort();
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const r = path.join(rel, n);
    const st = await fs.lstat(path.join(root, r));
    out.push(r + (st.isDirectory() ? '/' : ''));
    if (st.isDirectory()) out.push(...(await walk(root, r)));
  }
  return out;
}

/** Everything a transaction may change, in a form that compares with toEqual (random UUIDs excluded). */
export async function snapshotHost(sysroot: string): Promise<Record<string, unknown>> {
  const pool = JSON.parse(await fs.readFile(path.join(sysroot, 'var/lib/imgbased/pool/imgbased-dir-pool.json'), 'utf8')) as {
    volumes: Record<string, Record<string, unknown>>;
    vgTags: string[];
    poolTags: string[];
  };
  const volumes = Object.fromEntries(Object.entries(pool.volumes).sort().map(([name, v]) => {
    const { fsUuid: _u, active: _a, ...rest } = v;
    return [name, rest];
  }));
  const boot = path.join(sysroot, 'boot');
  const entries: Record<string, string> = {};
  for (const f of await walk(path.join(boot, 'loader/entries'))) {
    entries[f] = await fs.readFile(path.join(boot, 'loader/entries', f), 'utf8');
  }
  let grubenv = '';
  try {
    grubenv = await fs.readFile(path.join(boot, 'grub2/grubenv'), 'latin1');
  } catch {
    grubenv = '(none)';
  }
  const volumeDirs = (await fs.readdir(path.join(sysroot, 'var/lib/imgbased/pool/volumes'))).sort();
  let bootStates: unknown = '(none)';
  try {
    // changedAt is the time of the transaction: compare what the states are, not when they were set
    const raw = JSON.parse(await fs.readFile(path.join(sysroot, 'var/lib/imgbased/boot-states.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    bootStates = Object.fromEntries(Object.entries(raw).map(([l, { changedAt: _t, ...rest }]) => [l, rest]));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return {
    tags: { vg: pool.vgTags, pool: pool.poolTags },
    volumes,
    volumeDirs,
    entries,
    bootTree: await walk(boot),
    grubenv,
    bootStates,
    journal: await walk(path.join(sysroot, 'var/lib/imgbased/journal')),
    manifests: await walk(path.join(sysroot, 'var/lib/imgbased/manifests')),
  };
}

/** The /etc of a volume as path → "mode uid:gid content" (for exact comparisons). */
export async function etcManifest(volumeRoot: string): Promise<Record<string, string>> {
  const etc = path.join(volumeRoot, 'etc');
  const out: Record<string, string> = {};
  for (const rel of await walk(etc)) {
    const p = path.join(etc, rel);
    const st = await fs.lstat(p);
    const body = st.isFile() ? await fs.readFile(p, 'utf8') : st.isSymbolicLink() ? `-> ${await fs.readlink(p)}` : '';
    out[rel] = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${body}`;
  }
  return out;
}

export async function copyTree(from: string, to: string): Promise<void> {
  await run(['cp', '-a', '--reflink=auto', '--', from, to]);
}
