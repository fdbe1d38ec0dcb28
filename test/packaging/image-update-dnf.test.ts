/**
 * Why the example image-update package upgrades in %pre (packaging/image-update/, docs/UPDATES.md): with the real
 * dnf (and rpm), a failing %post leaves the transaction "Complete!" (exit 0) — a failed upgrade would be reported as
 * installed — while a failing %pre fails the transaction. Scriptlets in rpm's built-in Lua, so dnf's installroot
 * needs no shell inside.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { runCommand } from '../bus/harness';
import { tempDir } from '../helpers/host';

const SPEC = `Name: scriptlet-verdict
Version: 1
Release: 1
Summary: A failing %post and a failing %pre
License: GPL-2.0-or-later
BuildArch: noarch
%description
Test package.
%package pre
Summary: A failing %pre
%description pre
Test package.
%install
mkdir -p %{buildroot}/usr/share/scriptlet-verdict
echo post > %{buildroot}/usr/share/scriptlet-verdict/post
echo pre > %{buildroot}/usr/share/scriptlet-verdict/pre
%post -p <lua>
error("the upgrade failed (in %post)")
%pre pre -p <lua>
error("the upgrade failed (in %pre)")
%files
/usr/share/scriptlet-verdict/post
%files pre
/usr/share/scriptlet-verdict/pre
`;

describe('dnf and a failing scriptlet', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('scriptlet-verdict');
    await fs.writeFile(path.join(dir, 'verdict.spec'), SPEC);
    await fs.writeFile(path.join(dir, 'dnf.conf'), '[main]\n');
    const b = await runCommand(['rpmbuild', '--quiet', '-bb', `--define=_topdir ${path.join(dir, 'top')}`, path.join(dir, 'verdict.spec')]);
    expect({ code: b.code, stderr: b.code === 0 ? '' : b.stderr }).toEqual({ code: 0, stderr: '' });
    const repo = path.join(dir, 'repo');
    await fs.mkdir(repo);
    for (const f of await fs.readdir(path.join(dir, 'top/RPMS/noarch'))) await fs.copyFile(path.join(dir, 'top/RPMS/noarch', f), path.join(repo, f));
    expect((await runCommand(['createrepo_c', '--quiet', repo])).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  // --noplugins: dnf's completion-cache plugin would write the host's /var/cache/dnf, whatever the installroot.
  const install = (pkg: string): ReturnType<typeof runCommand> => runCommand(['dnf', '-y', '--noplugins', `--installroot=${path.join(dir, `root-${pkg}`)}`,
    '--releasever=1', `--config=${path.join(dir, 'dnf.conf')}`, '--setopt=reposdir=/nonexistent', '--disablerepo=*',
    `--repofrompath=verdict,file://${path.join(dir, 'repo')}`, '--enablerepo=verdict', '--nogpgcheck', 'install', pkg], { timeoutMs: 120_000 });

  it('a failing %post: dnf reports success', async () => {
    const r = await install('scriptlet-verdict');
    expect(r.stdout + r.stderr).toMatch(/Error in POSTIN scriptlet in rpm package scriptlet-verdict/);
    expect(r.stdout).toMatch(/Complete!/);
    expect(r.code).toBe(0);
  }, 120_000);

  it('a failing %pre: dnf fails the transaction', async () => {
    const r = await install('scriptlet-verdict-pre');
    expect(r.stdout + r.stderr).toMatch(/the upgrade failed \(in %pre\)/);
    expect(r.stdout + r.stderr).toMatch(/Error: Transaction failed/);
    expect(r.code).toBe(1);
  }, 120_000);
});
