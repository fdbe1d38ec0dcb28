/** Typed errors -> D-Bus errors, in one place. Anything unexpected becomes Error.Failed and is logged with its stack. */
import { DBusError } from 'dbus-next';
import { ImgbasedError, toDbusError } from '../errors';
import type { Logger } from '../log';

export function asDBusError(e: unknown, log: Logger, what: string): DBusError {
  if (e instanceof DBusError) return e;
  if (!(e instanceof ImgbasedError)) log.error(`${what} failed unexpectedly: ${e instanceof Error ? e.stack : String(e)}`);
  const { name, message } = toDbusError(e);
  return new DBusError(name, message);
}

/** Run a method body and map whatever it throws. */
export async function mapped<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asDBusError(e, log, what);
  }
}
