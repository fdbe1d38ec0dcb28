/** The delta write's tree sync with the real rsync: only what changed is written, what is gone is deleted. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError } from '../../src/errors';
import { buildManifest, compareManifests, summarizeDiff } from '../../src/image/manifest';
import { parseRsyncStats, syncTree } from '../../src/image/sync-base';
import { run } from '../../src/system/run';
import { tempDir } from '../helpers/host';

describe('syncTree (rsync -aHAXS --delete)', () => {
  it('writes changed and new files only, deletes what the source lacks, and leaves an equal tree', async () => {
    const dir = await tempDir('sync');
    try {
      const src = path.join(dir, 'src');
      const dst = path.join(dir, 'dst');
      for (const d of [src, dst]) await fs.mkdir(path.join(d, 'etc'), { recursive: true });
      const big = Buffer.alloc(1 << 20, 7);
      await fs.writeFile(path.join(src, 'etc/same'), big);
      await fs.copyFile(path.join(src, 'etc/same'), path.join(dst, 'etc/same'));
      await run(['touch', '-r', path.join(src, 'etc/same'), path.join(dst, 'etc/same')]); // the mtime to the nanosecond
      await fs.writeFile(path.join(src, 'etc/changed'), 'new content\n');
      await fs.writeFile(path.join(dst, 'etc/changed'), 'old\n');
      await fs.writeFile(path.join(src, 'etc/added'), 'added\n');
      await fs.writeFile(path.join(dst, 'etc/gone'), 'gone\n');
      await fs.link(path.join(src, 'etc/added'), path.join(src, 'etc/added-link'));
      const r = await syncTree({ srcRoot: src, dstRoot: dst });
      expect(r).toEqual({ bytesWritten: 'new content\n'.length + 'added\n'.length, filesTransferred: 2, filesDeleted: 1, bytesTotal: (1 << 20) + 12 + 6 + 6 });
      const diff = compareManifests(await buildManifest(src), await buildManifest(dst));
      expect(summarizeDiff(diff)).toBe("no differences");
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('parseRsyncStats reads thousands separators and names a missing line', () => {
    const out = 'Number of files: 3 (reg: 2, dir: 1)\nNumber of regular files transferred: 1,024\nTotal file size: 12,345,678 bytes\n'
      + 'Total transferred file size: 1,000 bytes\n';
    expect(parseRsyncStats(out)).toEqual({ bytesWritten: 1000, filesTransferred: 1024, filesDeleted: 0, bytesTotal: 12345678 });
    expect(() => parseRsyncStats('nothing')).toThrow(FailedError);
  });
});
