/** System bus addresses (no dbus-next here: light-weight clients import this without loading the library). */

export const DEFAULT_SYSTEM_BUS_ADDRESS = 'unix:path=/var/run/dbus/system_bus_socket';

/**
 * The address with every `unix:path=` entry rewritten to dbus-next's `unix:socket=` (net.Socket) form — dbus-next
 * would otherwise use its optional usocket transport, which truncates large writes (see src/dbus/connect.ts).
 */
export function netSocketAddress(address: string): string {
  return address.split(';').map((a) => a.replace(/^unix:path=/, 'unix:socket=')).join(';');
}

/** DBUS_SYSTEM_BUS_ADDRESS or the standard socket. */
export function systemBusAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env['DBUS_SYSTEM_BUS_ADDRESS'] || DEFAULT_SYSTEM_BUS_ADDRESS;
}
