/**
 * The AgentX wire format (RFC 2741 §6): encoding the PDUs a subagent sends (Open, Close, Register, Notify, Ping,
 * Response) and decoding the ones a master sends (Get, GetNext, GetBulk, the Set phases, Close, Response).
 *
 * Why not net-snmp's AgentXPdu: its octet strings are written with the string's length in UTF-16 code units but its
 * bytes in UTF-8, so any non-ASCII text (an error message with "…") corrupts the stream; it cannot write a Buffer;
 * and it ignores the search range's `include` flag and end. This codec works on Buffers and bytes only.
 *
 * Input is untrusted: every decode is bounds-checked and throws AgentxParseError instead of reading past the end.
 */
import type { Oid } from './oid';

export const AGENTX_VERSION = 1;
export const HEADER_SIZE = 20;

export const PduType = {
  Open: 1,
  Close: 2,
  Register: 3,
  Unregister: 4,
  Get: 5,
  GetNext: 6,
  GetBulk: 7,
  TestSet: 8,
  CommitSet: 9,
  UndoSet: 10,
  CleanupSet: 11,
  Notify: 12,
  Ping: 13,
  IndexAllocate: 14,
  IndexDeallocate: 15,
  AddAgentCaps: 16,
  RemoveAgentCaps: 17,
  Response: 18,
} as const;
export type PduTypeNumber = (typeof PduType)[keyof typeof PduType];

export const Flag = {
  InstanceRegistration: 0x01,
  NewIndex: 0x02,
  AnyIndex: 0x04,
  NonDefaultContext: 0x08,
  NetworkByteOrder: 0x10,
} as const;

/** VarBind types (RFC 2741 §5.4). */
export const ValueType = {
  Integer: 2,
  OctetString: 4,
  Null: 5,
  ObjectIdentifier: 6,
  IpAddress: 64,
  Counter32: 65,
  Gauge32: 66,
  TimeTicks: 67,
  Opaque: 68,
  Counter64: 70,
  NoSuchObject: 128,
  NoSuchInstance: 129,
  EndOfMibView: 130,
} as const;
export type ValueTypeNumber = (typeof ValueType)[keyof typeof ValueType];

/** res.error values of a Response (RFC 2741 §6.2.16) and the SNMP errors a subagent uses for sets. */
export const ResponseError = {
  noAgentXError: 0,
  genErr: 5,
  notWritable: 17,
  openFailed: 256,
  notOpen: 257,
  unsupportedContext: 262,
  duplicateRegistration: 263,
  unknownRegistration: 264,
  parseError: 266,
  requestDenied: 267,
  processingError: 268,
} as const;

/** Close reasons (RFC 2741 §6.2.2). */
export const CloseReason = { other: 1, parseError: 2, protocolError: 3, timeouts: 4, shutdown: 5, byManager: 6 } as const;

export type VarbindValue =
  | { type: typeof ValueType.Integer; value: number }
  | { type: typeof ValueType.Counter32 | typeof ValueType.Gauge32 | typeof ValueType.TimeTicks; value: number }
  | { type: typeof ValueType.Counter64; value: bigint }
  | { type: typeof ValueType.OctetString | typeof ValueType.Opaque | typeof ValueType.IpAddress; value: Buffer }
  | { type: typeof ValueType.ObjectIdentifier; value: Oid }
  | { type: typeof ValueType.Null | typeof ValueType.NoSuchObject | typeof ValueType.NoSuchInstance | typeof ValueType.EndOfMibView };

export type Varbind = { oid: Oid } & VarbindValue;

export interface Header {
  version: number;
  type: number;
  flags: number;
  sessionId: number;
  transactionId: number;
  packetId: number;
  payloadLength: number;
}

export interface SearchRange {
  start: Oid;
  /** The start itself may be returned (GetNext/GetBulk: "include" bit of the start OID). */
  include: boolean;
  /** Upper bound, exclusive; empty = unbounded. */
  end: Oid;
}

export type MasterPdu =
  | { kind: 'get' | 'getnext'; header: Header; context: Buffer | null; ranges: SearchRange[] }
  | { kind: 'getbulk'; header: Header; context: Buffer | null; nonRepeaters: number; maxRepetitions: number; ranges: SearchRange[] }
  | { kind: 'testset'; header: Header; context: Buffer | null; varbinds: Varbind[] }
  | { kind: 'commitset' | 'undoset' | 'cleanupset'; header: Header }
  | { kind: 'close'; header: Header; reason: number }
  | { kind: 'response'; header: Header; sysUpTime: number; error: number; index: number; varbinds: Varbind[] }
  | { kind: 'other'; header: Header };

export class AgentxParseError extends Error {}

const INTERNET: Oid = [1, 3, 6, 1];

// ---- encoding --------------------------------------------------------------------------------------------------

/** A growable big-endian writer. */
class Writer {
  private buf = Buffer.alloc(256);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v & 0xff, this.length);
    this.length += 1;
  }

  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }

  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.length);
    this.length += 4;
  }

  u64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64BE(BigInt.asUintN(64, v), this.length);
    this.length += 8;
  }

  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }

  patchU32(offset: number, v: number): void {
    this.buf.writeUInt32BE(v >>> 0, offset);
  }

  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

function writeOid(w: Writer, oid: Oid, include = false): void {
  let prefix = 0;
  let rest: Oid = oid;
  const p = oid[4];
  if (oid.length >= 5 && oid[0] === 1 && oid[1] === 3 && oid[2] === 6 && oid[3] === 1 && p !== undefined && p >= 1 && p <= 255) {
    prefix = p;
    rest = oid.slice(5);
  }
  if (rest.length > 128) throw new Error(`OID too long for AgentX (${oid.length} sub-identifiers)`);
  w.u8(rest.length);
  w.u8(prefix);
  w.u8(include ? 1 : 0);
  w.u8(0);
  for (const s of rest) w.u32(s);
}

function writeOctets(w: Writer, b: Buffer): void {
  w.u32(b.length);
  w.bytes(b);
  const pad = (4 - (b.length % 4)) % 4;
  for (let i = 0; i < pad; i++) w.u8(0);
}

function writeVarbind(w: Writer, vb: Varbind): void {
  w.u16(vb.type);
  w.u16(0);
  writeOid(w, vb.oid);
  switch (vb.type) {
    case ValueType.Integer:
      w.i32(vb.value);
      break;
    case ValueType.Counter32:
    case ValueType.Gauge32:
    case ValueType.TimeTicks:
      w.u32(vb.value);
      break;
    case ValueType.Counter64:
      w.u64(vb.value);
      break;
    case ValueType.OctetString:
    case ValueType.Opaque:
    case ValueType.IpAddress:
      writeOctets(w, vb.value);
      break;
    case ValueType.ObjectIdentifier:
      writeOid(w, vb.value);
      break;
    case ValueType.Null:
    case ValueType.NoSuchObject:
    case ValueType.NoSuchInstance:
    case ValueType.EndOfMibView:
      break;
  }
}

export interface HeaderFields {
  sessionId: number;
  transactionId: number;
  packetId: number;
  flags?: number;
}

function pdu(type: PduTypeNumber, h: HeaderFields, body: (w: Writer) => void): Buffer {
  const w = new Writer();
  w.u8(AGENTX_VERSION);
  w.u8(type);
  w.u8((h.flags ?? 0) | Flag.NetworkByteOrder);
  w.u8(0);
  w.u32(h.sessionId);
  w.u32(h.transactionId);
  w.u32(h.packetId);
  w.u32(0);
  body(w);
  w.patchU32(16, w.length - HEADER_SIZE);
  return w.done();
}

export function encodeOpen(h: HeaderFields, timeoutSec: number, id: Oid, description: string): Buffer {
  return pdu(PduType.Open, h, (w) => {
    w.u8(timeoutSec);
    w.u8(0);
    w.u8(0);
    w.u8(0);
    writeOid(w, id);
    writeOctets(w, Buffer.from(description, 'utf8'));
  });
}

export function encodeClose(h: HeaderFields, reason: number): Buffer {
  return pdu(PduType.Close, h, (w) => {
    w.u8(reason);
    w.u8(0);
    w.u8(0);
    w.u8(0);
  });
}

export function encodeRegister(h: HeaderFields, subtree: Oid, opts: { timeoutSec?: number; priority?: number } = {}): Buffer {
  return pdu(PduType.Register, h, (w) => {
    w.u8(opts.timeoutSec ?? 0);
    w.u8(opts.priority ?? 127);
    w.u8(0); // range_subid: no range
    w.u8(0);
    writeOid(w, subtree);
  });
}

export function encodeNotify(h: HeaderFields, varbinds: readonly Varbind[]): Buffer {
  return pdu(PduType.Notify, h, (w) => {
    for (const vb of varbinds) writeVarbind(w, vb);
  });
}

export function encodePing(h: HeaderFields): Buffer {
  return pdu(PduType.Ping, h, () => undefined);
}

export function encodeResponse(h: HeaderFields, r: { sysUpTime?: number; error?: number; index?: number; varbinds?: readonly Varbind[] }): Buffer {
  return pdu(PduType.Response, h, (w) => {
    w.u32(r.sysUpTime ?? 0);
    w.u16(r.error ?? 0);
    w.u16(r.index ?? 0);
    for (const vb of r.varbinds ?? []) writeVarbind(w, vb);
  });
}

// ---- decoding --------------------------------------------------------------------------------------------------

class Reader {
  private off: number;

  constructor(private readonly buf: Buffer, start: number, private readonly end: number, private readonly be: boolean) {
    this.off = start;
  }

  get remaining(): number {
    return this.end - this.off;
  }

  private need(n: number): void {
    if (this.off + n > this.end) throw new AgentxParseError(`truncated PDU: need ${n} more bytes at offset ${this.off}`);
  }

  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.off++);
  }

  u16(): number {
    this.need(2);
    const v = this.be ? this.buf.readUInt16BE(this.off) : this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.be ? this.buf.readUInt32BE(this.off) : this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.be ? this.buf.readInt32BE(this.off) : this.buf.readInt32LE(this.off);
    this.off += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.be ? this.buf.readBigUInt64BE(this.off) : this.buf.readBigUInt64LE(this.off);
    this.off += 8;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = Buffer.from(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return b;
  }

  skip(n: number): void {
    this.need(n);
    this.off += n;
  }
}

function readOid(r: Reader): { oid: Oid; include: boolean } {
  const n = r.u8();
  const prefix = r.u8();
  const include = r.u8();
  r.u8();
  if (n > 128) throw new AgentxParseError(`OID with ${n} sub-identifiers (at most 128)`);
  const subids: number[] = prefix === 0 ? [] : [...INTERNET, prefix];
  for (let i = 0; i < n; i++) subids.push(r.u32());
  return { oid: subids, include: include !== 0 };
}

function readOctets(r: Reader): Buffer {
  const n = r.u32();
  if (n > r.remaining) throw new AgentxParseError(`octet string of ${n} bytes exceeds the PDU`);
  const b = r.bytes(n);
  r.skip((4 - (n % 4)) % 4);
  return b;
}

function readVarbind(r: Reader): Varbind {
  const type = r.u16();
  r.u16();
  const { oid } = readOid(r);
  switch (type) {
    case ValueType.Integer:
      return { oid, type, value: r.i32() };
    case ValueType.Counter32:
    case ValueType.Gauge32:
    case ValueType.TimeTicks:
      return { oid, type, value: r.u32() };
    case ValueType.Counter64:
      return { oid, type, value: r.u64() };
    case ValueType.OctetString:
    case ValueType.Opaque:
    case ValueType.IpAddress:
      return { oid, type, value: readOctets(r) };
    case ValueType.ObjectIdentifier:
      return { oid, type, value: readOid(r).oid };
    case ValueType.Null:
    case ValueType.NoSuchObject:
    case ValueType.NoSuchInstance:
    case ValueType.EndOfMibView:
      return { oid, type };
    default:
      throw new AgentxParseError(`unknown varbind type ${type}`);
  }
}

function readVarbinds(r: Reader): Varbind[] {
  const out: Varbind[] = [];
  while (r.remaining > 0) out.push(readVarbind(r));
  return out;
}

function readRanges(r: Reader): SearchRange[] {
  const out: SearchRange[] = [];
  while (r.remaining > 0) {
    const start = readOid(r);
    const end = readOid(r);
    out.push({ start: start.oid, include: start.include, end: end.oid });
  }
  return out;
}

/** The header of a PDU at buf[offset…] (which must hold at least HEADER_SIZE bytes). */
export function decodeHeader(buf: Buffer, offset = 0): Header {
  if (buf.length - offset < HEADER_SIZE) throw new AgentxParseError('truncated header');
  const flags = buf.readUInt8(offset + 2);
  const be = (flags & Flag.NetworkByteOrder) !== 0;
  const u32 = (at: number): number => (be ? buf.readUInt32BE(offset + at) : buf.readUInt32LE(offset + at));
  return {
    version: buf.readUInt8(offset),
    type: buf.readUInt8(offset + 1),
    flags,
    sessionId: u32(4),
    transactionId: u32(8),
    packetId: u32(12),
    payloadLength: u32(16),
  };
}

/** Decode one complete PDU (exactly HEADER_SIZE + payloadLength bytes, as the framer delivers them). */
export function decodePdu(buf: Buffer): MasterPdu {
  const header = decodeHeader(buf);
  if (header.version !== AGENTX_VERSION) throw new AgentxParseError(`unsupported AgentX version ${header.version}`);
  if (header.payloadLength % 4 !== 0) throw new AgentxParseError(`payload length ${header.payloadLength} is not a multiple of 4`);
  if (buf.length !== HEADER_SIZE + header.payloadLength) {
    throw new AgentxParseError(`PDU is ${buf.length} bytes but its header says ${HEADER_SIZE + header.payloadLength}`);
  }
  const r = new Reader(buf, HEADER_SIZE, buf.length, (header.flags & Flag.NetworkByteOrder) !== 0);
  const context = (): Buffer | null => ((header.flags & Flag.NonDefaultContext) !== 0 ? readOctets(r) : null);
  switch (header.type) {
    case PduType.Get:
      return { kind: 'get', header, context: context(), ranges: readRanges(r) };
    case PduType.GetNext:
      return { kind: 'getnext', header, context: context(), ranges: readRanges(r) };
    case PduType.GetBulk: {
      const ctx = context();
      const nonRepeaters = r.u16();
      const maxRepetitions = r.u16();
      return { kind: 'getbulk', header, context: ctx, nonRepeaters, maxRepetitions, ranges: readRanges(r) };
    }
    case PduType.TestSet:
      return { kind: 'testset', header, context: context(), varbinds: readVarbinds(r) };
    case PduType.CommitSet:
      return { kind: 'commitset', header };
    case PduType.UndoSet:
      return { kind: 'undoset', header };
    case PduType.CleanupSet:
      return { kind: 'cleanupset', header };
    case PduType.Close:
      return { kind: 'close', header, reason: r.u8() };
    case PduType.Response: {
      const sysUpTime = r.u32();
      const error = r.u16();
      const index = r.u16();
      return { kind: 'response', header, sysUpTime, error, index, varbinds: readVarbinds(r) };
    }
    default:
      return { kind: 'other', header };
  }
}
