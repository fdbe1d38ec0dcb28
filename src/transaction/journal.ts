/**
 * The transaction journal: one JSON record per unfinished transaction under `<state>/journal/`, written crash-safely
 * (temp + fsync + rename + dir fsync) before and after every step; finished records move to `<state>/history/`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError } from '../errors';
import { mkdirDurable, removeDurable, removeStaleTemps, writeFileDurable } from '../system/durable';
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
    // Durably: the record's own fsyncs (file, journal dir) do not make a journal dir created just now part of the
    // state dir on disk; after a power cut the record would be gone with it.
    await mkdirDurable(this.journalDir, 0o700);
    await writeFileDurable(this.file(this.journalDir, record.id), JSON.stringify(record, null, 1) + '\n', 0o600);
  }

  /** Move a finished record to history (durably); safe to repeat after a crash in between. */
  async archive(record: JournalRecord): Promise<void> {
    await mkdirDurable(this.historyDir, 0o700);
    await writeFileDurable(this.file(this.historyDir, record.id), JSON.stringify(record, null, 1) + '\n', 0o600);
    await removeDurable(this.file(this.journalDir, record.id));
  }

  /**
   * Parsed history records by file, checked against size and mtime: finished records hardly ever change, and the
   * daemon reads the history on every property refresh.
   */
  private readonly parsed = new Map<string, { size: number; mtimeMs: number; record: JournalRecord }>();

  /** Add a warning to a finished transaction's record (e.g. why an automatic reboot did not happen). */
  async addWarning(id: string, warning: string): Promise<void> {
    const file = this.file(this.historyDir, id);
    const record = parseJournalRecord(await fs.readFile(file, 'utf8'), file);
    record.warnings.push(warning);
    await writeFileDurable(file, JSON.stringify(record, null, 1) + '\n', 0o600);
  }

  private async readRecord(file: string, cache: boolean): Promise<JournalRecord | null> {
    let text: string;
    try {
      if (cache) {
        const st = await fs.stat(file);
        const hit = this.parsed.get(file);
        if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.record;
        text = await fs.readFile(file, 'utf8');
        const record = parseJournalRecord(text, file);
        this.parsed.set(file, { size: st.size, mtimeMs: st.mtimeMs, record });
        return record;
      }
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      // archived (journal → history) between readdir and here: that transaction has just finished
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return parseJournalRecord(text, file);
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
    const files = names.filter((x) => x.endsWith('.json') && !x.startsWith('.'));
    if (dir === this.historyDir) {
      const present = new Set(files.map((n) => path.join(dir, n)));
      for (const cached of this.parsed.keys()) if (!present.has(cached)) this.parsed.delete(cached);
    }
    for (const n of files) {
      const record = await this.readRecord(path.join(dir, n), dir === this.historyDir);
      if (record) records.push(record);
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
    for (const d of [this.journalDir, this.historyDir]) await mkdirDurable(d, 0o700);
  }

  /**
   * Remove temp files of record writes a crash or power cut interrupted (`.ID.json.tmp-PID-RANDOM`; never read, but
   * they would pile up). Start-up recovery calls this before reading the journal. Returns the paths removed.
   */
  async removeStaleTemps(): Promise<string[]> {
    const out: string[] = [];
    for (const d of [this.journalDir, this.historyDir]) out.push(...(await removeStaleTemps(d)).map((n) => path.join(d, n)));
    return out;
  }
}
