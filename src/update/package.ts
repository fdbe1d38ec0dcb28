/**
 * A downloaded image-update package: its RPM signature checked by rpm itself (rpmkeys, against the keys imgbased
 * trusts for images: etc/imgbased/trusted.d), and the image unpacked from it (rpm2archive + tar, no shell). The
 * unpacked image then goes through the normal upgrade path, whose own verification (IMAGE.sha256, IMAGE.sig) runs
 * as for any image of ImageDir.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { VerificationFailedError } from '../errors';
import { run } from '../system/run';

/** Where image-update packages put their image (oVirt's layout): /usr/share/<package>/image/<file>.squashfs.img */
export const IMAGE_DIR_IN_PACKAGE = /^\.?\/?usr\/share\/[^/]+\/image\/[^/]+\.squashfs\.img$/;

/**
 * rpmkeys --checksig with every signature required (_pkgverify_level all: an unsigned package fails) against a
 * throw-away keyring holding the trusted keys. Throws VerificationFailedError naming what is wrong.
 */
export async function verifyPackageSignature(rpmPath: string, trustedKeysDir: string, workDir: string, signal?: AbortSignal): Promise<string> {
  const names = (await fs.readdir(trustedKeysDir).catch(() => [] as string[])).filter((n) => n.endsWith('.asc') || n.endsWith('.gpg')).sort();
  if (names.length === 0) throw new VerificationFailedError(`no trusted keys (*.asc, *.gpg) in ${trustedKeysDir} to check ${path.basename(rpmPath)} with`);
  const db = await fs.mkdtemp(path.join(workDir, '.rpmkeys-'));
  const so = signal ? { signal } : {};
  try {
    for (const n of names) {
      try {
        await run(['rpmkeys', `--dbpath=${db}`, '--import', path.join(trustedKeysDir, n)], so);
      } catch (e) {
        // A key rpm cannot use (an algorithm it lacks) cannot have signed a package rpm could verify: skip it.
        if (signal?.aborted) throw e;
      }
    }
    const r = await run(['rpmkeys', `--dbpath=${db}`, '--define=_pkgverify_level all', '--checksig', '-v', '--', rpmPath], { ...so, okCodes: [0, 1] });
    return judgeChecksig(path.basename(rpmPath), r.code, `${r.stdout}\n${r.stderr}`, trustedKeysDir);
  } finally {
    await fs.rm(db, { recursive: true, force: true });
  }
}

/**
 * What `rpmkeys --checksig -v` (with _pkgverify_level all) said: the signature line that is OK, or a
 * VerificationFailedError saying what is wrong (unknown key, bad signature, not signed, bad digest).
 */
export function judgeChecksig(file: string, code: number, output: string, trustedKeysDir: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const sigs = lines.filter((l) => /Signature, key ID [0-9a-f]+:/.test(l));
  const hint = `imgbased installs only packages signed by a key in ${trustedKeysDir}`;
  const fail = (why: string): VerificationFailedError => new VerificationFailedError(`package ${file} failed its signature check: ${why}`, { hint });
  const nokey = sigs.find((l) => /: NOKEY$/.test(l));
  if (nokey !== undefined) {
    throw fail(`it is signed by a key that is not in trusted.d (key ID ${/key ID ([0-9a-f]+)/.exec(nokey)?.[1] ?? '?'})`);
  }
  const bad = lines.find((l) => /: (BAD|NOT OK)$/.test(l));
  if (bad !== undefined) throw fail(`${bad.replace(/:\s*(BAD|NOT OK)$/, '')} is BAD (the package was changed after it was signed, or is damaged)`);
  const good = sigs.find((l) => /: OK$/.test(l));
  if (good === undefined) throw fail('it is not signed');
  if (code !== 0) throw fail(lines.slice(-3).join('; '));
  return good;
}

/**
 * Unpack the image (and its .sha256/.sig) from a package into `destDir`; returns the image's path there.
 * Throws VerificationFailedError when the package holds no image.
 */
export async function extractImage(rpmPath: string, destDir: string, signal?: AbortSignal): Promise<string> {
  const so = signal ? { signal } : {};
  await fs.rm(destDir, { recursive: true, force: true });
  await fs.mkdir(destDir, { recursive: true, mode: 0o700 });
  const tar = path.join(destDir, `${path.basename(rpmPath)}.tar`);
  // rpm2archive writes FILE.tar beside FILE: unpack from a copy's name inside destDir.
  const link = path.join(destDir, path.basename(rpmPath));
  await fs.symlink(path.resolve(rpmPath), link);
  try {
    await run(['rpm2archive', '-n', link], so);
    const listing = (await run(['tar', '-tf', tar], so)).stdout.split('\n').filter(Boolean);
    const image = listing.find((f) => IMAGE_DIR_IN_PACKAGE.test(f));
    if (image === undefined) {
      throw new VerificationFailedError(`package ${path.basename(rpmPath)} holds no image (/usr/share/<package>/image/*.squashfs.img)`);
    }
    const members = [image, `${image}.sha256`, `${image}.sig`].filter((m) => listing.includes(m));
    await run(['tar', '-xf', tar, '-C', destDir, '--no-same-owner', '--no-same-permissions', '--', ...members], so);
    const flat = path.join(destDir, path.basename(image));
    for (const m of members) await fs.rename(path.join(destDir, m), path.join(destDir, path.basename(m)));
    return flat;
  } finally {
    await fs.rm(tar, { force: true });
    await fs.rm(link, { force: true });
    await fs.rm(path.join(destDir, 'usr'), { recursive: true, force: true });
  }
}
