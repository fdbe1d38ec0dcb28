/** Running a build/packaging tool from a test: output captured whole, a failure never throws (see mustRunTool). */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const ENV = { ...process.env, LC_ALL: 'C' };

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run cmd (cwd: the repository unless given), C locale; the exit code, stdout and stderr. */
export async function runTool(cmd: string, args: readonly string[], cwd = REPO): Promise<ToolResult> {
  try {
    const r = await pexec(cmd, [...args], { cwd, env: ENV, maxBuffer: 256 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

/** runTool, failing with the command and the end of its output unless it exits 0; its stdout. */
export async function mustRunTool(cmd: string, args: readonly string[], cwd = REPO): Promise<string> {
  const r = await runTool(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}
