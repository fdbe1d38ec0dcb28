import { InvalidArgumentError } from '../../src/errors';
import { parseNvr } from '../../src/model/names';
import {
  compareEvr, dnfArgs, newerThanBases, packageFileName, packageSpec, parsePackages, pickUpdate, REPO_ID,
} from '../../src/update/repo';
import type { RepoPackage } from '../../src/update/repo';

const pkg = (name: string, version: string, release: string, epoch = '0'): RepoPackage =>
  ({ name, epoch, version, release, arch: 'noarch', downloadSize: 1000 });
const BASES = [parseNvr('ovirt-node-ng-4.5.4-0.20250101.0'), parseNvr('ovirt-node-ng-4.5.5-0.20250301.0')];
const NAME = 'ovirt-node-ng-image-update';

describe('update repository (pure decisions)', () => {
  it('parses repoquery lines and skips anything else', () => {
    expect(parsePackages(`${NAME}\t0\t4.5.6\t0.20250601.0\tnoarch\t4096\nwarning: junk\n${NAME}-squashfs\t\t4.5.6\t0.20250601.0\tnoarch\t12\n`))
      .toEqual([
        { name: NAME, epoch: '0', version: '4.5.6', release: '0.20250601.0', arch: 'noarch', downloadSize: 4096 },
        { name: `${NAME}-squashfs`, epoch: '0', version: '4.5.6', release: '0.20250601.0', arch: 'noarch', downloadSize: 12 },
      ]);
    expect(parsePackages(`${NAME}\t0\t4.5.6\t1\tnoarch\tlots\n`)).toEqual([]);
  });

  it('compares version and release as rpm does; the package name never counts against a base', () => {
    expect(newerThanBases({ version: '4.5.5', release: '0.20250301.0' }, BASES)).toBe(false); // the same image
    expect(newerThanBases({ version: '4.5.5', release: '1.el9' }, BASES)).toBe(true); // oVirt's release style
    expect(newerThanBases({ version: '4.5.10', release: '0' }, BASES)).toBe(true);
    expect(newerThanBases({ version: '4.5.4', release: '9' }, BASES)).toBe(false);
    expect(newerThanBases({ version: '1', release: '1' }, [])).toBe(true);
    expect(compareEvr(pkg(NAME, '1', '1', '1'), pkg(NAME, '9', '9'))).toBe(1);
  });

  it('picks the newest package newer than every base, with its -squashfs subpackage when published', () => {
    const repo = [pkg(NAME, '4.5.5', '0.20250301.0'), pkg(NAME, '4.5.6', '0.20250601.0'), pkg(`${NAME}-squashfs`, '4.5.6', '0.20250601.0'),
      pkg(NAME, '4.5.7', '0.20250901.0')];
    expect(pickUpdate(repo, NAME, BASES)).toEqual({
      nvr: `${NAME}-4.5.7-0.20250901.0`, version: '4.5.7', release: '0.20250901.0', imagePackage: pkg(NAME, '4.5.7', '0.20250901.0'),
    });
    expect(pickUpdate(repo.slice(0, 3), NAME, BASES)?.imagePackage).toEqual(pkg(`${NAME}-squashfs`, '4.5.6', '0.20250601.0'));
    expect(pickUpdate(repo.slice(0, 1), NAME, BASES)).toBeNull();
    expect(pickUpdate([pkg('other', '9', '9')], NAME, BASES)).toBeNull();
  });

  it('names packages as dnf download wants them', () => {
    expect(packageSpec(pkg(NAME, '4.5.6', '1'))).toBe(`${NAME}-4.5.6-1.noarch`);
    expect(packageSpec(pkg(NAME, '4.5.6', '1', '2'))).toBe(`${NAME}-2:4.5.6-1.noarch`);
    expect(packageFileName(pkg(NAME, '4.5.6', '1', '2'))).toBe(`${NAME}-4.5.6-1.noarch.rpm`);
  });

  it('asks dnf about UpdateRepo only, with its own cache, never the host\'s repositories', () => {
    const args = dnfArgs('file:///srv/repo', { cacheDir: '/c', dnfStateDir: '/s', downloadDir: '/d' }, '/s/dnf.conf');
    expect(args).toEqual(expect.arrayContaining(['--config=/s/dnf.conf', '--disablerepo=*', `--repofrompath=${REPO_ID},file:///srv/repo`,
      `--enablerepo=${REPO_ID}`, '--setopt=cachedir=/c', '--setopt=reposdir=/nonexistent']));
    expect(() => dnfArgs('/srv/repo', { cacheDir: '/c', dnfStateDir: '/s', downloadDir: '/d' }, '/x')).toThrow(InvalidArgumentError);
  });
});
