/** The offline tool as a user runs it: compiled JS, real sandbox, exit codes and JSON. */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createSandbox } from '../../src/sandbox/sysroot';
import { imageSet, NVR, tempDir } from '../helpers/host';

const CLI = path.resolve(__dirname, '../../dist/src/cli/imgbased.js');
const pexec = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await pexec(process.execPath, [CLI, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('imgbased CLI', () => {
  let dir: string;
  let sysroot: string;
  beforeAll(async () => {
    await fs.access(CLI);
    dir = await tempDir('cli');
    const images = await imageSet(dir);
    sysroot = path.join(dir, 'sysroot');
    await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath,
      trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('prints the layout as JSON', async () => {
    const r = await cli(['--sysroot', sysroot, '--json', 'layout']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      bases: [{ name: NVR.v1, layers: [`${NVR.v1}+1`] }],
      current_layer: `${NVR.v1}+1`,
      default_layer: `${NVR.v1}+1`,
      pinned: [],
    });
  });

  it('check exits 0 on a healthy sandbox and 5 when it finds problems', async () => {
    const ok = await cli(['--sysroot', sysroot, 'check']);
    expect(ok.stdout).toMatch(/^Status: OK\n/);
    expect(ok.code).toBe(0);
    await fs.rm(path.join(sysroot, `boot/loader/entries/${NVR.v1}+1.conf`));
    const bad = await cli(['--sysroot', sysroot, '--json', 'check']);
    expect(bad.code).toBe(5);
    expect(JSON.parse(bad.stdout).status).toBe('failed');
  });

  it('usage errors exit 2; --help exits 0 and documents exit codes', async () => {
    expect((await cli(['--sysroot', sysroot, 'frobnicate'])).code).toBe(2);
    expect((await cli(['--sysroot', sysroot, 'upgrade'])).code).toBe(2);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit status: 0 ok, 1 failed, 2 usage error/);
  });

  it('refuses to run while another live process holds the host lock', async () => {
    const lock = path.join(sysroot, 'var/lib/imgbased/lock');
    await fs.writeFile(lock, `${process.pid} test-holder\n`);
    try {
      const r = await cli(['--sysroot', sysroot, 'cleanup']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/test-holder \(pid \d+\) is changing this host/);
    } finally {
      await fs.rm(lock);
    }
    await fs.writeFile(lock, '999999 ghost\n'); // stale: taken over
    expect((await cli(['--sysroot', sysroot, 'cleanup'])).code).toBe(0);
    await expect(fs.access(lock)).rejects.toThrow(/ENOENT/);
  });
});
