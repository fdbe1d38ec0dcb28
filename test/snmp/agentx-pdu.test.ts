/**
 * The AgentX codec against RFC 2741's layouts, and against net-snmp's own encoder as an independent implementation
 * (for the ASCII values it gets right); plus the non-ASCII octet string net-snmp gets wrong.
 */
import * as snmp from 'net-snmp';
import type { Varbind } from '../../src/snmp/agentx-pdu';
import {
  AgentxParseError, decodePdu, encodeNotify, encodeOpen, encodeRegister, encodeResponse, Flag, HEADER_SIZE, PduType, ValueType,
} from '../../src/snmp/agentx-pdu';

const H = { sessionId: 0x01020304, transactionId: 5, packetId: 6 };

const SAMPLE: Varbind[] = [
  { oid: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 1, 1, 5, 0], type: ValueType.Integer, value: -3 },
  { oid: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 1, 1, 3, 0], type: ValueType.OctetString, value: Buffer.from('ovirt-node-ng-4.5.5-0.20250301.0+1') },
  { oid: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 1, 2, 1, 0], type: ValueType.Gauge32, value: 4_000_000_000 },
  { oid: [1, 3, 6, 1, 2, 1, 1, 3, 0], type: ValueType.TimeTicks, value: 12345 },
  { oid: [1, 3, 6, 1, 4, 1, 9, 9, 0], type: ValueType.Counter64, value: 2n ** 40n + 7n },
  { oid: [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0], type: ValueType.ObjectIdentifier, value: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 0, 1] },
  { oid: [1, 0, 8802, 1], type: ValueType.EndOfMibView },
];

describe('AgentX codec', () => {
  it('writes the header per RFC 2741 §6.1: version, type, NETWORK_BYTE_ORDER, ids, payload length', () => {
    const b = encodeRegister(H, [1, 3, 6, 1, 4, 1, 2312, 13, 2]);
    expect([...b.subarray(0, 4)]).toEqual([1, PduType.Register, Flag.NetworkByteOrder, 0]);
    expect(b.readUInt32BE(4)).toBe(H.sessionId);
    expect(b.readUInt32BE(8)).toBe(5);
    expect(b.readUInt32BE(12)).toBe(6);
    expect(b.readUInt32BE(16)).toBe(b.length - HEADER_SIZE);
    // timeout 0, priority 127, range_subid 0, reserved; then the OID with the 1.3.6.1.4 prefix compressed
    expect([...b.subarray(20, 24)]).toEqual([0, 127, 0, 0]);
    expect([...b.subarray(24, 28)]).toEqual([4, 4, 0, 0]);
    expect([1, 2312, 13, 2].map((_, i) => b.readUInt32BE(28 + 4 * i))).toEqual([1, 2312, 13, 2]);
  });

  it('Open carries the timeout, the id OID and the description as a padded octet string', () => {
    const b = encodeOpen(H, 0, [1, 3, 6, 1, 4, 1, 2312, 13, 2], 'imgbased');
    const descrAt = 20 + 4 + 4 + 4 * 4;
    expect(b.readUInt32BE(descrAt)).toBe(8);
    expect(b.subarray(descrAt + 4, descrAt + 12).toString()).toBe('imgbased');
    expect((b.length - HEADER_SIZE) % 4).toBe(0);
  });

  it('a Response decodes back to the same varbinds; every payload is a multiple of 4 bytes', () => {
    const b = encodeResponse(H, { error: 0, index: 0, varbinds: SAMPLE });
    expect((b.length - HEADER_SIZE) % 4).toBe(0);
    const d = decodePdu(b);
    expect(d).toMatchObject({ kind: 'response', error: 0, index: 0, header: { sessionId: H.sessionId, packetId: 6 } });
    expect(d.kind === 'response' ? d.varbinds : []).toEqual(SAMPLE);
  });

  it('agrees with net-snmp\'s encoder for ASCII values', () => {
    const theirs = snmp.AgentXPdu.createFromVariables({
      pduType: PduType.Response, sessionID: H.sessionId, transactionID: 5, packetID: 6, sysUpTime: 0, error: 0, index: 0,
      varbinds: [
        { oid: '1.3.6.1.4.1.2312.13.2.1.1.5.0', type: snmp.ObjectType.Integer, value: 3 },
        { oid: '1.3.6.1.4.1.2312.13.2.1.1.3.0', type: snmp.ObjectType.OctetString, value: 'ovirt-node-ng-4.5.5-0.20250301.0+1' },
        { oid: '1.3.6.1.4.1.2312.13.2.1.2.1.0', type: snmp.ObjectType.Gauge, value: 4_000_000_000 },
        { oid: '1.3.6.1.6.3.1.1.4.1.0', type: snmp.ObjectType.OID, value: '1.3.6.1.4.1.2312.13.2.0.1' },
      ],
    }).toBuffer();
    const ours = encodeResponse(H, {
      varbinds: [
        { oid: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 1, 1, 5, 0], type: ValueType.Integer, value: 3 },
        { oid: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 1, 1, 3, 0], type: ValueType.OctetString, value: Buffer.from('ovirt-node-ng-4.5.5-0.20250301.0+1') },
        { oid: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 1, 2, 1, 0], type: ValueType.Gauge32, value: 4_000_000_000 },
        { oid: [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0], type: ValueType.ObjectIdentifier, value: [1, 3, 6, 1, 4, 1, 2312, 13, 2, 0, 1] },
      ],
    });
    expect(ours.equals(theirs)).toBe(true);
  });

  it('writes non-ASCII text with its UTF-8 byte length (net-snmp writes the character count: a corrupt stream)', () => {
    const text = 'interrupted … during "Write image into …"';
    const vb: Varbind = { oid: [1, 3, 6, 1, 4, 1, 1, 0], type: ValueType.OctetString, value: Buffer.from(text, 'utf8') };
    const ours = encodeResponse(H, { varbinds: [vb] });
    const d = decodePdu(ours);
    expect(d.kind === 'response' && d.varbinds[0]?.type === ValueType.OctetString ? d.varbinds[0].value.toString('utf8') : '').toBe(text);
    const theirs = snmp.AgentXPdu.createFromVariables({
      pduType: PduType.Response, sessionID: 1, varbinds: [{ oid: '1.3.6.1.4.1.1.0', type: snmp.ObjectType.OctetString, value: text }],
    }).toBuffer();
    // the string's length field (after header, sysUpTime/error/index, varbind type, OID 1.3.6.1.4.1.1.0)
    const lengthAt = HEADER_SIZE + 8 + 4 + 4 + 3 * 4;
    expect(ours.readUInt32BE(lengthAt)).toBe(Buffer.byteLength(text));
    expect(theirs.readUInt32BE(lengthAt)).toBe(text.length); // ≠ the bytes that follow: what made us write our own codec
    expect(text.length).not.toBe(Buffer.byteLength(text));
  });

  it('decodes GetBulk with a non-default context, and little-endian PDUs', () => {
    const ctx = Buffer.from('ctx1');
    const start = Buffer.from([2, 4, 1, 0, 0, 0, 0, 1, 0, 0, 0, 7]); // 1.3.6.1.4.1.7, include=1
    const end = Buffer.from([0, 0, 0, 0]);
    const payload = Buffer.concat([Buffer.from([0, 0, 0, 4]), ctx, Buffer.from([0, 1, 0, 10]), start, end]);
    const h = Buffer.from([1, PduType.GetBulk, Flag.NetworkByteOrder | Flag.NonDefaultContext, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, payload.length]);
    expect(decodePdu(Buffer.concat([h, payload]))).toMatchObject({
      kind: 'getbulk', context: ctx, nonRepeaters: 1, maxRepetitions: 10, ranges: [{ start: [1, 3, 6, 1, 4, 1, 7], include: true, end: [] }],
    });
    // little-endian Get: every multi-byte field swapped
    const le = Buffer.from([1, PduType.Get, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 16, 0, 0, 0,
      2, 4, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    expect(decodePdu(le)).toMatchObject({ kind: 'get', header: { sessionId: 1, packetId: 3 }, ranges: [{ start: [1, 3, 6, 1, 4, 1, 9], end: [] }] });
  });

  it('refuses truncated or inconsistent PDUs with AgentxParseError, never reading past the end', () => {
    const b = encodeNotify(H, SAMPLE);
    expect(() => decodePdu(b.subarray(0, b.length - 4))).toThrow(AgentxParseError);
    const lying = Buffer.from(encodeResponse(H, { varbinds: SAMPLE }));
    const text = lying.indexOf(Buffer.from('ovirt-node-ng'));
    lying.writeUInt32BE(0xfffffff0, text - 4); // SAMPLE[1]'s octet string claims 4 GiB
    expect(() => decodePdu(lying)).toThrow(AgentxParseError);
    const bad = Buffer.from(b);
    bad.writeUInt8(2, 0);
    expect(() => decodePdu(bad)).toThrow(/version 2/);
  });
});
