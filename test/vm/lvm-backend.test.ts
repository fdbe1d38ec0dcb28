/**
 * lvm-specific behaviour of LvmBackend on real dm-thin (the contract suite covers the shared behaviour):
 * the exact lv_attr strings real imgbased leaves, xfs snapshots, free-space refusal, markLayout's metadata/profile
 * handling, and discover() on a host laid out with real imgbased's command sequence.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, NoSpaceError, NotFoundError } from '../../src/errors';
import { TAG, withMounted } from '../../src/storage/backend';
import { LvmBackend, POOL_METADATA_MIN_BYTES, POOL_PROFILE } from '../../src/storage/lvm';
import { imgbasedRole } from '../../src/storage/lvm-report';
import { GiB, MiB, lvAttr, lvRecord, makeVg, sh, type VgFixture } from './lvm-fixture';

const B1 = 'ovirt-node-ng-4.4.10.2-0.20220303.0';
const B2 = 'ovirt-node-ng-4.5.6-0.20250101.0';

describe('LvmBackend: imgbased attrs, snapshots, UUIDs', () => {
  let fx: VgFixture;
  let b: LvmBackend;
  beforeAll(async () => {
    fx = await makeVg({ vg: 'attrs' });
    b = new LvmBackend({ vg: fx.vg, pool: fx.pool, mountRoot: fx.mountRoot });
    await b.markLayout();
  });
  afterAll(async () => fx?.cleanup());

  it('a protected base is Vri---tz-k at rest and Vri-a-tz-k when activated with -K', async () => {
    await b.createThin(B2, { sizeBytes: 512 * MiB, fsType: 'ext4', tags: [TAG.base] });
    expect(await lvAttr('attrs', B2)).toBe('Vwi-a-tz--');
    await withMounted(b, B2, {}, async (root) => fs.writeFile(path.join(root, 'marker'), 'base'));
    await b.protect(B2);
    expect(await lvAttr('attrs', B2)).toBe('Vri---tz-k');
    await b.activate(B2);
    expect(await lvAttr('attrs', B2)).toBe('Vri-a-tz-k');
    // protect is idempotent (lvchange itself fails on "already read only"): undo paths may repeat it
    await b.protect(B2);
    await b.protect(B2);
    expect(await lvAttr('attrs', B2)).toBe('Vri---tz-k');
  });

  it('a layer is a writable snapshot (Vwi---tz-k), then activation skip n, and gets a new ext4 UUID', async () => {
    await b.snapshot(B2, `${B2}+1`, { tags: [TAG.layer] });
    expect(await lvAttr('attrs', `${B2}+1`)).toBe('Vwi---tz-k');
    expect((await lvRecord('attrs', `${B2}+1`)).origin).toBe(B2);
    await b.setActivationSkip(`${B2}+1`, false);
    expect(await lvAttr('attrs', `${B2}+1`)).toBe('Vwi---tz--');
    const baseUuid = await b.fsUuid(B2);
    expect(await b.fsUuid(`${B2}+1`)).toBe(baseUuid);
    const fresh = await b.newFsUuid(`${B2}+1`);
    expect(fresh).not.toBe(baseUuid);
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    // reading a UUID must not leave a protected base active
    expect(await lvAttr('attrs', B2)).toBe('Vri---tz-k');
  });

  it('unprotect gives Vwi-a-tz-- and refuses nothing on repeat', async () => {
    await b.unprotect(B2);
    expect(await lvAttr('attrs', B2)).toBe('Vwi-a-tz--');
    await b.unprotect(B2);
    await b.protect(B2);
  });

  it('mounting an inactive base read-only activates it only for the mount', async () => {
    const seen = await withMounted(b, B2, { readOnly: true }, async (root) => {
      expect((await lvRecord('attrs', B2)).attr.open).toBe(true);
      return fs.readFile(path.join(root, 'marker'), 'utf8');
    });
    expect(seen).toBe('base');
    expect(await lvAttr('attrs', B2)).toBe('Vri---tz-k');
    await expect(b.mount(B2)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('xfs: a snapshot mounts next to its mounted origin (nouuid) and gets a new UUID despite a dirty log', async () => {
    await b.createThin('x-1-1', { sizeBytes: 512 * MiB, fsType: 'xfs' });
    const origin = await b.mount('x-1-1');
    await fs.writeFile(path.join(origin, 'f'), 'xfs data');
    await sh('sync');
    await b.snapshot('x-1-1', 'x-1-1+1'); // snapshot of a MOUNTED xfs: its log is dirty
    const snap = await b.mount('x-1-1+1', { readOnly: true });
    expect(await fs.readFile(path.join(snap, 'f'), 'utf8')).toBe('xfs data');
    await b.unmount('x-1-1+1');
    const before = await b.fsUuid('x-1-1+1');
    const fresh = await b.newFsUuid('x-1-1+1');
    expect(fresh).not.toBe(before);
    expect(await b.fsUuid('x-1-1')).toBe(before);
    await b.unmount('x-1-1');
  });

  it('refuses to remove a mounted volume; removeIfExists (undo paths) unmounts first', async () => {
    await b.mount('x-1-1+1');
    await expect(b.remove('x-1-1+1')).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await b.removeIfExists('x-1-1+1')).toBe(true);
    expect(await b.get('x-1-1+1')).toBeNull();
  });

  it('list() hides the pool and LVM internals, shows non-thin LVs as thin=false', async () => {
    await sh('lvcreate', '-qy', '-L', '64m', '-n', 'swap', 'attrs');
    const names = (await b.list()).map((v) => v.name);
    expect(names).not.toContain(fx.pool);
    expect(names.some((n) => n.startsWith('[') || n.includes('pmspare'))).toBe(false);
    expect(await b.get('swap')).toMatchObject({ thin: false, readOnly: false, activationSkip: false });
    expect(await b.get(B2)).toMatchObject({ thin: true, readOnly: true, activationSkip: true, active: false });
    expect(await b.get(fx.pool)).toBeNull();
    expect(b.blockDevice(B2)).toBe(`/dev/attrs/${B2}`);
  });

  it('grows ext4 offline and xfs (mounted for the grow only)', async () => {
    await b.grow(`${B2}+1`, GiB);
    await b.grow('x-1-1', GiB);
    for (const name of [`${B2}+1`, 'x-1-1']) {
      const df = await withMounted(b, name, { readOnly: true }, async (root) =>
        sh('df', '--output=size', '-B1', root),
      );
      const fsBytes = Number(df.trim().split('\n')[1]);
      expect(fsBytes).toBeGreaterThan(900 * MiB);
    }
  });
});

describe('LvmBackend: free space', () => {
  let fx: VgFixture;
  let b: LvmBackend;
  beforeAll(async () => {
    // a 1 GiB VG: a 512 MiB pool and little room to autoextend
    fx = await makeVg({ vg: 'small', poolBytes: 512 * MiB, pvBytes: GiB });
    b = new LvmBackend({ vg: fx.vg, pool: fx.pool, mountRoot: fx.mountRoot });
  });
  afterAll(async () => fx?.cleanup());

  it('throws NoSpaceError with the numbers before creating anything (no autoextend)', async () => {
    expect((await b.poolUsage()).autoextendThreshold).toBe(100);
    const err: unknown = await b.createThin('big-1-1', { sizeBytes: 2 * GiB, fsType: 'ext4' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoSpaceError);
    const msg = (err as NoSpaceError).message;
    expect(msg).toContain('small/big-1-1');
    expect(msg).toContain(String(2 * GiB));
    expect(msg).toMatch(/has .*MiB \(\d+ bytes\) free of/);
    expect((err as NoSpaceError).dbusName).toBe('org.ovirt.Node.Error.NoSpace');
    expect(await b.get('big-1-1')).toBeNull();
    await b.createThin('fits-1-1', { sizeBytes: 256 * MiB, fsType: 'ext4' });
  });

  it('markLayout() reports, does not fail, when 1 GiB of metadata cannot fit; autoextend counts VG space', async () => {
    const notes: string[] = [];
    const nb = new LvmBackend({ vg: fx.vg, pool: fx.pool, mountRoot: fx.mountRoot, onNotice: (m) => notes.push(m) });
    await nb.markLayout();
    expect(nb.lastLayoutReport?.metadataNotGrownReason).toMatch(/below the 1 GiB/);
    expect(notes).toHaveLength(1);
    expect(nb.lastLayoutReport?.profile).toBe(POOL_PROFILE);
    const u = await nb.poolUsage();
    expect(u.autoextendThreshold).toBe(70);
    const vgFree = Number((await sh('vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_free', 'small')).trim());
    // more than the pool has free, but within what autoextend may still add: allowed
    await nb.createThin('grows-1-1', { sizeBytes: u.freeBytes + Math.floor(vgFree / 2) });
    await expect(nb.createThin('huge-1-1', { sizeBytes: u.freeBytes + vgFree + GiB })).rejects.toBeInstanceOf(
      NoSpaceError,
    );
  });
});

describe('LvmBackend.discover() and markLayout() on a host laid out by real imgbased', () => {
  let fx: VgFixture;
  beforeAll(async () => {
    // what the installer leaves: VG onn, thin pool00 with small metadata, thin root, linear swap
    fx = await makeVg({ vg: 'onn', pool: 'pool00', poolBytes: 6 * GiB, poolMetadataBytes: 64 * MiB });
    await sh('lvcreate', '-qy', '-L', '128m', '-n', 'swap', 'onn');
    await sh('lvcreate', '-qy', '--thin', '--virtualsize', '2g', '-n', 'root', 'onn/pool00');
    await sh('mkfs.ext4', '-q', '-E', 'discard', '/dev/onn/root');
  });
  afterAll(async () => fx?.cleanup());

  it('finds nothing before the layout is marked', async () => {
    await expect(LvmBackend.discover({ mountRoot: fx.mountRoot })).rejects.toBeInstanceOf(NotFoundError);
    await sh('vgchange', '-q', '--addtag', TAG.vg, 'onn');
    await expect(LvmBackend.discover({ mountRoot: fx.mountRoot })).rejects.toThrow(/no thin pool tagged imgbased:pool/);
  });

  it('reads the layout imgbased layout --init leaves (first base tagged imgbased:layer)', async () => {
    // imgbased 1.2.x layout --init, command for command (DESIGN.md, "On-disk compatibility")
    await sh('lvchange', '-q', '--addtag', TAG.pool, 'onn/pool00');
    await sh('lvchange', '-q', '--addtag', TAG.init, 'onn/root');
    await sh('lvcreate', '-q', '--snapshot', '--name', B1, 'onn/root');
    await sh('lvchange', '-q', '--addtag', TAG.layer, `onn/${B1}`);
    await sh('lvchange', '-q', '--permission', 'r', 'onn/root');
    await sh('lvchange', '-q', '--setactivationskip', 'y', 'onn/root');
    await sh('lvchange', '-q', '--activate', 'n', '--ignoreactivationskip', 'onn/root');
    await sh('lvcreate', '-q', '--snapshot', '--name', `${B1}+1`, `onn/${B1}`);
    await sh('lvchange', '-q', '--addtag', TAG.layer, `onn/${B1}+1`);
    await sh('lvchange', '-q', '--setactivationskip', 'n', `onn/${B1}+1`);

    const b = await LvmBackend.discover({ mountRoot: fx.mountRoot });
    expect([b.vgName, b.poolName]).toEqual(['onn', 'pool00']);
    expect(await b.get('root')).toMatchObject({ tags: [TAG.init], readOnly: true, activationSkip: true, active: false });
    // the first base: writeable, activation skip, tagged imgbased:layer — a base by NAME
    expect(await b.get(B1)).toMatchObject({ tags: [TAG.layer], readOnly: false, activationSkip: true, thin: true });
    expect(await b.get(`${B1}+1`)).toMatchObject({ tags: [TAG.layer], readOnly: false, activationSkip: false });
    const roles = new Map<string, string | null>();
    for (const name of ['root', B1, `${B1}+1`, 'swap']) roles.set(name, imgbasedRole(await lvRecord('onn', name)));
    expect(Object.fromEntries(roles)).toEqual({ root: 'init', [B1]: 'base', [`${B1}+1`]: 'layer', swap: null });
    // it mounts (activation with -K) and the content is the installed root's
    const fsType = await b.fsType(`${B1}+1`);
    expect(fsType).toBe('ext4');
  });

  it('markLayout() grows the 64 MiB metadata to 1 GiB and applies the imgbased-pool profile, idempotently', async () => {
    const b = await LvmBackend.discover({ mountRoot: fx.mountRoot });
    await b.markLayout();
    const pool = await lvRecord('onn', 'pool00');
    expect(pool.metadataSizeBytes).toBe(POOL_METADATA_MIN_BYTES);
    expect(pool.profile).toBe(POOL_PROFILE);
    expect(b.lastLayoutReport).toMatchObject({ metadataBytesBefore: 64 * MiB, metadataNotGrownReason: null });
    const profile = await fs.readFile(`/etc/lvm/profile/${POOL_PROFILE}.profile`, 'utf8');
    expect(profile).toMatch(/thin_pool_autoextend_threshold=70/);
    expect(profile).toMatch(/thin_pool_autoextend_percent=20/);
    await b.markLayout();
    expect((await b.poolUsage()).autoextendThreshold).toBe(70);
    expect(await b.layoutTags()).toEqual({ vg: [TAG.vg], pool: [TAG.pool] });
  });

  it('an update on that host: fresh base (imgbased:base) + layer, seen as imgbased sees them', async () => {
    const b = await LvmBackend.discover({ mountRoot: fx.mountRoot });
    const size = (await b.get(`${B1}+1`))?.sizeBytes ?? 0;
    await b.createThin(B2, { sizeBytes: size, fsType: 'ext4', tags: [TAG.base] });
    await b.protect(B2);
    await b.snapshot(B2, `${B2}+1`, { tags: [TAG.layer] });
    await b.setActivationSkip(`${B2}+1`, false);
    await b.newFsUuid(`${B2}+1`);
    expect(await lvAttr('onn', B2)).toBe('Vri---tz-k');
    expect(await lvAttr('onn', `${B2}+1`)).toMatch(/^Vwi-[a-]-tz--$/);
    expect(imgbasedRole(await lvRecord('onn', B2))).toBe('base');
    expect(imgbasedRole(await lvRecord('onn', `${B2}+1`))).toBe('layer');
    expect(imgbasedRole(await lvRecord('onn', 'pool00'))).toBe('pool');
  });
});
