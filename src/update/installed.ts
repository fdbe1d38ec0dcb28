/**
 * Is an image installed already? An image-update package's scriptlet may run after the timer staged the same image
 * from the repository (or on a reinstall): that is success with nothing to do, not "not newer".
 */
import { promises as fs } from 'node:fs';
import type { Engine } from '../engine';
import { openImage } from '../image/inspect';
import type { Logger } from '../log';
import type { Outcome } from '../transaction/runner';
import type { ProgressEvent } from '../transaction/types';
import { recordNothingToDo } from './record';

/** The base named like the image's NVR, when one is kept; null when not (or when the image cannot be opened). */
export async function installedBaseOf(engine: Engine, imagePath: string, signal?: AbortSignal): Promise<string | null> {
  let nvr: string;
  await fs.mkdir(engine.paths.runDir, { recursive: true });
  try {
    const img = await openImage({ imagePath, workDir: engine.paths.runDir, ...(signal ? { signal } : {}) });
    nvr = img.nvr;
    await img.close();
  } catch {
    return null; // the upgrade itself reports what is wrong with the image
  }
  const state = await engine.state();
  return state.layout.bases.some((b) => b.name === nvr && b.volume !== null) ? nvr : null;
}

/**
 * Upgrade option skip-installed: when the image is installed already, record a succeeded transaction with nothing
 * done (and why, as a warning) and return it; null when the upgrade should run.
 */
export async function nothingToDoIfInstalled(
  engine: Engine, log: Logger, image: string, ctx: { id: string; initiator: string; signal: AbortSignal; onProgress: (e: ProgressEvent) => void },
): Promise<Outcome | null> {
  const { id, initiator, signal } = ctx;
  ctx.onProgress({ transactionId: id, percent: 0, stepIndex: 0, stepCount: 0, step: 'verify-image', message: 'Is the image installed already?', bytesDone: 0, bytesTotal: 0 });
  const installed = await installedBaseOf(engine, image, signal);
  if (installed === null) return null;
  log.info(`upgrade ${id}: ${installed} is installed already; nothing to do`, { transaction: id });
  return recordNothingToDo(engine, { image, skipInstalled: true }, `${installed} is installed already (base ${installed}); nothing to do`, { id, initiator });
}
