/**
 * Is an image installed already? An image-update package's scriptlet may run after the timer staged the same image
 * from the repository (or on a reinstall): that is success with nothing to do, not "not newer".
 */
import { promises as fs } from 'node:fs';
import type { Engine } from '../engine';
import { openImage } from '../image/inspect';

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
