/**
 * A static file server for an rpm repository in tests (test/bus/update-repo, the VM tier's daemon-systemd): `dir` on
 * 127.0.0.1, "Range: bytes=N-" honoured (206) as a mirror's, each request logged as "METHOD /path [range]".
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

export function serveRepo(dir: string, log: string[]): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = path.join(dir, path.normalize(rel));
      log.push(`${req.method ?? '?'} ${rel}${req.headers.range ? ` ${req.headers.range}` : ''}`);
      const st = file.startsWith(dir) ? await fs.stat(file).catch(() => null) : null;
      if (!st?.isFile()) {
        res.writeHead(404).end();
        return;
      }
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      if (start >= st.size && m) {
        res.writeHead(416, { 'Content-Range': `bytes */${st.size}` }).end();
        return;
      }
      res.writeHead(m ? 206 : 200, {
        'Content-Length': String(st.size - start), 'Accept-Ranges': 'bytes',
        ...(m ? { 'Content-Range': `bytes ${start}-${st.size - 1}/${st.size}` } : {}),
      });
      createReadStream(file, { start }).pipe(res);
    })();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
