/**
 * Every bad input is a named error and changes nothing: the layout, entries, grubenv and journal are byte-identical
 * before and after, and the rejection is recorded in the history.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../../src/engine';
import {
  ImgbasedError, InvalidArgumentError, InvalidNameError, NoSpaceError, NotFoundError, NotNewerError, VerificationFailedError,
} from '../../src/errors';
import type { BuildTestImageOptions } from '../../src/image/test-image-builder';
import { createTestSigningKey } from '../../src/image/test-image-builder';
import { createSandbox } from '../../src/sandbox/sysroot';
import { run } from '../../src/system/run';
import type { ImageSet } from '../helpers/host';
import { imageSet, NVR, snapshotHost, tempDir } from '../helpers/host';

describe('bad input changes nothing', () => {
  let dir: string;
  let images: ImageSet;
  let engine: Engine;
  let sysroot: string;

  beforeAll(async () => {
    dir = await tempDir('badinput');
    images = await imageSet(dir);
    sysroot = path.join(dir, 'sysroot');
    const v1 = await images.image(NVR.v1);
    engine = (await createSandbox({
      sysroot, installImage: v1.imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    })).engine;
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  async function expectRejected(
    attempt: () => Promise<{ error: ImgbasedError | null }>, type: new (...a: never[]) => ImgbasedError, message: RegExp,
  ): Promise<void> {
    const before = await snapshotHost(sysroot);
    const historyBefore = (await engine.history()).length;
    const { error } = await attempt();
    expect(error).toBeInstanceOf(type);
    expect(error?.message).toMatch(message);
    expect(await snapshotHost(sysroot)).toEqual(before);
    const [last] = await engine.history(1);
    expect((await engine.history()).length).toBe(historyBefore + 1);
    expect(last?.state).toBe('failed');
    expect(last?.error?.name).toBe(error?.dbusName);
    expect(await fs.readdir(path.join(sysroot, 'run/imgbased'))).toEqual([]); // nothing left mounted
  }

  const cases: Array<[string, Partial<BuildTestImageOptions> & { nvr?: string }, new (...a: never[]) => ImgbasedError, RegExp]> = [
    ['a wrong checksum', { corrupt: 'checksum' }, VerificationFailedError, /sha256|checksum/i],
    ['corrupt image bytes', { corrupt: 'image-bytes' }, VerificationFailedError, /sha256|checksum/i],
    ['a bad signature', { corrupt: 'signature' }, VerificationFailedError, /signature/i],
    ['a non-squashfs file', { corrupt: 'not-squashfs' }, VerificationFailedError, /squashfs/i],
    ['a squashfs without LiveOS/rootfs.img', { corrupt: 'no-rootfs' }, VerificationFailedError, /rootfs\.img/],
    ['a missing nvr file', { files: { 'usr/share/imgbase/build/meta/nvr': null } }, VerificationFailedError, /meta\/nvr/],
    ['an invalid nvr', { nvr: 'not an nvr' }, InvalidNameError, /name-version-release|may only contain/],
    ['an NVR that is not newer', { nvr: 'ovirt-node-ng-4.5.3-0.1' }, NotNewerError, /not newer/],
  ];
  it.each(cases)('upgrade with %s', async (_label, opts, type, message) => {
    const { nvr = NVR.v2, ...rest } = opts;
    const img = await images.image(nvr, { ...rest, fileName: `case-${Math.random().toString(36).slice(2)}.img` });
    await expectRejected(() => engine.upgrade(img.imagePath), type, message);
  });

  it('upgrade with a signature by an unknown key', async () => {
    const stranger = await createTestSigningKey(path.join(dir, 'stranger'), { trust: false });
    const img = await images.image(NVR.v2, { sign: stranger, fileName: 'stranger.img' });
    await expectRejected(() => engine.upgrade(img.imagePath), VerificationFailedError, /key|signature/i);
  });

  it('upgrade with no signature at all', async () => {
    const img = await images.image(NVR.v2, { sign: null, fileName: 'unsigned.img' });
    await expectRejected(() => engine.upgrade(img.imagePath), VerificationFailedError, /signature/i);
  });

  it('upgrade of a missing file', async () => {
    await expectRejected(() => engine.upgrade(path.join(dir, 'nope.img')), NotFoundError, /does not exist/);
  });

  it('bad layer and base names', async () => {
    await expectRejected(() => engine.rollback('no such layer'), NotFoundError, /no layer named/);
    await expectRejected(() => engine.removeBase('bad name'), InvalidNameError, /name-version-release/);
    await expectRejected(() => engine.removeBase(NVR.v1), InvalidArgumentError, /running layer/);
    await expectRejected(() => engine.cleanup(0), InvalidArgumentError, /at least 1/);
  });

  it('a pool too small is refused before anything is created (NoSpace)', async () => {
    const small = path.join(dir, 'small');
    await fs.mkdir(small);
    await run(['mount', '-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', small]);
    try {
      const v1 = await images.image(NVR.v1);
      const sb = await createSandbox({
        sysroot: small, installImage: v1.imagePath, trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
      });
      const big = await images.image(NVR.v2, { extraMb: 40, fileName: 'big.img' });
      const before = await snapshotHost(small);
      const out = await sb.engine.upgrade(big.imagePath);
      expect(out.error).toBeInstanceOf(NoSpaceError);
      expect(out.error?.message).toMatch(/MiB free; this upgrade needs/);
      expect(await snapshotHost(small)).toEqual(before);
    } finally {
      await run(['umount', small]);
    }
  });
});
