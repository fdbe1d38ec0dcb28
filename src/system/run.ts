/**
 * The one way this project runs external tools: argv arrays (never a shell), captured output, typed failure.
 */
import { spawn } from 'node:child_process';
import { CancelledError, ToolError } from '../errors';

export interface RunOptions {
  /** Extra environment (merged over a minimal, locale-stable environment). */
  env?: Record<string, string>;
  cwd?: string;
  /** Data written to the tool's stdin. */
  input?: string | Buffer;
  /** Exit codes that count as success (default [0]). */
  okCodes?: readonly number[];
  signal?: AbortSignal;
  /** Called with each chunk of stderr (for progress parsing). */
  onStderr?: (chunk: string) => void;
  onStdout?: (chunk: string) => void;
  /**
   * Kill the tool (SIGKILL) when this process dies, through util-linux `setpriv --pdeathsig`. For tools that write
   * into a volume or tree that recovery will remove (rsync, cp): an orphan would keep writing into it (and keep it
   * busy) while the next process undoes the step.
   */
  dieWithParent?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

const BASE_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LC_ALL: 'C',
  LANG: 'C',
  // lvm2 warns about leaked descriptors from Node's pipes; these keep its output clean.
  LVM_SUPPRESS_FD_WARNINGS: '1',
};

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('run: empty argv');
  if (opts.signal?.aborted) return Promise.reject(new CancelledError());
  return new Promise((resolve, reject) => {
    const [file = cmd, ...rest] = [...(opts.dieWithParent ? ['setpriv', '--pdeathsig', 'KILL', '--'] : []), cmd, ...args];
    const child = spawn(file, rest, {
      cwd: opts.cwd,
      env: { ...BASE_ENV, ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      child.kill('SIGTERM');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      opts.onStdout?.(b.toString('utf8'));
    });
    child.stderr.on('data', (b: Buffer) => {
      err.push(b);
      opts.onStderr?.(b.toString('utf8'));
    });
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new ToolError(argv, null, e.message, { cause: e }));
    });
    child.on('close', (code) => {
      opts.signal?.removeEventListener('abort', onAbort);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (aborted) return reject(new CancelledError());
      if (code !== null && (opts.okCodes ?? [0]).includes(code)) return resolve({ stdout, stderr, code });
      reject(new ToolError(argv, code, stderr || stdout));
    });
    child.stdin.on('error', () => undefined); // tool may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** True when the binary is on PATH (used for capability probes, never to skip tests). */
export async function haveTool(name: string): Promise<boolean> {
  try {
    await run(['sh', '-c', `command -v "$0" >/dev/null`, name]);
    return true;
  } catch {
    return false;
  }
}
