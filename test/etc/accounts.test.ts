import { FailedError } from '../../src/errors';
import { mergeAccounts, systemIdRanges, type AccountMergeInput } from '../../src/etc/accounts';

const range = { min: 201, max: 999 };

function input(partial: Partial<AccountMergeInput>): AccountMergeInput {
  return { user: {}, oldFactory: {}, newImage: {}, uidRange: range, gidRange: range, ...partial };
}

describe('mergeAccounts', () => {
  it('keeps every user line verbatim and in order, comments and NIS lines included', () => {
    const user = '# local\nroot:x:0:0::/root:/bin/bash\n+@netgroup::::::\nbob:x:1001:1001::/home/bob:/bin/sh\n';
    const r = mergeAccounts(
      input({ user: { passwd: user }, newImage: { passwd: 'root:x:0:0::/root:/bin/zsh\nsvc:x:500:500::/:/sbin/nologin\n' } }),
    );
    expect(r.files.passwd).toBe(user + 'svc:x:500:500::/:/sbin/nologin\n');
    expect(r.report.addedUsers).toEqual(['svc']);
  });

  it('rewrites the primary GID of an appended user whose group was renumbered', () => {
    const r = mergeAccounts(
      input({
        user: { passwd: 'u:x:990:990::/:/bin/sh\n', group: 'u:x:990:\n' },
        newImage: { passwd: 'svc:x:950:990::/:/sbin/nologin\n', group: 'svc:x:990:\n' },
      }),
    );
    expect(r.files.group).toBe('u:x:990:\nsvc:x:999:\n');
    // UID 950 is free, so only the GID field changes.
    expect(r.files.passwd).toBe('u:x:990:990::/:/bin/sh\nsvc:x:950:999::/:/sbin/nologin\n');
    expect(r.report.gidMap).toEqual([{ from: 990, to: 999 }]);
    expect(r.report.uidMap).toEqual([]);
  });

  it('maps the IDs of an account both sides have under different numbers (no renumbering reported)', () => {
    const r = mergeAccounts(
      input({
        user: { passwd: 'chrony:x:994:994::/:/sbin/nologin\n', group: 'chrony:x:994:\n' },
        newImage: { passwd: 'chrony:x:993:993::/:/sbin/nologin\n', group: 'chrony:x:993:\n' },
      }),
    );
    expect(r.files.passwd).toBe('chrony:x:994:994::/:/sbin/nologin\n');
    expect(r.report.renumbered).toEqual([]);
    expect(r.report.uidMap).toEqual([{ from: 993, to: 994 }]);
    expect(r.report.gidMap).toEqual([{ from: 993, to: 994 }]);
  });

  it('picks free IDs from the top of the system range, skipping the ones the new image uses', () => {
    const r = mergeAccounts(
      input({
        user: { passwd: 'a:x:500:500::/:/bin/sh\nb:x:999:999::/:/bin/sh\n' },
        newImage: { passwd: 'n:x:500:500::/:/sbin/nologin\nm:x:998:998::/:/sbin/nologin\n' },
      }),
    );
    expect(r.report.renumbered).toEqual([{ kind: 'user', name: 'n', from: 500, to: 997, clashWith: 'a' }]);
    expect(r.files.passwd).toContain('n:x:997:500:');
    expect(r.files.passwd).toContain('m:x:998:998:');
  });

  it('fails with a hint when the system range is exhausted', () => {
    const merge = (): unknown =>
      mergeAccounts(
        input({
          user: { passwd: 'a:x:300:300::/:/bin/sh\n' },
          newImage: { passwd: 'n:x:300:300::/:/sbin/nologin\n' },
          uidRange: { min: 300, max: 300 },
        }),
      );
    expect(merge).toThrow(FailedError);
    expect(merge).toThrow(/No free UID in 300-300/);
  });

  it('does not produce a file the user does not have', () => {
    const r = mergeAccounts(input({ user: { passwd: 'a:x:1:1::/:/bin/sh\n' }, newImage: { shadow: 'a:*:1::::::\n' } }));
    expect(r.files).toEqual({ passwd: 'a:x:1:1::/:/bin/sh\n' });
  });
});

describe('systemIdRanges', () => {
  it('reads SYS_*_MIN/MAX and falls back to shadow-utils defaults', () => {
    expect(systemIdRanges('SYS_UID_MIN  201\nSYS_UID_MAX 999 # comment\n#SYS_GID_MIN 5\nGID_MIN 500\n')).toEqual({
      uid: { min: 201, max: 999 },
      gid: { min: 101, max: 499 },
    });
    expect(systemIdRanges(undefined)).toEqual({ uid: { min: 101, max: 999 }, gid: { min: 101, max: 999 } });
  });
});
