import { addSample, cutDelayMs, expectedMs, imagesNeeded, makeSchedule, OVERSHOOT, parseSeed, pickOp, prng, SAMPLES, shortSchedule } from '../vm/torture/schedule';

describe('power-cut torture schedule', () => {
  it('is reproducible from the seed and differs between seeds', () => {
    expect(makeSchedule(42, 20)).toEqual(makeSchedule(42, 20));
    expect(makeSchedule(42, 20)).not.toEqual(makeSchedule(43, 20));
    const a = prng(7);
    const b = prng(7);
    const xs = Array.from({ length: 5 }, () => a());
    expect(xs).toEqual(Array.from({ length: 5 }, () => b()));
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it('alternates the two cut kinds, starts with an upgrade and mixes in rollbacks and cleanups', () => {
    const runs = makeSchedule(1, 50);
    expect(runs.map((r) => r.run)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(runs[0]?.op).toBe('upgrade');
    for (let i = 1; i < runs.length; i++) expect(runs[i]?.cut).not.toBe(runs[i - 1]?.cut);
    const ops = new Set(runs.map((r) => r.op));
    expect([...ops].sort()).toEqual(['cleanup', 'rollback', 'upgrade']);
    expect(runs.filter((r) => r.op === 'upgrade').length).toBeGreaterThan(25);
    for (const r of runs) expect(r.fraction >= 0 && r.fraction < OVERSHOOT).toBe(true);
  });

  it('spreads the cut moments over the whole operation (and a little past its end)', () => {
    const f = makeSchedule(99, 200).map((r) => r.fraction);
    const quarter = [0, 0, 0, 0, 0];
    for (const x of f) quarter[Math.min(4, Math.floor(x / 0.25))]! += 1;
    for (const q of quarter.slice(0, 4)) expect(q).toBeGreaterThan(20);
    expect(quarter[4]).toBeGreaterThan(0);
  });

  it('picks operations by weight and turns fractions into delays', () => {
    const mix = { upgrade: 2, rollback: 1, cleanup: 1 };
    expect([0, 0.49, 0.5, 0.74, 0.75, 0.99].map((u) => pickOp(u, mix))).toEqual(['upgrade', 'upgrade', 'rollback', 'rollback', 'cleanup', 'cleanup']);
    expect(() => pickOp(0.5, { upgrade: 0, rollback: 0, cleanup: 0 })).toThrow('empty');
    expect(cutDelayMs({ run: 1, op: 'upgrade', cut: 'reset', fraction: 0.5 }, 60_001)).toBe(30_001);
    expect(() => makeSchedule(1, 0)).toThrow('positive');
  });

  it('takes decimal seeds as they are and hashes names', () => {
    expect(parseSeed('123')).toBe(123);
    expect(parseSeed('ext4-night')).toBe(parseSeed('ext4-night'));
    expect(parseSeed('ext4-night')).not.toBe(parseSeed('xfs-night'));
  });

  it('learns each operation\'s duration from what it measures: the median of the latest samples, else the guess', () => {
    expect(expectedMs(undefined, 40_000)).toBe(40_000);
    expect(expectedMs([], 1_000)).toBe(1_000);
    expect(expectedMs([31_000], 40_000)).toBe(31_000);
    expect(expectedMs([30_000, 90_000], 40_000)).toBe(60_000);
    // one slow outlier (the first upgrade after init) does not drag the expectation
    expect(expectedMs([55_000, 31_000, 35_000], 40_000)).toBe(35_000);
    let s: number[] = [];
    for (let i = 1; i <= SAMPLES + 3; i++) s = addSample(s, i * 1000.4);
    expect(s).toHaveLength(SAMPLES);
    expect(s[s.length - 1]).toBe(Math.round((SAMPLES + 3) * 1000.4));
    expect(addSample(undefined, 250)).toEqual([250]);
    // a nonsense measurement (a clock step, a missing finish) is not learned
    expect(addSample([5], Number.NaN)).toEqual([5]);
    expect(addSample([5], -3)).toEqual([5]);
  });

  it('counts the images a campaign needs: as planned, or what a resumed one has used plus what the rest stages', () => {
    const runs = makeSchedule(5, 10);
    const upgrades = runs.filter((r) => r.op === 'upgrade').length;
    const planned = 2 + upgrades + runs.length;
    expect(imagesNeeded(runs, null)).toBe(planned);
    // after the setup (root image 0, setup upgrade 1) nothing has been used beyond the plan
    expect(imagesNeeded(runs, { phase: 'ready', run: 1, nextImage: 2 })).toBe(planned);
    // a run being judged: its own upgrade is staged already; its follow-up and the later runs are not
    const last = runs[runs.length - 1];
    if (!last) throw new Error('no runs');
    expect(imagesNeeded(runs, { phase: 'cut', run: last.run, nextImage: planned - 1 })).toBe(planned);
    // one image more used than planned (a follow-up staged twice): one more needed
    expect(imagesNeeded(runs, { phase: 'cut', run: last.run, nextImage: planned })).toBe(planned + 1);
    expect(imagesNeeded(runs, { phase: 'done', run: last.run + 1, nextImage: planned + 1 })).toBe(planned + 1);
  });

  it('has a short campaign for CI: two upgrades cut inside the operation, one by each kind', () => {
    const runs = shortSchedule();
    expect(runs.map((r) => [r.op, r.cut])).toEqual([['upgrade', 'sysrq'], ['upgrade', 'reset']]);
    for (const r of runs) expect(r.fraction > 0.2 && r.fraction < 0.8).toBe(true);
  });
});
