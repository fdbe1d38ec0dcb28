/**
 * Fetching an update from the repository for an upgrade transaction: download the package that carries the image
 * (bytes, resumable), check its RPM signature, unpack the image. The image then goes to Engine.upgrade like any
 * other, with the same verification (IMAGE.sha256 and IMAGE.sig). A package without those sidecars (oVirt's own)
 * gets IMAGE.sha256 from its header's file digest, and its checked RPM signature stands in for IMAGE.sig.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Paths } from '../config/paths';
import { downloadPackage, repoDirs } from './dnf';
import { checksumFromHeader, extractImage, verifyPackageSignature } from './package';
import type { RepoUpdate } from './repo';
import { packageSpec } from './repo';

export interface FetchedImage {
  /** The unpacked image (with its .sha256 and .sig beside it). */
  readonly imagePath: string;
  /** The downloaded package (kept until the upgrade succeeded, so a retry need not download it again). */
  readonly rpmPath: string;
  /**
   * The package's checked signature ("Header V4 EdDSA/SHA256 Signature, key ID …: OK") when the package carried no
   * IMAGE.sig: the upgrade then takes it instead of a detached signature. Null when the image has its own .sig, or
   * when signatures are not required.
   */
  readonly packageSignature: string | null;
  /** Remove the unpacked image; with `done`, the package as well. */
  dispose(done: boolean): Promise<void>;
}

export type FetchProgress = (step: string, message: string, fraction: number, done: number, total: number) => void;

/** Download, check and unpack; every failure is a typed error (VerificationFailed, Failed, Cancelled). */
export async function fetchUpdate(
  paths: Paths, url: string, update: RepoUpdate, requireSignature: boolean,
  opts: { signal?: AbortSignal; onProgress?: FetchProgress } = {},
): Promise<FetchedImage> {
  const dirs = repoDirs(paths.sysroot);
  const pkg = update.imagePackage;
  const so = opts.signal ? { signal: opts.signal } : {};
  const progress = opts.onProgress ?? ((): void => undefined);
  progress('download-package', `Downloading ${packageSpec(pkg)}`, 0, 0, pkg.downloadSize);
  const rpmPath = await downloadPackage(url, pkg, dirs, {
    ...so, onProgress: (done, total) => progress('download-package', `Downloading ${packageSpec(pkg)}`, (done / Math.max(1, total)) * 0.8, done, total),
  });
  const unpackDir = path.join(dirs.downloadDir, `${path.basename(rpmPath, '.rpm')}.d`);
  const dispose = async (done: boolean): Promise<void> => {
    await fs.rm(unpackDir, { recursive: true, force: true });
    if (done) await fs.rm(rpmPath, { force: true });
  };
  try {
    let signature: string | null = null;
    if (requireSignature) {
      progress('verify-package', `Checking the signature of ${path.basename(rpmPath)}`, 0.8, 0, 0);
      signature = await verifyPackageSignature(rpmPath, paths.trustedKeysDir, dirs.downloadDir, opts.signal);
    }
    progress('unpack-image', `Unpacking the image from ${path.basename(rpmPath)}`, 0.85, 0, 0);
    const image = await extractImage(rpmPath, unpackDir, opts.signal);
    if (!image.hasChecksum) await checksumFromHeader(rpmPath, image, opts.signal);
    progress('unpack-image', `Unpacked ${path.basename(image.imagePath)}`, 1, 0, 0);
    return { imagePath: image.imagePath, rpmPath, packageSignature: image.hasSignature ? null : signature, dispose };
  } catch (e) {
    // A package that fails its check is not kept: the next try downloads it afresh.
    await dispose(true);
    throw e;
  }
}
