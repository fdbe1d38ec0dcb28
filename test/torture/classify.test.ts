import {
  BASE_ATTR, expectationOf, grubenvVars, invariants, judge, LAYER_ATTR, stepAtCut, TAG_BASE, TAG_LAYER,
  type LayerCheck, type Snapshot, type TxnFacts,
} from '../vm/torture/classify';
import type { JournalRecord, JournalStep, StepStatus } from '../../src/transaction/types';

const A = 'ovirt-node-ng-4.6.0-0.20260101.0';
const B = 'ovirt-node-ng-4.6.1-0.20260101.0';
const C = 'ovirt-node-ng-4.6.2-0.20260101.0';

function grubenv(saved: string): string {
  const head = `# GRUB Environment Block\nsaved_entry=${saved}\n`;
  return head + '#'.repeat(1024 - head.length);
}
const entry = (l: string): string => `title ${l}\nlinux /${l}/vmlinuz-5\ninitrd /${l}/initramfs-5.img\noptions root=/dev/onn/${l} img.bootid=${l}\n`;
const etc = (extra: Record<string, string> = {}): Record<string, string> => ({
  passwd: 'file 644 0:0 120 aa', 'torture-marker': 'file 644 0:0 20 bb', 'torture.conf': 'file 644 0:0 8 cc', ...extra,
});
const layer = (nvr: string, over: Partial<LayerCheck> = {}): LayerCheck => ({
  fsckOk: true, fsckOutput: '', nvr, marker: 'changed by the admin\n', etc: etc(), ...over,
});
const base = (origin: string | null) => ({ attr: BASE_ATTR, tags: [TAG_BASE], origin, size: 268435456 });
const lay = (origin: string) => ({ attr: LAYER_ATTR, tags: [TAG_LAYER], origin, size: 268435456 });

const PRE: Snapshot = {
  lvs: {
    root: { attr: 'Vri---tz-k', tags: ['imgbased:init'], origin: null, size: 268435456 },
    [A]: base('root'), [`${A}+1`]: lay(A), [B]: base(A), [`${B}+1`]: lay(B),
    torture_boot: { attr: '-wi-ao----', tags: [], origin: null, size: 536870912 },
  },
  entries: { [`${A}+1.conf`]: entry(`${A}+1`), [`${B}+1.conf`]: entry(`${B}+1`) },
  bootDirs: { [`${A}+1`]: ['initramfs-5.img 100', 'vmlinuz-5 200'], [`${B}+1`]: ['initramfs-5.img 100', 'vmlinuz-5 200'] },
  grubenv: grubenv(`${B}+1`),
  journal: [],
  tempFiles: [],
  mounts: [],
  layers: { [`${A}+1`]: layer(A), [`${B}+1`]: layer(B) },
};

/** The upgrade to C: a delta base from B, its layer, entry, default; A collected. */
const NEW: Snapshot = {
  ...PRE,
  // B was a snapshot of A: with A removed, lvm2 reports no origin
  lvs: { root: PRE.lvs['root']!, [B]: base(null), [`${B}+1`]: lay(B), [C]: base(B), [`${C}+1`]: lay(C), torture_boot: PRE.lvs['torture_boot']! },
  entries: { [`${B}+1.conf`]: entry(`${B}+1`), [`${C}+1.conf`]: entry(`${C}+1`) },
  bootDirs: { [`${B}+1`]: ['initramfs-5.img 100', 'vmlinuz-5 200'], [`${C}+1`]: ['initramfs-5.img 100', 'vmlinuz-5 200'] },
  grubenv: grubenv(`${C}+1`),
  layers: { [`${B}+1`]: layer(B), [`${C}+1`]: layer(C, { etc: etc({ 'torture.conf': 'file 644 0:0 8 dd' }) }) },
};

function step(id: string, action: string, args: Record<string, unknown>, status: StepStatus, phase: 'apply' | 'finalize' = 'apply'): JournalStep {
  return { id, action, args, title: id, weight: 1, phase, status };
}

function upgradeRecord(statuses: StepStatus[], over: Partial<JournalRecord> = {}): JournalRecord {
  const plan: Array<[string, string, Record<string, unknown>, ('apply' | 'finalize')?]> = [
    ['snapshot-base', 'snapshot-base', { from: B, name: C }],
    ['sync-base', 'sync-base', { name: C, from: B }],
    ['protect-base', 'protect-base', { name: C }],
    ['create-layer', 'create-layer', { base: C, name: `${C}+1` }],
    ['carry-etc', 'carry-etc', { from: `${B}+1`, to: `${C}+1` }],
    ['install-boot', 'install-boot', { layer: `${C}+1`, base: C }],
    ['set-default', 'set-default', { layer: `${C}+1`, previous: `${B}+1` }],
    [`remove-layer:${A}+1`, 'remove-layer', { name: `${A}+1` }, 'finalize'],
    [`remove-base:${A}`, 'remove-base', { name: A }, 'finalize'],
  ];
  return {
    version: 1, id: 't1', kind: 'upgrade', request: {}, initiator: 'uid 0', createdAt: '2026-01-01T00:00:00Z', state: 'running',
    steps: plan.map(([id, action, args, phase], i) => step(id, action, args, statuses[i] ?? 'pending', phase ?? 'apply')),
    warnings: [], ...over,
  };
}

const ALL_DONE: StepStatus[] = Array(9).fill('done');
const facts = (over: Partial<TxnFacts>): TxnFacts => ({ id: 't1', journalAtBoot: null, history: null, unfinishedAfter: false, ...over });

describe('power-cut torture: the plan a journal record promises', () => {
  it('reads added bases/layers, removals, boot entries and the new default from the steps', () => {
    expect(expectationOf(upgradeRecord([]))).toEqual({
      kind: 'upgrade', addBases: [{ name: C, origin: B }], addLayers: [{ name: `${C}+1`, base: C }],
      removes: [`${A}+1`, A], bootFor: [`${C}+1`], setDefault: `${C}+1`,
    });
    const blocks = upgradeRecord([]);
    blocks.steps[0] = step('create-base', 'create-base', { name: C, sizeBytes: 1 }, 'pending');
    expect(expectationOf(blocks).addBases).toEqual([{ name: C, origin: null }]);
  });
});

describe('power-cut torture: where the power went', () => {
  it('names the step being done, undone, or the boundary', () => {
    expect(stepAtCut({ journalAtBoot: upgradeRecord(['done', 'doing']), history: null })).toBe('sync-base');
    expect(stepAtCut({ journalAtBoot: upgradeRecord(['done', 'done', 'done']), history: null })).toBe('after:protect-base');
    expect(stepAtCut({ journalAtBoot: upgradeRecord([]), history: null })).toBe('start');
    expect(stepAtCut({ journalAtBoot: upgradeRecord(['done', 'undoing'], { state: 'undoing' }), history: null })).toBe('undo:sync-base');
    expect(stepAtCut({ journalAtBoot: upgradeRecord(['done', 'undone'], { state: 'undoing' }), history: null })).toBe('undo:after:sync-base');
    expect(stepAtCut({ journalAtBoot: upgradeRecord([...ALL_DONE.slice(0, 7), 'doing']), history: null })).toBe(`remove-layer:${A}+1`);
    expect(stepAtCut({ journalAtBoot: upgradeRecord(ALL_DONE, { state: 'succeeded' }), history: null })).toBe('end:succeeded');
    expect(stepAtCut({ journalAtBoot: null, history: upgradeRecord(ALL_DONE, { state: 'succeeded' }) })).toBe('finished');
    expect(stepAtCut({ journalAtBoot: null, history: null })).toBe('not-journaled');
  });
});

describe('power-cut torture: the verdict', () => {
  it('OLD: the host is exactly as before and the history says the recovered transaction failed', () => {
    const history = upgradeRecord(['done', 'undone'], { state: 'failed', recovered: true });
    const j = judge(PRE, PRE, facts({ journalAtBoot: upgradeRecord(['done', 'doing']), history }));
    expect(j).toEqual({ verdict: 'OLD', reasons: [], history: 'failed', tempFiles: 0 });
  });

  it('OLD: a transaction that never reached the journal left nothing', () => {
    expect(judge(PRE, PRE, facts({})).verdict).toBe('OLD');
    expect(judge(PRE, PRE, facts({ id: '' })).verdict).toBe('OLD');
  });

  it('NEW: exactly the plan (new LVs with the attrs imgbased leaves, A collected, default moved), history succeeded', () => {
    const rolledForward = judge(PRE, NEW, facts({
      journalAtBoot: upgradeRecord([...ALL_DONE.slice(0, 7), 'doing']),
      history: upgradeRecord(ALL_DONE, { state: 'succeeded', recovered: true }),
    }));
    expect(rolledForward).toEqual({ verdict: 'NEW', reasons: [], history: 'succeeded', tempFiles: 0 });
    expect(judge(PRE, NEW, facts({ history: upgradeRecord(ALL_DONE, { state: 'succeeded' }) })).verdict).toBe('NEW');
  });

  it('NEW: a rollback moves only saved_entry', () => {
    const rb: JournalRecord = {
      ...upgradeRecord([]), kind: 'rollback', state: 'succeeded',
      steps: [step('set-default', 'set-default', { layer: `${A}+1` }, 'done')],
    };
    const post = { ...PRE, grubenv: grubenv(`${A}+1`) };
    expect(judge(PRE, post, facts({ history: rb })).verdict).toBe('NEW');
    expect(judge(PRE, PRE, facts({ history: { ...rb, state: 'failed', recovered: true } })).verdict).toBe('OLD');
  });

  it('BROKEN: history and host disagree', () => {
    const j1 = judge(PRE, NEW, facts({ history: upgradeRecord(ALL_DONE, { state: 'failed', recovered: true }) }));
    expect(j1.verdict).toBe('BROKEN');
    expect(j1.reasons).toContain('the host is in the new state but the history says failed');
    const j2 = judge(PRE, PRE, facts({ history: upgradeRecord(ALL_DONE, { state: 'succeeded' }) }));
    expect(j2.reasons).toContain('history says succeeded, the host is in the old state');
    const j3 = judge(PRE, NEW, facts({}));
    expect(j3.verdict).toBe('BROKEN');
    const j4 = judge(PRE, NEW, facts({ journalAtBoot: upgradeRecord(ALL_DONE), history: upgradeRecord(ALL_DONE, { state: 'succeeded' }) }));
    expect(j4.reasons).toContain('the journal held the transaction at boot, but its history record is not marked recovered');
  });

  it('BROKEN: an orphan LV, a half-written layer, a lost /etc file, a missing kernel', () => {
    const hist = { history: upgradeRecord(['done', 'undone'], { state: 'failed', recovered: true }) };
    const orphan = { ...PRE, lvs: { ...PRE.lvs, [C]: base(B) } };
    const j = judge(PRE, orphan, facts(hist));
    expect(j.verdict).toBe('BROKEN');
    expect(j.reasons.join('\n')).toContain(`not old: lv ${C}: null → `);

    const ok = { history: upgradeRecord(ALL_DONE, { state: 'succeeded' }) };
    const badFs = { ...NEW, layers: { ...NEW.layers, [`${C}+1`]: layer(C, { fsckOk: false, fsckOutput: 'inode 12 has bad extents' }) } };
    expect(judge(PRE, badFs, facts(ok)).reasons.join('\n')).toContain(`saved_entry=${C}+1: fsck: inode 12 has bad extents`);
    const emptied = { ...NEW, layers: { ...NEW.layers, [`${C}+1`]: layer(C, { etc: etc({ passwd: 'file 644 0:0 0 e3b0' }) }) } };
    expect(judge(PRE, emptied, facts(ok)).reasons.join('\n')).toContain(`new layer ${C}+1: /etc/passwd is empty`);
    const lostMarker = { ...NEW, layers: { ...NEW.layers, [`${C}+1`]: layer(C, { marker: null }) } };
    expect(judge(PRE, lostMarker, facts(ok)).verdict).toBe('BROKEN');
    const noKernel = { ...NEW, bootDirs: { ...NEW.bootDirs, [`${C}+1`]: ['initramfs-5.img 100', 'vmlinuz-5 0'] } };
    expect(judge(PRE, noKernel, facts(ok)).reasons).toContain(`entry ${C}+1: linux /${C}+1/vmlinuz-5 is empty`);
    const wrongBase = { ...NEW, layers: { ...NEW.layers, [`${C}+1`]: layer(B) } };
    expect(judge(PRE, wrongBase, facts(ok)).reasons.join('\n')).toContain(`nvr ${B}, expected ${C}`);
  });

  it('BROKEN: a finished upgrade whose /var entries did not survive (migrate-var not synced)', () => {
    const ok = facts({ history: upgradeRecord(ALL_DONE, { state: 'succeeded' }) });
    const withVar = (v: Record<string, string>): Snapshot => ({ ...NEW, varFiles: v });
    expect(judge(PRE, withVar({ [`image-${B}`]: `${B}\n`, [`image-${C}`]: `${C}\n` }), ok).verdict).toBe('NEW');
    expect(judge(PRE, withVar({ [`image-${C}`]: '' }), ok).reasons.join('\n')).toContain(`/var/lib/torture/image-${C}: ""`);
    expect(judge(PRE, withVar({}), ok).reasons.join('\n')).toContain(`/var/lib/torture/image-${C}: missing`);
    // an undone upgrade may leave its /var entries (forward only): still OLD
    const undone = facts({ history: upgradeRecord(['done', 'undone'], { state: 'failed', recovered: true }) });
    expect(judge({ ...PRE, varFiles: {} }, { ...PRE, varFiles: { [`image-${C}`]: `${C}\n` } }, undone).verdict).toBe('OLD');
  });

  it('BROKEN: torn grubenv, a default without entry, orphan entries and dirs, leftovers of the daemon', () => {
    expect(grubenvVars(grubenv('x'))?.get('saved_entry')).toBe('x');
    expect(grubenvVars(grubenv('x').slice(0, 512))).toBeNull();
    expect(invariants({ ...PRE, grubenv: '' })).toEqual(['grubenv is not a valid 1024-byte GRUB environment block']);
    expect(invariants({ ...PRE, grubenv: grubenv(`${C}+1`) })).toEqual([`saved_entry=${C}+1 names no boot entry`]);
    expect(invariants({ ...PRE, entries: { ...PRE.entries, [`${C}+1.conf`]: entry(`${C}+1`) } })).toEqual([`orphan entry ${C}+1.conf: no LV ${C}+1`]);
    expect(invariants({ ...PRE, bootDirs: { ...PRE.bootDirs, [`${C}+1`]: [] } })).toEqual([`orphan /boot/${C}+1: no entry`]);
    expect(invariants({ ...PRE, journal: ['t1.json'], mounts: ['/run/imgbased/mnt/x'] })).toEqual([
      'unfinished journal after recovery: t1.json', 'leftover mounts: /run/imgbased/mnt/x',
    ]);
    const still = judge(PRE, { ...PRE, journal: ['t1.json'] }, facts({ unfinishedAfter: true }));
    expect(still.verdict).toBe('BROKEN');
    expect(still.history).toBe('unfinished');
    // temp files are counted, not judged
    expect(judge(PRE, { ...PRE, tempFiles: ['/boot/loader/entries/.x.conf.tmp-1-ab'] }, facts({}))).toMatchObject({ verdict: 'OLD', tempFiles: 1 });
  });
});
