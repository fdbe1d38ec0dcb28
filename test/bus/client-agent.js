'use strict';
/**
 * A D-Bus client that runs as another user (root, nobody, the polkit-granted test user) for test/bus/harness.ts.
 * Plain JavaScript so it runs under node without a build; it only needs dbus-next.
 *
 * argv[2]: bus address. Prints {"name": ":1.N"} once connected, then serves JSON lines on stdin:
 *   {"id": 1, "op": "call", "msg": {destination, path, interface, member, signature, body}}
 *     → {"id": 1, "ok": true, "signature": "…", "body": [...]} | {"id": 1, "ok": false, "name": "…", "message": "…"}
 *   {"id": 2, "op": "match", "rule": "type='signal',…"}  → AddMatch; matching signals then arrive as
 *     {"signal": {sender, path, interface, member, signature, body}}
 * Values on the wire: a Variant is {"$v": [signature, value]}, a 64-bit integer may be {"$n": "decimal"}, bytes
 * {"$b": "base64"}. stdin closing (or {"op": "close"}) disconnects and exits 0.
 */
const readline = require('node:readline');
const dbus = require('dbus-next');

const { Message, Variant, MessageType } = dbus;

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v !== null && typeof v === 'object') {
    if (Array.isArray(v.$v) && v.$v.length === 2) return new Variant(v.$v[0], fromWire(v.$v[1]));
    if (typeof v.$n === 'string') return BigInt(v.$n);
    if (typeof v.$b === 'string') return Buffer.from(v.$b, 'base64');
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = fromWire(x);
    return out;
  }
  return v;
}

function toWire(v) {
  if (typeof v === 'bigint') return { $n: v.toString() };
  if (Buffer.isBuffer(v)) return { $b: v.toString('base64') };
  if (v instanceof Variant) return { $v: [v.signature, toWire(v.value)] };
  if (Array.isArray(v)) return v.map(toWire);
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = toWire(x);
    return out;
  }
  return v;
}

const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// unix:socket= makes dbus-next use net.Socket instead of usocket, which cuts messages larger than the socket buffer
// short (see src/dbus/connect.ts).
const bus = dbus.sessionBus({ busAddress: process.argv[2].replace(/^unix:path=/, 'unix:socket=') });
bus.on('error', (e) => {
  process.stderr.write(`client-agent: bus error: ${e && e.message ? e.message : String(e)}\n`);
  process.exit(3);
});
bus.on('message', (msg) => {
  if (msg.type !== MessageType.SIGNAL) return;
  write({ signal: { sender: msg.sender, path: msg.path, interface: msg.interface, member: msg.member, signature: msg.signature, body: toWire(msg.body) } });
});

async function handle(req) {
  if (req.op === 'call') {
    const m = req.msg;
    const reply = await bus.call(new Message({
      destination: m.destination, path: m.path, interface: m.interface, member: m.member,
      signature: m.signature || '', body: fromWire(m.body || []),
    }));
    return { ok: true, signature: reply.signature, body: toWire(reply.body) };
  }
  if (req.op === 'match') {
    await bus.call(new Message({
      destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
      member: 'AddMatch', signature: 's', body: [req.rule],
    }));
    return { ok: true, signature: '', body: [] };
  }
  throw Object.assign(new Error(`unknown op ${req.op}`), { type: 'client-agent.UnknownOp' });
}

bus.on('connect', () => {
  write({ name: bus.name });
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    const req = JSON.parse(line);
    if (req.op === 'close') {
      lines.close();
      return;
    }
    handle(req).then(
      (res) => write({ id: req.id, ...res }),
      (err) => write({ id: req.id, ok: false, name: err.type || err.name || 'Error', message: err.text || err.message || String(err) }),
    );
  });
  lines.on('close', () => {
    bus.disconnect();
    process.exit(0);
  });
});
