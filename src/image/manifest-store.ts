/**
 * Stored image manifests: `<stateDir>/manifests/<base>.json`, written when a base is installed (by a full write, and by
 * a delta write once the base was proven equal to it), read by `check --deep` to ask whether a kept base still matches
 * its image. Bases made by `init` (a snapshot of the installed root) or by real imgbased have none.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isEnoent, mkdirDurable, writeFileDurable } from '../system/durable';
import type { Manifest } from './manifest';
import { parseManifest, serializeManifest } from './manifest';

export function manifestFile(stateDir: string, base: string): string {
  return path.join(stateDir, 'manifests', `${base}.json`);
}

export async function storeManifest(stateDir: string, base: string, m: Manifest): Promise<void> {
  const file = manifestFile(stateDir, base);
  await mkdirDurable(path.dirname(file));
  await writeFileDurable(file, serializeManifest(m), 0o600);
}

/** The stored manifest of a base, or null when none was stored (bases written before manifests, or by imgbased). */
export async function loadManifest(stateDir: string, base: string): Promise<Manifest | null> {
  try {
    return parseManifest(await fs.readFile(manifestFile(stateDir, base), 'utf8'));
  } catch (e) {
    if (isEnoent(e)) return null;
    throw e;
  }
}
