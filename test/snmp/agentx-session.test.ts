/**
 * AgentxSession against a scripted AgentX master (a net.Server in this process speaking the codec): the handshake,
 * answers to requests that arrive coalesced and split, Sets refused, reconnection with back-off after the master
 * goes away or refuses, and notifications queued while disconnected.
 */
import * as net from 'node:net';
import { PduFramer } from '../../src/snmp/agentx-framer';
import type { Varbind } from '../../src/snmp/agentx-pdu';
import { decodeHeader, decodePdu, encodeResponse, Flag, HEADER_SIZE, PduType, ResponseError, ValueType } from '../../src/snmp/agentx-pdu';
import { AgentxSession } from '../../src/snmp/agentx-session';
import { MibView } from '../../src/snmp/mib-view';
import { silentLogger } from '../../src/log';

const ROOT = [1, 3, 6, 1, 4, 1, 2312, 13, 2];
const A = [...ROOT, 1, 1, 3, 0];
const B = [...ROOT, 1, 1, 6, 0];
const VIEW = new MibView([
  { oid: A, type: ValueType.OctetString, value: Buffer.from('layer+1') },
  { oid: B, type: ValueType.Gauge32, value: 2 },
], [A.slice(0, -1), B.slice(0, -1)]);

/** A master → subagent request PDU (Get or TestSet) for `oid`, as snmpd would send it. */
function request(type: number, sessionId: number, packetId: number, oid: number[]): Buffer {
  const rest = oid.slice(5);
  const o = Buffer.alloc(4 + 4 * rest.length);
  o.writeUInt8(rest.length, 0);
  o.writeUInt8(oid[4] ?? 0, 1);
  rest.forEach((s, i) => o.writeUInt32BE(s, 4 + 4 * i));
  const payload = type === PduType.TestSet
    ? Buffer.concat([Buffer.from([0, ValueType.Integer, 0, 0]), o, Buffer.from([0, 0, 0, 1])])
    : Buffer.concat([o, Buffer.alloc(4)]); // start, null end
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt8(1, 0);
  h.writeUInt8(type, 1);
  h.writeUInt8(Flag.NetworkByteOrder, 2);
  h.writeUInt32BE(sessionId, 4);
  h.writeUInt32BE(1000 + packetId, 8);
  h.writeUInt32BE(packetId, 12);
  h.writeUInt32BE(payload.length, 16);
  return Buffer.concat([h, payload]);
}

interface Seen {
  conn: number;
  type: number;
  packetId: number;
  bytes: Buffer;
  at: number;
}

class FakeMaster {
  readonly seen: Seen[] = [];
  readonly sockets: net.Socket[] = [];
  registerError = 0;
  private readonly server: net.Server;
  port = 0;

  constructor() {
    this.server = net.createServer((sock) => {
      const conn = this.sockets.push(sock) - 1;
      const framer = new PduFramer();
      sock.on('error', () => undefined);
      sock.on('data', (chunk: Buffer) => {
        for (const bytes of framer.push(chunk)) {
          const h = decodeHeader(bytes);
          this.seen.push({ conn, type: h.type, packetId: h.packetId, bytes, at: Date.now() });
          const reply = { sessionId: h.type === PduType.Open ? 42 + conn : h.sessionId, transactionId: h.transactionId, packetId: h.packetId };
          if (h.type === PduType.Open) sock.write(encodeResponse(reply, {}));
          else if (h.type === PduType.Register) sock.write(encodeResponse(reply, { error: this.registerError }));
          else if (h.type === PduType.Notify || h.type === PduType.Ping || h.type === PduType.Close) sock.write(encodeResponse(reply, {}));
        }
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a !== null ? a.port : 0;
  }

  of(type: number, conn?: number): Seen[] {
    return this.seen.filter((s) => s.type === type && (conn === undefined || s.conn === conn));
  }

  /** Drop every connection (a master restart, seen from the subagent). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('AgentxSession', () => {
  let master: FakeMaster;
  let session: AgentxSession | undefined;

  const start = (backoff = { initialMs: 50, maxMs: 400 }): AgentxSession => {
    const s = new AgentxSession({
      master: { kind: 'tcp', host: '127.0.0.1', port: master.port }, subtree: ROOT, id: ROOT, description: 'test',
      view: () => VIEW, log: silentLogger, backoff, pingIntervalMs: 0,
    });
    session = s;
    s.start();
    return s;
  };

  beforeEach(async () => {
    master = new FakeMaster();
    await master.listen();
  });

  afterEach(async () => {
    await session?.stop();
    session = undefined;
    await master.close();
  });

  it('opens, registers the subtree, and answers every Get of a coalesced burst and a split PDU', async () => {
    const s = start();
    await until(() => s.state === 'registered');
    expect(master.seen.map((x) => x.type)).toEqual([PduType.Open, PduType.Register]);
    const reg = master.of(PduType.Register)[0];
    expect(reg?.bytes.readUInt32BE(4)).toBe(42); // the session id the Open's Response gave
    const sock = master.sockets[0];
    if (sock === undefined) throw new Error('no connection');
    // 100 requests in one write: net-snmp's subagent would answer only the first
    sock.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => request(PduType.Get, 42, 1 + i, i % 2 ? A : B))));
    // one request cut in three writes
    const split = request(PduType.Get, 42, 500, A);
    sock.write(split.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 20));
    sock.write(split.subarray(7, 30));
    await new Promise((r) => setTimeout(r, 20));
    sock.write(split.subarray(30));
    await until(() => master.of(PduType.Response).length === 101);
    const answers = master.of(PduType.Response).map((x) => decodePdu(x.bytes));
    expect(answers.map((p) => p.header.packetId)).toEqual([...Array.from({ length: 100 }, (_, i) => 1 + i), 500]);
    for (const p of answers) {
      if (p.kind !== 'response') throw new Error('not a response');
      const want: Varbind = p.header.packetId === 500 || p.header.packetId % 2 === 0 ? VIEW.get(A) : VIEW.get(B);
      expect(p.varbinds).toEqual([want]);
      expect(p.header.sessionId).toBe(42);
      expect(p.header.transactionId).toBe(1000 + p.header.packetId);
    }
    expect(s.stats.requests).toBe(101);
    expect(s.stats.coalescedEvents).toBeGreaterThan(0);
    expect(s.stats.splitPdus).toBe(1);
  });

  it('refuses a Set with notWritable', async () => {
    const s = start();
    await until(() => s.state === 'registered');
    master.sockets[0]?.write(request(PduType.TestSet, 42, 7, A));
    await until(() => master.of(PduType.Response).length === 1);
    const r = decodePdu(master.of(PduType.Response)[0]?.bytes ?? Buffer.alloc(0));
    expect(r).toMatchObject({ kind: 'response', error: ResponseError.notWritable, index: 1 });
  });

  it('reconnects after the master goes away, registers again, and sends the notifications queued meanwhile', async () => {
    const s = start();
    await until(() => s.state === 'registered');
    master.dropAll();
    await until(() => s.state !== 'registered');
    const trap: Varbind[] = [{ oid: [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0], type: ValueType.ObjectIdentifier, value: [...ROOT, 0, 1] }];
    s.notify(trap);
    s.notify(trap);
    await until(() => master.of(PduType.Register, 1).length === 1 && s.state === 'registered');
    await until(() => master.of(PduType.Notify, 1).length === 2);
    expect(master.of(PduType.Register, 1)[0]?.bytes.readUInt32BE(4)).toBe(43); // a fresh session
    expect(s.stats.registrations).toBe(2);
    await until(() => s.stats.notificationsSent === 2);
  });

  it('a refused registration is retried with a growing back-off, capped', async () => {
    master.registerError = ResponseError.duplicateRegistration;
    const s = start({ initialMs: 40, maxMs: 160 });
    await until(() => master.of(PduType.Open).length >= 5, 5000);
    const opens = master.of(PduType.Open).map((x) => x.at);
    const gaps = opens.slice(1).map((t, i) => t - (opens[i] ?? t));
    // 40, 80, 160, 160 ms (plus handshake time): growing, then capped
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(75);
    expect(gaps[2]).toBeGreaterThanOrEqual(150);
    expect(gaps[3]).toBeLessThan(400);
    expect(s.state).not.toBe('registered');
    master.registerError = 0;
    await until(() => s.state === 'registered', 2000);
  });

  it('connects to a unix socket as well, and stop() closes the session with a Close PDU', async () => {
    const path = `/tmp/imgbased-agentx-test-${process.pid}.sock`;
    const server = net.createServer((sock) => {
      const framer = new PduFramer();
      sock.on('data', (c: Buffer) => {
        for (const b of framer.push(c)) {
          const h = decodeHeader(b);
          if (h.type === PduType.Close) master.seen.push({ conn: 9, type: h.type, packetId: h.packetId, bytes: b, at: Date.now() });
          sock.write(encodeResponse({ sessionId: 7, transactionId: 0, packetId: h.packetId }, {}));
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
    try {
      const s = new AgentxSession({ master: { kind: 'unix', path }, subtree: ROOT, id: ROOT, description: 't', view: () => VIEW, log: silentLogger, pingIntervalMs: 0 });
      s.start();
      await until(() => s.state === 'registered');
      await s.stop();
      expect(master.of(PduType.Close, 9)).toHaveLength(1);
      expect(s.state).toBe('stopped');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
