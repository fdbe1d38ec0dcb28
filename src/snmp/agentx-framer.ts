/**
 * AgentX PDU framing over a byte stream — the fix for net-snmp's subagent, which treats every TCP `data` event as
 * exactly one PDU. A stream has no message boundaries: the master's PDUs arrive coalesced (several in one event —
 * net-snmp then drops all but the first, so callbacks and answers are lost under parallel requests) or split (one PDU
 * over several events — net-snmp then parses garbage).
 *
 * A PDU is a 20-byte header whose last 4 bytes (offset 16) are the payload length, in network byte order when the
 * header's flags (offset 2) carry NETWORK_BYTE_ORDER (0x10), else little-endian; the payload follows. push() takes
 * whatever the socket delivered and returns every PDU that is now complete, each as its own Buffer; the rest waits.
 */
import { Flag, HEADER_SIZE } from './agentx-pdu';

/** Larger payloads are refused (a corrupt length would otherwise make us buffer forever). */
export const MAX_PAYLOAD = 1 << 20;

export class FramingError extends Error {}

export class PduFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** push() calls that completed more than one PDU (the case net-snmp's subagent loses all but the first of). */
  coalescedEvents = 0;
  /** PDUs that arrived over more than one push() (the case net-snmp's subagent parses as garbage). */
  splitPdus = 0;

  constructor(private readonly maxPayload = MAX_PAYLOAD) {}

  /** Bytes received but not yet part of a complete PDU. */
  get pending(): number {
    return this.buffered;
  }

  /** Feed received bytes; returns the complete PDUs in order. Throws FramingError on an impossible header. */
  push(data: Buffer): Buffer[] {
    if (data.length === 0) return [];
    const carried = this.buffered > 0;
    this.chunks.push(data);
    this.buffered += data.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < HEADER_SIZE) break;
      const head = this.peek(HEADER_SIZE);
      if (head[0] !== 1) throw new FramingError(`bad AgentX version ${String(head[0])}: the stream is out of step`);
      const be = ((head[2] ?? 0) & Flag.NetworkByteOrder) !== 0;
      const payload = be ? head.readUInt32BE(16) : head.readUInt32LE(16);
      if (payload > this.maxPayload) throw new FramingError(`AgentX payload of ${payload} bytes exceeds ${this.maxPayload}`);
      const total = HEADER_SIZE + payload;
      if (this.buffered < total) break;
      if (out.length === 0 && carried) this.splitPdus++;
      out.push(this.take(total));
    }
    if (out.length > 1) this.coalescedEvents++;
    return out;
  }

  /** Drop everything buffered (after a reconnect). */
  reset(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const pduBytes = Buffer.from(joined.subarray(0, n));
    const rest = joined.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return pduBytes;
  }
}
