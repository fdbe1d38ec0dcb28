/**
 * Builds small but real oVirt Node images for tests, benchmarks and the demo: a squashfs holding `LiveOS/rootfs.img`
 * (an ext4 or xfs filesystem image of a tiny root tree), plus the `IMAGE.sha256` and `IMAGE.sig` sidecars.
 *
 * Needs root (owners, device nodes, security.* xattrs; xfs images are filled through a loop mount) and
 * mkfs.ext4 / mksquashfs / setfattr / setfacl.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod, chown, link, lutimes, mkdir, mkdtemp, open, readFile, rm, stat, symlink, truncate, utimes, writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run } from '../system/run';
import { loopMount, unmountIfMounted } from './mount';
import { openpgp, type PrivateKey } from './openpgp';

/** One entry of the image's root tree, keyed by its path relative to the root (no leading slash). */
export type TestFileSpec =
  | string
  | Buffer
  | {
      readonly kind?: 'file';
      readonly content: string | Buffer;
      readonly mode?: number;
      readonly uid?: number;
      readonly gid?: number;
      /** Extended attributes, e.g. `{ 'user.test': 'x', 'security.selinux': 'system_u:object_r:etc_t:s0' }`. */
      readonly xattrs?: Readonly<Record<string, string>>;
      /** A POSIX ACL in setfacl(1) `-m` syntax, e.g. `u:65534:r`. */
      readonly acl?: string;
    }
  | { readonly kind: 'dir'; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly kind: 'symlink'; readonly target: string }
  /** A hard link to another entry (path relative to the root). */
  | { readonly kind: 'hardlink'; readonly target: string }
  /** A sparse file of `sizeBytes` with `data` written at `dataOffset` (default: at the end). */
  | { readonly kind: 'sparse'; readonly sizeBytes: number; readonly data?: string; readonly dataOffset?: number }
  /** `sizeBytes` of generated data; `compressibility` 0 (random) … 1 (text-like), default 0.5. */
  | { readonly kind: 'generated'; readonly sizeBytes: number; readonly compressibility?: number; readonly mode?: number }
  | { readonly kind: 'chardev'; readonly major: number; readonly minor: number; readonly mode?: number };

/** Image defects for negative tests. */
export type TestImageCorruption =
  /** The sidecar holds a wrong checksum. */
  | 'checksum'
  /** Bytes of the image are changed after the sidecars were written (checksum and signature both mismatch). */
  | 'image-bytes'
  /** The signature is made over other data (a bad signature from the right key). */
  | 'signature'
  /** The image is not a squashfs at all (sidecars match it). */
  | 'not-squashfs'
  /** The squashfs is cut in half (valid magic, unreadable; sidecars match it). */
  | 'squashfs-truncated'
  /** The squashfs has no LiveOS/rootfs.img. */
  | 'no-rootfs'
  /** LiveOS/rootfs.img holds no known filesystem. */
  | 'rootfs-garbage';

export interface TestSigningKey {
  readonly privateKey: PrivateKey;
  readonly publicKeyArmored: string;
  /** Primary key fingerprint, upper-case hex (what verifyImage reports as signedBy). */
  readonly fingerprint: string;
  readonly keyId: string;
  /** `<dir>/trusted.d` (holds `test.asc` unless created with `trust: false`). */
  readonly trustedKeysDir: string;
}

export interface BuildTestImageOptions {
  readonly outDir: string;
  /** Written verbatim (plus a newline) to usr/share/imgbase/build/meta/nvr, so invalid NVRs can be tested. */
  readonly nvr: string;
  readonly kernelVersion?: string;
  /** Extra or overriding root entries; `null` removes a default entry (e.g. the nvr file). */
  readonly files?: Readonly<Record<string, TestFileSpec | null>>;
  /** Extra or overriding /etc entries (also copied into usr/share/factory/etc when factoryEtc). */
  readonly etcFiles?: Readonly<Record<string, TestFileSpec | null>>;
  /** Write the pristine copy of /etc in usr/share/factory/etc (default true). */
  readonly factoryEtc?: boolean;
  readonly fsType?: 'ext4' | 'xfs';
  /** Extra MiB of generated data (usr/lib/extra/blob.bin, half compressible). */
  readonly extraMb?: number;
  /** Sign with this key (IMAGE.sig); null/absent = no signature. */
  readonly sign?: TestSigningKey | null;
  readonly signatureFormat?: 'binary' | 'armored';
  /** `named` = `HEX  filename` (sha256sum style, default), `bare` = `HEX`. */
  readonly checksumFormat?: 'named' | 'bare';
  readonly corrupt?: TestImageCorruption;
  /** Image file name (default `<nvr>.squashfs.img`). */
  readonly fileName?: string;
  /** Where the staging tree is written (default outDir; a tmpfs such as /dev/shm makes big images faster). */
  readonly scratchDir?: string;
  /** squashfs compressor (default lz4: the fastest here; gzip -Xcompression-level 1 is the portable choice). */
  readonly compression?: 'lz4' | 'gzip';
  /**
   * Every entry's mtime, as a reproducible build clamps them (SOURCE_DATE_EPOCH). Default: files keep the time they
   * were written (whole seconds in an ext4 rootfs: mkfs.ext4 -d drops the nanoseconds), directories and symlinks a
   * fixed time.
   */
  readonly mtime?: Date;
}

export interface BuiltTestImage {
  readonly imagePath: string;
  readonly sha256Path: string;
  readonly sigPath: string | null;
  readonly nvr: string;
}

export const DEFAULT_KERNEL_VERSION = '5.14.0-503.el9.x86_64';
const MTIME = new Date('2025-01-01T00:00:00Z');

function defaultEtc(nvr: string): Record<string, TestFileSpec> {
  return {
    'os-release':
      'NAME="oVirt Node"\nVERSION="4.5"\nID="ovirt-node"\nID_LIKE="rhel fedora"\nVARIANT="oVirt Node"\n' +
      `VARIANT_ID="ovirt-node"\nPRETTY_NAME="oVirt Node (${nvr})"\n`,
    passwd:
      'root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\nvdsm:x:36:36:Node Virtualization Manager:/var/lib/vdsm:/sbin/nologin\n' +
      'qemu:x:107:107:qemu user:/:/sbin/nologin\n',
    group: 'root:x:0:\nbin:x:1:\nkvm:x:36:qemu,vdsm\nqemu:x:107:\n',
    shadow: { content: 'root:*::0:99999:7:::\nbin:*:19000:0:99999:7:::\nvdsm:*:19000::::::\nqemu:!!:19000::::::\n', mode: 0o000 },
    hosts: '127.0.0.1   localhost localhost.localdomain\n::1         localhost localhost.localdomain\n',
    hostname: 'localhost\n',
    fstab: '# managed by imgbased\n',
    'ssh/sshd_config': 'PermitRootLogin yes\nPasswordAuthentication yes\n',
    'sysconfig/network': 'NETWORKING=yes\n',
    'vdsm/vdsm.conf': '[vars]\nssl = true\n',
    'example.conf': { content: 'setting = 1\n', mode: 0o640, uid: 0, gid: 36, acl: 'u:107:r' },
  };
}

function defaultRoot(nvr: string, kver: string): Record<string, TestFileSpec> {
  return {
    'usr/share/imgbase/build/meta/nvr': `${nvr}\n`,
    [`boot/vmlinuz-${kver}`]: { content: `dummy kernel ${kver}\n`, mode: 0o755 },
    [`boot/initramfs-${kver}.img`]: { content: `dummy initramfs ${kver}\n`, mode: 0o600 },
    [`boot/config-${kver}`]: `# kernel config ${kver}\n`,
    'var/lib/example/config': 'state = fresh\n',
    'var/log': { kind: 'dir', mode: 0o755 },
    'var/tmp': { kind: 'dir', mode: 0o1777 },
    tmp: { kind: 'dir', mode: 0o1777 },
    root: { kind: 'dir', mode: 0o550 },
    'usr/bin/example-tool': {
      content: '#!/bin/sh\necho example\n',
      mode: 0o755,
      xattrs: { 'security.selinux': 'system_u:object_r:bin_t:s0' },
    },
    'usr/bin/example-setuid': { content: '#!/bin/sh\n', mode: 0o4755 },
    'usr/bin/example-alias': { kind: 'symlink', target: 'example-tool' },
    'usr/bin/example-hardlink': { kind: 'hardlink', target: 'usr/bin/example-tool' },
    'usr/lib/example/data.txt': {
      content: 'with a user xattr\n',
      uid: 36,
      gid: 36,
      xattrs: { 'user.imgbased.test': 'hello' },
    },
    'usr/lib/example/sparse.img': { kind: 'sparse', sizeBytes: 8 * 1024 * 1024, data: 'tail' },
    'usr/lib/os-release': { kind: 'symlink', target: '../../etc/os-release' },
    'dev/null': { kind: 'chardev', major: 1, minor: 3, mode: 0o666 },
  };
}

/** Deterministic generated data: a prefix of random bytes, the rest repeated text. */
function generatedData(size: number, compressibility: number): Buffer {
  const randomPart = Math.round(size * (1 - Math.min(1, Math.max(0, compressibility))));
  const buf = Buffer.alloc(size);
  randomBytes(randomPart).copy(buf, 0);
  const text = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
  for (let off = randomPart; off < size; off += text.length) text.copy(buf, off, 0, Math.min(text.length, size - off));
  return buf;
}

async function setOwnerMode(path: string, spec: { mode?: number; uid?: number; gid?: number }): Promise<void> {
  if ((spec.uid ?? 0) !== 0 || (spec.gid ?? 0) !== 0) await chown(path, spec.uid ?? 0, spec.gid ?? 0);
  if (spec.mode !== undefined) await chmod(path, spec.mode); // after chown, which clears setuid bits
}

function ids(spec: { uid?: number; gid?: number }): { uid?: number; gid?: number } {
  return { ...(spec.uid === undefined ? {} : { uid: spec.uid }), ...(spec.gid === undefined ? {} : { gid: spec.gid }) };
}

async function writeEntry(root: string, rel: string, spec: TestFileSpec, dirs: Set<string>): Promise<void> {
  const path = join(root, rel);
  const parent = dirname(path);
  if (!dirs.has(parent)) {
    await mkdir(parent, { recursive: true });
    dirs.add(parent);
  }
  if (typeof spec === 'string' || Buffer.isBuffer(spec)) {
    await writeFile(path, spec);
    await chmod(path, 0o644);
    return;
  }
  switch (spec.kind) {
    case undefined:
    case 'file':
      await writeFile(path, spec.content);
      await setOwnerMode(path, { mode: spec.mode ?? 0o644, ...ids(spec) });
      for (const [name, value] of Object.entries(spec.xattrs ?? {})) await run(['setfattr', '-n', name, '-v', value, path]);
      if (spec.acl !== undefined) await run(['setfacl', '-m', spec.acl, path]);
      return;
    case 'dir':
      await mkdir(path, { recursive: true });
      dirs.add(path);
      await setOwnerMode(path, { mode: spec.mode ?? 0o755, ...ids(spec) });
      return;
    case 'symlink':
      await symlink(spec.target, path);
      await lutimes(path, MTIME, MTIME);
      return;
    case 'hardlink':
      await link(join(root, spec.target), path);
      return;
    case 'sparse': {
      await writeFile(path, '');
      await truncate(path, spec.sizeBytes);
      if (spec.data !== undefined) {
        const data = Buffer.from(spec.data);
        const fh = await open(path, 'r+');
        try {
          await fh.write(data, 0, data.length, spec.dataOffset ?? Math.max(0, spec.sizeBytes - data.length));
        } finally {
          await fh.close();
        }
      }
      await chmod(path, 0o644);
      return;
    }
    case 'generated': {
      const fh = await open(path, 'w');
      try {
        const chunk = 8 * 1024 * 1024;
        for (let done = 0; done < spec.sizeBytes; done += chunk) {
          await fh.write(generatedData(Math.min(chunk, spec.sizeBytes - done), spec.compressibility ?? 0.5));
        }
      } finally {
        await fh.close();
      }
      await chmod(path, spec.mode ?? 0o644);
      return;
    }
    case 'chardev':
      await run(['mknod', '-m', (spec.mode ?? 0o600).toString(8), path, 'c', String(spec.major), String(spec.minor)]);
      return;
  }
}

/** Write the entries (16 at a time); hard links after everything else so they see their final targets. */
async function writeTree(root: string, entries: ReadonlyMap<string, TestFileSpec>): Promise<void> {
  const isLink = (s: TestFileSpec): boolean => typeof s === 'object' && !Buffer.isBuffer(s) && s.kind === 'hardlink';
  const all = [...entries];
  const dirs = new Set<string>([root]);
  for (const batch of [all.filter(([, s]) => !isLink(s)), all.filter(([, s]) => isLink(s))]) {
    // Directories first, so that an explicit dir entry's mode is not raced by a child's mkdir.
    batch.sort(([a, sa], [b, sb]) => Number(kindOf(sb) === 'dir') - Number(kindOf(sa) === 'dir') || a.localeCompare(b));
    const dirEntries = batch.filter(([, s]) => kindOf(s) === 'dir');
    for (const [rel, spec] of dirEntries) await writeEntry(root, rel, spec, dirs);
    const rest = batch.filter(([, s]) => kindOf(s) !== 'dir');
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < rest.length; i = next++) {
        const item = rest[i];
        if (item) await writeEntry(root, item[0], item[1], dirs);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }
}

function kindOf(s: TestFileSpec): string {
  return typeof s === 'string' || Buffer.isBuffer(s) ? 'file' : (s.kind ?? 'file');
}

/** Give every directory a fixed mtime, deepest first (writing entries updated them). */
async function fixDirTimes(root: string): Promise<void> {
  const { stdout } = await run(['find', root, '-depth', '-type', 'd', '-print0']);
  for (const dir of stdout.split('\0')) if (dir) await utimes(dir, MTIME, MTIME);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

/** Size in bytes for the rootfs image: allocated content + 25% + 16 MiB, rounded to MiB; inodes with headroom. */
async function sizeFor(root: string): Promise<{ bytes: number; inodes: number }> {
  const du = await run(['du', '-s', '-B1', root]);
  const used = Number(du.stdout.split('\t')[0]);
  const count = await run(['find', root, '-printf', '.']);
  const MiB = 1024 * 1024;
  return { bytes: Math.ceil((used * 1.25 + 16 * MiB) / MiB) * MiB, inodes: Math.ceil(count.stdout.length * 1.3) + 1024 };
}

async function makeRootfs(root: string, rootfs: string, fsType: 'ext4' | 'xfs', scratch: string): Promise<void> {
  const { bytes, inodes } = await sizeFor(root);
  if (fsType === 'ext4') {
    await run(['mkfs.ext4', '-q', '-F', '-b', '4096', '-N', String(inodes), '-m', '0', '-J', 'size=4', '-L', 'rootfs', '-d', root, rootfs, `${bytes / 1024}k`]);
    return;
  }
  // xfs has no populate-from-directory: make it, loop-mount it, copy the tree in. xfsprogs refuses < 300 MiB.
  const size = Math.max(bytes, 300 * 1024 * 1024);
  await writeFile(rootfs, '');
  await truncate(rootfs, size);
  await run(['mkfs.xfs', '-q', '-f', '-L', 'rootfs', rootfs]);
  const mnt = join(scratch, 'xfs-mnt');
  await mkdir(mnt);
  await loopMount({ source: rootfs, target: mnt, fsType: 'xfs', readOnly: false });
  try {
    await run(['cp', '-a', '--preserve=xattr', `${root}/.`, mnt]);
  } finally {
    await unmountIfMounted(mnt);
  }
}

export async function buildTestImage(opts: BuildTestImageOptions): Promise<BuiltTestImage> {
  const kver = opts.kernelVersion ?? DEFAULT_KERNEL_VERSION;
  await mkdir(opts.outDir, { recursive: true });
  const scratch = await mkdtemp(join(opts.scratchDir ?? opts.outDir, '.build-'));
  const imagePath = join(opts.outDir, opts.fileName ?? `${opts.nvr}.squashfs.img`);
  const sha256Path = `${imagePath}.sha256`;
  const sigPath = `${imagePath}.sig`;
  try {
    const root = join(scratch, 'root');
    const live = join(scratch, 'iso', 'LiveOS');
    await mkdir(root, { mode: 0o755 });
    await mkdir(live, { recursive: true });

    const entries = new Map<string, TestFileSpec>(Object.entries(defaultRoot(opts.nvr, kver)));
    const etc = new Map<string, TestFileSpec>(Object.entries(defaultEtc(opts.nvr)));
    for (const [rel, spec] of Object.entries(opts.etcFiles ?? {})) {
      if (spec === null) etc.delete(rel);
      else etc.set(rel, spec);
    }
    for (const [rel, spec] of etc) {
      entries.set(posix.join('etc', rel), spec);
      if (opts.factoryEtc !== false) entries.set(posix.join('usr/share/factory/etc', rel), spec);
    }
    if (opts.extraMb !== undefined && opts.extraMb > 0) {
      entries.set('usr/lib/extra/blob.bin', { kind: 'generated', sizeBytes: Math.round(opts.extraMb * 1024 * 1024) });
    }
    for (const [rel, spec] of Object.entries(opts.files ?? {})) {
      if (spec === null) entries.delete(rel);
      else entries.set(rel, spec);
    }
    await writeTree(root, entries);
    await fixDirTimes(root);
    if (opts.mtime) await run(['find', root, '-exec', 'touch', '-h', '-d', `@${Math.floor(opts.mtime.getTime() / 1000)}`, '{}', '+']);

    const rootfs = join(live, 'rootfs.img');
    if (opts.corrupt === 'rootfs-garbage') await writeFile(rootfs, randomBytes(1024 * 1024));
    else if (opts.corrupt !== 'no-rootfs') await makeRootfs(root, rootfs, opts.fsType ?? 'ext4', scratch);
    else await writeFile(join(live, 'README'), 'no rootfs here\n');

    await rm(imagePath, { force: true });
    if (opts.corrupt === 'not-squashfs') {
      await writeFile(imagePath, randomBytes(256 * 1024));
    } else {
      const comp = opts.compression === 'gzip' ? ['-comp', 'gzip', '-Xcompression-level', '1'] : ['-comp', 'lz4'];
      await run(['mksquashfs', join(scratch, 'iso'), imagePath, '-noappend', ...comp, '-quiet', '-no-progress']);
      if (opts.corrupt === 'squashfs-truncated') {
        const { size } = await stat(imagePath);
        await truncate(imagePath, Math.floor(size / 2));
      }
    }

    const digest = await sha256File(imagePath);
    const sidecarHex = opts.corrupt === 'checksum' ? createHash('sha256').update('something else').digest('hex') : digest;
    await writeFile(sha256Path, opts.checksumFormat === 'bare' ? `${sidecarHex}\n` : `${sidecarHex}  ${basename(imagePath)}\n`);

    let writtenSig: string | null = null;
    await rm(sigPath, { force: true });
    if (opts.sign) {
      const data = opts.corrupt === 'signature' ? Buffer.from('not the image') : await readFile(imagePath);
      await signDetached({ data, key: opts.sign, sigPath, format: opts.signatureFormat ?? 'binary' });
      writtenSig = sigPath;
    }

    if (opts.corrupt === 'image-bytes') {
      const fh = await open(imagePath, 'r+');
      try {
        const { size } = await fh.stat();
        const b = Buffer.alloc(1);
        const pos = Math.floor(size / 2);
        await fh.read(b, 0, 1, pos);
        b[0] = (b[0] ?? 0) ^ 0xff;
        await fh.write(b, 0, 1, pos);
      } finally {
        await fh.close();
      }
    }
    return { imagePath, sha256Path, sigPath: writtenSig, nvr: opts.nvr };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Write a detached signature of `data` made with `key`. */
export async function signDetached(opts: {
  data: Uint8Array;
  key: TestSigningKey;
  sigPath: string;
  format: 'binary' | 'armored';
}): Promise<void> {
  const message = await openpgp.createMessage({ binary: opts.data });
  if (opts.format === 'armored') {
    const sig = await openpgp.sign({ message, signingKeys: opts.key.privateKey, detached: true, format: 'armored' });
    await writeFile(opts.sigPath, sig);
  } else {
    const sig = await openpgp.sign({ message, signingKeys: opts.key.privateKey, detached: true, format: 'binary' });
    await writeFile(opts.sigPath, sig);
  }
}

/**
 * A fresh ed25519 key pair. The public key goes to `<dir>/trusted.d/<name>.asc` (or `.gpg`, binary) unless
 * `trust: false` (a key nobody trusts, for "unknown key" tests).
 */
export async function createTestSigningKey(
  dir: string,
  opts: { name?: string; trust?: boolean; format?: 'asc' | 'gpg' } = {},
): Promise<TestSigningKey> {
  const name = opts.name ?? 'test';
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name: `imgbased ${name} key`, email: `${name}@imgbased.invalid` }],
    format: 'object',
  });
  const trustedKeysDir = join(dir, 'trusted.d');
  await mkdir(trustedKeysDir, { recursive: true });
  const publicKeyArmored = publicKey.armor();
  if (opts.trust !== false) {
    if (opts.format === 'gpg') await writeFile(join(trustedKeysDir, `${name}.gpg`), publicKey.write());
    else await writeFile(join(trustedKeysDir, `${name}.asc`), publicKeyArmored);
  }
  return {
    privateKey,
    publicKeyArmored,
    fingerprint: publicKey.getFingerprint().toUpperCase(),
    keyId: publicKey.getKeyID().toHex().toUpperCase(),
    trustedKeysDir,
  };
}
