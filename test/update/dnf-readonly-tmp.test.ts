/**
 * Regression (VM tier, daemon-systemd.test.ts): under imgbased.service /tmp is read-only (ProtectSystem=strict, no
 * PrivateTmp=), and libdnf compares cached, expired metadata with the mirror's in a temporary directory under a
 * hard-coded /tmp. The first check worked, every later one failed with "Cannot create repo temporary directory
 * /tmp/tmpdir.XXXXXX: Read-only file system". queryRepo drops the cached metadata first (src/update/dnf.ts).
 *
 * Real dnf, a repository made by createrepo_c served on 127.0.0.1, and the compiled queryRepo run twice in a mount
 * namespace where /tmp is read-only, as the unit makes it.
 */
import { execFile } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const DNF_JS = path.join(REPO, 'dist/src/update/dnf.js');

describe('queryRepo with a read-only /tmp (as under imgbased.service)', () => {
  let dir = '';
  let server: http.Server | null = null;

  beforeAll(async () => {
    await fs.access(DNF_JS);
    // not under /tmp: it is read-only for the child
    dir = await fs.mkdtemp('/var/tmp/imgbased-dnf-rotmp-');
    await fs.mkdir(path.join(dir, 'repo'));
    await pexec('createrepo_c', ['--quiet', path.join(dir, 'repo')]);
    server = http.createServer((req, res) => {
      const file = path.join(dir, 'repo', path.normalize(new URL(req.url ?? '/', 'http://x').pathname));
      fs.stat(file).then((st) => {
        if (!st.isFile()) throw new Error('not a file');
        res.writeHead(200, { 'Content-Length': String(st.size) });
        createReadStream(file).pipe(res);
      }, () => res.writeHead(404).end()).catch(() => res.writeHead(404).end());
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('asks the repository twice (the second time with metadata in the cache) without writing /tmp', async () => {
    const url = `http://127.0.0.1:${(server?.address() as AddressInfo).port}/`;
    const sysroot = path.join(dir, 'sysroot');
    const script = `const { queryRepo, repoDirs } = require(${JSON.stringify(DNF_JS)});
(async () => {
  const dirs = repoDirs(${JSON.stringify(sysroot)});
  for (let i = 0; i < 2; i++) console.log(JSON.stringify(await queryRepo(${JSON.stringify(url)}, ['ovirt-node-ng-image-update'], dirs)));
})().catch((e) => { console.error(e.message); process.exit(1); });`;
    const shell = 'mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && ! touch /tmp/.imgbased-rw-probe 2>/dev/null && exec "$0" -e "$1"';
    const r = await pexec('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', shell, process.execPath, script], { cwd: '/' })
      .then((o) => ({ code: 0, ...o }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    expect(r).toEqual({ code: 0, stdout: '[]\n[]\n', stderr: '' });
    // the metadata was fetched into the cache both times
    expect((await fs.readdir(path.join(sysroot, 'var/cache/imgbased/dnf'))).some((d) => d.startsWith('imgbased-updates-'))).toBe(true);
  }, 120_000);
});
