import { constants as fsc, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Failpoints } from '../../src/transaction/failpoints';
import { Journal } from '../../src/transaction/journal';
import { TransactionRunner } from '../../src/transaction/runner';
import type { JournalRecord, PlannedStep } from '../../src/transaction/types';
import { removeStaleTemps, TEMP_FILE_RE, writeFileDurable } from '../../src/system/durable';

const record = (id: string): JournalRecord => ({
  version: 1, id, kind: 'upgrade', request: {}, initiator: 'root', createdAt: '2026-01-01T00:00:00.000Z', state: 'running', steps: [], warnings: [],
});

/** Directories fsynced while fn runs (fsyncDir opens them O_DIRECTORY). */
async function fsyncedDirs(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const open = fs.open.bind(fs);
  const spy = jest.spyOn(fs, 'open').mockImplementation(async (p, flags, mode) => {
    if (typeof flags === 'number' && (flags & fsc.O_DIRECTORY) !== 0) seen.push(String(p));
    return open(p, flags, mode);
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return seen;
}

describe('Journal durability (issue 11)', () => {
  let state: string;
  beforeEach(async () => {
    state = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-journal-'));
  });
  afterEach(async () => {
    await fs.rm(state, { recursive: true, force: true });
  });

  it('the first record fsyncs the state dir that gained journal/ (a power cut must not take the new dir, and the record, with it)', async () => {
    const j = new Journal(state);
    const first = await fsyncedDirs(() => j.write(record('t1')));
    expect(first).toEqual(expect.arrayContaining([state, j.journalDir]));
    expect((await fs.stat(j.journalDir)).mode & 0o777).toBe(0o700);
    // later records: only the journal dir (nothing new in the state dir)
    expect(await fsyncedDirs(() => j.write(record('t2')))).toEqual([j.journalDir]);
    // archiving creates history/: the state dir again
    const archived = await fsyncedDirs(() => j.archive({ ...record('t1'), state: 'succeeded' }));
    expect(archived).toEqual(expect.arrayContaining([state, j.historyDir, j.journalDir]));
    expect((await fs.stat(j.historyDir)).mode & 0o777).toBe(0o700);
  });

  it('removes the temp files of interrupted record writes, and nothing else', async () => {
    const j = new Journal(state);
    await j.write(record('t1'));
    await j.archive({ ...record('t0'), state: 'succeeded' });
    const stale = ['.t1.json.tmp-1234-0badcafe', '.t0.json.tmp-99-deadbeef'];
    await fs.writeFile(path.join(j.journalDir, stale[0] as string), '{"trunc');
    await fs.writeFile(path.join(j.historyDir, stale[1] as string), '');
    await fs.writeFile(path.join(j.journalDir, '.keep'), 'not ours');
    expect(stale.every((n) => TEMP_FILE_RE.test(n))).toBe(true);
    expect(TEMP_FILE_RE.test('t1.json')).toBe(false);
    expect(await j.removeStaleTemps()).toEqual([path.join(j.journalDir, stale[0] as string), path.join(j.historyDir, stale[1] as string)]);
    expect((await fs.readdir(j.journalDir)).sort()).toEqual(['.keep', 't1.json']);
    expect(await fs.readdir(j.historyDir)).toEqual(['t0.json']);
    expect((await j.unfinished()).map((r) => r.id)).toEqual(['t1']);
    expect(await removeStaleTemps(path.join(state, 'missing'))).toEqual([]);
  });

  it('start-up recovery sweeps them before it reads the journal', async () => {
    const j = new Journal(state);
    await j.ensureDirs();
    const temp = path.join(j.journalDir, '.t9.json.tmp-4321-00c0ffee');
    await fs.writeFile(temp, '{"version":1,"id":"t9"');
    const runner = new TransactionRunner<PlannedStep<'noop', null>, null>({
      journal: j, services: null, failpoints: new Failpoints(undefined),
      executors: { noop: { do: async () => undefined, undo: async () => undefined } },
    });
    expect(await runner.recover()).toEqual([]);
    await expect(fs.access(temp)).rejects.toThrow();
  });

  it('a write cut between temp file and rename leaves a temp file with the durable writer\'s name', async () => {
    const dest = path.join(state, 'x.json');
    const rename = jest.spyOn(fs, 'rename').mockRejectedValueOnce(Object.assign(new Error('power'), { code: 'EIO' }));
    await expect(writeFileDurable(dest, 'x')).rejects.toThrow('power');
    rename.mockRestore();
    // the writer cleans up after an error it sees; after a real cut there is no one left to: emulate that leftover
    await fs.writeFile(path.join(state, `.x.json.tmp-${process.pid}-0123abcd`), 'x');
    expect(await removeStaleTemps(state)).toEqual([`.x.json.tmp-${process.pid}-0123abcd`]);
  });
});
