/**
 * a{sv} options: every key is consumed or rejected (RAUC's rule). A variant of the wrong type is rejected too.
 * Values arrive from dbus-next as Variant objects; they are `unknown` until checked here.
 */
import { Variant } from 'dbus-next';
import { InvalidArgumentError } from '../errors';

export type OptionType = 'b' | 's' | 'u';
export type OptionSpec = Readonly<Record<string, OptionType>>;
type ValueOf<T extends OptionType> = T extends 'b' ? boolean : T extends 's' ? string : number;
export type ParsedOptions<S extends OptionSpec> = { -readonly [K in keyof S]?: ValueOf<S[K]> };

/** A caller's string, quoted for an error message and cut short (a 1 MB key must not come back as a 1 MB error). */
export function quoted(s: string, max = 80): string {
  return s.length > max ? `${JSON.stringify(s.slice(0, max))}… (${s.length} characters)` : JSON.stringify(s);
}

const TYPE_NAME: Record<OptionType, string> = { b: 'boolean (b)', s: 'string (s)', u: 'uint32 (u)' };

function checkValue(type: OptionType, value: unknown): boolean {
  switch (type) {
    case 'b':
      return typeof value === 'boolean';
    case 's':
      return typeof value === 'string';
    case 'u':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
  }
}

export function parseOptions<S extends OptionSpec>(raw: unknown, spec: S, method: string): ParsedOptions<S> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`${method}: options must be a{sv}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(raw)) {
    const type = spec[key];
    if (type === undefined) {
      const known = Object.keys(spec);
      throw new InvalidArgumentError(
        `${method}: unknown option key ${quoted(key)} (${known.length ? `known: ${known.join(', ')}` : 'this method takes none'})`,
      );
    }
    if (!(v instanceof Variant) || v.signature !== type || !checkValue(type, v.value)) {
      const got = v instanceof Variant ? v.signature : typeof v;
      throw new InvalidArgumentError(`${method}: option "${key}" must be a ${TYPE_NAME[type]}, got ${got}`);
    }
    out[key] = v.value;
  }
  return out as ParsedOptions<S>;
}
