/** Gather the facts the health report evaluates (reads only). */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readEntries } from '../boot/boot-entries';
import type { MountLine } from '../system/mountinfo';
import { parseMountinfo } from '../system/mountinfo';
import type { Engine } from '../engine';
import type { HealthFacts } from './health';

/**
 * `running`: the transaction the daemon is running right now — its journal is expected, not a leftover of a crash.
 */
export async function gatherFacts(
  engine: Engine, opts: { running?: string | null; mountinfoPath?: string } = {},
): Promise<HealthFacts> {
  const mountinfoPath = opts.mountinfoPath ?? '/proc/self/mountinfo';
  const state = await engine.state();
  const mounts = parseMountinfo(await fs.readFile(mountinfoPath, 'utf8'));
  const mountOf = (p: string): MountLine | undefined => [...mounts].reverse().find((m) => m.mountPoint === p);
  const rootMount = engine.paths.sysroot === '/' && engine.backend.kind === 'lvm' ? mountOf('/') : undefined;
  const volumesDiscard = engine.backend.kind === 'lvm'
    ? state.layout.volumes.flatMap((v) => {
      const m = mounts.find((x) => path.basename(x.mountPoint) === v.name || x.mountPoint === `/${v.name.replace(/_/g, '/')}`);
      return m ? [{ name: m.mountPoint, discard: m.options.includes('discard') }] : [];
    })
    : [];
  return {
    backendKind: engine.backend.kind,
    pool: await engine.backend.poolUsage(),
    layers: state.layout.layers.map((l) => l.name),
    entryBootIds: (await readEntries(engine.paths.bootDir)).flatMap((e) => (e.bootId ? [e.bootId] : [])),
    defaultLayer: state.defaultLayer,
    varMountOptions: mountOf(engine.paths.varDir)?.options ?? null,
    rootMountOptions: rootMount?.options ?? null,
    volumesDiscard,
    unfinishedTransactions: (await engine.journal.unfinished()).map((r) => r.id).filter((id) => id !== opts.running),
  };
}
