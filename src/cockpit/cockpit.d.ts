/**
 * The part of Cockpit's `cockpit` global (base1/cockpit.js, loaded by index.html before our modules) that this page
 * uses. Written from the Cockpit guide ("cockpit.js: DBus Client", cockpit-project.org/guide/latest/cockpit-dbus)
 * and checked against Debian's cockpit 287 base1/cockpit.js. Everything that comes off the bus is `unknown`: the
 * page validates it (src/cockpit/model.ts) before use.
 *
 * D-Bus values in cockpit's JSON: integers (including 't'/'x') and doubles are numbers, 's'/'o'/'g' strings,
 * 'a{s?}' plain objects, other arrays arrays, structs arrays, and variants `{ t: "<signature>", v: <value> }`.
 */

declare namespace cockpit {
  /** Cockpit's own promise: a thenable (also has done/fail/always, not used here). */
  interface CockpitPromise<T> extends PromiseLike<T> {
    catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): PromiseLike<T | R>;
  }

  interface DBusOptions {
    /** "system", "session", "none" or "internal". */
    bus?: string;
    /** "require": only through the superuser bridge; "try": superuser bridge if there is one, else the user's. */
    superuser?: 'require' | 'try';
    /** Follow the owner of the name (the client closes when it goes away). */
    track?: boolean;
    address?: string;
  }

  interface CallOptions {
    /** The signature of the arguments (needed for variants: then the bridge need not introspect). */
    type?: string;
    flags?: string;
    timeout?: number;
  }

  /** A signal match; every key is optional. */
  interface Match {
    path?: string;
    path_namespace?: string;
    interface?: string;
    member?: string;
    arg0?: string;
  }

  interface Subscription {
    remove(): void;
  }

  /** A property-tracking proxy: `data` holds the properties (raw values); "changed" fires with what changed. */
  interface DBusProxy {
    readonly valid: boolean;
    readonly path: string;
    readonly iface: string;
    readonly data: Record<string, unknown>;
    wait(): CockpitPromise<void>;
    addEventListener(type: 'changed', listener: (event: Event, changed: Record<string, unknown>) => void): void;
    removeEventListener(type: 'changed', listener: (event: Event, changed: Record<string, unknown>) => void): void;
  }

  interface CloseOptions {
    problem?: string;
    message?: string;
  }

  interface DBusClient {
    /** Resolves with the reply's out arguments; rejects with an error carrying `name` (the D-Bus error name) and `message`. */
    call(path: string, iface: string, method: string, args: unknown[], options?: CallOptions): CockpitPromise<unknown[]>;
    subscribe(match: Match, callback: (path: string, iface: string, signal: string, args: unknown[]) => void, rule?: boolean): Subscription;
    proxy(iface: string, path: string, options?: { watch?: boolean }): DBusProxy;
    close(problem?: string): void;
    addEventListener(type: 'close', listener: (event: Event, options: CloseOptions) => void): void;
    addEventListener(type: 'owner', listener: (event: Event, owner: string | null) => void): void;
  }

  function dbus(name: string | null, options?: DBusOptions): DBusClient;

  /** "1.5 GB" style (factor 1000 by default; 1024 gives "GiB"). */
  function format_bytes(n: number, factor?: number): string;
}
