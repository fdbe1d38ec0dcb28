/**
 * The delta base write on the dir backend (real squashfs images, real rsync, real manifests): the new base starts as
 * a snapshot of the newest base, the image's tree is synchronised into it, and the result must equal the image's
 * manifest — or the transaction fails and is undone. (Block sharing itself needs dm-thin: the VM tier measures it.)
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../../src/engine';
import { FailedError, InvalidArgumentError } from '../../src/errors';
import { buildManifest, compareManifests } from '../../src/image/manifest';
import { loadManifest, manifestFile } from '../../src/image/manifest-store';
import { openImage } from '../../src/image/inspect';
import { bootSandbox, createSandbox } from '../../src/sandbox/sysroot';
import type { DirBackend } from '../../src/storage/dir';
import { historyDict } from '../../src/daemon/daemon';
import type { ImageSet } from '../helpers/host';
import { imageSet, NVR, snapshotHost, tempDir, V2_CHANGES } from '../helpers/host';

describe('delta base write (snapshot of the newest base + in-place sync + manifest proof)', () => {
  let dir: string;
  let images: ImageSet;
  let engine: Engine;
  let sysroot: string;
  const vol = (name: string): string => (engine.backend as DirBackend).volumePath(name);

  beforeAll(async () => {
    dir = await tempDir('delta');
    images = await imageSet(dir);
    sysroot = path.join(dir, 'sysroot');
    const sb = await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    engine = sb.engine;
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('auto never picks delta on the dir backend; a forced delta without a base of the same filesystem is refused', async () => {
    const v2 = await images.image(NVR.v2, { ...V2_CHANGES, fsType: 'xfs' });
    const before = await snapshotHost(sysroot);
    const out = await engine.upgrade(v2.imagePath, { method: 'delta' });
    expect(out.error).toBeInstanceOf(InvalidArgumentError);
    expect(out.error?.message).toMatch(/delta write needs a base with the image's filesystem \(xfs\)/);
    expect(await snapshotHost(sysroot)).toEqual({ ...before, journal: expect.anything() });
  });

  it('writes v2 as a delta of v1: the base equals the image (manifest), history says delta and the bytes written', async () => {
    const v2 = await images.image(NVR.v2, V2_CHANGES);
    const out = await engine.upgrade(v2.imagePath, { method: 'delta' });
    expect(out.error).toBeNull();
    expect(out.record.steps.slice(0, 4).map((s) => s.id)).toEqual(['snapshot-base', 'sync-base', 'verify-base', 'protect-base']);
    expect(out.record.request).toMatchObject({ method: 'delta' });
    const sync = out.record.steps.find((s) => s.id === 'sync-base')?.result as Record<string, number>;
    expect(sync['bytesWritten']).toBeGreaterThan(0);
    expect(sync['bytesWritten']).toBeLessThan(sync['bytesTotal'] ?? 0); // only what changed
    const h = historyDict(out.record, false);
    expect([h['write-method']?.value, h['bytes-written']?.value]).toEqual(['delta', BigInt(sync['bytesWritten'] ?? -1)]);
    // The base is the image, proven independently of the step's own check.
    await fs.mkdir(path.join(dir, 'open'), { recursive: true });
    const img = await openImage({ imagePath: v2.imagePath, workDir: path.join(dir, 'open') });
    try {
      const diff = compareManifests(await buildManifest(img.root), await buildManifest(vol(NVR.v2)));
      expect(diff.equal).toBe(true);
    } finally {
      await img.close();
    }
    // The image's manifest is stored (check --deep) and the base has its own filesystem UUID.
    expect((await loadManifest(engine.paths.stateDir, NVR.v2))?.entries.length).toBeGreaterThan(10);
    expect(await engine.backend.fsUuid(NVR.v2)).not.toBe(await engine.backend.fsUuid(NVR.v1));
    expect(await engine.backend.get(NVR.v2)).toMatchObject({ readOnly: true });
    // check --deep: v2 matches its stored manifest; v1 (a full write) has none to compare with
    expect(await engine.verifyBases()).toEqual([
      { base: NVR.v1, status: 'ok', reason: 'not verifiable: no manifest was stored when it was installed' },
      { base: NVR.v2, status: 'ok', reason: expect.stringMatching(/^matches its image \(\d+ entries\)$/) },
    ]);
  });

  it('a base that does not match the image after the sync fails the transaction, which is undone', async () => {
    expect(await bootSandbox(engine)).toBe(`${NVR.v2}+1`);
    expect((await engine.completeBoot({ verdict: 'good', reason: 'test' })).outcome.error).toBeNull();
    const v3 = await images.image(NVR.v3, V2_CHANGES);
    // Make a file of v2's base look unchanged to rsync's quick check (v3's size and mtime) while its content differs
    // in one byte: only the manifest comparison can tell.
    const rel = 'etc/ssh/sshd_config';
    await fs.mkdir(path.join(dir, 'open'), { recursive: true });
    const img = await openImage({ imagePath: v3.imagePath, workDir: path.join(dir, 'open') });
    try {
      const want = await fs.readFile(path.join(img.root, rel));
      const st = await fs.stat(path.join(img.root, rel));
      want[0] = (want[0] ?? 0) ^ 0x20;
      const file = path.join(vol(NVR.v2), rel);
      await fs.writeFile(file, want);
      await fs.utimes(file, st.atime, st.mtime);
    } finally {
      await img.close();
    }
    // check --deep now sees the kept base differ from its image
    expect((await engine.verifyBases()).find((b) => b.base === NVR.v2)).toEqual({
      base: NVR.v2, status: 'failed', reason: expect.stringMatching(/^differs from its image: .*etc\/ssh\/sshd_config: .*sha256 differs/),
    });
    const before = await snapshotHost(sysroot);
    const out = await engine.upgrade(v3.imagePath, { method: 'delta' });
    expect(out.error).toBeInstanceOf(FailedError);
    expect(out.error?.message).toMatch(new RegExp(`${NVR.v3} does not match the image after the delta write: .*${rel.replace(/[/.]/g, '\\$&')}: sha256`));
    expect(out.record.steps.find((s) => s.id === 'verify-base')).toMatchObject({ status: 'undone', error: { name: 'org.ovirt.Node.Error.Failed' } });
    expect(await snapshotHost(sysroot)).toEqual({ ...before, journal: expect.anything() });
    await expect(fs.access(manifestFile(engine.paths.stateDir, NVR.v3))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a full write stores the image\'s manifest too (built while the tree is copied): check --deep verifies that base', async () => {
    const v3 = await images.image(NVR.v3, V2_CHANGES);
    const out = await engine.upgrade(v3.imagePath, { method: 'tree' });
    expect(out.error).toBeNull();
    const write = out.record.steps.find((s) => s.id === 'write-base');
    expect(write?.result).toMatchObject({ manifest: { entries: expect.any(Number), digest: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    const stored = await loadManifest(engine.paths.stateDir, NVR.v3);
    expect(stored?.entries.length).toBe((write?.result as { manifest: { entries: number } }).manifest.entries);
    const report = await engine.verifyBases();
    expect(report.find((b) => b.base === NVR.v3)).toEqual({ base: NVR.v3, status: 'ok', reason: expect.stringMatching(/^matches its image/) });
    // the corrupted v2 is still reported
    expect(report.find((b) => b.base === NVR.v2)?.status).toBe('failed');
  });
});

describe('delta writes of reproducible images (every mtime clamped: rsync\'s quick check cannot see changed content)', () => {
  let dir: string;
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('from init\'s base (no stored manifest) rsync compares contents; from a base with one, the blind files are sent again', async () => {
    dir = await tempDir('delta-clamped');
    const images = await imageSet(dir);
    const mtime = new Date('2025-06-01T00:00:00Z');
    const sysroot = path.join(dir, 'sysroot');
    const { engine } = await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1, { mtime })).imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    // v2 and v3 differ from their predecessors in files of the same size (os-release, the nvr file: 4.5.x-0.2025mm01.0)
    for (const [nvr, from, compared] of [[NVR.v2, NVR.v1, 'checksum'], [NVR.v3, NVR.v2, 'manifest']] as const) {
      const img = await images.image(nvr, { ...V2_CHANGES, mtime });
      const out = await engine.upgrade(img.imagePath, { method: 'delta' });
      expect(out.error).toBeNull();
      const sync = out.record.steps.find((s) => s.id === 'sync-base')?.result as { compared: string; resent: string[] };
      expect(sync.compared).toBe(compared);
      if (compared === 'manifest') expect(sync.resent).toEqual(expect.arrayContaining(['etc/os-release', 'usr/share/imgbase/build/meta/nvr']));
      expect(out.record.steps.find((s) => s.id === 'snapshot-base')?.args).toMatchObject({ from });
    }
    expect((await engine.verifyBases()).map((b) => [b.base, b.status])).toEqual([[NVR.v1, 'ok'], [NVR.v2, 'ok'], [NVR.v3, 'ok']]);
  });
});
