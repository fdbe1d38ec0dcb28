/**
 * Declarations for the parts of dbus-next's wire layer that src/dbus/light-bus.ts loads directly (dbus-next has no
 * "exports" map; these paths are its own modules, the same ones its MessageBus uses). Only what we call is declared.
 */
declare module 'dbus-next/lib/connection' {
  import type { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';
  interface WireConnection extends EventEmitter {
    /** Marshal and send (buffered until the handshake is done). */
    message(msg: unknown): void;
    readonly stream: Socket;
    end(): WireConnection;
  }
  function createConnection(opts: { busAddress: string }): WireConnection;
  export = createConnection;
}

declare module 'dbus-next/lib/message-type' {
  export { Message } from 'dbus-next';
}

declare module 'dbus-next/lib/variant' {
  export { Variant } from 'dbus-next';
}

declare module 'dbus-next/lib/errors' {
  export { DBusError } from 'dbus-next';
}
