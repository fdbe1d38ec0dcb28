/**
 * Headless Chromium driven over the Chrome DevTools Protocol on --remote-debugging-pipe (fd 3: commands in, fd 4:
 * replies and events out, each message JSON followed by a NUL byte). No WebSocket and no npm dependency needed.
 *
 *   const browser = await Chromium.launch();
 *   const page = await browser.newPage();
 *   await page.goto(url); await page.waitFor('document.querySelector("#x") !== null');
 *   …; await browser.close();
 *
 * Each page records what would count as a defect in the page: console errors and warnings, uncaught exceptions,
 * failed requests, CSP violations (both the browser's report and the DOM securitypolicyviolation event).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = '/usr/bin/chromium';

type Json = Record<string, unknown>;

interface Pending {
  resolve: (r: Json) => void;
  reject: (e: Error) => void;
  method: string;
}

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, (method: string, params: Json) => void>();
  private buffer = '';
  private stderr = '';
  private closed = false;

  private constructor(private readonly proc: ChildProcess, private readonly userDataDir: string,
    private readonly input: Writable, output: Readable) {
    output.on('data', (b: Buffer) => this.onData(b.toString('utf8')));
    proc.stderr?.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-20_000);
    });
    proc.once('exit', () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited during ${p.method}: ${this.stderr.slice(-2000)}`));
      this.pending.clear();
    });
  }

  static async launch(): Promise<Chromium> {
    const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-chromium-'));
    const proc = spawn(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-extensions', '--disable-default-apps', '--mute-audio',
      '--remote-debugging-pipe', `--user-data-dir=${userDataDir}`, '--window-size=1280,1000', 'about:blank',
    ], {
      // Chromium's own D-Bus use (it looks for a session/system bus) is not what is tested: give it none.
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: userDataDir, LANG: 'C.UTF-8', TZ: 'UTC' },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    const input = proc.stdio[3];
    const output = proc.stdio[4];
    if (!input || !output || !('write' in input) || !('on' in output)) throw new Error('chromium: no debugging pipe');
    const browser = new Chromium(proc, userDataDir, input as Writable, output as Readable);
    await browser.send('Browser.getVersion', {}, undefined, 30_000);
    return browser;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const raw = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      const msg: unknown = JSON.parse(raw);
      if (!isRecord(msg)) continue;
      const id = msg['id'];
      if (typeof id === 'number') {
        const p = this.pending.get(id);
        if (!p) continue;
        this.pending.delete(id);
        if (isRecord(msg['error'])) p.reject(new Error(`${p.method}: ${String(msg['error']['message'])}`));
        else p.resolve(isRecord(msg['result']) ? msg['result'] : {});
      } else if (typeof msg['method'] === 'string') {
        const sid = typeof msg['sessionId'] === 'string' ? msg['sessionId'] : '';
        this.listeners.get(sid)?.(msg['method'], isRecord(msg['params']) ? msg['params'] : {});
      }
    }
  }

  send(method: string, params: Json = {}, sessionId?: string, timeoutMs = 30_000): Promise<Json> {
    if (this.closed) return Promise.reject(new Error(`chromium is gone (${method})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`CDP ${method} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.input.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  }

  onEvents(sessionId: string, listener: (method: string, params: Json) => void): void {
    this.listeners.set(sessionId, listener);
  }

  async newPage(): Promise<Page> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    if (typeof targetId !== 'string') throw new Error('Target.createTarget: no targetId');
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    if (typeof sessionId !== 'string') throw new Error('Target.attachToTarget: no sessionId');
    const page = new Page(this, targetId, sessionId);
    await page.init();
    return page;
  }

  /** Close the browser (Browser.close, then SIGKILL by pid if it lingers) and remove its profile. */
  async close(): Promise<void> {
    if (!this.closed) {
      const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
      await this.send('Browser.close', {}, undefined, 5_000).catch(() => undefined);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    await fs.rm(this.userDataDir, { recursive: true, force: true });
  }
}

export interface PageDefect {
  kind: 'console' | 'exception' | 'log' | 'csp' | 'request';
  text: string;
}

/** Records CSP violations as the page sees them (installed before any page script runs; CSP does not apply to it). */
const CSP_RECORDER = `
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`;

export class Page {
  readonly defects: PageDefect[] = [];
  /** Console messages of every level, for failure messages. */
  readonly console: string[] = [];

  constructor(private readonly browser: Chromium, readonly targetId: string, private readonly sessionId: string) {}

  async init(): Promise<void> {
    this.browser.onEvents(this.sessionId, (method, params) => this.onEvent(method, params));
    await this.send('Page.enable');
    await this.send('Runtime.enable');
    await this.send('Log.enable');
    await this.send('Network.enable');
    await this.send('Page.addScriptToEvaluateOnNewDocument', { source: CSP_RECORDER });
  }

  private onEvent(method: string, p: Json): void {
    switch (method) {
      case 'Runtime.consoleAPICalled': {
        const args = Array.isArray(p['args']) ? p['args'] : [];
        const line = args.map((a: unknown) => (isRecord(a) ? String(a['value'] ?? a['description'] ?? '') : '')).join(' ');
        this.console.push(`${String(p['type'])}: ${line}`);
        if (p['type'] === 'error' || p['type'] === 'warning' || p['type'] === 'assert') this.defects.push({ kind: 'console', text: line });
        break;
      }
      case 'Runtime.exceptionThrown': {
        const d = isRecord(p['exceptionDetails']) ? p['exceptionDetails'] : {};
        const ex = isRecord(d['exception']) ? String(d['exception']['description'] ?? '') : '';
        this.defects.push({ kind: 'exception', text: `${String(d['text'] ?? '')} ${ex}`.trim() });
        break;
      }
      case 'Log.entryAdded': {
        const e = isRecord(p['entry']) ? p['entry'] : {};
        const line = `${String(e['source'])}/${String(e['level'])}: ${String(e['text'])} ${String(e['url'] ?? '')}`;
        this.console.push(line);
        if (e['level'] === 'error' || e['level'] === 'warning') {
          this.defects.push({ kind: e['source'] === 'security' ? 'csp' : 'log', text: line });
        }
        break;
      }
      case 'Network.loadingFailed':
        if (p['canceled'] !== true) this.defects.push({ kind: 'request', text: `${String(p['errorText'])} ${String(p['blockedReason'] ?? '')}` });
        break;
      case 'Network.responseReceived': {
        const r = isRecord(p['response']) ? p['response'] : {};
        if (typeof r['status'] === 'number' && r['status'] >= 400) this.defects.push({ kind: 'request', text: `HTTP ${r['status']} ${String(r['url'])}` });
        break;
      }
      default:
        break;
    }
  }

  send(method: string, params: Json = {}, timeoutMs?: number): Promise<Json> {
    return this.browser.send(method, params, this.sessionId, timeoutMs);
  }

  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => {
      const prev = this.onEvent.bind(this);
      this.browser.onEvents(this.sessionId, (method, params) => {
        prev(method, params);
        if (method === 'Page.loadEventFired') {
          this.browser.onEvents(this.sessionId, prev);
          resolve();
        }
      });
    });
    const r = await this.send('Page.navigate', { url });
    if (typeof r['errorText'] === 'string' && r['errorText']) throw new Error(`navigate ${url}: ${r['errorText']}`);
    await loaded;
  }

  /** Evaluate an expression in the page (awaiting a promise result) and return its JSON value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (isRecord(r['exceptionDetails'])) {
      const d = r['exceptionDetails'];
      const ex = isRecord(d['exception']) ? String(d['exception']['description'] ?? '') : String(d['text']);
      throw new Error(`evaluate(${expression.slice(0, 120)}): ${ex}`);
    }
    const result = isRecord(r['result']) ? r['result'] : {};
    return result['value'] as T;
  }

  /** Poll until the expression is truthy; returns its value. */
  async waitFor<T = unknown>(expression: string, timeoutMs = 15_000, what = expression): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      if (Date.now() > end) {
        const body = await this.evaluate<string>('document.body ? document.body.innerText.slice(0, 3000) : ""').catch(() => '');
        throw new Error(`timed out waiting for ${what}\n--- page text:\n${body}\n--- console:\n${this.console.slice(-20).join('\n')}`);
      }
      await sleep(50);
    }
  }

  /** Click the element's centre with real mouse events. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<{ x: number; y: number } | null>(`(() => {
      const el = document.querySelector(${JSON.stringify(selector)});
      if (!el) return null;
      el.scrollIntoView({ block: 'center' });
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    if (box === null) throw new Error(`click: no element ${selector}`);
    for (const type of ['mousePressed', 'mouseReleased']) {
      await this.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 });
    }
  }

  /** Focus the element and press a key on it (keyboard use). */
  async press(selector: string, key: 'Enter' | ' ' | 'Escape'): Promise<void> {
    const found = await this.evaluate<boolean>(`(() => { const el = document.querySelector(${JSON.stringify(selector)}); if (!el) return false; el.focus(); return document.activeElement === el; })()`);
    if (!found) throw new Error(`press: cannot focus ${selector}`);
    await this.pressKey(key);
  }

  async pressKey(key: 'Enter' | ' ' | 'Escape' | 'Tab'): Promise<void> {
    const info = { Enter: { code: 'Enter', keyCode: 13, text: '\r' }, ' ': { code: 'Space', keyCode: 32, text: ' ' }, Escape: { code: 'Escape', keyCode: 27, text: '' }, Tab: { code: 'Tab', keyCode: 9, text: '' } }[key];
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key, code: info.code, windowsVirtualKeyCode: info.keyCode, ...(info.text ? { text: info.text } : {}) });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key, code: info.code, windowsVirtualKeyCode: info.keyCode });
  }

  /** Type text into the focused element. */
  async type(selector: string, value: string): Promise<void> {
    await this.evaluate(`(() => { const el = document.querySelector(${JSON.stringify(selector)}); el.focus(); el.select && el.select(); })()`);
    await this.send('Input.insertText', { text: value });
  }

  async setViewport(width: number, height: number): Promise<void> {
    await this.send('Page.bringToFront');
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: width < 600 });
  }

  /** A PNG of the whole page, or (scrolledTo) of the viewport scrolled to that document offset. */
  async screenshot(file: string, scrolledTo?: number): Promise<void> {
    // A background tab produces no frames (and the capture would wait for one): bring this one to the front.
    await this.send('Page.bringToFront');
    if (scrolledTo !== undefined) await this.evaluate(`window.scrollTo(0, ${scrolledTo})`);
    const r = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: scrolledTo === undefined }, 15_000);
    if (typeof r['data'] !== 'string') throw new Error('captureScreenshot: no data');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, Buffer.from(r['data'], 'base64'));
  }

  /** Interactive nodes of the accessibility tree that have no accessible name. */
  async unnamedControls(): Promise<string[]> {
    const { nodes } = await this.send('Accessibility.getFullAXTree');
    const out: string[] = [];
    for (const n of Array.isArray(nodes) ? nodes : []) {
      if (!isRecord(n) || n['ignored'] === true) continue;
      const role = isRecord(n['role']) ? String(n['role']['value']) : '';
      if (!['button', 'textbox', 'combobox', 'spinbutton', 'checkbox', 'link', 'progressbar', 'meter', 'table', 'dialog'].includes(role)) continue;
      const name = isRecord(n['name']) ? String(n['name']['value'] ?? '') : '';
      if (name.trim() === '') out.push(`${role} (node ${String(n['backendDOMNodeId'])})`);
    }
    return out;
  }

  /** Everything recorded as a defect so far, plus CSP violations the page saw. */
  async allDefects(): Promise<PageDefect[]> {
    const csp = await this.evaluate<string[] | undefined>('window.__cspViolations').catch(() => undefined);
    return [...this.defects, ...(csp ?? []).map((text) => ({ kind: 'csp' as const, text }))];
  }

  async close(): Promise<void> {
    await this.browser.send('Target.closeTarget', { targetId: this.targetId }).catch(() => undefined);
  }
}
