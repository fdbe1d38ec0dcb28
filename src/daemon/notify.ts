/**
 * sd_notify(3) for the daemon (Type=notify, NotifyAccess=main, WatchdogSec=): READY=1, STATUS=, WATCHDOG=1,
 * STOPPING=1, EXTEND_TIMEOUT_USEC=.
 *
 * Pure Node cannot send unix datagrams, so this goes through the `sd-notify` native addon (libsystemd). The addon is
 * loaded lazily, when the notifier is created — never at import time. When NOTIFY_SOCKET is unset (not started by
 * systemd: sandbox, tests, a shell) or the addon cannot be loaded, every call is a no-op and one line is logged.
 */
import type { Logger } from '../log';

/** The raw functions of the sd-notify 2.8 addon this wrapper uses. */
interface SdNotifyAddon {
  ready(pid: number): void;
  stopping(pid: number): void;
  watchdog(): void;
  sendState(state: string): void;
}

export interface Notifier {
  /** True when messages really go to systemd (NOTIFY_SOCKET set and the addon loaded). */
  readonly enabled: boolean;
  /** READY=1: start-up is complete (recovery done, objects exported, bus name owned). */
  ready(): void;
  /** STATUS=<text>: one line shown by `systemctl status` (newlines are folded to spaces). */
  status(text: string): void;
  /** WATCHDOG=1. */
  watchdog(): void;
  /** STOPPING=1: shutdown has begun. */
  stopping(): void;
  /** EXTEND_TIMEOUT_USEC=: ask for more time before the start/stop timeout fires (long recovery or undo). */
  extendTimeout(ms: number): void;
  /** The watchdog interval in milliseconds from WATCHDOG_USEC (0 when the watchdog is off for this process). */
  watchdogInterval(): number;
  /**
   * Send WATCHDOG=1 at half the watchdog interval (and once at once). Returns the function that stops it.
   * A no-op (returning a no-op) when the watchdog is off. The timer does not keep the process alive.
   */
  startWatchdog(): () => void;
}

export interface NotifierOptions {
  /** Environment to read NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** This process's pid (default process.pid). */
  pid?: number;
  /** Module id of the addon (default "sd-notify"); a seam for testing the degraded path. */
  addonModule?: string;
}

/**
 * The watchdog interval systemd asks for, in milliseconds: WATCHDOG_USEC, if WATCHDOG_PID is unset or names this
 * process (sd_watchdog_enabled(3)); else 0.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number {
  const usec = env['WATCHDOG_USEC'];
  if (usec === undefined || !/^[0-9]+$/.test(usec)) return 0;
  const forPid = env['WATCHDOG_PID'];
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return 0;
  const ms = Math.floor(Number(usec) / 1000);
  return Number.isSafeInteger(ms) && ms > 0 ? ms : 0;
}

/** One STATUS= value: a single line without control characters (a newline would start another assignment). */
export function statusLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 1024);
}

function isAddon(v: unknown): v is SdNotifyAddon {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return ['ready', 'stopping', 'watchdog', 'sendState'].every((k) => typeof o[k] === 'function');
}

/** Load the addon; a reason string when it is unusable. */
function loadAddon(id: string): SdNotifyAddon | string {
  try {
    // A native addon: require() is the only way to load it (it cannot be imported statically without making the
    // whole daemon fail to start where it is missing).
    const mod: unknown = require(id);
    return isAddon(mod) ? mod : `${id} does not export ready/stopping/watchdog/sendState`;
  } catch (e) {
    return e instanceof Error ? e.message.split('\n')[0] ?? e.message : String(e);
  }
}

/** One "sd_notify disabled" log line per process, however many notifiers are created. */
let reportedDisabled = false;

export function createNotifier(log: Logger, opts: NotifierOptions = {}): Notifier {
  const env = opts.env ?? process.env;
  const pid = opts.pid ?? process.pid;
  const socket = env['NOTIFY_SOCKET'];
  let addon: SdNotifyAddon | undefined;
  if (socket === undefined || socket === '') {
    if (!reportedDisabled) log.debug('sd_notify: NOTIFY_SOCKET is not set (not started by systemd); notifications are off');
    reportedDisabled = true;
  } else {
    const loaded = loadAddon(opts.addonModule ?? 'sd-notify');
    if (typeof loaded === 'string') {
      if (!reportedDisabled) log.warn(`sd_notify: the sd-notify addon is unavailable (${loaded}); notifications are off`);
      reportedDisabled = true;
    } else {
      addon = loaded;
    }
  }

  const send = (what: string, fn: (a: SdNotifyAddon) => void): void => {
    if (addon === undefined) return;
    try {
      fn(addon);
    } catch (e) {
      log.warn(`sd_notify ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const interval = (): number => watchdogIntervalMs(env, pid);

  return {
    enabled: addon !== undefined,
    ready: () => send('READY', (a) => a.ready(pid)),
    status: (text) => send('STATUS', (a) => a.sendState(`STATUS=${statusLine(text)}`)),
    watchdog: () => send('WATCHDOG', (a) => a.watchdog()),
    stopping: () => send('STOPPING', (a) => a.stopping(pid)),
    extendTimeout: (ms) => {
      const usec = Math.max(0, Math.round(ms * 1000));
      send('EXTEND_TIMEOUT_USEC', (a) => a.sendState(`EXTEND_TIMEOUT_USEC=${usec}`));
    },
    watchdogInterval: interval,
    startWatchdog: () => {
      const ms = interval();
      if (addon === undefined || ms === 0) return () => undefined;
      const ping = (): void => send('WATCHDOG', (a) => a.watchdog());
      ping();
      const timer = setInterval(ping, Math.max(1, Math.floor(ms / 2)));
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
