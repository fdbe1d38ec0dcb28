/**
 * PduFramer — the re-framing fix: crafted byte streams with PDUs coalesced into one read, split over several reads
 * (down to one byte at a time), both at once, little-endian headers, and out-of-step / oversized input.
 */
import { PduFramer, FramingError } from '../../src/snmp/agentx-framer';
import { decodePdu, encodeResponse, Flag, HEADER_SIZE, PduType, ValueType } from '../../src/snmp/agentx-pdu';

/** A Get PDU as snmpd sends it (network byte order) with `n` search ranges 1.3.6.1.4.1.<id+i> … 1.3.6.1.4.2. */
function getPdu(packetId: number, n = 1): Buffer {
  const ranges: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const r = Buffer.alloc(20);
    r.writeUInt8(2, 0); // start: 2 sub-identifiers after the prefix
    r.writeUInt8(4, 1); // prefix 4 = 1.3.6.1.4
    r.writeUInt32BE(1, 4);
    r.writeUInt32BE(packetId + i, 8);
    r.writeUInt8(1, 12); // end: 1 sub-identifier after the prefix
    r.writeUInt8(4, 13);
    r.writeUInt32BE(2, 16);
    ranges.push(r);
  }
  const payload = Buffer.concat(ranges);
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt8(1, 0);
  h.writeUInt8(PduType.Get, 1);
  h.writeUInt8(Flag.NetworkByteOrder, 2);
  h.writeUInt32BE(7, 4);
  h.writeUInt32BE(100 + packetId, 8);
  h.writeUInt32BE(packetId, 12);
  h.writeUInt32BE(payload.length, 16);
  return Buffer.concat([h, payload]);
}

const packetIds = (pdus: Buffer[]): number[] => pdus.map((b) => decodePdu(b).header.packetId);

describe('PduFramer', () => {
  it('passes one whole PDU through unchanged', () => {
    const f = new PduFramer();
    const p = getPdu(1);
    expect(f.push(p)).toEqual([p]);
    expect(f.pending).toBe(0);
    expect(decodePdu(p)).toMatchObject({ kind: 'get', ranges: [{ start: [1, 3, 6, 1, 4, 1, 1], include: false, end: [1, 3, 6, 1, 4, 2] }] });
  });

  it('splits coalesced PDUs (what net-snmp\'s subagent drops all but the first of)', () => {
    const f = new PduFramer();
    const stream = Buffer.concat(Array.from({ length: 50 }, (_, i) => getPdu(i + 1, (i % 3) + 1)));
    const out = f.push(stream);
    expect(packetIds(out)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(f.pending).toBe(0);
    expect(f.coalescedEvents).toBe(1);
  });

  it('joins a PDU split over several reads, byte by byte included', () => {
    const p = getPdu(9, 2);
    for (const cut of [1, 5, 19, 20, 21, p.length - 1]) {
      const f = new PduFramer();
      expect(f.push(p.subarray(0, cut))).toEqual([]);
      expect(f.pending).toBe(cut);
      expect(f.push(p.subarray(cut))).toEqual([p]);
      expect(f.splitPdus).toBe(1);
    }
    const f = new PduFramer();
    const got: Buffer[] = [];
    for (const byte of p) got.push(...f.push(Buffer.from([byte])));
    expect(got).toEqual([p]);
  });

  it('handles split and coalesced at once: random cuts through a stream of 200 PDUs', () => {
    const pdus = Array.from({ length: 200 }, (_, i) => getPdu(i + 1, (i % 4) + 1));
    const stream = Buffer.concat(pdus);
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const f = new PduFramer();
      const out: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const n = 1 + rnd(180);
        out.push(...f.push(stream.subarray(at, at + n)));
        at += n;
      }
      expect(out.map((b) => b.length)).toEqual(pdus.map((b) => b.length));
      expect(Buffer.concat(out).equals(stream)).toBe(true);
      expect(f.pending).toBe(0);
    }
  });

  it('reads the payload length in the byte order the header\'s flags say', () => {
    const be = encodeResponse({ sessionId: 1, transactionId: 2, packetId: 3 }, {
      varbinds: [{ oid: [1, 3, 6, 1, 4, 1, 5, 0], type: ValueType.Integer, value: 7 }],
    });
    // the same header in little-endian: clear the flag, byte-swap the four 32-bit header fields
    const le = Buffer.from(be);
    le.writeUInt8(0, 2);
    for (const at of [4, 8, 12, 16]) le.writeUInt32LE(be.readUInt32BE(at), at);
    const f = new PduFramer();
    expect(f.push(Buffer.concat([le, be]))).toEqual([le, be]);
  });

  it('refuses an out-of-step stream and an absurd length instead of buffering forever', () => {
    expect(() => new PduFramer().push(Buffer.alloc(HEADER_SIZE, 0xff))).toThrow(FramingError);
    const huge = getPdu(1);
    huge.writeUInt32BE(0x7fffffff, 16);
    expect(() => new PduFramer().push(huge)).toThrow(/exceeds/);
  });
});
