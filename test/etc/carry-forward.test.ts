import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CancelledError } from '../../src/errors';
import { carryForwardEtc, type EtcResult } from '../../src/etc/carry-forward';
import { cpa, edit, getfacl, read, setXattr, tempDir, writeTree, xattrs, type Spec } from './tree-fixture';

const FACTORY = 'usr/share/factory/etc';

interface Scenario {
  work: string;
  oldRoot: string;
  newRoot: string;
  /** The running layer's /etc (edit it to simulate the user). */
  oldEtc: string;
  /** The new image's factory copy (edit it to simulate upstream changes; the new /etc is copied from it). */
  newFactory: string;
  newEtc: string;
}

const work: string[] = [];
afterAll(() => {
  for (const w of work) fs.rmSync(w, { recursive: true, force: true });
});

/**
 * Old image = `factory`; the user edits the old /etc with `user`; the new image = old factory + `upstream`, and its
 * /etc is a copy of its factory.
 */
function scenario(factory: Spec, user: (etc: string) => void, upstream: (factory: string) => void = () => undefined): Scenario {
  const dir = tempDir('carry-etc-');
  work.push(dir);
  const s: Scenario = {
    work: dir,
    oldRoot: path.join(dir, 'old'),
    newRoot: path.join(dir, 'new'),
    oldEtc: path.join(dir, 'old/etc'),
    newFactory: path.join(dir, 'new', FACTORY),
    newEtc: path.join(dir, 'new/etc'),
  };
  writeTree(path.join(s.oldRoot, FACTORY), factory);
  cpa(path.join(s.oldRoot, FACTORY), s.oldEtc);
  user(s.oldEtc);
  cpa(path.join(s.oldRoot, FACTORY), s.newFactory);
  upstream(s.newFactory);
  cpa(s.newFactory, s.newEtc);
  return s;
}

const carry = (s: Scenario, extra: { quickCheck?: boolean } = {}): Promise<EtcResult> =>
  carryForwardEtc({ oldRoot: s.oldRoot, newRoot: s.newRoot, ...extra });

const at = (root: string, rel: string): string => path.join(root, rel);

describe('carryForwardEtc: files', () => {
  it('carries a file the user edited', async () => {
    const s = scenario({ 'hosts': '127.0.0.1 localhost\n', 'other.conf': 'a\n' }, (etc) => {
      edit(at(etc, 'hosts'), '127.0.0.1 localhost\n10.0.0.1 db\n');
    });
    const r = await carry(s);
    expect(read(at(s.newEtc, 'hosts'))).toBe('127.0.0.1 localhost\n10.0.0.1 db\n');
    expect(r.counts.changed).toBe(1);
    expect(r.carried).toEqual(['hosts']);
    expect(r.conflicts).toEqual([]);
  });

  it('carries a same-size edit even with an unchanged mtime when quickCheck is off', async () => {
    const s = scenario({ 'a.conf': 'value=1\n' }, (etc) => {
      const p = at(etc, 'a.conf');
      const { mtime } = fs.statSync(p);
      fs.writeFileSync(p, 'value=2\n');
      fs.utimesSync(p, mtime, mtime);
    });
    await carry(s, { quickCheck: false });
    expect(read(at(s.newEtc, 'a.conf'))).toBe('value=2\n');
  });

  it('carries a same-size edit with a new mtime under the default quick check', async () => {
    const s = scenario({ 'a.conf': 'value=1\n' }, (etc) => edit(at(etc, 'a.conf'), 'value=2\n'));
    await carry(s);
    expect(read(at(s.newEtc, 'a.conf'))).toBe('value=2\n');
  });

  it('carries added files and added directories with their content', async () => {
    const s = scenario({ 'base.conf': 'x\n' }, (etc) => {
      fs.writeFileSync(at(etc, 'mine.conf'), 'mine\n');
      fs.mkdirSync(at(etc, 'mine.d/sub'), { recursive: true, mode: 0o750 });
      fs.writeFileSync(at(etc, 'mine.d/sub/x.conf'), 'deep\n');
    });
    const r = await carry(s);
    expect(read(at(s.newEtc, 'mine.conf'))).toBe('mine\n');
    expect(read(at(s.newEtc, 'mine.d/sub/x.conf'))).toBe('deep\n');
    expect(fs.statSync(at(s.newEtc, 'mine.d/sub')).mode & 0o7777).toBe(0o750);
    expect(r.counts.added).toBe(4);
    expect(r.counts.changed).toBe(0);
  });

  it('keeps a deleted file deleted even though the new image ships it (changed: conflict reported)', async () => {
    const s = scenario(
      { 'gone.conf': 'old\n', 'gone2.conf': 'same\n', 'gone.d/a': '1\n', 'gone.d/b': '2\n', 'keep.conf': 'k\n' },
      (etc) => {
        fs.rmSync(at(etc, 'gone.conf'));
        fs.rmSync(at(etc, 'gone2.conf'));
        fs.rmSync(at(etc, 'gone.d'), { recursive: true });
      },
      (factory) => {
        edit(at(factory, 'gone.conf'), 'new upstream\n');
        fs.writeFileSync(at(factory, 'gone.d/c'), 'new file in deleted dir\n');
      },
    );
    const r = await carry(s);
    expect(fs.existsSync(at(s.newEtc, 'gone.conf'))).toBe(false);
    expect(fs.existsSync(at(s.newEtc, 'gone2.conf'))).toBe(false);
    expect(fs.existsSync(at(s.newEtc, 'gone.d'))).toBe(false);
    expect(read(at(s.newEtc, 'keep.conf'))).toBe('k\n');
    expect(r.deleted.sort()).toEqual(['gone.conf', 'gone.d', 'gone2.conf']);
    expect(r.counts.keptDeleted).toBe(5);
    expect(r.conflicts).toEqual([{ path: 'gone.conf', kind: 'deleted-but-changed-upstream', resolution: 'kept-deleted' }]);
  });

  it('takes the new version of a file the user never touched', async () => {
    const s = scenario(
      { 'untouched.conf': 'v1\n', 'dropped.conf': 'old only\n' },
      () => undefined,
      (factory) => {
        edit(at(factory, 'untouched.conf'), 'v2 from the new image\n');
        fs.rmSync(at(factory, 'dropped.conf'));
        fs.writeFileSync(at(factory, 'brand-new.conf'), 'new\n');
      },
    );
    const r = await carry(s);
    expect(read(at(s.newEtc, 'untouched.conf'))).toBe('v2 from the new image\n');
    expect(fs.existsSync(at(s.newEtc, 'dropped.conf'))).toBe(false);
    expect(read(at(s.newEtc, 'brand-new.conf'))).toBe('new\n');
    expect(r.counts.tookNew).toBe(2);
    expect(r.carried).toEqual([]);
  });

  it('keeps the user version when both sides changed, and reports the conflict', async () => {
    const s = scenario(
      { 'both.conf': 'v1\n', 'removed-upstream.conf': 'v1\n' },
      (etc) => {
        edit(at(etc, 'both.conf'), 'user\n');
        edit(at(etc, 'removed-upstream.conf'), 'user\n');
      },
      (factory) => {
        edit(at(factory, 'both.conf'), 'upstream\n');
        fs.rmSync(at(factory, 'removed-upstream.conf'));
      },
    );
    const r = await carry(s);
    expect(read(at(s.newEtc, 'both.conf'))).toBe('user\n');
    expect(read(at(s.newEtc, 'removed-upstream.conf'))).toBe('user\n');
    expect(r.conflicts.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'both.conf', kind: 'both-changed', resolution: 'kept-user' },
      { path: 'removed-upstream.conf', kind: 'removed-upstream', resolution: 'kept-user' },
    ]);
  });

  it('reports a user-added file the new image now ships differently (user wins)', async () => {
    const s = scenario(
      { 'x': '1\n' },
      (etc) => fs.writeFileSync(at(etc, 'clash.conf'), 'mine\n'),
      (factory) => fs.writeFileSync(at(factory, 'clash.conf'), 'theirs\n'),
    );
    const r = await carry(s);
    expect(read(at(s.newEtc, 'clash.conf'))).toBe('mine\n');
    expect(r.conflicts).toEqual([{ path: 'clash.conf', kind: 'both-added', resolution: 'kept-user' }]);
  });

  it('replaces across a type change and reports it', async () => {
    const s = scenario({ 'was-file': 'f\n', 'was-dir/a': 'a\n', 'was-dir/b': 'b\n' }, (etc) => {
      fs.rmSync(at(etc, 'was-file'));
      fs.mkdirSync(at(etc, 'was-file'));
      fs.writeFileSync(at(etc, 'was-file/inside'), 'i\n');
      fs.rmSync(at(etc, 'was-dir'), { recursive: true });
      fs.writeFileSync(at(etc, 'was-dir'), 'now a file\n');
    });
    const r = await carry(s);
    expect(read(at(s.newEtc, 'was-file/inside'))).toBe('i\n');
    expect(read(at(s.newEtc, 'was-dir'))).toBe('now a file\n');
    expect(r.conflicts.map((c) => [c.path, c.kind]).sort()).toEqual([
      ['was-dir', 'type-changed'],
      ['was-file', 'type-changed'],
    ]);
    // The factory children of the replaced directory are not separate deletions.
    expect(r.deleted).toEqual([]);
  });

  it('keeps the new image metadata of an untouched directory that holds a carried file', async () => {
    const s = scenario(
      { 'ssh/sshd_config': 'Port 22\n' },
      (etc) => edit(at(etc, 'ssh/sshd_config'), 'Port 2222\n'),
      (factory) => fs.chmodSync(at(factory, 'ssh'), 0o700),
    );
    await carry(s);
    expect(read(at(s.newEtc, 'ssh/sshd_config'))).toBe('Port 2222\n');
    expect(fs.statSync(at(s.newEtc, 'ssh')).mode & 0o7777).toBe(0o700);
  });

  it('recreates a directory the new image dropped when it holds a carried file', async () => {
    const s = scenario(
      { 'legacy.d/a.conf': 'a\n' },
      (etc) => edit(at(etc, 'legacy.d/a.conf'), 'user a\n'),
      (factory) => fs.rmSync(at(factory, 'legacy.d'), { recursive: true }),
    );
    const r = await carry(s);
    expect(read(at(s.newEtc, 'legacy.d/a.conf'))).toBe('user a\n');
    expect(r.carried).toEqual(['legacy.d', 'legacy.d/a.conf']);
  });
});

describe('carryForwardEtc: links and metadata', () => {
  it('keeps symlinks as links (changed target and user-added)', async () => {
    const s = scenario({ 'localtime': { link: '../usr/share/zoneinfo/UTC' }, 'ln-same': { link: 'x' } }, (etc) => {
      fs.rmSync(at(etc, 'localtime'));
      fs.symlinkSync('../usr/share/zoneinfo/Europe/Prague', at(etc, 'localtime'));
      fs.symlinkSync('/nonexistent/target', at(etc, 'dangling'));
    });
    const r = await carry(s);
    expect(fs.lstatSync(at(s.newEtc, 'localtime')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(at(s.newEtc, 'localtime'))).toBe('../usr/share/zoneinfo/Europe/Prague');
    expect(fs.readlinkSync(at(s.newEtc, 'dangling'))).toBe('/nonexistent/target');
    expect(r.carried.sort()).toEqual(['dangling', 'localtime']);
  });

  it('preserves owner, mode (setuid), mtime, user.* and security.* xattrs and ACLs of carried files', async () => {
    const when = new Date('2025-03-04T05:06:07Z');
    const s = scenario({ 'secret.conf': 'v1\n', 'owned.conf': 'same\n' }, (etc) => {
      const p = at(etc, 'secret.conf');
      edit(p, 'v2\n');
      fs.chownSync(p, 1234, 5678);
      fs.chmodSync(p, 0o4750);
      setXattr(p, 'user.x', 'hello');
      setXattr(p, 'security.selinux', 'system_u:object_r:etc_t:s0');
      execFileSync('setfacl', ['-m', 'u:4321:r', p]);
      fs.utimesSync(p, when, when);
      // Owner-only change (content untouched) is a change too.
      fs.chownSync(at(etc, 'owned.conf'), 42, 43);
    });
    const r = await carry(s);
    const p = at(s.newEtc, 'secret.conf');
    const st = fs.statSync(p);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1234, 5678, 0o4750]);
    expect(st.mtime.getTime()).toBe(when.getTime());
    const xa = xattrs(p);
    expect(xa['user.x']).toBe('0x' + Buffer.from('hello').toString('hex'));
    expect(xa['security.selinux']).toMatch(new RegExp('^0x' + Buffer.from('system_u:object_r:etc_t:s0').toString('hex')));
    expect(getfacl(p)).toContain('user:4321:r--');
    const owned = fs.statSync(at(s.newEtc, 'owned.conf'));
    expect([owned.uid, owned.gid]).toEqual([42, 43]);
    expect(r.counts.changed).toBe(2);
  });

  it('carries a mode-only change', async () => {
    const s = scenario({ 'm.conf': 'm\n' }, (etc) => fs.chmodSync(at(etc, 'm.conf'), 0o600));
    await carry(s);
    expect(fs.statSync(at(s.newEtc, 'm.conf')).mode & 0o7777).toBe(0o600);
  });

  it('keeps hard links between carried files', async () => {
    const s = scenario({ 'x': 'x\n' }, (etc) => {
      fs.writeFileSync(at(etc, 'h1'), 'linked\n');
      fs.linkSync(at(etc, 'h1'), at(etc, 'h2'));
    });
    await carry(s);
    expect(fs.statSync(at(s.newEtc, 'h1')).ino).toBe(fs.statSync(at(s.newEtc, 'h2')).ino);
  });
});

describe('carryForwardEtc: accounts', () => {
  const factory: Spec = {
    'passwd': 'root:x:0:0:root:/root:/bin/bash\nmysvc:x:990:990::/var/lib/mysvc:/sbin/nologin\nold:x:980:980::/:/sbin/nologin\n',
    'group': 'root:x:0:\nwheel:x:10:\nmysvc:x:990:\nold:x:980:\n',
    'shadow': 'root:*:19000::::::\nmysvc:!!:19000::::::\nold:!!:19000::::::\n',
    'gshadow': 'root:::\nwheel:::\nmysvc:!::\nold:!::\n',
    'login.defs': 'UID_MIN 1000\nSYS_UID_MIN 201\nSYS_UID_MAX 999\nSYS_GID_MIN 201\nSYS_GID_MAX 999\n',
    'newsvc.conf': 'owned by newsvc in the new image\n',
  };

  function accountScenario(): Scenario {
    return scenario(
      factory,
      (etc) => {
        // The user adds alice, removes "old", and sets a password.
        edit(at(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\nmysvc:x:990:990::/var/lib/mysvc:/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n');
        edit(at(etc, 'group'), 'root:x:0:\nwheel:x:10:alice\nmysvc:x:990:\nalice:x:1000:\n');
        edit(at(etc, 'shadow'), 'root:$6$hash:19000::::::\nmysvc:!!:19000::::::\nalice:$6$alice:19500:0:99999:7:::\n');
        edit(at(etc, 'gshadow'), 'root:::\nwheel:::alice\nmysvc:!::\nalice:!::\n');
        fs.writeFileSync(at(etc, 'mysvc.conf'), 'the user\'s file, owned by mysvc (990)\n');
        fs.chownSync(at(etc, 'mysvc.conf'), 990, 990);
        for (const f of ['shadow', 'gshadow']) fs.chmodSync(at(etc, f), 0o000);
        setXattr(at(etc, 'shadow'), 'security.selinux', 'system_u:object_r:shadow_t:s0');
      },
      (img) => {
        // The new image renumbers nothing of the user's, but adds newsvc wanting 990 (mysvc's on this host),
        // "plain" at a free 970, adds "chrony" to wheel, and still ships "old".
        edit(
          at(img, 'passwd'),
          read(at(img, 'passwd')) + 'newsvc:x:990:990::/var/lib/newsvc:/sbin/nologin\nplain:x:970:970::/:/sbin/nologin\n',
        );
        fs.writeFileSync(at(img, 'passwd'), read(at(img, 'passwd')).replace(/^mysvc:.*\n/m, ''));
        edit(
          at(img, 'group'),
          'root:x:0:\nwheel:x:10:chrony\nold:x:980:\nnewsvc:x:990:\nplain:x:970:\n',
        );
        edit(at(img, 'shadow'), read(at(img, 'shadow')) + 'newsvc:!!:19600::::::\nplain:!!:19600::::::\n');
        edit(at(img, 'gshadow'), read(at(img, 'gshadow')) + 'newsvc:!::\nplain:!::\n');
        fs.chownSync(at(img, 'newsvc.conf'), 990, 990);
        fs.chmodSync(at(img, 'newsvc.conf'), 0o6750);
        fs.writeFileSync(at(img, 'plain.conf'), 'plain\n');
        fs.chownSync(at(img, 'plain.conf'), 970, 970);
      },
    );
  }

  it('keeps the user accounts, appends new ones, renumbers a clash and re-owns its files', async () => {
    const s = accountScenario();
    const r = await carry(s);
    const passwd = read(at(s.newEtc, 'passwd'));
    expect(passwd).toBe(
      'root:x:0:0:root:/root:/bin/bash\n' +
        'mysvc:x:990:990::/var/lib/mysvc:/sbin/nologin\n' +
        'alice:x:1000:1000::/home/alice:/bin/bash\n' +
        'newsvc:x:999:999::/var/lib/newsvc:/sbin/nologin\n' +
        'plain:x:970:970::/:/sbin/nologin\n',
    );
    expect(read(at(s.newEtc, 'group'))).toBe(
      'root:x:0:\nwheel:x:10:alice,chrony\nmysvc:x:990:\nalice:x:1000:\nnewsvc:x:999:\nplain:x:970:\n',
    );
    expect(read(at(s.newEtc, 'shadow'))).toBe(
      'root:$6$hash:19000::::::\nmysvc:!!:19000::::::\nalice:$6$alice:19500:0:99999:7:::\n' +
        'newsvc:!!:19600::::::\nplain:!!:19600::::::\n',
    );
    expect(read(at(s.newEtc, 'gshadow'))).toBe('root:::\nwheel:::alice\nmysvc:!::\nalice:!::\nnewsvc:!::\nplain:!::\n');
    expect(r.accounts).toEqual({
      addedUsers: ['newsvc', 'plain'],
      addedGroups: ['newsvc', 'plain'],
      keptDeletedUsers: ['old'],
      keptDeletedGroups: ['old'],
      addedMembers: ['wheel:chrony'],
      renumbered: [
        { kind: 'group', name: 'newsvc', from: 990, to: 999, clashWith: 'mysvc' },
        { kind: 'user', name: 'newsvc', from: 990, to: 999, clashWith: 'mysvc' },
      ],
      uidMap: [{ from: 990, to: 999 }],
      gidMap: [{ from: 990, to: 999 }],
    });
    // The new image's file owned by newsvc follows it to 999 and keeps its setuid/setgid bits.
    const newsvc = fs.statSync(at(s.newEtc, 'newsvc.conf'));
    expect([newsvc.uid, newsvc.gid, newsvc.mode & 0o7777]).toEqual([999, 999, 0o6750]);
    // The user's file owned by mysvc (990 on this host) is not touched; neither is plain's.
    const mysvc = fs.statSync(at(s.newEtc, 'mysvc.conf'));
    expect([mysvc.uid, mysvc.gid]).toEqual([990, 990]);
    const plain = fs.statSync(at(s.newEtc, 'plain.conf'));
    expect([plain.uid, plain.gid]).toEqual([970, 970]);
    expect(r.reowned).toEqual(['newsvc.conf']);
    // The account files keep the user's metadata (mode, SELinux label).
    expect(fs.statSync(at(s.newEtc, 'shadow')).mode & 0o7777).toBe(0);
    expect(xattrs(at(s.newEtc, 'shadow'))['security.selinux']).toMatch(
      new RegExp('^0x' + Buffer.from('system_u:object_r:shadow_t:s0').toString('hex')),
    );
  });
});

describe('carryForwardEtc: progress and cancellation', () => {
  it('reports monotonic progress ending at done === total', async () => {
    const spec: Spec = {};
    for (let i = 0; i < 700; i++) spec[`d${i % 7}/f${i}`] = `${i}\n`;
    const s = scenario(spec, (etc) => edit(at(etc, 'd1/f1'), 'changed\n'));
    const seen: Array<[number, number]> = [];
    await carryForwardEtc({ oldRoot: s.oldRoot, newRoot: s.newRoot, onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.length).toBeGreaterThan(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]?.[0]).toBeGreaterThan(seen[i - 1]?.[0] ?? Infinity);
    const last = seen[seen.length - 1];
    expect(last?.[0]).toBe(last?.[1]);
  });

  it('throws CancelledError when aborted', async () => {
    const s = scenario({ 'a': 'a\n' }, () => undefined);
    const ac = new AbortController();
    ac.abort();
    await expect(carryForwardEtc({ oldRoot: s.oldRoot, newRoot: s.newRoot, signal: ac.signal })).rejects.toBeInstanceOf(
      CancelledError,
    );
  });
});
