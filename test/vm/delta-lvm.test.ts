/**
 * Delta base writes on real LVM thin (issue 10): a new base is a thin snapshot of the newest base (`snapshot-base`),
 * the image's tree is synchronised into it in place (`sync-base`: new fs UUID, rsync, fstrim) and proven equal to the
 * image by its manifest (`verify-base`), which is stored for `check --deep`.
 *
 * On an oVirt-like install (VG onn, pool00, root thin LV): `init`; v1 → v2 with WriteMethod=auto (delta chosen, base
 * origin = the previous base, flags exactly as for full writes, history says delta and the bytes written, manifest
 * stored and verifyBases() passing); the SIGKILL crash matrix of the compiled offline tool over the delta steps (old
 * state or new state, never half), whose roll-forward case installs v3 and removes v1 — the ORIGIN of v2; discovery and
 * check --deep after the origin is gone; rollback; remove-base of the origin of v3; and a manifest mismatch made on
 * dm-thin behind rsync's quick check, which fails the upgrade and leaves the layout as it was.
 *
 * One layout for the whole file (every lvm2 command costs seconds under TCG): the tests run in order and build on
 * each other. Boot assessment is off ([Boot] Assessment=no: the upgrade sets the default; daemon-systemd covers the
 * trial boot), the running layer stays mounted read-write outside the run dir, as `/` is on a real host.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeSummary } from '../../src/daemon/daemon';
import { Engine } from '../../src/engine';
import { FailedError } from '../../src/errors';
import { openImage } from '../../src/image/inspect';
import { buildManifest, compareManifests, summarizeDiff } from '../../src/image/manifest';
import { loadManifest, manifestFile } from '../../src/image/manifest-store';
import { discoverLayout } from '../../src/model/layout';
import { bootSandbox } from '../../src/sandbox/sysroot';
import { TAG } from '../../src/storage/backend';
import { LvmBackend } from '../../src/storage/lvm';
import { run } from '../../src/system/run';
import type { JournalRecord } from '../../src/transaction/types';
import type { ImageSet } from '../helpers/host';
import { imageSet, NVR, V2_CHANGES } from '../helpers/host';
import { entryText, grubenvBlock } from '../helpers/boot-text';
import { sh, type VgFixture } from './lvm-fixture';
import {
  blkidUuid, cli, CLI, FULL_MATRIX, hostState, killWhileChildRuns, lastRecord, withBaseDevice, type HostState,
} from './crash-lvm';
import { installOvirtHost, lvsState, OVIRT_CONFIG, ROOT_BYTES, VG, type LvState } from './ovirt-host';

const V4 = 'ovirt-node-ng-4.5.7-0.20250901.0';
const BASE_ATTR = 'Vri---tz-k'; // protected: read-only, activation skip, inactive (as real imgbased leaves bases)
const LAYER_ATTR = 'Vwi-a-tz--'; // writeable, active, no activation skip

const base = (origin: string | null): LvState => ({ attr: BASE_ATTR, tags: [TAG.base], origin, size: ROOT_BYTES });
const layer = (b: string): LvState => ({ attr: LAYER_ATTR, tags: [TAG.layer], origin: b, size: ROOT_BYTES });

function stepIds(r: JournalRecord | undefined): string[] {
  return (r?.steps ?? []).map((s) => s.id);
}

describe('delta base writes on real LVM thin: upgrade, crashes, origin removal, rollback, manifest mismatch', () => {
  let fx: VgFixture;
  let work: string;
  let sysroot: string;
  let runningMnt: string;
  let running: string | null = null;
  let images: ImageSet;
  const img: Record<string, string> = {};
  let engine: Engine;

  /** What the booted kernel would do: mount the default layer read-write as "/" (here: outside the run dir). */
  async function boot(): Promise<string> {
    if (running !== null) await sh('umount', runningMnt);
    const l = await bootSandbox(engine);
    await sh('mount', '-o', 'rw', `/dev/${VG}/${l}`, runningMnt);
    running = l;
    return l;
  }

  /** The manifest of an image's tree (the image opened read-only for the call). */
  async function imageManifest(imagePath: string): Promise<Awaited<ReturnType<typeof buildManifest>>> {
    const image = await openImage({ imagePath, workDir: work });
    try {
      return await buildManifest(image.root);
    } finally {
      await image.close();
    }
  }

  /** The stored manifest of a base is the manifest of its image. */
  async function expectStoredManifestOf(baseName: string, imagePath: string): Promise<void> {
    const stored = await loadManifest(engine.paths.stateDir, baseName);
    expect(stored?.entries.length).toBeGreaterThan(10);
    if (stored) expect(summarizeDiff(compareManifests(await imageManifest(imagePath), stored))).toBe('no differences');
  }

  beforeAll(async () => {
    await fs.access(CLI);
    // the guest's /tmp is a tmpfs without user xattrs (the test images carry some): build on the root filesystem
    work = await fs.mkdtemp(path.join('/var/tmp', 'delta-lvm-work-'));
    images = await imageSet(work);
    img['v1'] = (await images.image(NVR.v1)).imagePath;
    img['v2'] = (await images.image(NVR.v2, V2_CHANGES)).imagePath;
    img['v3'] = (await images.image(NVR.v3)).imagePath;
    img['v4'] = (await images.image(V4, V2_CHANGES)).imagePath;
    const host = await installOvirtHost({
      imagePath: img['v1'], trustedKey: path.join(images.key.trustedKeysDir, 'test.asc'),
      // WriteMethod is left at its default (auto): on lvm with a base of the image's filesystem it must pick delta
      config: `${OVIRT_CONFIG}[Boot]\nAssessment=no\n`, writeCmdline: true,
    });
    fx = host.fx;
    sysroot = host.sysroot;
    runningMnt = host.scratchMount;
    engine = await Engine.open({ sysroot });
  });

  afterAll(async () => {
    if (running !== null) await run(['umount', runningMnt]).catch(() => undefined);
    await fx?.cleanup();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('init, then v1 → v2 with WriteMethod=auto: a delta (origin v1), flags as for full writes, manifest stored and verified', async () => {
    expect((await engine.init('root', null, { initiator: 'installer' })).error).toBeNull();
    expect(await boot()).toBe(`${NVR.v1}+1`);
    const before = await lvsState();
    expect(before[NVR.v1]).toEqual(base('root'));

    const out = await engine.upgrade(img['v2'] as string);
    expect(out.error).toBeNull();
    expect(out.record.request).toMatchObject({ method: 'delta' });
    expect(stepIds(out.record)).toEqual([
      'snapshot-base', 'sync-base', 'verify-base', 'protect-base', 'create-layer', 'carry-etc', 'migrate-var', 'install-boot', 'set-default',
    ]);
    expect(out.record.steps[0]?.args).toEqual({ from: NVR.v1, name: NVR.v2 });

    // lvs: the new base is a thin snapshot of v1, protected exactly like a fully written base; nothing else changed
    const lvs = await lvsState();
    expect(lvs[NVR.v2]).toEqual(base(NVR.v1));
    expect(lvs[`${NVR.v2}+1`]).toEqual(layer(NVR.v2));
    const { [NVR.v2]: _b, [`${NVR.v2}+1`]: _l, ...rest } = lvs;
    expect(rest).toEqual(before);

    // what LastTransaction/GetHistory report: the write method and the bytes written (only what changed)
    const sync = out.record.steps.find((s) => s.id === 'sync-base')?.result as Record<string, number>;
    expect(writeSummary(out.record)).toEqual({ method: 'delta', bytes: sync['bytesWritten'] });
    expect(sync['bytesWritten']).toBeGreaterThan(0);
    expect(sync['bytesWritten']).toBeLessThan(sync['bytesTotal'] ?? 0);
    process.stderr.write(`delta v1→v2: ${JSON.stringify(sync)}\n`);

    // the stored manifest is the image's, and check --deep finds the base equal to it
    await expectStoredManifestOf(NVR.v2, img['v2'] as string);
    expect(await engine.verifyBases()).toEqual([
      { base: NVR.v1, status: 'ok', reason: 'not verifiable: no manifest was stored when it was installed' },
      { base: NVR.v2, status: 'ok', reason: expect.stringMatching(/^matches its image \(\d+ entries\)$/) },
    ]);

    // a snapshot shares its origin's filesystem UUID until sync-base gives it its own; the layer has another one
    const v1Uuid = await withBaseDevice(NVR.v1, blkidUuid);
    const v2Uuid = await withBaseDevice(NVR.v2, async (dev) => {
      const fsck = await run(['e2fsck', '-fn', dev], { okCodes: [0, 1, 2, 4, 8] });
      expect({ code: fsck.code, out: fsck.stdout }).toMatchObject({ code: 0 });
      return blkidUuid(dev);
    });
    expect(new Set([v1Uuid, v2Uuid, await blkidUuid(`/dev/${VG}/${NVR.v2}+1`)]).size).toBe(3);
    expect(await lvsState()).toEqual(lvs); // reading the bases left them at rest

    const entries = path.join(sysroot, 'boot/loader/entries');
    expect((await fs.readdir(entries)).sort()).toEqual([`${NVR.v1}+1.conf`, `${NVR.v2}+1.conf`]);
    expect(await fs.readFile(path.join(entries, `${NVR.v2}+1.conf`), 'utf8')).toBe(entryText(NVR.v2));
    expect(await fs.readFile(path.join(sysroot, 'boot/grub2/grubenv'), 'latin1')).toBe(grubenvBlock(`${NVR.v2}+1`));
    expect(await boot()).toBe(`${NVR.v2}+1`);
  });

  describe('crash matrix over the delta steps: SIGKILL of the offline tool, then recover', () => {
    const upgradeV3 = (): string[] => ['upgrade', img['v3'] as string, '--keep', '1'];
    // Under TCG a case (crashed upgrade + recover) costs 50-110 s, so by default only what needs real LVM and no other
    // file covers (the host tier's crash-matrix.test.ts covers every delta boundary on the dir backend; engine-lvm's
    // after:create-base the removal of a thin LV that exists but is not journaled as created, like after:snapshot-base):
    // during sync-base (the failpoint fires with the snapshot active, its new UUID given, mounted, just before rsync
    // starts) and after protect-base (the undo unprotects it, verify-base's undo removes the stored manifest); then one
    // finalize boundary (roll forward). IMGBASED_VM_CRASH=full adds every other boundary of the four delta steps,
    // during:verify-base (while hashing), a kill of the tool while its rsync runs (not a failpoint: rsync is orphaned,
    // as when the OOM killer picks the tool) and after:set-default, e.g.
    //   scripts/test-vm.sh run -- env IMGBASED_VM_CRASH=full test/vm/guest-run.sh delta-lvm
    const DELTA = ['snapshot-base', 'sync-base', 'verify-base', 'protect-base'];
    const RSYNC_KILL = 'kill:rsync';
    const apply = FULL_MATRIX
      ? [...DELTA.flatMap((s) => [`before:${s}`, `after:${s}`]), 'during:sync-base', RSYNC_KILL, 'during:verify-base', 'after:set-default']
      : ['during:sync-base', 'after:protect-base'];
    const times: Record<string, number> = {};
    let old: HostState;

    it(`recovers exactly the old state (${apply.length} cases${FULL_MATRIX ? ', full' : ''})`, async () => {
      old = await hostState(sysroot);
      expect(Object.keys(old.manifests)).toEqual([`${NVR.v2}.json`]);
      for (const fp of apply) {
        const t0 = Date.now();
        if (fp === RSYNC_KILL) {
          // not a failpoint: the tool is killed while its rsync runs on the mounted snapshot; rsync is orphaned
          const k = await killWhileChildRuns(sysroot, upgradeV3(), 'rsync', 0);
          expect({ fp, signal: k.signal, rsyncWasRunning: k.childRunning }).toEqual({ fp, signal: 'SIGKILL', rsyncWasRunning: true });
        } else {
          const crashed = await cli(sysroot, upgradeV3(), fp);
          expect({ fp, signal: crashed.signal, stderr: crashed.signal ? '' : crashed.stderr }).toEqual({ fp, signal: 'SIGKILL', stderr: '' });
        }
        const rec = await cli(sysroot, ['recover', '--json']);
        expect({ fp, code: rec.code, stderr: rec.code === 0 ? '' : rec.stderr }).toEqual({ fp, code: 0, stderr: '' });
        expect({ fp, state: await hostState(sysroot) }).toEqual({ fp, state: old });
        const last = await lastRecord(sysroot);
        expect({ fp, recovered: last?.recovered, state: last?.state, method: last?.request['method'] })
          .toEqual({ fp, recovered: true, state: 'failed', method: 'delta' });
        times[fp] = Date.now() - t0;
      }
      process.stderr.write(`delta crash matrix (apply) per case ms: ${JSON.stringify(times)}\n`);
    }, 30 * 60_000);

    it('past the point of no return (v1, the origin of v2, half removed) recovery rolls forward to exactly the new state', async () => {
      const fp = `before:remove-base:${NVR.v1}`;
      const t0 = Date.now();
      const crashed = await cli(sysroot, upgradeV3(), fp);
      expect({ fp, signal: crashed.signal }).toEqual({ fp, signal: 'SIGKILL' });
      const rec = await cli(sysroot, ['recover', '--json']);
      expect({ fp, code: rec.code, stderr: rec.code === 0 ? '' : rec.stderr }).toEqual({ fp, code: 0, stderr: '' });
      const state = await hostState(sysroot);
      const now = { ...state, bootTree: [...state.bootTree].sort() };

      const { [NVR.v1]: _b, [`${NVR.v1}+1`]: _l, ...kept } = old.lvs;
      const v1Layer = `${NVR.v1}+1`;
      const v2Layer = `${NVR.v2}+1`;
      const v3Layer = `${NVR.v3}+1`;
      const mirror = (p: string): string[] => (p.startsWith(v2Layer) ? [p, v3Layer + p.slice(v2Layer.length)] : [p]);
      expect(now).toEqual({
        // v1 is gone while v2, its thin snapshot, stays: v2 has no origin any more, everything else is as it was
        lvs: { ...kept, [NVR.v2]: base(null), [NVR.v3]: base(NVR.v2), [v3Layer]: layer(NVR.v3) },
        entries: { [`${v2Layer}.conf`]: old.entries[`${v2Layer}.conf`], [`${v3Layer}.conf`]: entryText(NVR.v3) },
        bootTree: old.bootTree.filter((p) => !p.startsWith(v1Layer)).flatMap(mirror)
          .map((p) => p.replace(`loader/entries/${v1Layer}.conf`, `loader/entries/${v3Layer}.conf`)).sort(),
        grubenv: grubenvBlock(v3Layer),
        journal: old.journal,
        mounts: [],
        manifests: { ...old.manifests, [`${NVR.v3}.json`]: expect.stringMatching(/^[0-9a-f]{64}$/) },
        // the removed layer's boot state goes with it
        bootStates: Object.fromEntries(Object.entries(old.bootStates as Record<string, unknown>).filter(([l]) => l !== v1Layer)),
      });
      const last = await lastRecord(sysroot);
      expect({ recovered: last?.recovered, state: last?.state }).toEqual({ recovered: true, state: 'succeeded' });
      expect(stepIds(last).slice(0, 4)).toEqual(['snapshot-base', 'sync-base', 'verify-base', 'protect-base']);
      expect(last?.steps[0]?.args).toEqual({ from: NVR.v2, name: NVR.v3 });
      expect(last && writeSummary(last)).toMatchObject({ method: 'delta' });
      times[fp] = Date.now() - t0;
      process.stderr.write(`delta crash matrix (finalize) ms: ${times[fp]}\n`);
      expect(await boot()).toBe(v3Layer);
    }, 10 * 60_000);
  });

  it('with the origin gone, discovery sees the same layout and v2 still mounts and matches its manifest', async () => {
    const backend = await LvmBackend.discover({ mountRoot: path.join(sysroot, 'run/imgbased/mnt') });
    expect([backend.vgName, backend.poolName]).toEqual([VG, 'pool00']);
    const vols = await backend.list();
    expect(vols.find((v) => v.name === NVR.v3)?.origin).toBe(NVR.v2);
    expect(vols.find((v) => v.name === NVR.v2)?.origin).toBeNull();
    // the origin field plays no part in discovery: empty, set or dangling, the layout is the same
    const layout = discoverLayout(vols);
    const withoutOrigins = (l: unknown): unknown => JSON.parse(JSON.stringify(l, (k, v: unknown) => (k === 'origin' ? null : v)));
    for (const origin of [null, `-${NVR.v1}`, 'no-such-lv']) {
      expect({ origin, layout: withoutOrigins(discoverLayout(vols.map((v) => ({ ...v, origin })))) })
        .toEqual({ origin, layout: withoutOrigins(layout) });
    }
    const names = (l: typeof layout): unknown => l.bases.map((b) => [b.name, b.layers.map((x) => x.name)]);
    const s = await engine.state();
    expect(names(s.layout)).toEqual([[NVR.v2, [`${NVR.v2}+1`]], [NVR.v3, [`${NVR.v3}+1`]]]);
    expect([s.layout.init?.name, s.current, s.defaultLayer]).toEqual(['root', `${NVR.v3}+1`, `${NVR.v3}+1`]);

    // check --deep mounts both bases (v2 lost its origin, v3 is a snapshot of v2) and finds each equal to its image
    expect(await engine.verifyBases()).toEqual([
      { base: NVR.v2, status: 'ok', reason: expect.stringMatching(/^matches its image \(\d+ entries\)$/) },
      { base: NVR.v3, status: 'ok', reason: expect.stringMatching(/^matches its image \(\d+ entries\)$/) },
    ]);
    expect((await lvsState())[NVR.v2]).toEqual(base(null));
  });

  it('rollback to the previous layer (a layer of the base whose origin is gone) and back', async () => {
    const before = await lvsState();
    expect((await engine.rollback(null)).error).toBeNull();
    expect(await fs.readFile(path.join(sysroot, 'boot/grub2/grubenv'), 'latin1')).toBe(grubenvBlock(`${NVR.v2}+1`));
    expect(await lvsState()).toEqual(before);
    expect(await boot()).toBe(`${NVR.v2}+1`); // mounts read-write as "/"
    expect(await fs.readFile(path.join(runningMnt, 'usr/share/imgbase/build/meta/nvr'), 'utf8')).toBe(`${NVR.v2}\n`);

    expect((await engine.rollback(`${NVR.v3}+1`)).error).toBeNull();
    expect(await boot()).toBe(`${NVR.v3}+1`);
    expect((await lvsState())[`${NVR.v3}+1`]).toEqual({ ...layer(NVR.v3), attr: 'Vwi-aotz--' });
  });

  it('remove-base of an origin: v2 (origin of v3) goes, v3 keeps working and matching its manifest', async () => {
    const before = await hostState(sysroot);
    const out = await engine.removeBase(NVR.v2);
    expect(out.error).toBeNull();
    expect(stepIds(out.record)).toEqual([`remove-layer:${NVR.v2}+1`, `remove-base:${NVR.v2}`]);
    const now = await hostState(sysroot);
    const { [NVR.v2]: _b, [`${NVR.v2}+1`]: _l, [NVR.v3]: v3, ...kept } = before.lvs;
    expect(v3?.origin).toBe(NVR.v2);
    expect(now.lvs).toEqual({ ...kept, [NVR.v3]: base(null) });
    const { [`${NVR.v2}.json`]: _m, ...manifests } = before.manifests;
    expect(now.manifests).toEqual(manifests);
    expect(Object.keys(now.entries)).toEqual([`${NVR.v3}+1.conf`]);
    expect(now.bootTree.filter((p) => p.startsWith(`${NVR.v2}+1`))).toEqual([]);
    expect(now.mounts).toEqual([]);
    expect((await engine.state()).layout.bases.map((b) => [b.name, b.layers.map((l) => l.name)])).toEqual([[NVR.v3, [`${NVR.v3}+1`]]]);
    // v3 still mounts and matches its manifest: the next test's check --deep finds exactly the one file it changes
  });

  it('a file of the origin base changed behind rsync\'s quick check fails the delta upgrade (FailedError naming it) and undoes it', async () => {
    // On dm-thin: unprotect v3 (the newest base, which v4 is snapshotted from), give etc/ssh/sshd_config v4's
    // content with one byte flipped and v4's exact mtime (same size and mtime: rsync skips it), protect it again.
    const rel = 'etc/ssh/sshd_config';
    const image = await openImage({ imagePath: img['v4'] as string, workDir: work });
    const mnt = path.join(work, 'tamper');
    await fs.mkdir(mnt, { recursive: true });
    try {
      const want = await fs.readFile(path.join(image.root, rel));
      want[0] = (want[0] ?? 0) ^ 0x20;
      await sh('lvchange', '-q', '--permission', 'rw', `${VG}/${NVR.v3}`);
      await sh('lvchange', '-q', '--activate', 'y', '--ignoreactivationskip', `${VG}/${NVR.v3}`);
      await run(['udevadm', 'settle']);
      await sh('mount', `/dev/${VG}/${NVR.v3}`, mnt);
      try {
        await fs.writeFile(path.join(mnt, rel), want);
        await sh('touch', '-r', path.join(image.root, rel), path.join(mnt, rel));
      } finally {
        await sh('umount', mnt);
      }
      await sh('lvchange', '-q', '--permission', 'r', `${VG}/${NVR.v3}`);
      await sh('lvchange', '-q', '--activate', 'n', `${VG}/${NVR.v3}`);
    } finally {
      await image.close();
    }
    expect((await lvsState())[NVR.v3]).toEqual(base(null));
    // check --deep sees the kept base differ from its image in that file only: the rest of v3 (whose origin v2 was
    // removed by the previous test) still matches its manifest
    expect(await engine.verifyBases()).toEqual([
      { base: NVR.v3, status: 'failed', reason: expect.stringMatching(/^differs from its image: 1 difference: etc\/ssh\/sshd_config: .*sha256 differs$/) },
    ]);

    const before = await hostState(sysroot);
    const out = await engine.upgrade(img['v4'] as string);
    expect(out.error).toBeInstanceOf(FailedError);
    expect(out.error?.message).toMatch(new RegExp(`^${V4.replace(/[.+]/g, '\\$&')} does not match the image after the delta write: .*etc/ssh/sshd_config: sha256 differs`));
    expect(out.record).toMatchObject({ state: 'failed', request: { method: 'delta' } });
    expect(out.record.steps.find((s) => s.id === 'verify-base')).toMatchObject({ status: 'undone', error: { name: 'org.ovirt.Node.Error.Failed' } });
    expect(stepIds(out.record).slice(0, 3)).toEqual(['snapshot-base', 'sync-base', 'verify-base']);
    expect(out.record.steps.slice(0, 2).map((s) => s.status)).toEqual(['undone', 'undone']);
    // exactly as before: no v4 LV, no v4 manifest, nothing mounted, no boot entry
    expect(await hostState(sysroot)).toEqual(before);
    await expect(fs.access(manifestFile(engine.paths.stateDir, V4))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await engine.journal.unfinished()).toEqual([]);
  });
});
