/**
 * The storage contract suite: ONE set of behaviours every StorageBackend must have. Runs against `dir` on the host
 * (test/storage/dir.test.ts) and against `lvm` inside the VM tier (test/vm/).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ImgbasedError, InvalidNameError, NotFoundError } from '../../src/errors';
import type { FsType, StorageBackend } from '../../src/storage/backend';
import { TAG, withMounted } from '../../src/storage/backend';

export interface ContractFixture {
  backend: StorageBackend;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  fsType: FsType;
  /** Size of test volumes. */
  sizeBytes: number;
}

export function describeStorageContract(
  label: string,
  makeFixture: () => Promise<ContractFixture>,
  opts: ContractOptions,
): void {
  describe(`storage contract: ${label} (${opts.fsType})`, () => {
    let fx: ContractFixture;
    let b: StorageBackend;
    beforeAll(async () => {
      fx = await makeFixture();
      b = fx.backend;
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    const writeFile = (name: string, rel: string, text: string): Promise<void> =>
      withMounted(b, name, {}, async (root) => {
        await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
        await fs.writeFile(path.join(root, rel), text);
      });
    const readFile = (name: string, rel: string): Promise<string | null> =>
      withMounted(b, name, { readOnly: true }, async (root) => {
        try {
          return await fs.readFile(path.join(root, rel), 'utf8');
        } catch {
          return null;
        }
      });

    it('marks the layout with imgbased:vg and imgbased:pool', async () => {
      await b.markLayout();
      const tags = await b.layoutTags();
      expect(tags.vg).toContain(TAG.vg);
      expect(tags.pool).toContain(TAG.pool);
    });

    it('creates a thin volume with a filesystem and tags', async () => {
      await b.createThin('base-1.0-1', { sizeBytes: opts.sizeBytes, fsType: opts.fsType, tags: [TAG.base] });
      const v = await b.get('base-1.0-1');
      expect(v).not.toBeNull();
      expect(v?.tags).toEqual([TAG.base]);
      expect(v?.sizeBytes).toBeGreaterThanOrEqual(opts.sizeBytes);
      expect(v?.readOnly).toBe(false);
      expect(v?.thin).toBe(true);
      expect(await b.fsType('base-1.0-1')).toBe(opts.fsType);
      expect((await b.list()).map((x) => x.name)).toContain('base-1.0-1');
      await writeFile('base-1.0-1', 'etc/hello', 'from base');
      expect(await readFile('base-1.0-1', 'etc/hello')).toBe('from base');
    });

    it('refuses invalid names and duplicate volumes', async () => {
      await expect(b.createThin('bad name', { sizeBytes: opts.sizeBytes })).rejects.toBeInstanceOf(InvalidNameError);
      await expect(b.createThin('base-1.0-1', { sizeBytes: opts.sizeBytes, fsType: opts.fsType }))
        .rejects.toBeInstanceOf(ImgbasedError);
    });

    it('protects a base: read-only, activation skip, inactive; rw mount refused, ro mount works', async () => {
      await b.protect('base-1.0-1');
      const v = await b.get('base-1.0-1');
      expect(v).toMatchObject({ readOnly: true, activationSkip: true, active: false });
      await expect(b.mount('base-1.0-1', { readOnly: false })).rejects.toBeInstanceOf(ImgbasedError);
      expect(await readFile('base-1.0-1', 'etc/hello')).toBe('from base');
    });

    it('snapshots a protected base into an independent writable layer with its own fs UUID', async () => {
      await b.snapshot('base-1.0-1', 'base-1.0-1+1', { tags: [TAG.layer] });
      const layer = await b.get('base-1.0-1+1');
      expect(layer).toMatchObject({ readOnly: false, activationSkip: true, tags: [TAG.layer] });
      await b.setActivationSkip('base-1.0-1+1', false);
      const before = await b.fsUuid('base-1.0-1+1');
      const fresh = await b.newFsUuid('base-1.0-1+1');
      expect(fresh).not.toBe(before);
      expect(await b.fsUuid('base-1.0-1+1')).toBe(fresh);
      expect(await b.fsUuid('base-1.0-1')).not.toBe(fresh);
      expect(await readFile('base-1.0-1+1', 'etc/hello')).toBe('from base');
      await writeFile('base-1.0-1+1', 'etc/hello', 'from layer');
      expect(await readFile('base-1.0-1+1', 'etc/hello')).toBe('from layer');
      expect(await readFile('base-1.0-1', 'etc/hello')).toBe('from base');
      expect((await b.get('base-1.0-1+1'))?.activationSkip).toBe(false);
    });

    it('unprotects: read-write, no activation skip, active', async () => {
      await b.unprotect('base-1.0-1');
      expect(await b.get('base-1.0-1')).toMatchObject({ readOnly: false, activationSkip: false, active: true });
      await writeFile('base-1.0-1', 'etc/second', 'x');
      await b.protect('base-1.0-1');
    });

    it('adds and removes tags, keeping the others', async () => {
      await b.addTags('base-1.0-1+1', [TAG.init, 'custom']);
      await b.addTags('base-1.0-1+1', [TAG.init]);
      expect([...((await b.get('base-1.0-1+1'))?.tags ?? [])].sort()).toEqual(['custom', TAG.init, TAG.layer].sort());
      await b.removeTags('base-1.0-1+1', ['custom', TAG.init]);
      expect((await b.get('base-1.0-1+1'))?.tags).toEqual([TAG.layer]);
    });

    it('grows a volume and its filesystem, never shrinks', async () => {
      await b.grow('base-1.0-1+1', opts.sizeBytes * 2);
      expect((await b.get('base-1.0-1+1'))?.sizeBytes).toBeGreaterThanOrEqual(opts.sizeBytes * 2);
      await b.grow('base-1.0-1+1', opts.sizeBytes);
      expect((await b.get('base-1.0-1+1'))?.sizeBytes).toBeGreaterThanOrEqual(opts.sizeBytes * 2);
      expect(await readFile('base-1.0-1+1', 'etc/hello')).toBe('from layer');
    });

    it('reports pool usage with sane numbers', async () => {
      const u = await b.poolUsage();
      expect(u.sizeBytes).toBeGreaterThan(0);
      expect(u.freeBytes).toBeGreaterThan(0);
      expect(u.freeBytes).toBeLessThanOrEqual(u.sizeBytes);
      expect(u.dataPercent).toBeGreaterThanOrEqual(0);
      expect(u.dataPercent).toBeLessThanOrEqual(100);
      expect(u.metadataPercent).toBeGreaterThanOrEqual(0);
      expect(u.metadataPercent).toBeLessThanOrEqual(100);
      expect(u.autoextendThreshold).toBe(70);
    });

    it('removes volumes; a snapshot survives removal of its origin', async () => {
      await b.snapshot('base-1.0-1', 'base-1.0-1+2', { tags: [TAG.layer] });
      await b.unprotect('base-1.0-1');
      await b.remove('base-1.0-1');
      expect(await b.get('base-1.0-1')).toBeNull();
      expect(await readFile('base-1.0-1+2', 'etc/hello')).toBe('from base');
      await expect(b.remove('base-1.0-1')).rejects.toBeInstanceOf(NotFoundError);
      expect(await b.removeIfExists('base-1.0-1')).toBe(false);
      expect(await b.removeIfExists('base-1.0-1+2')).toBe(true);
      expect(await b.removeIfExists('base-1.0-1+1')).toBe(true);
      expect((await b.list()).map((v) => v.name)).not.toContain('base-1.0-1+1');
    });
  });
}
