/** The delta write's tree sync with the real rsync: only what changed is written, what is gone is deleted. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError } from '../../src/errors';
import { buildManifest, compareManifests, summarizeDiff } from '../../src/image/manifest';
import type { Manifest, ManifestEntry } from '../../src/image/manifest';
import { parseRsyncStats, quickCheckBlind, resyncFiles, syncTree } from '../../src/image/sync-base';
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

  describe('a file whose content changed but not its size and mtime (quick-check blind)', () => {
    /** src and dst that differ in one file's content only (same size, same mtime to the ns), inside a hard-link pair. */
    async function blindPair(dir: string): Promise<{ src: string; dst: string }> {
      const src = path.join(dir, 'src');
      const dst = path.join(dir, 'dst');
      for (const d of [src, dst]) {
        await fs.mkdir(path.join(d, 'usr/share/x'), { recursive: true });
        await fs.writeFile(path.join(d, 'usr/share/x/os-release'), d === src ? 'VERSION=4.5.6\n' : 'VERSION=4.5.5\n');
        await fs.link(path.join(d, 'usr/share/x/os-release'), path.join(d, 'usr/share/x/os-release.link'));
        await fs.writeFile(path.join(d, 'usr/share/x/other'), 'same\n');
      }
      for (const f of ['usr/share/x/os-release', 'usr/share/x/other', 'usr/share/x', 'usr/share', 'usr', '']) {
        await run(['touch', '-h', '-d', '2025-01-01 00:00:00.123456789Z', path.join(src, f), path.join(dst, f)]);
      }
      return { src, dst };
    }

    it('rsync alone skips it; resyncFiles sends it (and its hard-link group) again and restores the directory times', async () => {
      const dir = await tempDir('sync-blind');
      try {
        const { src, dst } = await blindPair(dir);
        const origin = await buildManifest(dst);
        const image = await buildManifest(src);
        await syncTree({ srcRoot: src, dstRoot: dst });
        expect(summarizeDiff(compareManifests(image, await buildManifest(dst)))).toMatch(/usr\/share\/x\/os-release: sha256 differs/);
        const blind = quickCheckBlind(origin, image);
        expect(blind).toEqual(['usr/share/x/os-release', 'usr/share/x/os-release.link']);
        const r = await resyncFiles({ srcRoot: src, dstRoot: dst, paths: blind });
        expect(r.bytesWritten).toBe('VERSION=4.5.6\n'.length);
        expect(summarizeDiff(compareManifests(image, await buildManifest(dst)))).toBe('no differences');
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });

    it('with checksum (origin manifest unknown) one rsync pass gets it right', async () => {
      const dir = await tempDir('sync-checksum');
      try {
        const { src, dst } = await blindPair(dir);
        await syncTree({ srcRoot: src, dstRoot: dst, checksum: true });
        expect(summarizeDiff(compareManifests(await buildManifest(src), await buildManifest(dst)))).toBe('no differences');
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('quickCheckBlind (pure)', () => {
    const file = (p: string, over: Partial<ManifestEntry> = {}): ManifestEntry =>
      ({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: '1000', size: 4, sha256: 'a'.repeat(64), ...over });
    const m = (...entries: ManifestEntry[]): Manifest => ({ version: 1, entries });

    it('lists only regular files of the same size and mtime with another content', () => {
      const origin = m(file('a'), file('b'), file('c'), file('d'), file('e'), { ...file('f'), type: 'symlink', target: 'x' });
      const image = m(
        file('a', { sha256: 'b'.repeat(64) }), // blind: listed
        file('b', { sha256: 'b'.repeat(64), mtimeNs: '2000' }), // rsync sees the mtime
        file('c', { sha256: 'b'.repeat(64), size: 5 }), // rsync sees the size
        file('d'), // unchanged
        file('new', { sha256: 'b'.repeat(64) }), // not in the origin: rsync sends it
        file('f', { sha256: 'b'.repeat(64) }), // was a symlink: rsync replaces it
      );
      expect(quickCheckBlind(origin, image)).toEqual(['a']);
    });

    it('takes the whole hard-link group of a blind file, sorted', () => {
      const image = m(file('z', { sha256: 'b'.repeat(64), link: 'k1' }), file('k1', { sha256: 'b'.repeat(64), link: 'k1' }), file('k2', { link: 'k2' }));
      expect(quickCheckBlind(m(file('z')), image)).toEqual(['k1', 'z']);
    });
  });
});
