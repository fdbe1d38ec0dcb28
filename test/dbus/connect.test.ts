import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { coalesceWrites, netSocketAddress } from '../../src/dbus/connect';

describe('bus connection', () => {
  it('rewrites unix:path= addresses to the net.Socket form, leaving others alone', () => {
    expect(netSocketAddress('unix:path=/run/dbus/system_bus_socket;tcp:host=127.0.0.1,port=1'))
      .toBe('unix:socket=/run/dbus/system_bus_socket;tcp:host=127.0.0.1,port=1');
  });

  it('coalesces the writes of one tick into one chunk, keeps order and content, big writes included', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-coalesce-'));
    const sock = path.join(dir, 's');
    const chunks: Buffer[] = [];
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    const big = Buffer.alloc(3 << 20, 7);
    const expected = Buffer.concat([Buffer.from('one'), Buffer.from('two'), Buffer.from('three'), Buffer.from('next-tick'), big]);
    const server = net.createServer((c) => {
      c.on('data', (b: Buffer) => {
        chunks.push(b);
        if (Buffer.concat(chunks).length >= expected.length) done();
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const client = net.createConnection(sock);
    await new Promise<void>((r) => client.once('connect', r));
    coalesceWrites(client);
    try {
      client.write(Buffer.from('one'));
      client.write(Buffer.from('two'));
      client.write(Buffer.from('three'));
      await new Promise((r) => setTimeout(r, 50));
      expect(chunks.map(String)).toEqual(['onetwothree']);
      client.write(Buffer.from('next-tick'));
      client.write(big);
      await all;
      expect(Buffer.concat(chunks).equals(expected)).toBe(true);
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
