import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FailedError } from '../../src/errors';
import { DirBackend } from '../../src/storage/dir';
import { describeStorageContract } from './contract';

for (const fsType of ['ext4', 'xfs'] as const) {
  describeStorageContract('dir', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-dir-'));
    return {
      backend: new DirBackend({ poolDir: path.join(dir, 'pool') }),
      cleanup: () => fs.rm(dir, { recursive: true, force: true }),
    };
  }, { fsType, sizeBytes: 64 * 1024 * 1024 });
}

describe('dir backend specifics', () => {
  it('rejects a corrupt state file with a named error', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-dir-'));
    try {
      await fs.writeFile(path.join(dir, 'imgbased-dir-pool.json'), JSON.stringify({ version: 1, volumes: { x: 3 } }));
      await expect(new DirBackend({ poolDir: dir }).list()).rejects.toBeInstanceOf(FailedError);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('snapshots preserve owners, modes and symlinks', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-dir-'));
    try {
      const b = new DirBackend({ poolDir: dir });
      await b.createThin('a-1-1', { sizeBytes: 1 << 20, fsType: 'ext4' });
      const root = await b.mount('a-1-1');
      await fs.writeFile(path.join(root, 'f'), 'x', { mode: 0o640 });
      await fs.chown(path.join(root, 'f'), 123, 456);
      await fs.symlink('f', path.join(root, 'link'));
      await b.snapshot('a-1-1', 'a-1-1+1');
      const snap = b.volumePath('a-1-1+1');
      const st = await fs.lstat(path.join(snap, 'f'));
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 123, 456]);
      expect(await fs.readlink(path.join(snap, 'link'))).toBe('f');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
