/**
 * Verify a delivered image against its sidecars: `IMAGE.sha256` (always) and the detached OpenPGP signature
 * `IMAGE.sig` (when required) against the public keys in a trusted-keys directory (`*.asc` armored, `*.gpg` binary).
 *
 * The image is read once: the same stream feeds the sha256 and, when a signature is checked, openpgp.js.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CancelledError, VerificationFailedError } from '../errors';
import { openpgp, type Key, type PublicKey, type Signature } from './openpgp';

export interface VerifyImageOptions {
  readonly imagePath: string;
  readonly requireSignature: boolean;
  readonly trustedKeysDir: string;
  readonly signal?: AbortSignal;
  /** Bytes hashed so far (called at most every 64 MiB and at the end). */
  readonly onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

export interface VerifyImageResult {
  /** sha256 of the image, lower-case hex. */
  readonly sha256: string;
  /** Fingerprint (upper-case hex) of the trusted primary key that made the signature; null when not checked. */
  readonly signedBy: string | null;
}

const CHUNK = 4 * 1024 * 1024;
const PROGRESS_EVERY = 64 * 1024 * 1024;
const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Structural check: errors from node:fs may come from another realm (jest), so no instanceof. */
function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && 'code' in e && e.code === code;
}

function messageOf(e: unknown): string {
  return typeof e === 'object' && e !== null && 'message' in e && typeof e.message === 'string' ? e.message : String(e);
}

/** Parse `HEX` or `HEX  filename` (sha256sum text or `*` binary mode). Returns the lower-case digest. */
export function parseChecksumSidecar(text: string, sidecarPath: string): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l.length > 0 && !l.startsWith('#'));
  const hex = line?.split(/\s+/)[0];
  if (line === undefined || hex === undefined || !HEX64.test(hex)) {
    throw new VerificationFailedError(`checksum file ${sidecarPath} does not hold a sha256 digest (expected "HEX" or "HEX  filename")`);
  }
  return hex.toLowerCase();
}

async function readChecksum(imagePath: string): Promise<string> {
  const sidecar = `${imagePath}.sha256`;
  let text: string;
  try {
    text = await readFile(sidecar, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) {
      throw new VerificationFailedError(`checksum file ${sidecar} is missing`, {
        hint: `publish the image with its sha256 sidecar (sha256sum ${basename(imagePath)} > ${basename(sidecar)})`,
      });
    }
    throw new VerificationFailedError(`cannot read checksum file ${sidecar}: ${messageOf(e)}`, { cause: e });
  }
  return parseChecksumSidecar(text, sidecar);
}

async function readDetachedSignature(sigPath: string): Promise<Signature> {
  let bytes: Buffer;
  try {
    bytes = await readFile(sigPath);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) {
      throw new VerificationFailedError(`signature file ${sigPath} is missing and a signature is required`, {
        hint: 'provide IMAGE.sig (detached OpenPGP signature) or disable signature checking in imgbased.conf',
      });
    }
    throw new VerificationFailedError(`cannot read signature file ${sigPath}: ${messageOf(e)}`, { cause: e });
  }
  try {
    const head = bytes.subarray(0, 64).toString('latin1').trimStart();
    return head.startsWith('-----BEGIN PGP SIGNATURE-----')
      ? await openpgp.readSignature({ armoredSignature: bytes.toString('utf8') })
      : await openpgp.readSignature({ binarySignature: new Uint8Array(bytes) });
  } catch (e) {
    throw new VerificationFailedError(`signature file ${sigPath} is not a valid OpenPGP signature: ${messageOf(e)}`, { cause: e });
  }
}

/** Public keys from `*.asc` (armored) and `*.gpg` (binary) files; a file that does not parse is an error. */
export async function loadTrustedKeys(dir: string): Promise<PublicKey[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new VerificationFailedError(`trusted keys directory ${dir} does not exist`);
    throw e;
  }
  const keys: PublicKey[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let parsed: Key[];
    try {
      if (name.endsWith('.asc')) parsed = await openpgp.readKeys({ armoredKeys: await readFile(path, 'utf8') });
      else if (name.endsWith('.gpg')) parsed = await openpgp.readKeys({ binaryKeys: new Uint8Array(await readFile(path)) });
      else continue;
    } catch (e) {
      throw new VerificationFailedError(`trusted key file ${path} cannot be read as an OpenPGP key: ${messageOf(e)}`, { cause: e });
    }
    for (const k of parsed) keys.push(k.toPublic());
  }
  if (keys.length === 0) throw new VerificationFailedError(`no trusted keys (*.asc, *.gpg) in ${dir}`);
  return keys;
}

/** The trusted key (primary or subkey) that made the signature, or a VerificationFailedError naming the key ID. */
function findSigner(sig: Signature, keys: readonly PublicKey[]): PublicKey {
  const ids = sig.getSigningKeyIDs();
  for (const key of keys) {
    const own = key.getKeyIDs();
    if (ids.some((id) => own.some((k) => k.equals(id)))) return key;
  }
  const shown = ids.map((id) => id.toHex().toUpperCase()).join(', ') || 'none';
  throw new VerificationFailedError(`image is signed by an unknown key (key ID ${shown}); it is not among the trusted keys`);
}

/** Stream the file in chunks into `sink`, hashing as it goes; honours the signal between chunks. */
function fileStream(
  path: string,
  size: number,
  hash: ReturnType<typeof createHash>,
  opts: Pick<VerifyImageOptions, 'signal' | 'onProgress'>,
): ReadableStream<Uint8Array> {
  let fh: Awaited<ReturnType<typeof open>> | null = null;
  let pos = 0;
  let lastReport = 0;
  const closeFile = async (): Promise<void> => {
    const f = fh;
    fh = null;
    await f?.close();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (opts.signal?.aborted) throw new CancelledError();
        fh ??= await open(path, 'r');
        const buf = Buffer.allocUnsafe(CHUNK);
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) {
          await closeFile();
          opts.onProgress?.(pos, size);
          controller.close();
          return;
        }
        pos += bytesRead;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        if (pos - lastReport >= PROGRESS_EVERY) {
          lastReport = pos;
          opts.onProgress?.(pos, size);
        }
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (e) {
        await closeFile().catch(() => undefined);
        controller.error(e);
      }
    },
    async cancel() {
      await closeFile();
    },
  }, { highWaterMark: 1 });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    const { done } = await reader.read();
    if (done) return;
  }
}

export async function verifyImage(opts: VerifyImageOptions): Promise<VerifyImageResult> {
  if (opts.signal?.aborted) throw new CancelledError();
  const expected = await readChecksum(opts.imagePath);
  let size: number;
  try {
    size = (await stat(opts.imagePath)).size;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new VerificationFailedError(`image ${opts.imagePath} does not exist`);
    throw e;
  }

  let signature: Signature | null = null;
  let signer: PublicKey | null = null;
  if (opts.requireSignature) {
    signature = await readDetachedSignature(`${opts.imagePath}.sig`);
    signer = findSigner(signature, await loadTrustedKeys(opts.trustedKeysDir));
  }

  const hash = createHash('sha256');
  const stream = fileStream(opts.imagePath, size, hash, opts);
  let sigCheck: Promise<true> | null = null;
  try {
    if (signature !== null && signer !== null) {
      const message = await openpgp.createMessage({ binary: stream });
      const result = await openpgp.verify({ message, signature, verificationKeys: signer, format: 'binary' });
      await drain(result.data as ReadableStream<Uint8Array>);
      const first = result.signatures[0];
      if (first === undefined) throw new VerificationFailedError('signature file holds no signature');
      sigCheck = first.verified;
      sigCheck.catch(() => undefined); // examined below, after the checksum
    } else {
      await drain(stream);
    }
  } catch (e) {
    if (e instanceof CancelledError || opts.signal?.aborted) throw new CancelledError();
    throw e;
  }

  const sha256 = hash.digest('hex');
  if (sha256 !== expected) {
    throw new VerificationFailedError(`checksum mismatch for ${basename(opts.imagePath)}: expected sha256 ${expected}, got ${sha256}`, {
      hint: 'the image is corrupt or incomplete; download it again',
    });
  }
  if (sigCheck === null || signer === null) return { sha256, signedBy: null };
  try {
    await sigCheck;
  } catch (e) {
    throw new VerificationFailedError(`bad signature on ${basename(opts.imagePath)}: ${messageOf(e)}`, { cause: e });
  }
  return { sha256, signedBy: signer.getFingerprint().toUpperCase() };
}
