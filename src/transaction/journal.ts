/**
 * The transaction journal: one JSON record per unfinished transaction under `<state>/journal/`, written crash-safely
 * (temp + fsync + rename + dir fsync) before and after every step; finished records move to `<state>/history/`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError } from '../errors';
import { fsyncDir, removeDurable, writeFileDurable } from '../system/durable';
import type { JournalRecord } from './types';

const ID_RE = /^[0-9A-Za-z_-]{1,64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validate a record read from disk (it is `unknown` until then). */
export function parseJournalRecord(text: string, file: string): JournalRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FailedError(`journal ${file} is not valid JSON`, { cause: e });
  }
  if (
    !isObject(raw) || raw['version'] !== 1 || typeof raw['id'] !== 'string' || typeof raw['kind'] !== 'string' ||
    typeof raw['state'] !== 'string' || !Array.isArray(raw['steps']) ||
    !raw['steps'].every((s) => isObject(s) && typeof s['id'] === 'string' && typeof s['action'] === 'string' &&
      typeof s['status'] === 'string' && (s['phase'] === 'apply' || s['phase'] === 'finalize'))
  ) {
    throw new FailedError(`journal ${file} is not a transaction record`);
  }
  // Validated shape above; the remaining fields are plain data written by this module.
  return raw as unknown as JournalRecord;
}

export class Journal {
  readonly journalDir: string;
  readonly historyDir: string;

  constructor(stateDir: string) {
    this.journalDir = path.join(stateDir, 'journal');
    this.historyDir = path.join(stateDir, 'history');
  }

  private file(dir: string, id: string): string {
    if (!ID_RE.test(id)) throw new FailedError(`bad transaction id "${id}"`);
    return path.join(dir, `${id}.json`);
  }

  async write(record: JournalRecord): Promise<void> {
    await fs.mkdir(this.journalDir, { recursive: true, mode: 0o700 });
    await writeFileDurable(this.file(this.journalDir, record.id), JSON.stringify(record, null, 1) + '\n', 0o600);
  }

  /** Move a finished record to history (durably); safe to repeat after a crash in between. */
  async archive(record: JournalRecord): Promise<void> {
    await fs.mkdir(this.historyDir, { recursive: true, mode: 0o700 });
    await writeFileDurable(this.file(this.historyDir, record.id), JSON.stringify(record, null, 1) + '\n', 0o600);
    await removeDurable(this.file(this.journalDir, record.id));
  }

  private async readDir(dir: string): Promise<JournalRecord[]> {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const records: JournalRecord[] = [];
    for (const n of names.filter((x) => x.endsWith('.json') && !x.startsWith('.'))) {
      const file = path.join(dir, n);
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (e) {
        // archived (journal → history) between readdir and here: that transaction has just finished
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      records.push(parseJournalRecord(text, file));
    }
    return records.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  /** Unfinished transactions (normally none; after a crash, one). */
  unfinished(): Promise<JournalRecord[]> {
    return this.readDir(this.journalDir);
  }

  /** Finished transactions, newest first. */
  async history(limit = 0): Promise<JournalRecord[]> {
    const all = (await this.readDir(this.historyDir)).reverse();
    return limit > 0 ? all.slice(0, limit) : all;
  }

  async ensureDirs(): Promise<void> {
    for (const d of [this.journalDir, this.historyDir]) {
      await fs.mkdir(d, { recursive: true, mode: 0o700 });
      await fsyncDir(path.dirname(d));
    }
  }
}
