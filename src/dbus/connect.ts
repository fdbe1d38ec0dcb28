/**
 * Connecting to the system bus without dbus-next's `usocket` transport.
 *
 * dbus-next 0.10 opens `unix:path=` addresses with the optional native `usocket` module when it is installed (it is,
 * as an optional dependency). usocket 0.3 treats a PARTIAL sendmsg() as a complete write and drops the rest: any
 * message larger than the free space in the socket's send buffer (≈ 200 KiB when idle, far less under load) is cut
 * short, the bus sees a corrupt stream, and every later call on the connection hangs (test/bus/fuzz.test.ts found it
 * with a 300 KB argument; a big GetHistory reply or a burst of replies does the same). dbus-next's `unix:socket=`
 * key opens the same socket with Node's own net.Socket, which handles partial writes. We never pass file
 * descriptors, so nothing is lost.
 */
import type { Socket } from 'node:net';
import * as dbus from 'dbus-next';
import { netSocketAddress, systemBusAddress } from './address';

export { DEFAULT_SYSTEM_BUS_ADDRESS, netSocketAddress } from './address';

/**
 * Coalesce the messages written in one tick into one write(2). dbus-next writes every message with its own
 * stream.write(), i.e. its own syscall: answering a burst of calls that arrived in one read cost a write per reply
 * (a quarter of the daemon's busy time under bench/api's load). Corking until the next tick sends them together;
 * order and content are unchanged.
 */
export function coalesceWrites(stream: Socket): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    stream.uncork();
  };
  stream.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
}

/** dbus-next's underlying socket (a private field), when it is a net.Socket. */
function socketOf(bus: dbus.MessageBus): Socket | null {
  const conn: unknown = (bus as unknown as { _connection?: unknown })._connection;
  const stream: unknown = typeof conn === 'object' && conn !== null ? (conn as { stream?: unknown }).stream : undefined;
  return typeof stream === 'object' && stream !== null && typeof (stream as Socket).cork === 'function' ? (stream as Socket) : null;
}

/** The system bus (DBUS_SYSTEM_BUS_ADDRESS or the standard socket), over net.Socket. */
export function connectSystemBus(env: NodeJS.ProcessEnv = process.env): dbus.MessageBus {
  const bus = dbus.sessionBus({ busAddress: netSocketAddress(systemBusAddress(env)) });
  const socket = socketOf(bus);
  if (socket) coalesceWrites(socket);
  return bus;
}
