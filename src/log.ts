/**
 * The logging seam. The daemon plugs in winston (journald); libraries only see this interface.
 * Structured fields (transaction id, layer, step) go in `meta`.
 */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Plain stderr lines (CLI and tests). */
export function stderrLogger(minLevel: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = ['debug', 'info', 'warn', 'error'] as const;
  const min = order.indexOf(minLevel);
  const at = (level: (typeof order)[number]) => (message: string, meta?: Record<string, unknown>): void => {
    if (order.indexOf(level) < min) return;
    const extra = meta && Object.keys(meta).length ? ' ' + JSON.stringify(meta) : '';
    process.stderr.write(`${level}: ${message}${extra}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
