/**
 * The journald line format of src/daemon/logger.ts: `<N>` per line, syslog levels, key=value fields, stderr only.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { createLogger, createWinstonLogger, formatRecord, formatValue, toLogger } from '../../src/daemon/logger';
import { REPO, transpileTo } from './transpile';

const execFileP = promisify(execFile);

/** A logger writing into a string buffer, and a way to read what it wrote once winston has flushed. */
function captured(level?: 'debug' | 'info' | 'warn' | 'error' | 'notice'): { log: ReturnType<typeof createLogger>; text: () => Promise<string> } {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (b: Buffer) => (out += b.toString()));
  const log = createLogger(level === undefined ? { stream } : { level, stream });
  return { log, text: async () => { await new Promise((r) => setImmediate(r)); return out; } };
}

describe('formatRecord', () => {
  it('prefixes the syslog priority journald parses', () => {
    expect(formatRecord('emerg', 'x')).toBe('<0>x');
    expect(formatRecord('alert', 'x')).toBe('<1>x');
    expect(formatRecord('crit', 'x')).toBe('<2>x');
    expect(formatRecord('error', 'x')).toBe('<3>x');
    expect(formatRecord('warning', 'x')).toBe('<4>x');
    expect(formatRecord('notice', 'x')).toBe('<5>x');
    expect(formatRecord('info', 'x')).toBe('<6>x');
    expect(formatRecord('debug', 'x')).toBe('<7>x');
  });

  it('appends fields as key=value, quoting what needs it and skipping undefined', () => {
    expect(formatRecord('info', 'step done', { transaction: 't-1', layer: 'ovirt-node-ng-4.5.6-0.20250101.0+1', step: 3, ok: true, skipped: undefined }))
      .toBe('<6>step done transaction=t-1 layer=ovirt-node-ng-4.5.6-0.20250101.0+1 step=3 ok=true');
    expect(formatRecord('warning', 'm', { path: '/tmp/a b', empty: '', q: 'say "hi"', eq: 'a=b', n: null, obj: { a: [1, 2] } }))
      .toBe('<4>m path="/tmp/a b" empty="" q="say \\"hi\\"" eq="a=b" n=null obj="{\\"a\\":[1,2]}"');
    expect(formatRecord('info', 'm', { 'bad key!': 1 })).toBe('<6>m bad_key_=1');
  });

  it('prefixes every line of a multi-line message, so a continuation line can neither lose nor forge its priority', () => {
    expect(formatRecord('error', 'failed\n<0>forged\r\nlast\n', { transaction: 't' })).toBe('<3>failed\n<3><0>forged\n<3>last transaction=t');
  });

  it('formats values: errors by message, control characters quoted, bigint and circular objects survive', () => {
    expect(formatValue(new Error('disk full'))).toBe('"disk full"');
    expect(formatValue('a\nb')).toBe('"a\\nb"');
    expect(formatValue(10n)).toBe('10');
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(formatValue(circular)).toBe('"[object Object]"');
  });
});

describe('createLogger (winston)', () => {
  it('maps the project levels to syslog levels and filters below the minimum', async () => {
    const { log, text } = captured('info');
    log.debug('hidden');
    log.info('started', { version: '0.1.0' });
    log.warn('slow', { ms: 12 });
    log.error('broke');
    expect(await text()).toBe('<6>started version=0.1.0\n<4>slow ms=12\n<3>broke\n');
  });

  it('writes debug at debug level, and keeps fields named like winston reserved keys', async () => {
    const { log, text } = captured('debug');
    log.debug('d', { level: 'x', message: 'y', transaction: 'abc' });
    expect(await text()).toBe('<7>d _level=x _message=y transaction=abc\n');
  });

  it('accepts syslog level names and the raw winston logger', async () => {
    const stream = new PassThrough();
    let out = '';
    stream.on('data', (b: Buffer) => (out += b.toString()));
    const w = createWinstonLogger({ level: 'notice', stream });
    w.log('notice', 'n', { a: 1 });
    w.log('info', 'i');
    toLogger(w).warn('w');
    await new Promise((r) => setImmediate(r));
    expect(out).toBe('<5>n a=1\n<4>w\n');
  });

  it('writes to stderr only (journald reads the service stdout/stderr stream)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-logger-'));
    try {
      await transpileTo(dir, 'src/daemon/logger.ts');
      const script = `const { createLogger } = require(${JSON.stringify(path.join(dir, 'logger.js'))});
        const log = createLogger({ level: 'debug' });
        log.info('hello', { transaction: 't-9' }); log.error('bad\\nworse'); log.debug('dbg');`;
      const { stdout, stderr } = await execFileP(process.execPath, ['-e', script], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_PATH: path.join(REPO, 'node_modules') },
      });
      expect(stdout).toBe('');
      expect(stderr).toBe('<6>hello transaction=t-9\n<3>bad\n<3>worse\n<7>dbg\n');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
