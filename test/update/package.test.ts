import { VerificationFailedError } from '../../src/errors';
import { IMAGE_DIR_IN_PACKAGE, judgeChecksig, packagedSha256 } from '../../src/update/package';

const DIGESTS = '    Header SHA256 digest: OK\n    Payload SHA256 digest: OK\n    MD5 digest: OK\n';
const judge = (code: number, out: string): string => judgeChecksig('p.rpm', code, `p.rpm:\n${out}`, '/etc/imgbased/trusted.d');

describe('rpmkeys --checksig verdicts', () => {
  it('accepts a signature by a trusted key', () => {
    expect(judge(0, `    Header V4 EdDSA/SHA256 Signature, key ID 142b640f: OK\n${DIGESTS}`))
      .toBe('Header V4 EdDSA/SHA256 Signature, key ID 142b640f: OK');
  });

  it.each([
    [`    Header V4 EdDSA/SHA256 Signature, key ID 142b640f: NOKEY\n    Header RSA signature: NOTFOUND\n${DIGESTS}`,
      /p\.rpm failed its signature check: it is signed by a key that is not in trusted\.d \(key ID 142b640f\)/],
    [`    Header V4 RSA/SHA256 Signature, key ID 0badc0de: BAD\n${DIGESTS}`, /Header V4 RSA\/SHA256 Signature, key ID 0badc0de is BAD/],
    [`    Header V4 EdDSA/SHA256 Signature, key ID 142b640f: OK\n    Payload SHA256 digest: BAD (Expected 1 != 2)\n`, /failed its signature check/],
    [DIGESTS, /it is not signed/],
  ])('refuses %#', (out, msg) => {
    expect(() => judge(1, out)).toThrow(VerificationFailedError);
    expect(() => judge(1, out)).toThrow(msg);
  });

  it('finds the image where image-update packages put it', () => {
    expect(IMAGE_DIR_IN_PACKAGE.test('./usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-4.5.6-0.20250601.0.squashfs.img')).toBe(true);
    expect(IMAGE_DIR_IN_PACKAGE.test('./usr/share/ovirt-node-ng-image-update/image/product.img')).toBe(false);
    expect(IMAGE_DIR_IN_PACKAGE.test('./usr/share/x/image/../../../etc/a.squashfs.img')).toBe(false);
  });

  it('takes an image\'s sha256 from the package header (SHA-256 digests only, the exact path)', () => {
    const img = '/usr/share/ovirt-node-ng-image-update/image/ovirt-node-ng-4.5.6-0.20250601.0.squashfs.img';
    const d = 'ab'.repeat(32);
    const out = `8\n${'cd'.repeat(32)} /usr/share/ovirt-node-ng-image-update/image-update.file\n${d} ${img}\n`;
    expect(packagedSha256(out, img, 'p.rpm')).toBe(d);
    expect(() => packagedSha256(out, `${img}.x`, 'p.rpm')).toThrow(/p\.rpm records no SHA-256 digest for .*squashfs\.img\.x/);
    expect(() => packagedSha256(`1\n${'ab'.repeat(16)} ${img}\n`, img, 'p.rpm')).toThrow(VerificationFailedError);
    expect(() => packagedSha256(`1\n${'ab'.repeat(16)} ${img}\n`, img, 'p.rpm')).toThrow(/algorithm 1, not SHA-256/);
    expect(() => packagedSha256('', img, 'p.rpm')).toThrow(/algorithm \?/);
  });
});
