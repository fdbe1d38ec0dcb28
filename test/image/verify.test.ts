import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { CancelledError, VerificationFailedError } from '../../src/errors';
import { buildTestImage, createTestSigningKey, type TestSigningKey } from '../../src/image/test-image-builder';
import { parseChecksumSidecar, verifyImage } from '../../src/image/verify';
import { cleanupDir, tempDir } from './helpers';

const NVR = 'ovirt-node-ng-4.5.6-0.20250101.0';
let dir: string;
let key: TestSigningKey;
let stranger: TestSigningKey;

beforeAll(async () => {
  dir = await tempDir('verify');
  key = await createTestSigningKey(dir);
  stranger = await createTestSigningKey(join(dir, 'stranger'), { name: 'stranger', trust: false });
});
afterAll(async () => {
  await cleanupDir(dir);
});

async function image(name: string, opts: Partial<Parameters<typeof buildTestImage>[0]> = {}): Promise<string> {
  const built = await buildTestImage({ outDir: dir, nvr: NVR, fileName: `${name}.img`, sign: key, ...opts });
  return built.imagePath;
}

async function expectVerificationFailure(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err: unknown = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(VerificationFailedError);
  expect((err as Error).message).toMatch(re);
}

describe('verifyImage', () => {
  test('a good signed image verifies and names the signing key', async () => {
    const imagePath = await image('good');
    const res = await verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir });
    expect(res.signedBy).toBe(key.fingerprint);
    expect(res.sha256).toBe(createHash('sha256').update(await readFile(imagePath)).digest('hex'));
  });

  test('armored signature and a bare checksum sidecar verify', async () => {
    const imagePath = await image('armored', { signatureFormat: 'armored', checksumFormat: 'bare' });
    const res = await verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir });
    expect(res.signedBy).toBe(key.fingerprint);
  });

  test('a binary (*.gpg) trusted key works', async () => {
    const binKey = await createTestSigningKey(join(dir, 'bin'), { name: 'bin', format: 'gpg' });
    const imagePath = await image('binkey', { sign: binKey });
    const res = await verifyImage({ imagePath, requireSignature: true, trustedKeysDir: binKey.trustedKeysDir });
    expect(res.signedBy).toBe(binKey.fingerprint);
  });

  test('signature not required: unsigned image passes on its checksum, signedBy null', async () => {
    const imagePath = await image('unsigned', { sign: null });
    const res = await verifyImage({ imagePath, requireSignature: false, trustedKeysDir: join(dir, 'nowhere') });
    expect(res.signedBy).toBeNull();
  });

  test('changed image bytes → checksum mismatch', async () => {
    const imagePath = await image('flipped', { corrupt: 'image-bytes' });
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir }), /checksum mismatch/);
  });

  test('wrong checksum in the sidecar → checksum mismatch', async () => {
    const imagePath = await image('wrongsum', { corrupt: 'checksum' });
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: false, trustedKeysDir: key.trustedKeysDir }), /checksum mismatch/);
  });

  test('missing checksum sidecar', async () => {
    const imagePath = await image('nosum');
    await rm(`${imagePath}.sha256`);
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: false, trustedKeysDir: key.trustedKeysDir }), /checksum file .* is missing/);
  });

  test('malformed checksum sidecar', async () => {
    const imagePath = await image('badsum');
    await writeFile(`${imagePath}.sha256`, 'not a digest\n');
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: false, trustedKeysDir: key.trustedKeysDir }), /does not hold a sha256/);
  });

  test('bad signature (right key, other data)', async () => {
    const imagePath = await image('badsig', { corrupt: 'signature' });
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir }), /bad signature/);
  });

  test('signature by an unknown key', async () => {
    const imagePath = await image('stranger', { sign: stranger });
    await expectVerificationFailure(
      verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir }),
      new RegExp(`unknown key \\(key ID ${stranger.keyId}\\)`),
    );
  });

  test('missing signature when required', async () => {
    const imagePath = await image('nosig', { sign: null });
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir }), /signature file .* is missing/);
  });

  test('garbage signature file', async () => {
    const imagePath = await image('garbagesig');
    await writeFile(`${imagePath}.sig`, 'garbage');
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir }), /not a valid OpenPGP signature/);
  });

  test('no trusted keys', async () => {
    const imagePath = await image('nokeys');
    await expectVerificationFailure(verifyImage({ imagePath, requireSignature: true, trustedKeysDir: join(dir, 'stranger', 'empty') }), /trusted keys/);
  });

  test('cancel while hashing → CancelledError', async () => {
    const imagePath = join(dir, 'huge.img');
    await writeFile(imagePath, '');
    await truncate(imagePath, 2 * 1024 * 1024 * 1024); // sparse: reads fast, still 32 chunks
    await writeFile(`${imagePath}.sha256`, `${'0'.repeat(64)}  huge.img\n`);
    const ac = new AbortController();
    const p = verifyImage({
      imagePath,
      requireSignature: false,
      trustedKeysDir: key.trustedKeysDir,
      signal: ac.signal,
      onProgress: (done) => {
        if (done > 0) ac.abort();
      },
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
  });

  test('an already-aborted signal → CancelledError', async () => {
    const imagePath = await image('aborted');
    const ac = new AbortController();
    ac.abort();
    await expect(verifyImage({ imagePath, requireSignature: true, trustedKeysDir: key.trustedKeysDir, signal: ac.signal })).rejects.toBeInstanceOf(
      CancelledError,
    );
  });
});

describe('parseChecksumSidecar', () => {
  const hex = 'A'.repeat(64);
  test.each([`${hex}`, `${hex}\n`, `${hex}  image.img\n`, `${hex} *image.img\n`])('accepts %j', (text) => {
    expect(parseChecksumSidecar(text, 'x.sha256')).toBe(hex.toLowerCase());
  });
  test.each(['', 'abc', `${hex}0`])('rejects %j', (text) => {
    expect(() => parseChecksumSidecar(text, 'x.sha256')).toThrow(VerificationFailedError);
  });
});
