/**
 * The dnf repository as a source of updates (UpdateRepo= and UpdatePackage= in imgbased.conf): pure decisions over
 * what dnf reported. Asking dnf, downloading and unpacking live in ./dnf.ts and ./package.ts.
 *
 * An image-update package is named like `ovirt-node-ng-image-update`; its Version-Release follow the image's
 * (ovirt-node-ng-4.5.6-0.20250601.0 ships as ovirt-node-ng-image-update-4.5.6-0.20250601.0), so "newer than every
 * kept base" compares the package's version and release with each base's, as rpm orders them. The image itself is
 * either in the package (oVirt's layout) or in its `-squashfs` subpackage of the same version (our example package,
 * packaging/image-update/, where the main package only runs the upgrade — in %pre, whose failure fails the RPM
 * transaction; see docs/UPDATES.md).
 */
import { InvalidArgumentError } from '../errors';
import type { Nvr } from '../model/names';
import { rpmvercmp } from '../model/rpmvercmp';

/** One package as dnf repoquery describes it. */
export interface RepoPackage {
  readonly name: string;
  readonly epoch: string;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  /** Bytes to download (the package file). */
  readonly downloadSize: number;
}

/** The update the repository offers: the package that announces it and the package that carries the image. */
export interface RepoUpdate {
  /** NVR of the image-update package, e.g. ovirt-node-ng-image-update-4.5.6-0.20250601.0 (AvailableVersion). */
  readonly nvr: string;
  readonly version: string;
  readonly release: string;
  /** The package holding the squashfs: `<UpdatePackage>-squashfs` of the same version when published, else the package. */
  readonly imagePackage: RepoPackage;
}

/** The suffix of the subpackage that carries the image (packaging/image-update/). */
export const IMAGE_SUBPACKAGE_SUFFIX = '-squashfs';

/** The repoquery --qf format parsePackages reads: one package a line, fields separated by tabs. */
export const REPOQUERY_FORMAT = '%{name}\t%{epoch}\t%{version}\t%{release}\t%{arch}\t%{downloadsize}\n';

/** Lines of `dnf repoquery --qf REPOQUERY_FORMAT`; anything else (a warning dnf printed to stdout) is skipped. */
export function parsePackages(text: string): RepoPackage[] {
  const out: RepoPackage[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 6) continue;
    const [name, epoch, version, release, arch, size] = f as [string, string, string, string, string, string];
    if (!name || !version || !release || !/^\d+$/.test(size) || !/^\d*$/.test(epoch)) continue;
    out.push({ name, epoch: epoch || '0', version, release, arch, downloadSize: Number(size) });
  }
  return out;
}

/** rpm's order of (epoch, version, release). */
export function compareEvr(a: { epoch?: string; version: string; release: string }, b: { epoch?: string; version: string; release: string }): number {
  const e = Number(a.epoch ?? '0') - Number(b.epoch ?? '0');
  if (e !== 0) return Math.sign(e);
  return rpmvercmp(a.version, b.version) || rpmvercmp(a.release, b.release);
}

/** Is a package of this version-release newer than every base (bases are image NVRs; names differ and do not count)? */
export function newerThanBases(pkg: { version: string; release: string }, bases: readonly Nvr[]): boolean {
  return bases.every((b) => rpmvercmp(pkg.version, b.version) > 0 || (rpmvercmp(pkg.version, b.version) === 0 && rpmvercmp(pkg.release, b.release) > 0));
}

/**
 * The newest `packageName` newer than every kept base, with the package that carries its image; null when none.
 * (Epochs are ignored against bases, which have none; between packages they count.)
 */
export function pickUpdate(packages: readonly RepoPackage[], packageName: string, bases: readonly Nvr[]): RepoUpdate | null {
  const candidates = packages.filter((p) => p.name === packageName && newerThanBases(p, bases));
  const newest = candidates.reduce<RepoPackage | null>((best, p) => (best === null || compareEvr(p, best) > 0 ? p : best), null);
  if (newest === null) return null;
  const sub = packages.find((p) => p.name === `${packageName}${IMAGE_SUBPACKAGE_SUFFIX}` && compareEvr(p, newest) === 0);
  return {
    nvr: `${newest.name}-${newest.version}-${newest.release}`,
    version: newest.version,
    release: newest.release,
    imagePackage: sub ?? newest,
  };
}

/** `name-[epoch:]version-release.arch`, how dnf download names one exact package. */
export function packageSpec(p: RepoPackage): string {
  return `${p.name}-${p.epoch !== '0' ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
}

/** The file dnf download writes for a package. */
export function packageFileName(p: RepoPackage): string {
  return `${p.name}-${p.version}-${p.release}.${p.arch}.rpm`;
}

/** Directories the repository source works in (all below the sysroot's /var/cache/imgbased). */
export interface RepoDirs {
  /** dnf's cache: repository metadata. */
  readonly cacheDir: string;
  /** dnf's logs and persistent state (kept out of the host's /var/log/dnf*). */
  readonly dnfStateDir: string;
  /** Where packages are downloaded (a partial download resumes from here) and images are unpacked. */
  readonly downloadDir: string;
}

/** The repo id dnf knows the repository by. */
export const REPO_ID = 'imgbased-updates';

/**
 * dnf's arguments for a query or download against UpdateRepo only: none of the host's repositories or config, its
 * own cache and logs, fresh metadata every time (the timer asks seldom; a stale answer would hide an update).
 */
export function dnfArgs(url: string, dirs: RepoDirs, emptyConfig: string): string[] {
  if (!/^(file:\/\/\/|https?:\/\/)/.test(url)) throw new InvalidArgumentError(`UpdateRepo "${url}" is not a repository URL`);
  return [
    `--config=${emptyConfig}`,
    '--setopt=reposdir=/nonexistent',
    '--disablerepo=*',
    `--repofrompath=${REPO_ID},${url}`,
    `--enablerepo=${REPO_ID}`,
    '--releasever=imgbased',
    `--setopt=cachedir=${dirs.cacheDir}`,
    `--setopt=logdir=${dirs.dnfStateDir}`,
    `--setopt=persistdir=${dirs.dnfStateDir}`,
    '--setopt=metadata_expire=0',
    // An unreachable mirror fails the check in about a minute (30 s timeout, 2 tries), not after dnf's 10 retries.
    '--setopt=retries=2',
    '--setopt=timeout=30',
    // The package's signature is checked by imgbased (rpmkeys against trusted.d), never by dnf's own keyring.
    '--setopt=gpgcheck=0',
    '--assumeyes',
  ];
}
