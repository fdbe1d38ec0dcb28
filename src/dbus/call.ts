/**
 * Who is calling. dbus-next hides the message from method implementations; a method handler installed on the
 * bus (see installMessageHook) appends the Message to the arguments of calls to our objects.
 */
import * as fs from 'node:fs';
import type { MessageBus } from 'dbus-next';
import { Message } from 'dbus-next';
import { FailedError, InvalidArgumentError } from '../errors';

export interface CallContext {
  /** Unique bus name (":1.42") — what polkit checks. */
  readonly sender: string;
}

export function callContext(msg: unknown): CallContext {
  if (msg instanceof Message && typeof msg.sender === 'string' && msg.sender.startsWith(':')) return { sender: msg.sender };
  throw new FailedError('internal: method called without its message');
}

/** Expected in-signatures of our methods, to turn a wrong argument type into a named error. */
export type Signatures = ReadonlyMap<string, ReadonlyMap<string, string>>;

export function installMessageHook(bus: MessageBus, pathPrefix: string, signatures: Signatures): void {
  bus.addMethodHandler((msg: Message): boolean => {
    if (!msg.path || !(msg.path === pathPrefix || msg.path.startsWith(`${pathPrefix}/`))) return false;
    const members = signatures.get(msg.interface);
    const expected = members?.get(msg.member);
    if (expected === undefined) return false;
    const got = msg.signature ?? '';
    if (got !== expected) {
      const err = new InvalidArgumentError(`${msg.member} takes arguments (${expected}), got (${got})`);
      bus.send(Message.newError(msg as unknown as string, err.dbusName, err.message));
      return true;
    }
    msg.body = [...msg.body, msg];
    return false;
  });
}

const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

/**
 * org.freedesktop.DBus.Peer.GetMachineId, answered here. dbus-next answers it itself with a synchronous
 * readFileSync('/var/lib/dbus/machine-id') inside its message loop: where that file is missing the exception is
 * uncaught and the daemon dies — and the bus policy lets anyone call Peer. Any path, like dbus-next.
 */
export function installPeerGuard(bus: MessageBus, files: readonly string[] = MACHINE_ID_FILES): void {
  bus.addMethodHandler((msg: Message): boolean => {
    if (msg.interface !== 'org.freedesktop.DBus.Peer' || msg.member !== 'GetMachineId' || (msg.signature ?? '') !== '') return false;
    let id: string | undefined;
    for (const f of files) {
      try {
        id = fs.readFileSync(f, 'utf8').trim();
        if (/^[0-9a-f]{32}$/.test(id)) break;
        id = undefined;
      } catch {
        // try the next one
      }
    }
    bus.send(id === undefined
      ? Message.newError(msg as unknown as string, 'org.freedesktop.DBus.Error.FileNotFound', 'no machine id on this host')
      : Message.newMethodReturn(msg, 's', [id]));
    return true;
  });
}
