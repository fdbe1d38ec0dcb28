#!/usr/bin/env node
/**
 * nodectl — the administrator's tool for oVirt Node layers. A thin D-Bus client of the imgbased daemon
 * (org.ovirt.Node): it never touches LVM or /boot. Verbs live in nodectl/program.ts; start-up loads commander and
 * dbus-next only (the progress bar loads when a long command needs it; the man page generator never at run time).
 */
import { CommanderError } from 'commander';
import { EXIT, NodeClient, NodectlError } from './nodectl/client';
import { buildProgram } from './nodectl/program';

export async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> = Promise.resolve(EXIT.ok);
  const program = buildProgram((fn) => {
    pending = (async () => {
      const client = NodeClient.connect();
      try {
        return await fn(client);
      } finally {
        client.close();
      }
    })();
  });
  try {
    await program.parseAsync(argv);
    return await pending;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (e instanceof NodectlError) {
      process.stderr.write(`nodectl: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
      // Scripts reading --json get the error as JSON on stdout too (name is the D-Bus error name, "" when none).
      if (argv.includes('--json') || argv.includes('--machine-readable')) {
        process.stdout.write(JSON.stringify({ error: { name: e.dbusName, message: e.message, hint: e.hint ?? '', exit_code: e.exitCode } }, null, 2) + '\n');
      }
      return e.exitCode;
    }
    process.stderr.write(`nodectl: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
