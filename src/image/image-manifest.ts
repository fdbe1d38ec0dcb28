/**
 * The manifest of an opened image, built at most once per image and alongside the work that writes the base: a full
 * write copies the tree while it is hashed (the second reader of a squashfs file finds its decompressed pages in the
 * page cache, and hashing uses the cores the copy leaves idle), a delta write hashes the image while rsync runs and
 * verify-base then reuses the result.
 */
import { CancelledError } from '../errors';
import type { OpenedImage } from './inspect';
import type { BuildManifestOptions, Manifest } from './manifest';
import { buildManifest } from './manifest';

const built = new WeakMap<Pick<OpenedImage, 'root'>, Promise<Manifest>>();

/**
 * The image's manifest; the first caller's options govern the build that later callers share. A build that fails or
 * is cancelled is forgotten, so the next caller starts a new one.
 */
export function imageManifest(image: Pick<OpenedImage, 'root'>, opts: BuildManifestOptions = {}): Promise<Manifest> {
  const known = built.get(image);
  if (known) return known;
  const p = buildManifest(image.root, opts);
  built.set(image, p);
  p.catch(() => {
    if (built.get(image) === p) built.delete(image);
  });
  return p;
}

/**
 * Run `work` while the image's manifest is built. When `work` fails, the build is stopped (and forgotten) before the
 * error propagates; when the build fails, `work` still finishes first, then the build's error propagates. A cancel
 * through `signal` stops both.
 */
export async function alongsideImageManifest<T>(
  image: Pick<OpenedImage, 'root'>, signal: AbortSignal, work: () => Promise<T>,
): Promise<{ result: T; manifest: Manifest }> {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  if (signal.aborted) throw new CancelledError();
  signal.addEventListener('abort', stop, { once: true });
  const manifest = imageManifest(image, { signal: ac.signal });
  try {
    const [w, m] = await Promise.allSettled([work().catch((e: unknown) => {
      ac.abort();
      throw e;
    }), manifest]);
    if (w.status === 'rejected') throw w.reason;
    if (m.status === 'rejected') throw m.reason;
    return { result: w.value, manifest: m.value };
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
