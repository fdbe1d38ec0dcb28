import { csvField, formatSummary, parseResults, summarize, toCsv, type RunResult } from '../vm/torture/report';

const row = (over: Partial<RunResult>): RunResult => ({
  run: 1, fs: 'ext4', op: 'upgrade', cut: 'sysrq', delayMs: 1000, step: 'sync-base', verdict: 'OLD', history: 'failed',
  recovered: true, followUp: 'succeeded', tempFiles: 0, seconds: 90, reasons: [], ...over,
});

describe('power-cut torture report', () => {
  it('writes one CSV line per run, quoting what needs it', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "x"')).toBe('"say ""x"""');
    expect(csvField(3)).toBe('3');
    const csv = toCsv([row({}), row({ run: 2, verdict: 'BROKEN', reasons: ['lv x: a → b', 'grubenv, torn'], daemonRestarts: 0 })]);
    expect(csv.split('\n')).toEqual([
      'run,fs,op,cut,delay_ms,step,verdict,history,recovered,follow_up,temp_files,seconds,reasons,daemon_restarts',
      '1,ext4,upgrade,sysrq,1000,sync-base,OLD,failed,true,succeeded,0,90,,',
      '2,ext4,upgrade,sysrq,1000,sync-base,BROKEN,failed,true,succeeded,0,90,"lv x: a → b | grubenv, torn",0',
      '',
    ]);
  });

  it('counts OLD/NEW/BROKEN in total, per step, per cut and per operation', () => {
    const rows = [
      row({ run: 1 }),
      row({ run: 2, step: 'after:install-boot', verdict: 'OLD', cut: 'reset' }),
      row({ run: 3, step: 'finished', verdict: 'NEW', history: 'succeeded', recovered: false, op: 'rollback' }),
      row({ run: 4, step: 'sync-base', verdict: 'BROKEN', followUp: 'upgrade failed', tempFiles: 2, seconds: 110, daemonRestarts: 35 }),
    ];
    const s = summarize(rows);
    expect(s.total).toEqual({ OLD: 2, NEW: 1, BROKEN: 1 });
    expect(s.byStep).toEqual([
      { step: 'after:install-boot', counts: { OLD: 1, NEW: 0, BROKEN: 0 } },
      { step: 'finished', counts: { OLD: 0, NEW: 1, BROKEN: 0 } },
      { step: 'sync-base', counts: { OLD: 1, NEW: 0, BROKEN: 1 } },
    ]);
    expect(s.byCut).toEqual([{ cut: 'sysrq', counts: { OLD: 1, NEW: 1, BROKEN: 1 } }, { cut: 'reset', counts: { OLD: 1, NEW: 0, BROKEN: 0 } }]);
    expect(s.followUpFailures).toBe(1);
    // the daemon kept failing to start after run 4's cut (a stale host lock did that once)
    expect(s.daemonStartFailures).toBe(1);
    expect(s.tempFiles).toBe(2);
    expect(s.meanSeconds).toBe(95);
    const text = formatSummary(s, 'ext4-s1');
    expect(text).toContain('power-cut torture ext4-s1: 4 runs, 2 OLD, 1 NEW, 1 BROKEN; follow-up upgrade failures 1; daemon start failures 1;');
    expect(text).toMatch(/sync-base\s+2\s+1\s+0\s+1/);
  });

  it('reads the agent\'s results: the last line of a run wins, a torn line is skipped', () => {
    const lines = [
      JSON.stringify(row({ run: 1, followUp: 'pending' })),
      JSON.stringify(row({ run: 2, followUp: 'pending' })),
      JSON.stringify(row({ run: 1, followUp: 'succeeded' })),
      '{"run":3,"verd',
    ].join('\n');
    const got = parseResults(lines);
    expect(got.map((r) => [r.run, r.followUp])).toEqual([[1, 'succeeded'], [2, 'pending']]);
  });
});
