/**
 * Following a transaction to its end: a live bar (cli-progress, loaded only here) on a TTY, timestamped lines
 * otherwise, and what Ctrl-C means.
 *
 * Ctrl-C (SIGINT):
 *   - stdin and stderr are a terminal: ask "Cancel the transaction (c) or detach and let it run (d)? [d]", one key in
 *     raw mode. c → Cancel(), keep following until Finished (exit 130 once it is cancelled; 0/1 if it ended first).
 *     d, Enter, any other key or a second Ctrl-C → detach.
 *   - otherwise (a script, a pipe, cron): detach at once, never ask (a script must not hang on a prompt).
 * Detaching is not cancelling: the transaction keeps running in the daemon. nodectl still exits 130 (the shell's
 * "interrupted by Ctrl-C"), never 0 — `nodectl upgrade … && reboot` must not reboot into a half-installed layer —
 * and says so; `nodectl watch` follows it again, `nodectl cancel` stops it.
 */
import * as path from 'node:path';
import { TRANSACTION_IFACE } from '../../dbus/api';
import type { NodeClient } from './client';
import { EXIT, NodectlError } from './client';

export const DETACH_HINT = 'Detached; the transaction keeps running. Follow it with "nodectl watch", stop it with "nodectl cancel".';
export const CANCEL_PROMPT = 'Cancel the transaction (c) or detach and let it run (d)? [d] ';

type Render = (percent: number, step: string, message: string, done: number, total: number) => void;

interface View {
  render: Render;
  /** Stop drawing (the bar's line stays); restart() draws again from the last values. */
  pause(): void;
  restart(): void;
}

const mib = (n: number): string => (n / 1048576).toFixed(0);

async function barView(): Promise<View> {
  const { SingleBar } = await import('cli-progress');
  const bar = new SingleBar({
    format: ' {bar} {percentage}% | {step} | {message} {bytes}| ETA {eta_formatted}',
    hideCursor: true,
    stream: process.stderr,
  });
  let last = { percent: 0, step: '', message: '', bytes: '' };
  let running = false;
  const start = (): void => {
    bar.start(100, last.percent, { step: last.step, message: last.message, bytes: last.bytes });
    running = true;
  };
  start();
  return {
    render: (percent, step, message, done, total) => {
      last = { percent, step, message, bytes: total > 0 ? `${mib(done)}/${mib(total)} MiB ` : '' };
      if (running) bar.update(percent, { step, message, bytes: last.bytes });
    },
    pause: () => {
      if (running) bar.stop();
      running = false;
    },
    restart: () => {
      if (!running) start();
    },
  };
}

function linesView(quiet: boolean): View {
  let last = '';
  return {
    render: (percent, step, message, done, total) => {
      const bytes = total > 0 ? ` (${mib(done)}/${mib(total)} MiB)` : '';
      const line = `[${String(percent).padStart(3)}%] ${step}: ${message}${bytes}`;
      if (line !== last && !quiet) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      last = line;
    },
    pause: () => undefined,
    restart: () => undefined,
  };
}

/** Read one key from a TTY stdin in raw mode; "\x03" for Ctrl-C. `abort` resolves it with "" (Finished meanwhile). */
function readKey(): { key: Promise<string>; abort: () => void } {
  const stdin = process.stdin;
  let done: (k: string) => void = () => undefined;
  const key = new Promise<string>((resolve) => {
    const onData = (b: Buffer): void => finish(b.toString('utf8').slice(0, 1));
    const finish = (k: string): void => {
      stdin.removeListener('data', onData);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      resolve(k);
    };
    done = finish;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
  return { key, abort: () => done('') };
}

export interface FollowOptions {
  /** No progress output (JSON mode). */
  quiet: boolean;
  /** Timestamped lines even on a terminal (inside a package manager's output, where a bar would fight its own). */
  lines?: boolean;
}

/** Where to read why a transaction failed, for errors without a hint of their own (a tool that failed, an internal error). */
export const FAILED_HINT = '"nodectl --json history --limit 1" shows its steps and what was undone; "journalctl -u imgbased" has the daemon\'s log';

/**
 * The error for a transaction that ended without success (Finished(false, name, message)): a cancelled one exits 130;
 * a failed one exits 1 with its error's own hint or, failing that, where to read what happened.
 */
export function transactionFailure(id: string, name: string, message: string): NodectlError {
  if (name === 'org.ovirt.Node.Error.Cancelled') return new NodectlError(name, message || `transaction ${id} was cancelled`, EXIT.cancelled);
  const err = new NodectlError(name, message || `transaction ${id} failed`, EXIT.failed);
  return err.hint === undefined ? new NodectlError(name, err.message, EXIT.failed, FAILED_HINT) : err;
}

/** Follow a transaction to its end; returns the exit code (throws NodectlError when it failed or was cancelled). */
export async function follow(client: NodeClient, txPath: string, opts: FollowOptions): Promise<number> {
  const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
  const view = process.stderr.isTTY === true && !opts.quiet && opts.lines !== true ? await barView() : linesView(opts.quiet);
  const { finished } = await client.watch(txPath, view.render);
  const id = path.basename(txPath);

  let detach: () => void = () => undefined;
  const detached = new Promise<'detached'>((resolve) => {
    detach = () => resolve('detached');
  });
  let prompt: { abort: () => void } | undefined;
  let cancelRequested = false;

  const onSigint = (): void => {
    if (!interactive || cancelRequested || prompt) {
      detach();
      return;
    }
    void ask();
  };
  const ask = async (): Promise<void> => {
    view.pause();
    process.stderr.write(`\n${CANCEL_PROMPT}`);
    const reading = readKey();
    prompt = reading;
    const key = await reading.key;
    prompt = undefined;
    if (key === '') return; // the transaction finished while we asked
    process.stderr.write(`${key === 'c' || key === 'C' ? 'c' : 'd'}\n`);
    if (key !== 'c' && key !== 'C') {
      detach();
      return;
    }
    cancelRequested = true;
    try {
      await client.call(txPath, TRANSACTION_IFACE, 'Cancel', '', []);
      process.stderr.write(`Cancel requested for ${id}; waiting for it to stop (what it did is undone)…\n`);
    } catch (e) {
      // Not allowed to cancel (or the daemon went away): say so and keep following.
      const err = e instanceof NodectlError ? `${e.message}${e.hint ? ` (hint: ${e.hint})` : ''}` : String(e);
      process.stderr.write(`nodectl: cancel failed: ${err}\n`);
      cancelRequested = false;
    }
    view.restart();
  };
  process.on('SIGINT', onSigint);
  try {
    const outcome = await Promise.race([finished, detached]);
    prompt?.abort();
    view.pause();
    if (outcome === 'detached') {
      process.stderr.write(`${DETACH_HINT}\n`);
      return EXIT.cancelled;
    }
    const [ok, name, message] = outcome;
    if (ok) return EXIT.ok;
    throw transactionFailure(id, name, message);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
