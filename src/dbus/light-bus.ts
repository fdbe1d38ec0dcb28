/**
 * A client-only bus connection for short-lived tools (nodectl): method calls, their replies, and signals — nothing
 * else. dbus-next's MessageBus also loads its service side and its introspection/XML parser (xml2js), about half of
 * its load time, which a CLI that answers in a fraction of a second pays on every run. This uses dbus-next's own
 * wire layer (handshake, marshalling, the same Message, Variant and DBusError classes) and adds what MessageBus adds
 * for a client: Hello first, serials, reply matching. Like src/dbus/connect.ts it uses Node's net.Socket, never
 * usocket.
 */
import { EventEmitter } from 'node:events';
import createConnection = require('dbus-next/lib/connection');
import { Message } from 'dbus-next/lib/message-type';
import { DBusError } from 'dbus-next/lib/errors';
import { netSocketAddress } from './address';

export { Message, DBusError };
export { Variant } from 'dbus-next/lib/variant';

/** dbus-next's MessageType values (lib/constants). */
const METHOD_RETURN = 2;
const ERROR = 3;
const SIGNAL = 4;

interface Pending {
  resolve: (m: Message) => void;
  reject: (e: unknown) => void;
}

export interface LightBusEvents {
  message: [Message];
  error: [unknown];
}

export class LightBus extends EventEmitter<LightBusEvents> {
  private readonly conn: ReturnType<typeof createConnection>;
  private serial = 1;
  private readonly pending = new Map<number, Pending>();
  private failed: unknown = null;
  /** Our unique name, once Hello answered. */
  readonly hello: Promise<string>;

  constructor(address: string) {
    super();
    this.conn = createConnection({ busAddress: netSocketAddress(address) });
    this.conn.on('message', (msg: unknown) => {
      if (msg instanceof Message) this.dispatch(msg);
    });
    this.conn.on('error', (e: unknown) => this.fail(e));
    this.conn.on('end', () => this.fail(new Error('the bus closed the connection')));
    // The bus requires Hello as the first message; later calls queue behind it on the same stream.
    this.hello = this.call(new Message({
      destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'Hello',
    })).then((reply) => String(reply.body[0]));
    this.hello.catch(() => undefined);
  }

  private fail(e: unknown): void {
    if (this.failed !== null) return;
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private dispatch(msg: Message): void {
    if (msg.type === METHOD_RETURN || msg.type === ERROR) {
      // (dbus-next's types say string; the wire layer gives a number)
      const serial = Number(msg.replySerial);
      const p = this.pending.get(serial);
      if (!p) return;
      this.pending.delete(serial);
      if (msg.type === ERROR) p.reject(new DBusError(msg.errorName ?? 'org.freedesktop.DBus.Error.Failed', String(msg.body[0] ?? ''), msg));
      else p.resolve(msg);
    } else if (msg.type === SIGNAL) {
      this.emit('message', msg);
    }
  }

  /** Send a method call; resolves with the reply, rejects with DBusError (or the connection's failure). */
  call(msg: Message): Promise<Message> {
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise<Message>((resolve, reject) => {
      msg.serial = this.serial++;
      this.pending.set(msg.serial, { resolve, reject });
      this.conn.message(msg);
    });
  }

  disconnect(): void {
    this.failed ??= new Error('disconnected');
    this.conn.stream.destroy();
  }
}
