/**
 * A downloaded image-update package: its RPM signature checked by rpm itself (rpmkeys, against the keys imgbased
 * trusts for images: etc/imgbased/trusted.d), and the image unpacked from it (rpm2archive + tar, no shell). The
 * unpacked image then goes through the normal upgrade path, whose own verification (IMAGE.sha256, IMAGE.sig) runs
 * as for any image of ImageDir. oVirt's own packages ship the image without those sidecars: then the checksum comes
 * from the package header's file digest (covered by the header signature rpmkeys checked), and the package's
 * signature stands in for IMAGE.sig (see fetch.ts).
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

export interface ExtractedImage {
  /** The image, unpacked into destDir (with whichever sidecars the package had beside it). */
  readonly imagePath: string;
  /** Its path in the package (`/usr/share/<package>/image/<file>.squashfs.img`). */
  readonly member: string;
  readonly hasChecksum: boolean;
  readonly hasSignature: boolean;
}

/**
 * Unpack the image (and its .sha256/.sig) from a package into `destDir`.
 * Throws VerificationFailedError when the package holds no image.
 */
export async function extractImage(rpmPath: string, destDir: string, signal?: AbortSignal): Promise<ExtractedImage> {
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
    return {
      imagePath: flat, member: `/${image.replace(/^\.?\//, '')}`,
      hasChecksum: members.includes(`${image}.sha256`), hasSignature: members.includes(`${image}.sig`),
    };
  } finally {
    await fs.rm(tar, { force: true });
    await fs.rm(link, { force: true });
    await fs.rm(path.join(destDir, 'usr'), { recursive: true, force: true });
  }
}

/** rpm's FILEDIGESTALGO for SHA-256 (RFC 4880 hash algorithm ids); old packages have 1 (MD5), which is not enough. */
const PGPHASHALGO_SHA256 = 8;

/** The query format parseFileDigests reads: the digest algorithm, then one "DIGEST PATH" line per file. */
export const FILE_DIGESTS_FORMAT = '%{FILEDIGESTALGO}\n[%{FILEDIGESTS} %{FILENAMES}\n]';

/**
 * The sha256 the package header records for `member` (an absolute path in the package), from
 * `rpm -qp --qf FILE_DIGESTS_FORMAT` output. Throws VerificationFailedError when the header has no SHA-256 digest
 * for it (an MD5-era package, or no such file). Pure.
 */
export function packagedSha256(queryOutput: string, member: string, file: string): string {
  const [algoLine = '', ...lines] = queryOutput.split('\n');
  const algo = Number(algoLine.trim());
  if (algo !== PGPHASHALGO_SHA256) {
    throw new VerificationFailedError(`package ${file} records its file digests with algorithm ${algoLine.trim() || '?'}, not SHA-256: its image cannot be checked without IMAGE.sha256`);
  }
  for (const line of lines) {
    const m = /^([0-9a-f]{64}) (.+)$/.exec(line);
    if (m?.[2] === member && m[1] !== undefined) return m[1];
  }
  throw new VerificationFailedError(`package ${file} records no SHA-256 digest for ${member}`);
}

/**
 * Write IMAGE.sha256 for an image its package shipped without one, from the package header's digest of the file:
 * the header is what rpmkeys --checksig verified (signature and header digest), so the checksum is as trustworthy
 * as the package, and the normal image verification then checks the unpacked file against it.
 */
export async function checksumFromHeader(rpmPath: string, image: ExtractedImage, signal?: AbortSignal): Promise<string> {
  const out = (await run(['rpm', '-qp', '--qf', FILE_DIGESTS_FORMAT, '--', rpmPath], signal ? { signal } : {})).stdout;
  const sha256 = packagedSha256(out, image.member, path.basename(rpmPath));
  await fs.writeFile(`${image.imagePath}.sha256`, `${sha256}  ${path.basename(image.imagePath)}\n`, { mode: 0o600 });
  return sha256;
}
