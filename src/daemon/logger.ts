/**
 * The daemon's logger: winston with syslog levels, one line per record on stderr, each line prefixed with its
 * syslog priority `<N>` — journald (SyslogLevelPrefix=yes, the default for services) turns that into PRIORITY=.
 * Structured fields (transaction id, layer, step…) follow the message as key=value pairs, so every line of a
 * transaction carries `transaction=<id>`.
 *
 * The rest of the project only sees the `Logger` interface of src/log.ts; toLogger() adapts winston to it.
 */
import type { Writable } from 'node:stream';
import * as winston from 'winston';
import type { Logger } from '../log';

/** Syslog severities (RFC 5424), the numbers journald expects in `<N>`. */
export const SYSLOG_LEVELS: Readonly<Record<SyslogLevel, number>> = winston.config.syslog.levels as Record<SyslogLevel, number>;
export type SyslogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
/** The project's levels (src/log.ts) and the syslog level each maps to. */
export const PROJECT_TO_SYSLOG: Readonly<Record<keyof Logger, SyslogLevel>> = {
  debug: 'debug',
  info: 'info',
  warn: 'warning',
  error: 'error',
};

const RESERVED = new Set(['level', 'message']);

function isSyslogLevel(v: unknown): v is SyslogLevel {
  return typeof v === 'string' && Object.hasOwn(winston.config.syslog.levels, v);
}

/** One value of a key=value pair: bare when it is safe, JSON-quoted otherwise. */
export function formatValue(v: unknown): string {
  let s: string;
  if (v instanceof Error) s = v.message;
  else if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  else if (v === null) return 'null';
  else {
    try {
      s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
    } catch {
      s = String(v); // circular structure: still log something
    }
  }
  return s !== '' && /^[^\s"=\\\u0000-\u001f\u007f]+$/.test(s) ? s : JSON.stringify(s);
}

/** ` key=value key2="a b"` for every defined field, in insertion order (empty string when none). */
export function formatMeta(meta: Readonly<Record<string, unknown>>): string {
  let out = '';
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) continue;
    const key = k.replace(/[^A-Za-z0-9_.-]/g, '_') || '_';
    out += ` ${key}=${formatValue(v)}`;
  }
  return out;
}

/**
 * The text written for one record: every line of the message gets the `<N>` prefix (a continuation line without
 * it would be logged at the default priority, and could forge its own); the fields go after the last line.
 */
export function formatRecord(level: SyslogLevel, message: string, meta: Readonly<Record<string, unknown>> = {}): string {
  const prefix = `<${SYSLOG_LEVELS[level]}>`;
  const lines = message.replace(/\r\n?/g, '\n').split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const last = lines.length - 1;
  return lines.map((l, i) => prefix + l + (i === last ? formatMeta(meta) : '')).join('\n');
}

/** winston format producing formatRecord()'s text from an info object. */
export const journalFormat = winston.format.printf((info) => {
  const level = isSyslogLevel(info.level) ? info.level : 'info';
  const message = typeof info.message === 'string' ? info.message : formatValue(info.message);
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) if (!RESERVED.has(k)) meta[k] = v;
  return formatRecord(level, message, meta);
});

export interface CreateLoggerOptions {
  /** Least severe level written (default "info"). Project level names ("warn") are accepted too. */
  level?: SyslogLevel | keyof Logger;
  /** Write here instead of stderr (tests, sandbox log files). */
  stream?: Writable;
}

/** The winston logger itself (syslog levels, journal format, stderr or `stream`). */
export function createWinstonLogger(opts: CreateLoggerOptions = {}): winston.Logger {
  const requested = opts.level ?? 'info';
  const level: SyslogLevel = isSyslogLevel(requested) ? requested : PROJECT_TO_SYSLOG[requested];
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console({ stderrLevels: Object.keys(winston.config.syslog.levels) });
  return winston.createLogger({
    levels: winston.config.syslog.levels,
    level,
    format: journalFormat,
    transports: [transport],
    exitOnError: false,
  });
}

/** The project's Logger over a winston logger (warn → warning; reserved field names get a "_" prefix). */
export function toLogger(w: winston.Logger): Logger {
  const at = (project: keyof Logger) => {
    const level = PROJECT_TO_SYSLOG[project];
    return (message: string, meta?: Record<string, unknown>): void => {
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(meta ?? {})) fields[RESERVED.has(k) ? `_${k}` : k] = v;
      w.log(level, message, fields);
    };
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The daemon's Logger: winston → journald-style lines on stderr. */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  return toLogger(createWinstonLogger(opts));
}
