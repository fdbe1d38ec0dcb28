/**
 * The repository source inside the daemon's transactions: what UpdateRepo offers now (checks), and an upgrade from
 * it — fetching (download, signature, unpack) as the first FETCH_PERCENT of the transaction, then Engine.upgrade
 * with the unpacked image. Failures before the engine runs are recorded in the history with their named error.
 */
import type { Engine } from '../engine';
import type { Logger } from '../log';
import type { Outcome } from '../transaction/runner';
import type { ProgressEvent } from '../transaction/types';
import { queryRepo, repoDirs } from './dnf';
import { fetchUpdate } from './fetch';
import { recordFailedUpgrade } from './record';
import type { RepoUpdate } from './repo';
import { IMAGE_SUBPACKAGE_SUFFIX, pickUpdate } from './repo';

/** Share of an upgrade from UpdateRepo taken by downloading, checking and unpacking the package. */
export const FETCH_PERCENT = 20;

/** The newest image-update package in UpdateRepo newer than every kept base; null when none (or none configured). */
export async function repoUpdate(engine: Engine, signal?: AbortSignal): Promise<RepoUpdate | null> {
  const cfg = engine.config;
  if (cfg.updateRepo === null) return null;
  const packages = await queryRepo(cfg.updateRepo, [cfg.updatePackage, `${cfg.updatePackage}${IMAGE_SUBPACKAGE_SUFFIX}`],
    repoDirs(engine.paths.sysroot), signal);
  const state = await engine.state();
  return pickUpdate(packages, cfg.updatePackage, state.layout.bases.map((b) => b.nvr));
}

export interface JobContext {
  readonly id: string;
  readonly initiator: string;
  readonly signal: AbortSignal;
  readonly onProgress: (e: ProgressEvent) => void;
}

/** Upgrade to an update of UpdateRepo, as one transaction. */
export async function upgradeFromRepo(engine: Engine, log: Logger, update: RepoUpdate, ctx: JobContext): Promise<Outcome> {
  const { id, initiator, signal, onProgress } = ctx;
  const cfg = engine.config;
  const url = cfg.updateRepo;
  const request = { package: update.nvr, repository: url ?? '' };
  if (url === null) return recordFailedUpgrade(engine, request, new Error('UpdateRepo is no longer configured'), { id, initiator });
  let fetched;
  try {
    fetched = await fetchUpdate(engine.paths, url, update, cfg.requireSignature, {
      signal,
      onProgress: (step, message, fraction, done, total) => onProgress({
        transactionId: id, percent: Math.floor(fraction * FETCH_PERCENT), stepIndex: 0, stepCount: 0, step, message, bytesDone: done, bytesTotal: total,
      }),
    });
  } catch (e) {
    log.warn(`upgrade ${id}: fetching ${update.nvr} failed: ${e instanceof Error ? e.message : String(e)}`, { transaction: id });
    return recordFailedUpgrade(engine, request, e, { id, initiator });
  }
  let ok = false;
  try {
    const outcome = await engine.upgrade(fetched.imagePath, {
      id, signal, initiator, ...(fetched.packageSignature === null ? {} : { packageSignature: fetched.packageSignature }),
      onProgress: (e) => onProgress({ ...e, percent: Math.floor(FETCH_PERCENT + (e.percent * (100 - FETCH_PERCENT)) / 100) }),
    });
    ok = outcome.record.state === 'succeeded';
    return outcome;
  } finally {
    await fetched.dispose(ok).catch((e: unknown) => log.warn(`cleaning up after ${id}: ${String(e)}`));
  }
}
