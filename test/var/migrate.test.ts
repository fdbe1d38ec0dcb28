import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { migrateVar } from '../../src/var/migrate';
import { edit, getfacl, read, setXattr, tempDir, writeTree, xattrs } from '../etc/tree-fixture';

const work: string[] = [];
afterAll(() => {
  for (const w of work) fs.rmSync(w, { recursive: true, force: true });
});

function trees(): { imageVar: string; sharedVar: string } {
  const dir = tempDir('migrate-var-');
  work.push(dir);
  return { imageVar: path.join(dir, 'image/var'), sharedVar: path.join(dir, 'shared/var') };
}

/** Every path under `root` (relative, sorted), to prove nothing disappeared. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      out.push(r);
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out.sort();
}

describe('migrateVar', () => {
  it('makes what it added durable (sync -f on the shared /var) before it returns, and syncs nothing when it added nothing', async () => {
    const t = trees();
    writeTree(t.imageVar, { 'lib/newpkg/state': 'fresh\n', 'lib/f': 'image\n' });
    writeTree(t.sharedVar, { 'lib/f': 'user\n' });
    // a sync that records its arguments and what it found on disk when it ran
    const dir = path.dirname(t.imageVar);
    const fake = path.join(dir, 'fake-sync');
    const logFile = path.join(dir, 'sync.log');
    fs.writeFileSync(fake, `#!/bin/sh\necho "$@" >>'${logFile}'\nls "$2/lib" >>'${logFile}'\n`, { mode: 0o755 });
    const r = await migrateVar({ ...t, sync: fake });
    expect(r.copied).toEqual(['lib/newpkg']);
    expect(r.imgnew).toEqual(['lib/f']);
    expect(fs.readFileSync(logFile, 'utf8').split('\n')).toEqual([`-f ${t.sharedVar}`, 'f', 'f.imgnew', 'newpkg', '']);
    // a /var that already has everything: nothing added, nothing to sync
    fs.rmSync(logFile);
    const same = trees();
    writeTree(same.imageVar, { 'lib/g': 'same\n' });
    writeTree(same.sharedVar, { 'lib/g': 'same\n' });
    expect(await migrateVar({ ...same, sync: fake })).toMatchObject({ copied: [], imgnew: [], kept: 2 });
    expect(fs.existsSync(logFile)).toBe(false);
  });


  it('copies entries the shared /var lacks, with their metadata', async () => {
    const t = trees();
    writeTree(t.imageVar, {
      'lib/newpkg/state': 'fresh\n',
      'lib/newpkg/sub/deep': 'deep\n',
      'lib/existing/new-file': 'n\n',
      'lib/link': { link: 'newpkg/state' },
      'spool/empty': { dir: true },
    });
    const secured = path.join(t.imageVar, 'lib/newpkg/state');
    fs.chownSync(secured, 321, 654);
    fs.chmodSync(secured, 0o2640);
    setXattr(secured, 'user.origin', 'image');
    setXattr(secured, 'security.selinux', 'system_u:object_r:var_lib_t:s0');
    execFileSync('setfacl', ['-m', 'g:777:rw', secured]);
    const when = new Date('2023-02-03T04:05:06Z');
    fs.utimesSync(secured, when, when);
    writeTree(t.sharedVar, { 'lib/existing/user-data': 'user\n' });
    // The user's directory that receives a new entry keeps its own mode and owner (no implied-dir attributes).
    const userDir = path.join(t.sharedVar, 'lib/existing');
    fs.chmodSync(userDir, 0o701);
    fs.chownSync(userDir, 55, 66);

    const r = await migrateVar(t);

    const ud = fs.statSync(userDir);
    expect([ud.mode & 0o7777, ud.uid, ud.gid]).toEqual([0o701, 55, 66]);

    expect(r.copied.sort()).toEqual(['lib/existing/new-file', 'lib/link', 'lib/newpkg', 'spool']);
    expect(r.copiedEntries).toBe(8);
    const copied = path.join(t.sharedVar, 'lib/newpkg/state');
    expect(read(copied)).toBe('fresh\n');
    expect(read(path.join(t.sharedVar, 'lib/newpkg/sub/deep'))).toBe('deep\n');
    const st = fs.statSync(copied);
    // setfacl moved the group bits to the ACL mask (rw): 0o2640 became 0o2660 on the source.
    expect([st.uid, st.gid, st.mode & 0o7777, st.mtime.getTime()]).toEqual([321, 654, 0o2660, when.getTime()]);
    expect(xattrs(copied)['user.origin']).toBe('0x' + Buffer.from('image').toString('hex'));
    expect(xattrs(copied)['security.selinux']).toMatch(new RegExp('^0x' + Buffer.from('system_u:object_r:var_lib_t:s0').toString('hex')));
    expect(getfacl(copied)).toContain('group:777:rw-');
    expect(fs.readlinkSync(path.join(t.sharedVar, 'lib/link'))).toBe('newpkg/state');
    expect(fs.statSync(path.join(t.sharedVar, 'spool/empty')).isDirectory()).toBe(true);
    expect(read(path.join(t.sharedVar, 'lib/existing/user-data'))).toBe('user\n');
  });

  it('writes a differing file as <name>.imgnew and never overwrites the user file', async () => {
    const t = trees();
    writeTree(t.imageVar, { 'lib/app/app.conf': 'image default\n', 'lib/app/same.conf': 'same\n' });
    fs.chmodSync(path.join(t.imageVar, 'lib/app/app.conf'), 0o600);
    writeTree(t.sharedVar, { 'lib/app/app.conf': 'user setting\n', 'lib/app/same.conf': 'same\n' });

    const r = await migrateVar(t);

    expect(read(path.join(t.sharedVar, 'lib/app/app.conf'))).toBe('user setting\n');
    expect(read(path.join(t.sharedVar, 'lib/app/app.conf.imgnew'))).toBe('image default\n');
    expect(fs.statSync(path.join(t.sharedVar, 'lib/app/app.conf.imgnew')).mode & 0o7777).toBe(0o600);
    expect(fs.existsSync(path.join(t.sharedVar, 'lib/app/same.conf.imgnew'))).toBe(false);
    expect(r.imgnew).toEqual(['lib/app/app.conf']);
    expect(r.copied).toEqual([]);
  });

  it('detects a same-size content change even when size and mtime match', async () => {
    const t = trees();
    writeTree(t.imageVar, { 'db': 'AAAA\n' });
    writeTree(t.sharedVar, { 'db': 'BBBB\n' });
    const r = await migrateVar(t);
    expect(r.imgnew).toEqual(['db']);
    expect(read(path.join(t.sharedVar, 'db'))).toBe('BBBB\n');
  });

  it('deletes nothing and keeps the user metadata and types, reporting type and link differences', async () => {
    const t = trees();
    writeTree(t.imageVar, {
      'lib/dir-or-file': { dir: true },
      'lib/file-or-dir': 'f\n',
      'lib/ln': { link: 'image-target' },
      'log': { dir: true },
    });
    fs.chmodSync(path.join(t.imageVar, 'log'), 0o700);
    writeTree(t.sharedVar, {
      'lib/dir-or-file': 'user file\n',
      'lib/file-or-dir/x': 'user dir\n',
      'lib/ln': { link: 'user-target' },
      'lib/only-mine': 'mine\n',
      'log/messages': 'log\n',
      'cache/big': 'c\n',
    });
    fs.chmodSync(path.join(t.sharedVar, 'log'), 0o755);
    const before = listing(t.sharedVar);

    const r = await migrateVar(t);

    expect(listing(t.sharedVar)).toEqual(before);
    expect(fs.statSync(path.join(t.sharedVar, 'log')).mode & 0o7777).toBe(0o755);
    expect(fs.readlinkSync(path.join(t.sharedVar, 'lib/ln'))).toBe('user-target');
    expect(r.conflicts.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'lib/dir-or-file', kind: 'type-differs' },
      { path: 'lib/file-or-dir', kind: 'type-differs' },
      { path: 'lib/ln', kind: 'symlink-differs' },
    ]);
  });

  it('replaces a stale .imgnew from an earlier migration, and is idempotent', async () => {
    const t = trees();
    writeTree(t.imageVar, { 'app.conf': 'image v2\n' });
    writeTree(t.sharedVar, { 'app.conf': 'user\n', 'app.conf.imgnew': 'image v1\n' });
    await migrateVar(t);
    expect(read(path.join(t.sharedVar, 'app.conf.imgnew'))).toBe('image v2\n');
    const before = listing(t.sharedVar);
    const again = await migrateVar(t);
    expect(again.copied).toEqual([]);
    expect(again.imgnew).toEqual(['app.conf']);
    expect(listing(t.sharedVar)).toEqual(before);
    expect(read(path.join(t.sharedVar, 'app.conf'))).toBe('user\n');
  });

  it('reports an .imgnew it cannot place (a directory is in the way) without touching it', async () => {
    const t = trees();
    writeTree(t.imageVar, { 'x.conf': 'image\n' });
    writeTree(t.sharedVar, { 'x.conf': 'user\n', 'x.conf.imgnew/keep': 'k\n' });
    const r = await migrateVar(t);
    expect(r.conflicts).toEqual([{ path: 'x.conf', kind: 'imgnew-blocked' }]);
    expect(read(path.join(t.sharedVar, 'x.conf.imgnew/keep'))).toBe('k\n');
  });

  it('leaves the user file alone when only its metadata differs', async () => {
    const t = trees();
    writeTree(t.imageVar, { 'f': 'same\n' });
    writeTree(t.sharedVar, { 'f': 'same\n' });
    fs.chmodSync(path.join(t.sharedVar, 'f'), 0o600);
    edit(path.join(t.sharedVar, 'f'), 'same\n');
    const r = await migrateVar(t);
    expect(r.kept).toBe(1);
    expect(r.imgnew).toEqual([]);
    expect(fs.statSync(path.join(t.sharedVar, 'f')).mode & 0o7777).toBe(0o600);
  });
});
