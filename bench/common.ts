/** What every bench script shares: numeric options, loop devices and running main(). */
import { run } from '../src/system/run';

/** `--name N` from the command line: a positive number, else the default. */
export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && v > 0 ? v : def;
}

/** Run a bench's main; exit 0 when it resolves, print the stack and exit 1 when it throws. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}

/** Attach `backing` to a free loop device for the duration of `fn`. */
export async function withLoop<T>(backing: string, fn: (dev: string) => Promise<T>): Promise<T> {
  const dev = (await run(['losetup', '--find', '--show', backing])).stdout.trim();
  try {
    return await fn(dev);
  } finally {
    await run(['losetup', '--detach', dev]);
  }
}
