/**
 * Crash matrix: for EVERY step boundary of an upgrade, the offline tool is SIGKILLed there (failpoint), a new process
 * recovers, and the host must be exactly the old state — or, past the point of no return, exactly the new one.
 * Runs the compiled CLI (scripts/test.sh compiles before jest).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Engine } from '../../src/engine';
import { bootSandbox, createSandbox } from '../../src/sandbox/sysroot';
import { upgradeStepIds } from '../helpers/crash';
import { leftMentioning } from '../helpers/procs';
import { copyTree, imageSet, NVR, snapshotHost, tempDir, V2_CHANGES } from '../helpers/host';

const pexec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../dist/src/cli/imgbased.js');

async function cli(sysroot: string, args: string[], failpoint?: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  try {
    const r = await pexec(process.execPath, [CLI, '--sysroot', sysroot, ...args], {
      env: { ...process.env, ...(failpoint ? { IMGBASED_FAILPOINTS: failpoint } : {}) },
    });
    return { code: 0, signal: null, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; signal?: string; stderr?: string };
    return { code: err.code ?? null, signal: err.signal ?? null, stderr: err.stderr ?? '' };
  }
}

const WAYS = [
  { method: 'tree', write: ['create-base', 'write-base'], during: ['during:write-base'] },
  { method: 'delta', write: ['snapshot-base', 'sync-base', 'verify-base'], during: ['during:sync-base', 'during:verify-base'] },
] as const;

describe.each(WAYS)('crash matrix, $method base write (SIGKILL at every step boundary, then recovery)', ({ method, write, during }) => {
  const upgradeArgs = (image: string): string[] => ['upgrade', image, '--keep', '1', '--method', method];
  let dir: string;
  let pristine: string;
  let image: string;
  let oldState: Record<string, unknown>;
  let newState: Record<string, unknown>;
  let steps: Array<{ id: string; phase: string }>;

  beforeAll(async () => {
    await fs.access(CLI); // compiled by scripts/test.sh; a missing build is a failure, not a skip
    dir = await tempDir('crash');
    const images = await imageSet(dir);
    pristine = path.join(dir, 'pristine');
    const v1 = await images.image(NVR.v1);
    const sb = await createSandbox({
      sysroot: pristine, installImage: v1.imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    // Two bases, booted on the second: the next upgrade with --keep 1 also collects the first (finalize steps).
    const v2 = await images.image(NVR.v2, V2_CHANGES);
    expect((await sb.engine.upgrade(v2.imagePath)).error).toBeNull();
    await bootSandbox(sb.engine);
    // v2's trial boot is confirmed, so v1 is no longer the fallback and may be collected.
    expect((await sb.engine.completeBoot({ verdict: 'good', reason: 'test' })).outcome.error).toBeNull();
    image = (await images.image(NVR.v3)).imagePath;
    oldState = await snapshotHost(pristine);

    const reference = path.join(dir, 'reference');
    await copyTree(pristine, reference);
    const r = await cli(reference, upgradeArgs(image));
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    newState = await snapshotHost(reference);
    steps = await upgradeStepIds(await Engine.open({ sysroot: reference }));
    expect(steps.map((s) => s.id)).toEqual([
      ...write, 'protect-base', 'create-layer', 'carry-etc', 'migrate-var', 'install-boot',
      'start-trial', `remove-layer:${NVR.v1}+1`, `remove-base:${NVR.v1}`,
    ]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const boundaries = (): string[] => [
    ...steps.flatMap((s) => [`before:${s.id}`, `after:${s.id}`]),
    ...during,
  ];

  it('covers every boundary: old state before the point of no return, new state after it', async () => {
    const verdicts: Record<string, string> = {};
    for (const fp of boundaries()) {
      const host = path.join(dir, `case-${fp.replace(/[^a-z0-9]/gi, '_')}`);
      await copyTree(pristine, host);
      const crashed = await cli(host, upgradeArgs(image), fp);
      expect({ fp, signal: crashed.signal }).toEqual({ fp, signal: 'SIGKILL' });
      // The tool's copier (cp, rsync) dies with it instead of writing on into what recovery removes.
      expect({ fp, left: await leftMentioning(host) }).toEqual({ fp, left: [] });
      const rec = await cli(host, ['recover', '--json']);
      if (rec.code !== 0) throw new Error(`recover after ${fp} failed: ${rec.stderr}`);
      const after = await snapshotHost(host);
      const stepId = fp.slice(fp.indexOf(':') + 1);
      const phase = steps.find((s) => s.id === stepId)?.phase;
      const expected = phase === 'finalize' ? newState : oldState;
      // Journal/history records differ by id and time; compare the host itself.
      expect({ fp, state: after }).toEqual({ fp, state: expected });
      const engine = await Engine.open({ sysroot: host });
      const [last] = await engine.history(1);
      expect({ fp, recovered: last?.recovered, state: last?.state }).toEqual({
        fp, recovered: true, state: phase === 'finalize' ? 'succeeded' : 'failed',
      });
      verdicts[fp] = phase === 'finalize' ? 'new' : 'old';
      // A following upgrade succeeds on the recovered host.
      if (fp === during[0]) expect((await cli(host, upgradeArgs(image))).code).toBe(0);
      await fs.rm(host, { recursive: true, force: true });
    }
    expect(Object.keys(verdicts)).toHaveLength(boundaries().length);
  }, 600_000);
});
