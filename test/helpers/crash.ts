import type { Engine } from '../../src/engine';

/** The step ids (and phases) of the newest upgrade in the history. */
export async function upgradeStepIds(engine: Engine): Promise<Array<{ id: string; phase: string }>> {
  const last = (await engine.history()).find((r) => r.kind === 'upgrade' && r.state === 'succeeded');
  return (last?.steps ?? []).map((s) => ({ id: s.id, phase: s.phase }));
}
