/**
 * The engine end to end on the dir backend in a temp sysroot: init, upgrade twice, rollback, cleanup — with real
 * squashfs images, OpenPGP signatures, loop mounts, /etc carry-forward, BLS entries and grubenv checked byte for byte.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../../src/engine';
import { CancelledError, InvalidArgumentError } from '../../src/errors';
import { bootSandbox, createSandbox } from '../../src/sandbox/sysroot';
import { DirBackend } from '../../src/storage/dir';
import { TAG } from '../../src/storage/backend';
import { run } from '../../src/system/run';
import type { ImageSet } from '../helpers/host';
import { entryText, grubenvBlock, KVER } from '../helpers/boot-text';
import { imageSet, NVR, snapshotHost, tempDir, V2_CHANGES } from '../helpers/host';




describe('engine lifecycle on the dir backend', () => {
  let dir: string;
  let images: ImageSet;
  let engine: Engine;
  let sysroot: string;
  const vol = (name: string): string => (engine.backend as DirBackend).volumePath(name);
  const read = (p: string): Promise<string> => fs.readFile(p, 'utf8');

  beforeAll(async () => {
    dir = await tempDir('lifecycle');
    images = await imageSet(dir);
    sysroot = path.join(dir, 'sysroot');
    const v1 = await images.image(NVR.v1);
    const sb = await createSandbox({
      sysroot, installImage: v1.imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    engine = sb.engine;
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('init lays out base NVR (protected) and layer NVR+1, its boot entry and the default', async () => {
    const s = await engine.state();
    expect(s.layout.bases.map((b) => b.name)).toEqual([NVR.v1]);
    expect(s.layout.layers.map((l) => l.name)).toEqual([`${NVR.v1}+1`]);
    expect(s.layout.init?.name).toBe('root');
    expect(s.current).toBe(`${NVR.v1}+1`);
    expect(s.defaultLayer).toBe(`${NVR.v1}+1`);
    expect(await engine.backend.get(NVR.v1)).toMatchObject({ readOnly: true, activationSkip: true, tags: [TAG.base] });
    expect(await engine.backend.get(`${NVR.v1}+1`)).toMatchObject({ readOnly: false, activationSkip: false, tags: [TAG.layer] });
    expect(await engine.backend.layoutTags()).toEqual({ vg: [TAG.vg], pool: [TAG.pool] });
    expect(await engine.backend.fsUuid(`${NVR.v1}+1`)).not.toBe(await engine.backend.fsUuid(NVR.v1));
    expect(await read(path.join(sysroot, `boot/loader/entries/${NVR.v1}+1.conf`))).toBe(entryText(NVR.v1));
    expect(await fs.readFile(path.join(sysroot, 'boot/grub2/grubenv'), 'latin1')).toBe(grubenvBlock(`${NVR.v1}+1`));
    expect(await read(path.join(sysroot, `boot/${NVR.v1}+1/vmlinuz-${KVER}`))).toBe(`dummy kernel ${KVER}\n`);
  });

  it('upgrades: new base and layer, /etc carried forward, /var moved forward, entry and default written', async () => {
    // The administrator's changes on the running layer.
    const etc = path.join(vol(`${NVR.v1}+1`), 'etc');
    await fs.appendFile(path.join(etc, 'hosts'), '192.0.2.10 engine.example.com\n');
    await fs.writeFile(path.join(etc, 'custom.conf'), 'mine\n', { mode: 0o600 });
    await fs.rm(path.join(etc, 'sysconfig/network'));
    await fs.appendFile(path.join(etc, 'passwd'), 'admin:x:1000:1000:Admin:/home/admin:/bin/bash\n');
    await fs.appendFile(path.join(etc, 'group'), 'admin:x:1000:\n');
    await fs.writeFile(path.join(sysroot, 'var/lib/example/config'), 'state = tuned by admin\n');

    const v2 = await images.image(NVR.v2, V2_CHANGES);
    const percents: number[] = [];
    const out = await engine.upgrade(v2.imagePath, { onProgress: (e) => percents.push(e.percent) });
    expect(out.error).toBeNull();
    expect(out.record.state).toBe('succeeded');
    expect(percents[percents.length - 1]).toBe(100);

    const s = await engine.state();
    expect(s.layout.bases.map((b) => b.name)).toEqual([NVR.v1, NVR.v2]);
    expect(s.current).toBe(`${NVR.v1}+1`);
    expect(s.defaultLayer).toBe(`${NVR.v2}+1`);
    expect(await engine.backend.get(NVR.v2)).toMatchObject({ readOnly: true, activationSkip: true, tags: [TAG.base] });
    expect(await engine.backend.fsUuid(`${NVR.v2}+1`)).not.toBe(await engine.backend.fsUuid(NVR.v2));

    const newEtc = path.join(vol(`${NVR.v2}+1`), 'etc');
    expect(await read(path.join(newEtc, 'hosts'))).toContain('engine.example.com'); // edited: user wins
    expect(await read(path.join(newEtc, 'custom.conf'))).toBe('mine\n'); // added: carried
    expect(((await fs.stat(path.join(newEtc, 'custom.conf'))).mode & 0o777)).toBe(0o600);
    await expect(fs.stat(path.join(newEtc, 'sysconfig/network'))).rejects.toThrow(/ENOENT/); // deleted: stays deleted
    expect(await read(path.join(newEtc, 'ssh/sshd_config'))).toBe('PermitRootLogin no\nPasswordAuthentication no\n'); // untouched: new
    const passwd = await read(path.join(newEtc, 'passwd'));
    expect(passwd).toContain('admin:x:1000:1000');
    expect(passwd).toContain('sanlock:x:179:179');
    // /var: new entries copied, the admin's file kept, the image's version beside it.
    expect(await read(path.join(sysroot, 'var/lib/example/new-in-v2'))).toBe('added by v2\n');
    expect(await read(path.join(sysroot, 'var/lib/example/config'))).toBe('state = tuned by admin\n');
    expect(await read(path.join(sysroot, 'var/lib/example/config.imgnew'))).toBe('state = v2 default\n');

    expect(await read(path.join(sysroot, `boot/loader/entries/${NVR.v2}+1.conf`))).toBe(entryText(NVR.v2));
    // Boot assessment: v2 boots once on trial (next_entry); saved_entry keeps v1 until v2's boot is confirmed.
    expect(await fs.readFile(path.join(sysroot, 'boot/grub2/grubenv'), 'latin1')).toBe(grubenvBlock(`${NVR.v1}+1`, `${NVR.v2}+1`));
    const { stdout } = await run(['grub-editenv', path.join(sysroot, 'boot/grub2/grubenv'), 'list']);
    expect(stdout).toBe(`saved_entry=${NVR.v1}+1\nnext_entry=${NVR.v2}+1\n`);

    const [last] = await engine.history(1);
    expect(last).toMatchObject({ id: out.record.id, kind: 'upgrade', state: 'succeeded' });
  });

  it('a second upgrade after booting the new layer collects the oldest base (keep 2)', async () => {
    expect(await bootSandbox(engine)).toBe(`${NVR.v2}+1`);
    // v1 is the fallback of v2's trial until the boot is confirmed; then it may be collected.
    const judged = await engine.completeBoot({ verdict: 'good', reason: 'gates passed' });
    expect(judged.plan).toMatchObject({ layer: `${NVR.v2}+1`, verdict: 'good' });
    const v3 = await images.image(NVR.v3);
    const out = await engine.upgrade(v3.imagePath);
    expect(out.error).toBeNull();
    const s = await engine.state();
    expect(s.layout.bases.map((b) => b.name)).toEqual([NVR.v2, NVR.v3]);
    await expect(fs.stat(path.join(sysroot, `boot/${NVR.v1}+1`))).rejects.toThrow(/ENOENT/);
    await expect(fs.stat(path.join(sysroot, `boot/loader/entries/${NVR.v1}+1.conf`))).rejects.toThrow(/ENOENT/);
    expect(out.record.steps.filter((x) => x.phase === 'finalize').map((x) => x.id)).toEqual([
      `remove-layer:${NVR.v1}+1`, `remove-base:${NVR.v1}`,
    ]);
    // The admin's /etc travelled two upgrades.
    expect(await read(path.join(vol(`${NVR.v3}+1`), 'etc/custom.conf'))).toBe('mine\n');
  });

  it('rolls back to the previous layer, and refuses to go past the oldest', async () => {
    const out = await engine.rollback(null);
    expect(out.error).toBeNull();
    expect((await engine.state()).defaultLayer).toBe(`${NVR.v2}+1`);
    expect(await fs.readFile(path.join(sysroot, 'boot/grub2/grubenv'), 'latin1')).toBe(grubenvBlock(`${NVR.v2}+1`));
    const again = await engine.rollback(null);
    expect(again.error).toBeInstanceOf(InvalidArgumentError);
    expect(again.error?.message).toMatch(/oldest layer/);
    expect((await engine.state()).defaultLayer).toBe(`${NVR.v2}+1`);
  });

  it('cleanup keeps the newest N, the running, default and pinned layers, and removes the rest', async () => {
    const v2layer = `${NVR.v2}+1`;
    const v3layer = `${NVR.v3}+1`;
    expect((await engine.cleanup(1)).record.steps).toEqual([]); // v3 newest; v2 running and default
    expect((await engine.rollback(v3layer)).error).toBeNull(); // a named layer may be newer: "roll" to it
    expect(await bootSandbox(engine)).toBe(v3layer);
    await engine.setPinned(v2layer, true);
    expect((await engine.cleanup(1)).record.steps).toEqual([]); // v2 pinned
    await engine.setPinned(v2layer, false);
    const out = await engine.cleanup(1);
    expect(out.error).toBeNull();
    expect(out.record.steps.map((x) => x.id)).toEqual([`remove-layer:${v2layer}`, `remove-base:${NVR.v2}`]);
    expect((await engine.state()).layout.bases.map((b) => b.name)).toEqual([NVR.v3]);
    expect((await engine.history(0)).map((r) => `${r.kind}:${r.state}`)).toEqual([
      'cleanup:succeeded', 'cleanup:succeeded', 'rollback:succeeded', 'cleanup:succeeded', 'rollback:failed',
      'rollback:succeeded', 'upgrade:succeeded', 'boot-complete:succeeded', 'upgrade:succeeded', 'init:succeeded',
    ]);
  });

  it('recovery sweeps the temp files a power cut left in /boot and the state directory, and nothing else', async () => {
    const before = await snapshotHost(sysroot);
    const layer = (await engine.state()).current ?? '';
    const stateDir = engine.paths.stateDir;
    const dirs = [
      path.join(sysroot, 'boot'), path.join(sysroot, 'boot/grub2'), path.join(sysroot, 'boot/loader/entries'),
      path.join(sysroot, 'boot', layer), stateDir, path.join(stateDir, 'manifests'),
    ];
    for (const [i, d] of dirs.entries()) {
      await fs.mkdir(d, { recursive: true });
      await fs.writeFile(path.join(d, `.torn-${i}.tmp-4242-0123abcd`), 'half a write');
    }
    const kept = path.join(sysroot, 'boot/loader/entries/.not-ours.tmp');
    await fs.writeFile(kept, 'someone else\'s');
    await engine.recover();
    for (const [i, d] of dirs.entries()) await expect(fs.access(path.join(d, `.torn-${i}.tmp-4242-0123abcd`))).rejects.toThrow();
    expect(await read(kept)).toBe('someone else\'s');
    await fs.rm(kept);
    expect(await snapshotHost(sysroot)).toEqual(before);
  });
});

describe('cancel', () => {
  it('cancelling during the base write undoes everything: the host is as before', async () => {
    const dir = await tempDir('cancel');
    try {
      const images = await imageSet(dir);
      const sysroot = path.join(dir, 'sysroot');
      const { engine } = await createSandbox({
        sysroot, installImage: (await images.image(NVR.v1)).imagePath,
        trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
      });
      const before = await snapshotHost(sysroot);
      const ac = new AbortController();
      const v2 = await images.image(NVR.v2, { extraMb: 16 });
      const out = await engine.upgrade(v2.imagePath, {
        signal: ac.signal,
        onProgress: (e) => {
          if (e.step === 'write-base') ac.abort();
        },
      });
      expect(out.error).toBeInstanceOf(CancelledError);
      expect(out.record.state).toBe('cancelled');
      expect(await snapshotHost(sysroot)).toEqual(before);
      expect((await engine.history(1))[0]?.state).toBe('cancelled');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('progress', () => {
  it('never goes backwards across verification and the journaled steps, and ends at 100', async () => {
    const dir = await tempDir('progress');
    try {
      const images = await imageSet(dir);
      const { engine } = await createSandbox({
        sysroot: path.join(dir, 'sysroot'), installImage: (await images.image(NVR.v1)).imagePath,
        trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
      });
      const seen: Array<[number, string]> = [];
      const out = await engine.upgrade((await images.image(NVR.v2)).imagePath, { onProgress: (e) => seen.push([e.percent, e.step]) });
      expect(out.error).toBeNull();
      const percents = seen.map(([p]) => p);
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      expect(percents[percents.length - 1]).toBe(100);
      expect(seen.map(([, s]) => s)).toEqual(expect.arrayContaining(['verify-image', 'check-space', 'write-base', 'start-trial']));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
