/**
 * Boot assessment state of layers: trial (installed and waiting for its first boot, or booted and waiting for its
 * health gates), good (its boot was confirmed) or bad (its gates failed, or the host came back on another layer
 * before its boot was confirmed). Stored in `<stateDir>/boot-states.json`, one durable file (temp + fsync + rename),
 * written only by transaction steps. A layer without a record was never assessed (e.g. made before boot assessment
 * or by the original imgbased).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError } from '../errors';
import { isEnoent, writeFileDurable } from '../system/durable';

export const BOOT_STATES = ['trial', 'good', 'bad'] as const;
export type BootStateName = (typeof BOOT_STATES)[number];

export interface BootState {
  readonly state: BootStateName;
  /** Why, in words ('' when none). */
  readonly reason: string;
  /** ISO time of the change. */
  readonly changedAt: string;
  /** For a trial: the layer a reset falls back to (the saved default when the trial started). */
  readonly fallback?: string;
}

export type BootStates = ReadonlyMap<string, BootState>;

export function bootStatesFile(stateDir: string): string {
  return path.join(stateDir, 'boot-states.json');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validate one record (from the file or from a journaled step argument). */
export function parseBootState(v: unknown, where: string): BootState {
  if (!isObject(v)) throw new FailedError(`${where}: a boot state must be an object`);
  const state = BOOT_STATES.find((s) => s === v['state']);
  if (!state) throw new FailedError(`${where}: state must be one of ${BOOT_STATES.join(', ')}`);
  const reason = v['reason'];
  const changedAt = v['changedAt'];
  const fallback = v['fallback'];
  if (typeof reason !== 'string' || typeof changedAt !== 'string') {
    throw new FailedError(`${where}: reason and changedAt must be strings`);
  }
  if (fallback !== undefined && typeof fallback !== 'string') throw new FailedError(`${where}: fallback must be a string`);
  return { state, reason, changedAt, ...(fallback === undefined ? {} : { fallback }) };
}

export async function readBootStates(stateDir: string): Promise<Map<string, BootState>> {
  const file = bootStatesFile(stateDir);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    if (isEnoent(e)) return new Map();
    if (e instanceof SyntaxError) throw new FailedError(`${file} is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!isObject(raw)) throw new FailedError(`${file} must hold an object of layer name -> boot state`);
  return new Map(Object.entries(raw).map(([layer, v]) => [layer, parseBootState(v, `${file}: ${layer}`)]));
}

async function writeBootStates(stateDir: string, states: BootStates): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const sorted = Object.fromEntries([...states].sort(([a], [b]) => a.localeCompare(b)));
  await writeFileDurable(bootStatesFile(stateDir), JSON.stringify(sorted, null, 2) + '\n', 0o600);
}

/** Set (or, with null, forget) the boot state of one layer; returns what it was. Idempotent. */
export async function putBootState(stateDir: string, layer: string, value: BootState | null): Promise<BootState | null> {
  const states = await readBootStates(stateDir);
  const before = states.get(layer) ?? null;
  if (value === null && before === null) return null;
  if (value === null) states.delete(layer);
  else states.set(layer, value);
  await writeBootStates(stateDir, states);
  return before;
}
