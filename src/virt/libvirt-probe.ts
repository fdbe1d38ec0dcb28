/**
 * The libvirt probe: a tiny child program that asks libvirt which domains are active and prints one JSON line.
 *
 *   node dist/src/virt/libvirt-probe.js <uri> [<self-deadline ms>]
 *   stdout: {"ok":true,"running":["a","b"]}   exit 0
 *           {"ok":false,"error":"<reason>"}     exit 2
 *
 * Why a child process (see guard.ts): @unraid/libvirt is ESM-only and a native addon. Our build is CommonJS; with
 * module node16 TypeScript keeps `await import()` as a real dynamic import, which works under plain node but not inside
 * jest's vm contexts (no --experimental-vm-modules). Running the query here also keeps a crash (SIGSEGV in the addon)
 * or a hang (libvirtd accepting and never answering) out of the daemon: the parent kills this process on a deadline.
 *
 * "Active" is libvirt's VIR_CONNECT_LIST_DOMAINS_ACTIVE: running, paused, blocked, shutting down, crashed-but-not-reaped
 * — every state in which a host reboot would take the guest down with it.
 */

/** VIR_CONNECT_LIST_DOMAINS_ACTIVE (ConnectListAllDomainsFlags.ACTIVE in the binding). */
const LIST_ACTIVE = 1;

function reply(obj: { ok: true; running: string[] } | { ok: false; error: string }): Promise<void> {
  // Wait for the write to be flushed: stdout to a pipe is asynchronous and process.exit() could cut it short.
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', () => resolve()));
}

function reason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.trim().replace(/\s+/g, ' ') || 'unknown error';
}

async function probe(uri: string): Promise<string[]> {
  // A real dynamic import in the CommonJS output (module node16 keeps import() as is): loads the ESM-only package.
  const lib = await import('@unraid/libvirt').catch((e: unknown) => {
    throw new Error(`cannot load @unraid/libvirt: ${reason(e)}`);
  });
  const h = new lib.Hypervisor({ uri });
  await h.connectOpen();
  try {
    const doms = await h.connectListAllDomains(LIST_ACTIVE);
    return await Promise.all(doms.map((d) => h.domainGetName(d)));
  } finally {
    await h.connectClose().catch(() => undefined);
  }
}

async function main(): Promise<number> {
  const uri = process.argv[2];
  // Optional self-deadline (ms): the parent kills us on its own deadline, but if the parent itself dies, a probe stuck
  // on a hung libvirtd must not linger. Async libvirt calls run on the libuv pool, so this timer still fires; but
  // process.exit() itself hangs while a libvirt call is pending (measured: exit waits for the worker), hence SIGKILL.
  const deadline = Number(process.argv[3]);
  if (Number.isFinite(deadline) && deadline > 0) {
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), deadline).unref();
  }
  if (uri === undefined || uri === '') {
    await reply({ ok: false, error: 'usage: libvirt-probe <uri>' });
    return 2;
  }
  try {
    const running = await probe(uri);
    await reply({ ok: true, running });
    return 0;
  } catch (e) {
    await reply({ ok: false, error: reason(e) });
    return 2;
  }
}

void main().then((code) => process.exit(code));
