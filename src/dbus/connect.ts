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
import * as dbus from 'dbus-next';

export const DEFAULT_SYSTEM_BUS_ADDRESS = 'unix:path=/var/run/dbus/system_bus_socket';

/** The address with every `unix:path=` entry rewritten to dbus-next's `unix:socket=` (net.Socket) form. */
export function netSocketAddress(address: string): string {
  return address.split(';').map((a) => a.replace(/^unix:path=/, 'unix:socket=')).join(';');
}

/** The system bus (DBUS_SYSTEM_BUS_ADDRESS or the standard socket), over net.Socket. */
export function connectSystemBus(env: NodeJS.ProcessEnv = process.env): dbus.MessageBus {
  const address = env['DBUS_SYSTEM_BUS_ADDRESS'] || DEFAULT_SYSTEM_BUS_ADDRESS;
  return dbus.sessionBus({ busAddress: netSocketAddress(address) });
}
