/**
 * Debian's headless Chromium driven by playwright-core (no browser download: executablePath /usr/bin/chromium), for
 * the Cockpit page tests. Every tab gets a fresh browser context (its own cookies, storage and viewport).
 *
 *   const browser = await TestBrowser.launch();
 *   const tab = await browser.newTab();
 *   await tab.page.goto(url); await tab.waitFor('document.querySelector("#x") !== null', 5_000, 'x');
 *   await tab.page.locator('#x').click(); …; await browser.close();
 *
 * Each tab records what would count as a defect in the page: console errors and warnings (including the browser's
 * own log entries, where Chromium reports CSP violations), uncaught exceptions, failed requests and HTTP errors, and
 * CSP violations as the page sees them (the DOM securitypolicyviolation event, recorded by an init script).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, BrowserContextOptions, Locator, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** The flags verified on this platform (shared/PLATFORM.md, Cockpit section). */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
] as const;

export interface PageDefect {
  kind: 'console' | 'exception' | 'csp' | 'request';
  text: string;
}

/** Records CSP violations as the page sees them (runs before any page script; CSP does not apply to it). */
const CSP_RECORDER = `
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`;

/** Roles that must carry an accessible name. */
const NAMED_ROLES = new Set(['button', 'textbox', 'combobox', 'spinbutton', 'checkbox', 'link', 'progressbar', 'meter', 'table', 'dialog']);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class TestBrowser {
  private readonly tabs = new Set<Tab>();

  private constructor(private readonly browser: Browser, private readonly home: string) {}

  static async launch(): Promise<TestBrowser> {
    // Chromium's own D-Bus use (it looks for a session/system bus) is not what is tested: give it none, and a
    // throw-away HOME. playwright adds its own temporary --user-data-dir and the debugging pipe.
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-chromium-'));
    try {
      const browser = await chromium.launch({
        executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 60_000,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', TZ: 'UTC' },
      });
      return new TestBrowser(browser, home);
    } catch (e) {
      await fs.rm(home, { recursive: true, force: true });
      throw e;
    }
  }

  /** A new page in a fresh context (default viewport 1280×800). */
  async newTab(options: BrowserContextOptions = {}): Promise<Tab> {
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'UTC', ...options });
    await context.addInitScript({ content: CSP_RECORDER });
    const page = await context.newPage();
    const tab = new Tab(context, page, () => this.tabs.delete(tab));
    this.tabs.add(tab);
    return tab;
  }

  /** Close every tab and the browser (playwright stops the process it started and removes its profile). */
  async close(): Promise<void> {
    for (const tab of [...this.tabs]) await tab.close();
    await this.browser.close().catch(() => undefined);
    await fs.rm(this.home, { recursive: true, force: true });
  }
}

export class Tab {
  readonly defects: PageDefect[] = [];
  /** Console messages of every level, for failure messages. */
  readonly console: string[] = [];
  private closed = false;

  constructor(readonly context: BrowserContext, readonly page: Page, private readonly onClose: () => void) {
    page.on('console', (m) => {
      const loc = m.location();
      const line = `${m.type()}: ${m.text()}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`;
      this.console.push(line);
      if (m.type() === 'error' || m.type() === 'warning' || m.type() === 'assert') {
        this.defects.push({ kind: /Content Security Policy/i.test(m.text()) ? 'csp' : 'console', text: line });
      }
    });
    page.on('pageerror', (e) => this.defects.push({ kind: 'exception', text: e.stack ?? e.message }));
    page.on('requestfailed', (r) => this.defects.push({ kind: 'request', text: `${r.failure()?.errorText ?? 'failed'} ${r.method()} ${r.url()}` }));
    page.on('response', (r) => {
      if (r.status() >= 400) this.defects.push({ kind: 'request', text: `HTTP ${r.status()} ${r.url()}` });
    });
  }

  /** playwright's locator in this tab's page. */
  locator(selector: string): Locator {
    return this.page.locator(selector);
  }

  /** Evaluate an expression in the page (awaiting a promise result) and return its JSON value. */
  evaluate<T = unknown>(expression: string): Promise<T> {
    return this.page.evaluate<T>(expression);
  }

  /**
   * Poll (every 50 ms, from here) until the expression is truthy; returns its value. On timeout the error carries the
   * page's text and its last console lines. (Not page.waitForFunction: it compiles the predicate inside the page,
   * which Cockpit's CSP — no 'unsafe-eval' — refuses, and the refusal would itself be a CSP violation.)
   */
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

  /** The trimmed innerText of the first element matching the selector ('' when there is none). */
  textOf(selector: string): Promise<string> {
    return this.evaluate<string>(`(document.querySelector(${JSON.stringify(selector)})?.innerText ?? '').trim()`);
  }

  /** A PNG of the whole page (fullPage) or of the viewport, into file (its directory is created). */
  async screenshot(file: string, fullPage = true): Promise<void> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await this.page.screenshot({ path: file, fullPage, animations: 'disabled', caret: 'hide' });
  }

  /** Interactive nodes of Chromium's accessibility tree that have no accessible name. */
  async unnamedControls(): Promise<string[]> {
    const cdp = await this.context.newCDPSession(this.page);
    try {
      const { nodes } = await cdp.send('Accessibility.getFullAXTree');
      const out: string[] = [];
      for (const n of nodes) {
        if (n.ignored) continue;
        const role = String(n.role?.value ?? '');
        if (!NAMED_ROLES.has(role)) continue;
        const name = String(n.name?.value ?? '');
        if (name.trim() === '') out.push(`${role} (node ${String(n.backendDOMNodeId)})`);
      }
      return out;
    } finally {
      await cdp.detach().catch(() => undefined);
    }
  }

  /** Everything recorded as a defect so far, plus CSP violations the page saw. */
  async allDefects(): Promise<PageDefect[]> {
    // Let events already on their way from the browser arrive first.
    await sleep(50);
    const csp = await this.evaluate<string[] | undefined>('window.__cspViolations').catch(() => undefined);
    return [...this.defects, ...(csp ?? []).map((text) => ({ kind: 'csp' as const, text }))];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    await this.context.close().catch(() => undefined);
  }
}
