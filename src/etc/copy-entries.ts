/**
 * Copy a list of entries from one tree into another with all their metadata, in ONE rsync process:
 * owner/group (numeric — the trees' passwd is not the host's), mode, mtime, ACLs, every xattr namespace
 * (security.* needs root), symlinks as links, devices/fifos, and hard links among the listed entries.
 */
import { run } from '../system/run';

export interface CopyEntriesOptions {
  /** Source tree root. */
  from: string;
  /** Destination tree root (must exist). */
  to: string;
  /** Relative paths ('a/b'); parents of each must already exist in `to` or be listed too. */
  paths: readonly string[];
  /**
   * true: listed directories are copied with everything below them, and nothing that already exists in `to` is
   * touched (the /var rule). false: exactly the listed entries are copied, replacing what is there — even a
   * directory by a file — and content is always transferred (no size+mtime skip).
   */
  additive: boolean;
  /** rsync binary (default "rsync" on PATH). */
  rsync?: string;
  signal?: AbortSignal;
}

export function rsyncArgv(opts: Omit<CopyEntriesOptions, 'paths' | 'signal'>): string[] {
  const argv = [opts.rsync ?? 'rsync', '-aAXH', '--numeric-ids', '--no-implied-dirs', '--from0', '--files-from=-'];
  if (opts.additive) argv.push('--recursive', '--ignore-existing');
  else argv.push('--ignore-times', '--force');
  argv.push(withSlash(opts.from), withSlash(opts.to));
  return argv;
}

export async function copyEntries(opts: CopyEntriesOptions): Promise<void> {
  if (opts.paths.length === 0) return;
  for (const p of opts.paths) {
    if (p === '' || p.startsWith('/') || p.includes('\0')) {
      throw new Error(`copyEntries: bad relative path ${JSON.stringify(p)}`);
    }
  }
  await run(rsyncArgv(opts), {
    input: opts.paths.join('\0'),
    dieWithParent: true,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
}

function withSlash(p: string): string {
  return p.endsWith('/') ? p : p + '/';
}
