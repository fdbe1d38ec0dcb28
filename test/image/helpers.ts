/** Shared helpers for the image tests: temp dirs, loop filesystems, leftover checks. */
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/system/run';
import { listMountPoints, unmountIfMounted } from '../../src/image/mount';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `imgbased-${prefix}-`));
}

/** Mounts below `dir` and loop devices whose backing file is below `dir` (or is `dir`-prefixed). */
export async function leftovers(dir: string): Promise<{ mounts: string[]; loops: string[] }> {
  const mounts = (await listMountPoints()).filter((m) => m === dir || m.startsWith(`${dir}/`));
  const { stdout } = await run(['losetup', '--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE']);
  const loops = stdout.split('\n').filter((l) => l.includes(dir));
  return { mounts, loops };
}

export interface LoopDevice {
  readonly device: string;
  readonly backingFile: string;
  detach(): Promise<void>;
}

/** A loop device over a fresh sparse file of `sizeMb` MiB (reads as zeros). */
export async function makeLoopDevice(dir: string, name: string, sizeMb: number): Promise<LoopDevice> {
  const backingFile = join(dir, `${name}.img`);
  await writeFile(backingFile, '');
  await truncate(backingFile, sizeMb * 1024 * 1024);
  const { stdout } = await run(['losetup', '--find', '--show', backingFile]);
  const device = stdout.trim();
  let detached = false;
  return {
    device,
    backingFile,
    async detach() {
      if (detached) return;
      detached = true;
      await run(['losetup', '--detach', device]);
    },
  };
}

export interface LoopFs {
  readonly mnt: string;
  unmount(): Promise<void>;
}

/** A fresh ext4 filesystem of `sizeMb` MiB in a file below `dir`, loop-mounted read-write. */
export async function makeExt4Mount(dir: string, name: string, sizeMb: number): Promise<LoopFs> {
  const file = join(dir, `${name}.ext4`);
  const mnt = join(dir, name);
  await writeFile(file, '');
  await truncate(file, sizeMb * 1024 * 1024);
  await run(['mkfs.ext4', '-q', '-F', '-E', 'discard', file]);
  await mkdir(mnt, { recursive: true });
  await run(['mount', '-t', 'ext4', '-o', 'loop', file, mnt]);
  return {
    mnt,
    async unmount() {
      await unmountIfMounted(mnt);
    },
  };
}

/** Remove a temp dir, first unmounting anything a failed test left below it. */
export async function cleanupDir(dir: string): Promise<void> {
  const { mounts } = await leftovers(dir);
  for (const m of mounts.sort().reverse()) await unmountIfMounted(m);
  const { loops } = await leftovers(dir);
  for (const l of loops) {
    const dev = l.split(' ')[0];
    if (dev) await run(['losetup', '--detach', dev]);
  }
  await rm(dir, { recursive: true, force: true });
}
