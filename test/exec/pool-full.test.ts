/**
 * A base write that runs out of pool space reports NoSpace (what to do), not the I/O error of the tool that hit it,
 * and the transaction is undone. The dir backend's pool here is a small tmpfs that another writer fills while the
 * base is being copied — the same race as a thin pool without autoextend (the VM tier does that one on dm-thin).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailedError, NoSpaceError, CancelledError } from '../../src/errors';
import { FULL_PERCENT, poolAware, writeFailure } from '../../src/exec/pool-full';
import { unmountIfMounted } from '../../src/image/mount';
import { createSandbox, SANDBOX_POOL } from '../../src/sandbox/sysroot';
import type { PoolUsage } from '../../src/storage/backend';
import { run } from '../../src/system/run';
import { imageSet, NVR, snapshotHost, tempDir } from '../helpers/host';

const usage = (dataPercent: number, metadataPercent = 10): PoolUsage =>
  ({ sizeBytes: 1 << 30, freeBytes: 0, dataPercent, metadataPercent, autoextendThreshold: 100 });

describe('writeFailure (pure)', () => {
  const io = new FailedError('cp: error writing \'x\': Input/output error\nmore');
  it('a full pool (data or metadata) turns the error into NoSpace that names the base and keeps the cause', () => {
    const data = writeFailure(io, usage(100), 'b-1') as NoSpaceError;
    expect(data).toBeInstanceOf(NoSpaceError);
    expect(data.message).toBe("the thin pool's data space ran out while writing b-1 (cp: error writing 'x': Input/output error)");
    expect(data.hint).toMatch(/cleanup.*lvextend/);
    expect(data.cause).toBe(io);
    expect((writeFailure(io, usage(50, FULL_PERCENT), 'b-1') as Error).message).toMatch(/metadata space ran out/);
  });
  it('anything else stays what it was: a pool with room, an unknown pool, a cancel', () => {
    expect(writeFailure(io, usage(FULL_PERCENT - 0.1), 'b')).toBe(io);
    expect(writeFailure(io, null, 'b')).toBe(io);
    const c = new CancelledError();
    expect(writeFailure(c, usage(100), 'b')).toBe(c);
  });
  it('poolAware asks the pool only after a failure, and an unanswerable pool leaves the error alone', async () => {
    let asked = 0;
    const ask = async (): Promise<PoolUsage> => { asked++; return usage(100); };
    await expect(poolAware(ask, 'b', async () => 7)).resolves.toBe(7);
    expect(asked).toBe(0);
    await expect(poolAware(ask, 'b', () => Promise.reject(io))).rejects.toBeInstanceOf(NoSpaceError);
    await expect(poolAware(() => Promise.reject(new Error('lvs failed')), 'b', () => Promise.reject(io))).rejects.toBe(io);
  });
});

describe('a pool that fills up during the base write', () => {
  let dir: string;
  let poolDir: string;
  afterAll(async () => {
    if (poolDir) await unmountIfMounted(poolDir);
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('fails the upgrade with NoSpace and undoes it', async () => {
    dir = await tempDir('pool-full');
    const images = await imageSet(dir);
    const sysroot = path.join(dir, 'sysroot');
    poolDir = path.join(sysroot, SANDBOX_POOL);
    await fs.mkdir(poolDir, { recursive: true });
    await run(['mount', '-t', 'tmpfs', '-o', 'size=160m', 'imgbased-test-pool', poolDir]);
    const { engine } = await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    const v2 = await images.image(NVR.v2, { extraMb: 24 });
    const before = await snapshotHost(sysroot);
    const filler = path.join(poolDir, 'another-writer');
    let filled = false;
    const out = await engine.upgrade(v2.imagePath, {
      method: 'tree',
      onProgress: (e) => {
        if (e.step !== 'write-base' || filled) return;
        filled = true;
        const st = execFileSync('stat', ['-f', '-c', '%a %S', poolDir], { encoding: 'utf8' }).trim().split(' ').map(Number);
        execFileSync('fallocate', ['-l', String((st[0] ?? 0) * (st[1] ?? 0)), filler]);
      },
    });
    expect(filled).toBe(true);
    expect(out.error).toBeInstanceOf(NoSpaceError);
    expect(out.error?.message).toMatch(new RegExp(`^the thin pool's data space ran out while writing ${NVR.v2.replace(/\./g, '\\.')} `));
    expect(out.record.steps.find((s) => s.id === 'write-base')).toMatchObject({ error: { name: 'org.ovirt.Node.Error.NoSpace' } });
    // The dir backend keeps its bookkeeping in the pool too, so undoing the base needs the room back: until the
    // other writer lets go, the journal stays unfinished and start-up recovery finishes the undo.
    await fs.rm(filler);
    if ((await engine.journal.unfinished()).length > 0) await engine.recover();
    expect(await engine.journal.unfinished()).toEqual([]);
    expect(await snapshotHost(sysroot)).toEqual({ ...before, journal: expect.anything() });
  });
});
