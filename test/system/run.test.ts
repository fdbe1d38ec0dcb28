/**
 * run(): a tool started with dieWithParent is killed when the process that started it dies (SIGKILL, no cleanup),
 * so it cannot keep writing into a volume that recovery is about to remove. Runs the compiled run.js in a child
 * node process (scripts/test.sh compiles before jest) and kills that process.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { run } from '../../src/system/run';

const RUN_JS = path.resolve(__dirname, '../../dist/src/system/run.js');

/** Gone, or a zombie nobody reaps yet: either way it no longer runs. */
async function running(pid: number): Promise<boolean> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  return status !== null && !/^State:\s+Z/m.test(status);
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await cond()) return true;
  return cond();
}

/** Starts `sleep` through run() in a child node process, SIGKILLs that process, returns the sleep's pid. */
async function orphanSleep(dieWithParent: boolean): Promise<number> {
  const script = `require(${JSON.stringify(RUN_JS)}).run(['sh', '-c', 'echo $$; exec sleep 60'], ` +
    `{ dieWithParent: ${dieWithParent}, onStdout: (s) => process.stdout.write(s) }).catch(() => undefined);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    child.once('exit', () => reject(new Error('child exited before starting the tool')));
  });
  // the pid is sh's, which becomes sleep by exec: wait until it is
  await waitFor(async () => (await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'sleep', 5000);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return pid;
}

describe('run', () => {
  beforeAll(() => fs.access(RUN_JS)); // a missing build is a failure, not a skip

  it('kills a dieWithParent tool when its parent is SIGKILLed', async () => {
    const pid = await orphanSleep(true);
    expect(await waitFor(async () => !(await running(pid)), 5000)).toBe(true);
  });

  it('leaves other tools running (what dieWithParent is for)', async () => {
    const pid = await orphanSleep(false);
    try {
      expect(await running(pid)).toBe(true);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('reports errors with the tool\'s own argv, not setpriv\'s', async () => {
    await expect(run(['sh', '-c', 'exit 3'], { dieWithParent: true })).rejects.toMatchObject({ argv: ['sh', '-c', 'exit 3'], exitCode: 3 });
    expect((await run(['sh', '-c', 'echo hi'], { dieWithParent: true })).stdout).toBe('hi\n');
  });
});
