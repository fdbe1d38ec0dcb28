/**
 * The executor side of the repository source: asks dnf (its repoquery and download commands, Debian's and EL's
 * dnf 4 with dnf-plugins-core) about UpdateRepo and downloads packages from it. No HTTP client of our own: dnf
 * (librepo) fetches, resumes partial downloads and verifies checksums from the repodata.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError, ToolError } from '../errors';
import { run } from '../system/run';
import type { RepoDirs, RepoPackage } from './repo';
import { dnfArgs, packageFileName, packageSpec, parsePackages, REPO_ID, REPOQUERY_FORMAT } from './repo';

/** How often download progress is sampled (the size of the file growing in the destination). */
const PROGRESS_POLL_MS = 200;

/** The directories under `<sysroot>/var/cache/imgbased` (created on demand). */
export function repoDirs(sysroot: string): RepoDirs {
  const base = path.join(sysroot, 'var/cache/imgbased');
  return { cacheDir: path.join(base, 'dnf'), dnfStateDir: path.join(base, 'dnf-state'), downloadDir: path.join(base, 'updates') };
}

async function prepare(dirs: RepoDirs): Promise<string> {
  for (const d of [dirs.cacheDir, dirs.dnfStateDir, dirs.downloadDir]) await fs.mkdir(d, { recursive: true, mode: 0o700 });
  await dropRepoMetadata(dirs);
  const conf = path.join(dirs.dnfStateDir, 'dnf.conf');
  // dnf wants a config file; an empty one means dnf's defaults (no host repositories: reposdir is pointed away).
  await fs.writeFile(conf, '# imgbased: dnf settings come from the command line (src/update/repo.ts)\n[main]\n');
  return conf;
}

function dnfFailure(what: string, url: string, e: unknown): FailedError {
  const detail = e instanceof ToolError ? e.message : e instanceof Error ? e.message : String(e);
  return new FailedError(`${what} ${url} failed: ${detail}`, {
    cause: e,
    hint: 'is UpdateRepo= in imgbased.conf right, and the repository reachable? (dnf repoquery --repofrompath shows the same)',
  });
}

/**
 * Remove the repository's cached metadata, so that dnf fetches it afresh into its cache directory. With metadata in
 * the cache (always expired: metadata_expire=0), libdnf first compares it with the mirror's in a temporary directory
 * it creates under a hard-coded /tmp (not TMPDIR, not the cachedir), and /tmp is read-only for the daemon
 * (imgbased.service: ProtectSystem=strict, no PrivateTmp=): every check after the first failed with "Cannot create
 * repo temporary directory /tmp/tmpdir.XXXXXX: Read-only file system". A first fetch downloads into the cachedir.
 * The metadata is fetched anyway (fresh each time); downloaded packages live in downloadDir and stay (resume).
 */
export async function dropRepoMetadata(dirs: RepoDirs): Promise<void> {
  const entries = await fs.readdir(dirs.cacheDir).catch(() => [] as string[]);
  for (const e of entries) {
    if (e.startsWith(`${REPO_ID}-`)) await fs.rm(path.join(dirs.cacheDir, e), { recursive: true, force: true });
  }
}

/** Every version of `names` the repository holds. */
export async function queryRepo(url: string, names: readonly string[], dirs: RepoDirs, signal?: AbortSignal): Promise<RepoPackage[]> {
  const conf = await prepare(dirs);
  try {
    // No plugins: repoquery is dnf's own, and plugins write host files (the completion cache in /var/cache/dnf).
    const r = await run(['dnf', '-q', 'repoquery', '--noplugins', ...dnfArgs(url, dirs, conf), '--qf', REPOQUERY_FORMAT, '--', ...names], signal ? { signal } : {});
    return parsePackages(r.stdout);
  } catch (e) {
    if (signal?.aborted) throw e;
    throw dnfFailure('asking the repository', url, e);
  }
}

/** Bytes of the package so far (in the destination; older dnf versions download into the cache, then copy). */
async function bytesSoFar(dirs: RepoDirs, file: string): Promise<number> {
  let best = 0;
  const candidates = [path.join(dirs.downloadDir, file)];
  try {
    for (const d of await fs.readdir(dirs.cacheDir)) candidates.push(path.join(dirs.cacheDir, d, 'packages', file));
  } catch {
    // no cache yet
  }
  for (const c of candidates) {
    const size = await fs.stat(c).then((s) => s.size, () => 0);
    best = Math.max(best, size);
  }
  return best;
}

/**
 * Download one package into dirs.downloadDir; returns its path. Progress: bytes so far of pkg.downloadSize. A
 * download interrupted earlier resumes from the partial file left in dirs.downloadDir (librepo's resume).
 */
export async function downloadPackage(
  url: string, pkg: RepoPackage, dirs: RepoDirs,
  opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<string> {
  const conf = await prepare(dirs);
  const file = packageFileName(pkg);
  // dnf download --destdir downloads straight into the destination: a partial file left there by an interrupted
  // download is resumed by librepo (Range request), a complete one that matches the repodata is used as it is.
  const dest = path.join(dirs.downloadDir, file);
  let last = -1;
  const report = async (): Promise<void> => {
    const done = Math.min(await bytesSoFar(dirs, file), pkg.downloadSize);
    if (done !== last) {
      last = done;
      opts.onProgress?.(done, pkg.downloadSize);
    }
  };
  const timer = setInterval(() => void report(), PROGRESS_POLL_MS);
  try {
    await report();
    // download is a plugin (dnf-plugins-core); the completion-cache plugin would write /var/cache/dnf/packages.db.
    await run(['dnf', '-q', 'download', '--disableplugin=generate_completion_cache', ...dnfArgs(url, dirs, conf), `--destdir=${dirs.downloadDir}`, '--', packageSpec(pkg)],
      opts.signal ? { signal: opts.signal } : {});
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw dnfFailure(`downloading ${packageSpec(pkg)} from`, url, e);
  } finally {
    clearInterval(timer);
  }
  const st = await fs.stat(dest).catch(() => null);
  if (!st?.isFile()) throw new FailedError(`dnf download reported success but ${dest} is missing`);
  opts.onProgress?.(st.size, Math.max(st.size, pkg.downloadSize));
  return dest;
}
