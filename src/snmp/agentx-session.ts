/**
 * The AgentX transport: one session with the master agent (snmpd) over a unix socket or TCP, that
 *   - opens the session and registers our subtree (Open → Register, each awaiting its Response),
 *   - answers Get / GetNext / GetBulk from the current MibView, one snapshot per request, in arrival order,
 *   - refuses every Set (notWritable: the MIB is read-only),
 *   - sends Notify PDUs (queued, up to a limit, while not registered),
 *   - pings the master now and then, and
 *   - on any loss (socket closed or broken, Close from the master, a request unanswered, an out-of-step stream)
 *     drops the connection and starts over with a fresh socket after a back-off (initialMs doubling to maxMs; reset
 *     once registered). snmpd restarts are therefore survived without help.
 *
 * Bytes go through PduFramer (the re-framing fix for net-snmp's one-PDU-per-data-event parser) and agentx-pdu's
 * codec. Nothing here knows about the daemon or the MIB's meaning.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Logger } from '../log';
import { FramingError, PduFramer } from './agentx-framer';
import type { MasterPdu, Varbind } from './agentx-pdu';
import {
  AgentxParseError, CloseReason, decodeHeader, decodePdu, encodeClose, encodeNotify, encodeOpen, encodePing, encodeRegister,
  encodeResponse, ResponseError,
} from './agentx-pdu';
import type { MibView } from './mib-view';
import type { Oid } from './oid';
import { formatOid } from './oid';

export type MasterAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export const DEFAULT_MASTER = '/var/agentx/master';

/**
 * snmpd's agentXSocket syntax: "unix:/path", "/path" (unix), "tcp:host:port", "host:port" or "tcp:port"
 * (localhost). Hosts are names or IPv4 addresses; "[::1]:705" for IPv6.
 */
export function parseMasterAddress(text: string): MasterAddress {
  const s = text.trim();
  if (s.startsWith('unix:')) {
    const p = s.slice(5);
    if (!p.startsWith('/')) throw new Error(`AgentX master "${text}": a unix socket path must be absolute`);
    return { kind: 'unix', path: p };
  }
  if (s.startsWith('/')) return { kind: 'unix', path: s };
  const rest = s.startsWith('tcp:') ? s.slice(4) : s;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(rest) ?? /^()()(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new Error(`AgentX master "${text}": expected unix:/path, /path, tcp:host:port or host:port`);
  }
  return { kind: 'tcp', host: m[1] || m[2] || 'localhost', port };
}

export function formatMasterAddress(a: MasterAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

export interface SessionOptions {
  master: MasterAddress;
  /** The subtree registered with the master (our MIB's root). */
  subtree: Oid;
  /** The Open PDU's id OID and description. */
  id: Oid;
  description: string;
  /** The instances to answer from: called once per request. */
  view: () => MibView;
  log: Logger;
  /** Reconnect back-off: the first delay, doubled per failed attempt up to maxMs (default 500 → 10000 ms). */
  backoff?: { initialMs: number; maxMs: number };
  /** How long the master may take to answer our Open/Register/Notify/Ping (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Ping the master this often while registered (default 30000 ms; 0 = never). */
  pingIntervalMs?: number;
  /** Notifications kept while not registered (oldest dropped first; default 64). */
  maxQueuedNotifications?: number;
  /** Seam for tests: open the socket. */
  connect?: (a: MasterAddress) => net.Socket;
}

export type SessionState = 'stopped' | 'connecting' | 'opening' | 'registering' | 'registered' | 'waiting';

interface Pending {
  resolve: (pdu: Extract<MasterPdu, { kind: 'response' }>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Counters for logs, tests and the bench. */
export interface SessionStats {
  connects: number;
  registrations: number;
  requests: number;
  notificationsSent: number;
  notificationsDropped: number;
  /** Data events that carried several PDUs, and PDUs split over several events (all answered thanks to PduFramer). */
  coalescedEvents: number;
  splitPdus: number;
}

class ConnectionLost extends Error {}

export class AgentxSession extends EventEmitter {
  private socket: net.Socket | undefined;
  private framer = new PduFramer();
  private sessionId = 0;
  private nextPacketId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Varbind[][] = [];
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private _state: SessionState = 'stopped';
  private generation = 0;
  readonly stats: SessionStats = { connects: 0, registrations: 0, requests: 0, notificationsSent: 0, notificationsDropped: 0, coalescedEvents: 0, splitPdus: 0 };

  constructor(private readonly opts: SessionOptions) {
    super();
  }

  get state(): SessionState {
    return this._state;
  }

  private setState(s: SessionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  start(): void {
    if (this._state !== 'stopped') return;
    this.connect();
  }

  /** Close the session politely (Close PDU, then the socket) and stop reconnecting. */
  async stop(): Promise<void> {
    const wasRegistered = this._state === 'registered';
    this.setState('stopped');
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const sock = this.socket;
    if (sock === undefined) return;
    if (wasRegistered) {
      try {
        await this.request((h) => encodeClose(h, CloseReason.shutdown), 1000);
      } catch {
        // the master may already be gone; the socket is closed below either way
      }
    }
    this.teardown(sock);
  }

  /** Send a notification (varbinds from snmpTrapOID.0 on); queued while the session is not registered. */
  notify(varbinds: Varbind[]): void {
    if (this._state !== 'registered') {
      this.queue.push(varbinds);
      const max = this.opts.maxQueuedNotifications ?? 64;
      while (this.queue.length > max) {
        this.queue.shift();
        this.stats.notificationsDropped++;
      }
      return;
    }
    this.sendNotify(varbinds);
  }

  private sendNotify(varbinds: Varbind[]): void {
    this.request((h) => encodeNotify({ ...h, sessionId: this.sessionId }, varbinds)).then((r) => {
      if (r.error !== 0) this.opts.log.warn(`agentx: the master refused a notification (error ${r.error})`);
      else this.stats.notificationsSent++;
    }, (e: unknown) => {
      this.opts.log.warn(`agentx: notification not confirmed: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  // ---- connection lifecycle --------------------------------------------------------------------------------

  private connect(): void {
    const gen = ++this.generation;
    this.setState('connecting');
    this.framer = new PduFramer();
    const target = formatMasterAddress(this.opts.master);
    const a = this.opts.master;
    const sock = this.opts.connect
      ? this.opts.connect(a)
      : a.kind === 'unix' ? net.createConnection({ path: a.path }) : net.createConnection({ host: a.host, port: a.port });
    this.socket = sock;
    if (a.kind === 'tcp') sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => {
      if (gen === this.generation) this.onData(sock, chunk);
    });
    sock.on('error', (e: Error) => {
      if (gen === this.generation) this.lost(sock, `${target}: ${e.message}`);
    });
    sock.on('close', () => {
      if (gen === this.generation) this.lost(sock, `${target}: connection closed`);
    });
    sock.once('connect', () => {
      if (gen !== this.generation) return;
      this.stats.connects++;
      void this.handshake(sock, target);
    });
  }

  private async handshake(sock: net.Socket, target: string): Promise<void> {
    try {
      this.setState('opening');
      const open = await this.request((h) => encodeOpen(h, 0, this.opts.id, this.opts.description));
      if (open.error !== 0) throw new Error(`Open refused (error ${open.error})`);
      this.sessionId = open.header.sessionId;
      this.setState('registering');
      const reg = await this.request((h) => encodeRegister({ ...h, sessionId: this.sessionId }, this.opts.subtree));
      if (reg.error !== 0) {
        const why = reg.error === ResponseError.duplicateRegistration ? ' (duplicateRegistration: is another subagent serving it?)' : '';
        throw new Error(`Register ${formatOid(this.opts.subtree)} refused (error ${reg.error})${why}`);
      }
    } catch (e) {
      if (e instanceof ConnectionLost || this.socket !== sock) return; // already being handled
      this.opts.log.warn(`agentx: ${target}: ${e instanceof Error ? e.message : String(e)}`);
      this.lost(sock, 'handshake failed');
      return;
    }
    this.attempt = 0;
    this.stats.registrations++;
    this.setState('registered');
    this.opts.log.info(`agentx: registered ${formatOid(this.opts.subtree)} with ${target} (session ${this.sessionId})`);
    this.emit('registered', this.sessionId);
    const queued = this.queue;
    this.queue = [];
    for (const vbs of queued) this.sendNotify(vbs);
    const every = this.opts.pingIntervalMs ?? 30_000;
    if (every > 0) {
      this.pingTimer = setInterval(() => {
        this.request((h) => encodePing({ ...h, sessionId: this.sessionId })).then((r) => {
          if (r.error !== 0) this.lost(sock, `ping answered with error ${r.error}`);
        }, (e: unknown) => {
          if (!(e instanceof ConnectionLost)) this.lost(sock, `ping: ${e instanceof Error ? e.message : String(e)}`);
        });
      }, every);
      this.pingTimer.unref();
    }
  }

  /** The connection `sock` is gone (or must go): clean up and schedule the next attempt. */
  private lost(sock: net.Socket, why: string): void {
    if (this.socket !== sock) return;
    const was = this._state;
    this.teardown(sock);
    if (was === 'stopped') return;
    if (was === 'registered') this.opts.log.warn(`agentx: lost the master (${why}); reconnecting`);
    else this.opts.log.debug(`agentx: ${why}`);
    this.emit('disconnected', why);
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 500, maxMs: 10_000 };
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    this.setState('waiting');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private teardown(sock: net.Socket): void {
    if (this.socket === sock) this.socket = undefined;
    this.generation++;
    clearInterval(this.pingTimer);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ConnectionLost('connection lost'));
    }
    this.pending.clear();
    sock.destroy();
  }

  /** Send a request PDU built with a fresh packet id; resolves with the master's Response. */
  private request(build: (h: { sessionId: number; transactionId: number; packetId: number }) => Buffer, timeoutMs?: number): Promise<Extract<MasterPdu, { kind: 'response' }>> {
    const sock = this.socket;
    if (sock === undefined) return Promise.reject(new ConnectionLost('not connected'));
    const packetId = this.nextPacketId;
    this.nextPacketId = (this.nextPacketId % 0x7fff_ffff) + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(packetId);
        reject(new Error(`no answer from the master within ${timeoutMs ?? this.opts.requestTimeoutMs ?? 5000} ms`));
      }, timeoutMs ?? this.opts.requestTimeoutMs ?? 5000);
      timer.unref();
      this.pending.set(packetId, { resolve, reject, timer });
      sock.write(build({ sessionId: this.sessionId, transactionId: 0, packetId }));
    });
  }

  // ---- incoming ---------------------------------------------------------------------------------------------

  private onData(sock: net.Socket, chunk: Buffer): void {
    let pdus: Buffer[];
    const { coalescedEvents, splitPdus } = this.framer;
    try {
      pdus = this.framer.push(chunk);
      this.stats.coalescedEvents += this.framer.coalescedEvents - coalescedEvents;
      this.stats.splitPdus += this.framer.splitPdus - splitPdus;
    } catch (e) {
      this.lost(sock, e instanceof FramingError ? `out-of-step stream: ${e.message}` : String(e));
      return;
    }
    for (const bytes of pdus) {
      if (this.socket !== sock) return;
      this.onPdu(sock, bytes);
    }
  }

  private onPdu(sock: net.Socket, bytes: Buffer): void {
    let pdu: MasterPdu;
    try {
      pdu = decodePdu(bytes);
    } catch (e) {
      if (!(e instanceof AgentxParseError)) throw e;
      // The frame was whole; only its content is bad. Answer parseError (RFC 2741 §7.1) and carry on.
      const h = decodeHeader(bytes);
      this.opts.log.warn(`agentx: unparsable PDU (type ${h.type}): ${e.message}`);
      sock.write(encodeResponse(h, { error: ResponseError.parseError }));
      return;
    }
    const h = pdu.header;
    switch (pdu.kind) {
      case 'response': {
        const p = this.pending.get(h.packetId);
        if (p === undefined) {
          this.opts.log.debug(`agentx: unexpected Response for packet ${h.packetId}`);
          return;
        }
        this.pending.delete(h.packetId);
        clearTimeout(p.timer);
        p.resolve(pdu);
        return;
      }
      case 'get':
      case 'getnext':
      case 'getbulk': {
        this.stats.requests++;
        if (pdu.context !== null) {
          sock.write(encodeResponse(h, { error: ResponseError.unsupportedContext, index: 0 }));
          return;
        }
        const view = this.opts.view();
        let varbinds: Varbind[];
        if (pdu.kind === 'getbulk') varbinds = view.getBulk(pdu.nonRepeaters, pdu.maxRepetitions, pdu.ranges);
        else if (pdu.kind === 'get') varbinds = pdu.ranges.map((r) => view.get(r.start));
        else varbinds = pdu.ranges.map((r) => view.getNext(r));
        sock.write(encodeResponse(h, { varbinds }));
        return;
      }
      case 'testset':
        sock.write(encodeResponse(h, { error: ResponseError.notWritable, index: 1 }));
        return;
      case 'commitset':
        sock.write(encodeResponse(h, { error: 14 /* commitFailed */ }));
        return;
      case 'undoset':
        sock.write(encodeResponse(h, { error: 15 /* undoFailed */ }));
        return;
      case 'cleanupset':
        return; // no response (RFC 2741 §7.2.4.4)
      case 'close':
        this.lost(sock, `the master closed the session (reason ${pdu.reason})`);
        return;
      case 'other':
        this.opts.log.debug(`agentx: ignoring PDU type ${h.type}`);
        return;
    }
  }
}
