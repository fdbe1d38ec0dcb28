/**
 * Who is calling. dbus-next hides the message from method implementations; a method handler installed on the
 * bus (see installMessageHook) appends the Message to the arguments of calls to our objects.
 */
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
