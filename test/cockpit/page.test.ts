/**
 * The Cockpit page (Node Layers) in a real browser against real components: the compiled imgbased daemon in sandbox
 * mode on a private system bus (the SHIPPED bus policy) with a real polkitd (the SHIPPED .policy), a real cockpit-ws
 * + cockpit-bridge serving the package built by scripts/build-cockpit.sh, and Debian's headless Chromium driven by
 * playwright-core (test/cockpit/browser.ts; a fresh browser context per tab).
 *
 * cockpit-ws --local-session runs the bridge as the user cockpit-ws runs as: root here, which polkit always
 * authorizes (the transaction's Initiator says "uid 0"); a second cockpit-ws runs as nobody, whose mutating calls
 * polkit refuses — the page must say NotAuthorized and change nothing.
 *
 * An upgrade started from the compiled nodectl while the page is open appears live in it.
 *
 * Screenshots of the main states are saved on every run into test-artifacts/cockpit/ (or IMGBASED_COCKPIT_SHOTS=DIR).
 * IMGBASED_UPDATE_DOCS_SCREENSHOT=1 also rewrites docs/cockpit-node-layers.png (the loaded page at 1280×800).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { BrowserContextOptions } from 'playwright-core';
import { createSandbox } from '../../src/sandbox/sysroot';
import { eventually, NOBODY_GID, NOBODY_UID, PrivateBus, runCommand } from '../bus/harness';
import type { RemoteClient } from '../bus/harness';
import { ok, unwrap, v } from '../bus/wire';
import { imageSet, NVR, tempDir } from '../helpers/host';
import type { ImageSet } from '../helpers/host';
import { CHROMIUM, TestBrowser } from './browser';
import type { Tab } from './browser';
import { COCKPIT_WS, CockpitWs } from './cockpit-ws';
import { holdBaseCopy, pendingOrGone, release } from '../helpers/procs';

const REPO = path.resolve(__dirname, '../..');
const DAEMON = path.join(REPO, 'dist/src/daemon/main.js');
const NODE = { destination: 'org.ovirt.Node', path: '/org/ovirt/Node' };
const LAYERS = { ...NODE, interface: 'org.ovirt.Node.Layers' };
const NODECTL = path.join(REPO, 'dist/src/cli/nodectl.js');
/** Where the screenshots of every run go (the PNGs from the previous run there are removed first). */
const SHOTS = process.env['IMGBASED_COCKPIT_SHOTS'] || path.join(REPO, 'test-artifacts/cockpit');
/** The screenshot the README shows: rewritten only on request. */
const DOCS_SHOT = process.env['IMGBASED_UPDATE_DOCS_SCREENSHOT'] === '1' ? path.join(REPO, 'docs/cockpit-node-layers.png') : undefined;

describe('Cockpit page "Node Layers" in Chromium via cockpit-ws', () => {
  let dir: string;
  let images: ImageSet;
  let sysroot: string;
  let bus: PrivateBus;
  let daemon: ChildProcessWithoutNullStreams;
  let daemonLog = '';
  let root: RemoteClient;
  let ws: CockpitWs;
  let browser: TestBrowser;
  let page: Tab;

  const prop = async (name: string, iface = 'org.ovirt.Node.Layers', objPath = NODE.path): Promise<unknown> =>
    unwrap(ok(await root.call({
      destination: NODE.destination, path: objPath, interface: 'org.freedesktop.DBus.Properties', member: 'Get',
      signature: 'ss', body: [iface, name],
    }))[0]);
  const layers = async (): Promise<Array<Record<string, unknown>>> => (await prop('Layers')) as Array<Record<string, unknown>>;
  /** What the page shows of a layer's boot assessment: the badge's state and text, the details line under it. */
  const bootShown = (p: Tab, layer: string): Promise<{ state: string; badge: string; details: string }> => p.evaluate(`(() => {
    const row = document.querySelector('tr[data-layer=' + JSON.stringify(${JSON.stringify(layer)}) + ']');
    const badge = row?.querySelector('.boot-state');
    return { state: badge?.dataset.bootState ?? '', badge: badge?.innerText.trim() ?? '', details: row?.querySelector('.boot-reason')?.innerText.trim() ?? '' };
  })()`);
  /** The trial banner: its phase ('' when hidden), its words, and whether "Confirm boot" is offered. */
  const banner = (p: Tab): Promise<{ phase: string; text: string; confirm: boolean }> => p.evaluate(`(() => {
    const b = document.getElementById('trial-banner');
    return { phase: b.hidden ? '' : b.dataset.phase, text: b.hidden ? '' : document.getElementById('trial-banner-text').innerText.trim(),
      confirm: !b.hidden && !document.getElementById('confirm-boot-box').hidden && document.getElementById('confirm-boot').getBoundingClientRect().width > 0 };
  })()`);
  const sandboxReboot = async (): Promise<string> => String(ok(await root.call({ ...NODE, interface: 'org.ovirt.Node.Sandbox', member: 'Reboot' }))[0]);
  const bases = (p: Tab): Promise<string[]> => p.evaluate<string[]>(`[...document.querySelectorAll('#layers-table tbody')].map((g) => g.dataset.base)`);
  /** A screenshot into the artifacts directory: the whole page, or (fullPage false) what the viewport shows. */
  const shot = (p: Tab, name: string, fullPage = true): Promise<void> => p.screenshot(path.join(SHOTS, `${name}.png`), fullPage);

  /** A new tab (fresh browser context) with the page loaded: state, layers, checks and history rendered. */
  async function openPage(server: CockpitWs = ws, options: BrowserContextOptions = {}): Promise<Tab> {
    const p = await browser.newTab(options);
    await p.page.goto(server.url('ovirt-node'));
    await p.waitFor('document.getElementById("app")?.dataset.ready === "true"', 20_000, 'the page to load its state');
    await p.waitFor('document.querySelector("#layers-table") && document.querySelector("#check-table") && document.querySelector("#history table, #history p")',
      15_000, 'layers, checks and history');
    return p;
  }

  /**
   * The next outcome alert not returned before: data-outcome (success/danger/info) and its text. (The page makes a
   * new element for every outcome; the one returned is marked, so a test never mistakes the previous action's.)
   */
  async function outcome(p: Tab, timeoutMs = 60_000): Promise<{ kind: string; text: string }> {
    return p.waitFor<{ kind: string; text: string }>(`(() => {
      const a = document.querySelector('#tx-result [data-outcome]:not([data-test-seen])');
      if (!a) return null;
      a.setAttribute('data-test-seen', '');
      return { kind: a.dataset.outcome, text: a.innerText.trim() };
    })()`, timeoutMs, 'the transaction outcome');
  }

  /**
   * From now on, record in the page every progress value and step the transaction card shows (from the bar's
   * aria-valuetext, "P% — step", which the page sets on every render), with the card's heading, into
   * window.__progress; and mark the document (window.__notReloaded) so a reload would show. The mutation records'
   * old values keep renders that happen within one task (the last Progress and Finished arriving together on a busy
   * machine) from being missed.
   */
  async function recordProgress(p: Tab): Promise<void> {
    await p.evaluate(`(() => {
      window.__notReloaded = true;
      window.__progress = [];
      if (window.__progressObserver) return;
      const bar = document.getElementById('tx-progress');
      const push = (text) => {
        const m = /^(\\d+(?:\\.\\d+)?)% — ([^]*)$/.exec(text ?? '');
        if (!m) return;
        const e = { value: Number(m[1]), step: m[2] || 'waiting', heading: document.getElementById('tx-heading').innerText };
        const last = window.__progress[window.__progress.length - 1];
        if (!last || last.value !== e.value || last.step !== e.step || last.heading !== e.heading) window.__progress.push(e);
      };
      window.__progressObserver = new MutationObserver((records) => {
        const changes = records.filter((r) => r.target === bar && r.attributeName === 'aria-valuetext');
        for (const r of changes.slice(1)) push(r.oldValue);
        if (changes.length > 0) push(bar.getAttribute('aria-valuetext'));
      });
      window.__progressObserver.observe(bar, { attributes: true, attributeFilter: ['aria-valuetext'], attributeOldValue: true });
    })()`);
  }
  const recorded = (p: Tab): Promise<Array<{ value: number; step: string; heading: string }>> => p.evaluate('window.__progress');

  async function expectNoDefects(p: Tab): Promise<void> {
    expect(await p.allDefects()).toEqual([]);
  }

  beforeAll(async () => {
    for (const [file, hint] of [[DAEMON, 'compile first: npx tsc -p tsconfig.build.json'], [NODECTL, 'compile first: npx tsc -p tsconfig.build.json'],
      [COCKPIT_WS, 'scripts/setup.sh installs cockpit-ws'], [CHROMIUM, 'scripts/setup.sh installs chromium']] as const) {
      await fs.access(file).catch(() => {
        throw new Error(`${file} is missing (${hint})`);
      });
    }
    await fs.mkdir(SHOTS, { recursive: true });
    for (const f of await fs.readdir(SHOTS)) if (f.endsWith('.png')) await fs.rm(path.join(SHOTS, f), { force: true });
    dir = await tempDir('cockpit');
    await fs.chmod(dir, 0o755);
    images = await imageSet(dir);
    sysroot = path.join(dir, 'sysroot');
    await createSandbox({
      sysroot, installImage: (await images.image(NVR.v1)).imagePath,
      trustedKeys: [path.join(images.key.trustedKeysDir, 'test.asc')],
    });
    // The image directory holds the update the page's "Upgrade to the newest image" finds.
    await images.image(NVR.v2, { outDir: path.join(sysroot, 'var/lib/imgbased/images'), extraMb: 64 });
    // The package exactly as scripts/build-cockpit.sh builds it, where cockpit-bridge looks ($XDG_DATA_DIRS/cockpit).
    const share = path.join(dir, 'share');
    const built = await runCommand([path.join(REPO, 'scripts/build-cockpit.sh'), path.join(share, 'cockpit/ovirt-node')],
      { cwd: REPO, env: { PATH: `${path.join(REPO, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}`, HOME: process.env['HOME'] ?? '/root' }, timeoutMs: 120_000 });
    if (built.code !== 0) throw new Error(`build-cockpit.sh failed: ${built.stdout}${built.stderr}`);
    await runCommand(['chmod', '-R', 'a+rX', share]);

    bus = await PrivateBus.start({ polkit: true, extraPolicyDirs: [path.join(REPO, 'src/sandbox')] });
    daemon = bus.spawnAs('root', [process.execPath, DAEMON, '--sysroot', sysroot, '--sandbox']);
    daemon.stderr.on('data', (b: Buffer) => (daemonLog += b.toString()));
    await eventually(async () => (await bus.busctl('root', ['status', 'org.ovirt.Node'])).code === 0, 20_000, 100);
    root = await bus.clientAs('root');
    ws = await CockpitWs.start({ systemBus: bus.address, dataDir: share });
    browser = await TestBrowser.launch();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await ws?.stop();
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await gone;
    }
    await bus?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('loads and shows the layers, current and default layer, pool, checks, policy and history the daemon has', async () => {
    const t0 = Date.now();
    page = await openPage();
    const loadMs = Date.now() - t0;
    expect(await page.textOf('#current-layer')).toBe(await prop('CurrentLayer'));
    expect(await page.textOf('#default-layer')).toBe(await prop('DefaultLayer'));
    expect(await page.textOf('#current-layer')).toBe(`${NVR.v1}+1`);

    // The tree: the base row, then its layer with current / boot default badges, size, boot entry.
    const tree = await page.evaluate<Array<{ base: string; layers: string[] }>>(`[...document.querySelectorAll('#layers-table tbody')].map((g) => ({
      base: g.dataset.base, layers: [...g.querySelectorAll('tr.layer-row')].map((r) => r.innerText.replace(/\\s+/g, ' ').trim()) }))`);
    expect(tree).toEqual([{ base: NVR.v1, layers: [expect.stringMatching(new RegExp(`^└ ${NVR.v1.replace(/\./g, '\\.')}\\+1 current boot default good 4\\.5\\.4-0\\.20250101\\.0 \\d+ MiB no \\S+ Pin$`))] }]);
    const [layer] = await layers();
    // Boot assessment: the installed layer is good (the daemon's "boot-state"); nothing is on trial, no banner.
    expect(layer?.['boot-state']).toBe('good');
    expect(await bootShown(page, `${NVR.v1}+1`)).toEqual({ state: 'good', badge: 'good', details: '' });
    expect(await prop('TrialLayer')).toBe('');
    expect(await banner(page)).toEqual({ phase: '', text: '', confirm: false });
    expect(await page.textOf(`tr[data-layer="${NVR.v1}+1"] td[data-label="Boot entry"]`)).toBe(String(layer?.['boot-entry']));

    // Pool bars carry the daemon's percentages and the 80% threshold.
    const pool = (await prop('Pool')) as Record<string, number>;
    const bars = await page.evaluate<Array<{ now: number; text: string }>>(`[...document.querySelectorAll('#pool [role=meter]')].map((m) => ({
      now: Number(m.getAttribute('aria-valuenow')), text: m.getAttribute('aria-valuetext') }))`);
    expect(bars.map((b) => b.now)).toEqual([Number(pool['data-percent']?.toFixed(1)), Number(pool['metadata-percent']?.toFixed(1))]);
    expect(await page.textOf('#pool')).toContain('Threshold 80%');

    // Check results, policy, VMs, history.
    const [status, results] = ok(await root.call({ ...LAYERS, member: 'Check' })) as [string, unknown[]];
    expect(await page.textOf('#check-status')).toBe(status);
    expect(await page.locator('#check-table tbody tr').count()).toBe(results.length);
    expect(await page.locator('#policy-select').inputValue()).toBe(await prop('AutomaticUpdatePolicy'));
    const vms = (await prop('VirtualMachines')) as { available: boolean; running: string[] };
    expect(await page.textOf('#vms')).toMatch(vms.available ? new RegExp(`^${vms.running.length}`) : /^unknown — libvirt did not answer/);
    expect(await page.textOf('#history-table')).toMatch(/Initialization\s+succeeded/);

    // The package's menu entry, as cockpit-ws serves the manifests to the shell.
    const manifests = await page.evaluate<Record<string, { menu?: Record<string, { label?: string }> }>>(
      `fetch('/cockpit/@localhost/manifests.json').then((r) => r.json())`);
    expect(manifests['ovirt-node']?.menu?.['index']?.label).toBe('Node Layers');

    // Accessible: every control has a name; no console errors, CSP violations or failed requests.
    expect(await page.unnamedControls()).toEqual([]);
    await shot(page, '01-loaded');
    if (DOCS_SHOT) await page.screenshot(DOCS_SHOT, false);
    await expectNoDefects(page);
    expect(loadMs).toBeLessThan(15_000);
  }, 60_000);

  it('upgrade from the page: the bar rises with step names, ends in success, the tree updates without a reload', async () => {
    await recordProgress(page);
    await page.locator('#upgrade-newest').click();
    const result = await outcome(page, 90_000);
    await shot(page, '02-upgraded');
    expect(result).toEqual({ kind: 'success', text: `Upgrade to ${NVR.v2} succeeded.` });
    const progress = await recorded(page);
    const values = progress.map((p) => p.value);
    expect(new Set(values).size).toBeGreaterThan(2);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(Math.max(...values)).toBeGreaterThanOrEqual(90);
    const steps = new Set(progress.map((p) => p.step));
    expect([...steps].filter((s) => s !== 'queued' && s !== 'waiting').length).toBeGreaterThan(1);
    // Step names are the daemon's step ids (the page shows the latest; a fast step may be over before the reply).
    for (const s of steps) expect(s).toMatch(/^(queued|waiting|verify-image|open-image|check-space|[a-z]+(-[a-z]+)*(:.*)?)$/);
    expect(steps).toContain('write-base');

    // Live: the new base and layer are in the tree, the default moved, in the same document.
    await page.waitFor(`document.querySelector('tr[data-layer="${NVR.v2}+1"]') !== null`, 10_000, 'the new layer row');
    expect(await page.evaluate<boolean>('window.__notReloaded === true')).toBe(true);
    // Boot assessment: the new layer is on trial — it boots once next time and becomes the default only when
    // its boot is confirmed; the banner says so (no "Confirm boot" yet: the host does not run it).
    await page.waitFor(`document.getElementById('trial-banner').dataset.phase === 'pending'`, 10_000, 'the trial banner');
    expect(await prop('TrialLayer')).toBe(`${NVR.v2}+1`);
    expect(await prop('DefaultLayer')).toBe(`${NVR.v2}+1`);
    expect(await page.textOf('#default-layer')).toBe(`${NVR.v2}+1 boots next on trial`);
    expect(await page.textOf(`tr[data-layer="${NVR.v2}+1"] th`)).toContain('boot default');
    expect(await bootShown(page, `${NVR.v2}+1`)).toEqual({ state: 'trial', badge: 'on trial', details: '' });
    expect(await banner(page)).toEqual({
      phase: 'pending', text: `${NVR.v2}+1 boots once on the next reboot; it becomes the default only when its boot is confirmed.`, confirm: false,
    });
    expect(await bases(page)).toEqual([NVR.v1, NVR.v2]);
    await page.waitFor(`/Upgrade\\s+succeeded/.test(document.getElementById('history').innerText)`, 10_000, 'the upgrade in the history');

    // The bridge (cockpit-ws --local-session) runs as root, and root is who polkit was asked about: the caller's
    // unique name in the record is a connection of uid 0, and the transaction object says "uid 0".
    const last = (await prop('LastTransaction')) as Record<string, unknown>;
    const history = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, unknown>>;
    expect(history[0]).toMatchObject({ id: last['id'], kind: 'upgrade', state: 'succeeded' });
    const caller = /(:\d+\.\d+)/.exec(String(history[0]?.['initiator']))?.[1];
    expect(caller).toBeDefined();
    const [uid] = ok(await root.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
      member: 'GetConnectionUnixUser', signature: 's', body: [caller] }));
    expect(uid).toBe(0);
    expect(await prop('Initiator', 'org.ovirt.Node.Transaction', `/org/ovirt/Node/Transaction/${String(last['id'])}`)).toMatch(/\buid 0 \(:/);
    await expectNoDefects(page);
  }, 120_000);

  it('after the (sandbox) reboot the trial boot is announced; Confirm boot runs the gates, the layer becomes good, the banner goes', async () => {
    const v1 = `${NVR.v1}+1`;
    const v2 = `${NVR.v2}+1`;
    await eventually(async () => (await prop('ActiveTransaction')) === '/', 30_000, 100);
    expect(await sandboxReboot()).toBe(v2);
    // The host runs the trial layer unconfirmed: a reset (or any reboot before the confirmation) returns to v1.
    await page.waitFor(`document.getElementById('trial-banner').dataset.phase === 'booted'`, 10_000, 'the trial-boot banner');
    expect(await prop('CurrentLayer')).toBe(v2);
    expect(await prop('DefaultLayer')).toBe(v1);
    expect(await banner(page)).toEqual({ phase: 'booted', text: `This boot of ${v2} is on trial; a reset returns to ${v1}.`, confirm: true });
    expect(await page.textOf('#current-layer')).toBe(v2);
    expect(await page.textOf('#default-layer')).toBe(`${v1} boots next`);
    expect(await bootShown(page, v2)).toEqual({ state: 'trial', badge: 'on trial', details: '' });
    expect(await page.textOf('#confirm-boot-help')).toContain(`If they pass, ${v2} becomes the boot default`);
    expect(await page.unnamedControls()).toEqual([]);
    await shot(page, '02a-trial-boot');
    // The banner and its button at 360 px: no horizontal scrolling, the button on screen and named.
    const narrow = await openPage(ws, { viewport: { width: 360, height: 800 }, isMobile: true, hasTouch: true });
    await narrow.waitFor(`document.getElementById('trial-banner').dataset.phase === 'booted'`, 10_000, 'the trial-boot banner at 360 px');
    expect(await narrow.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth')).toBeLessThanOrEqual(0);
    const button = await narrow.evaluate<{ left: number; right: number; width: number }>(`(() => {
      const r = document.getElementById('confirm-boot').getBoundingClientRect(); return { left: r.left, right: r.right, width: r.width }; })()`);
    expect(button.width).toBeGreaterThan(0);
    expect(button.left).toBeGreaterThanOrEqual(0);
    expect(button.right).toBeLessThanOrEqual(360);
    expect(await narrow.unnamedControls()).toEqual([]);
    await shot(narrow, '02a-trial-boot-narrow', false);
    await expectNoDefects(narrow);
    await narrow.close();

    await recordProgress(page);
    await page.locator('#confirm-boot').click();
    expect(await outcome(page, 60_000)).toEqual({ kind: 'success', text: `Boot of ${v2} confirmed: it is good and boots by default now.` });
    // The page followed the transaction it started, like every other action.
    expect((await recorded(page)).map((p) => p.heading)).toContainEqual(expect.stringMatching(new RegExp(`^Confirm boot of ${v2.replace(/[.+]/g, '\\$&')} — `)));
    const [record] = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, unknown>>;
    expect(record).toMatchObject({ kind: 'boot-complete', state: 'succeeded', request: { layer: v2, verdict: 'good' } });
    await page.waitFor(`document.getElementById('trial-banner').hidden`, 10_000, 'the banner to go');
    await page.waitFor(`document.querySelector('tr[data-layer="${v2}"] .boot-state')?.dataset.bootState === 'good'`, 10_000, 'the good badge');
    expect(await bootShown(page, v2)).toEqual({ state: 'good', badge: 'good', details: '' });
    expect(await prop('DefaultLayer')).toBe(v2);
    expect(await prop('TrialLayer')).toBe('');
    expect((await layers()).find((l) => l['name'] === v2)?.['boot-state']).toBe('good');
    await page.waitFor(`document.getElementById('default-layer').innerText.trim() === ${JSON.stringify(v2)}`, 10_000, 'the boot default to follow');
    await page.waitFor(`document.querySelector('#history-table tbody tr')?.dataset.id === ${JSON.stringify(record?.['id'])}`, 10_000, 'the assessment in the history');
    expect(await page.textOf('#history-table tbody tr')).toMatch(new RegExp(`Boot assessment\\s+succeeded\\s+${v2.replace(/[.+]/g, '\\$&')}: boot confirmed — `));
    await shot(page, '02b-boot-confirmed');
    await expectNoDefects(page);
  }, 90_000);

  it('a failing upgrade (corrupted .sha256) shows the D-Bus error name and message, never success', async () => {
    const bad = await images.image(NVR.v3, { corrupt: 'checksum', fileName: 'v3-bad-checksum.img' });
    // Keyboard only: typed into the field, Enter submits the form.
    const input = page.locator('#upgrade-path');
    await input.clear();
    await input.pressSequentially(bad.imagePath);
    await input.press('Enter');
    const result = await outcome(page, 60_000);
    await shot(page, '03-upgrade-failed');
    const [record] = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, string>>;
    expect(record).toMatchObject({ kind: 'upgrade', state: 'failed', 'error-name': 'org.ovirt.Node.Error.VerificationFailed' });
    expect(result.kind).toBe('danger');
    expect(result.text).toBe(`Upgrade from ${bad.imagePath} failed: org.ovirt.Node.Error.VerificationFailed: ${record?.['error-message']}`);
    expect(await page.evaluate<string>('document.getElementById("tx-result").innerText')).not.toMatch(/succeeded|up to date/i);
    expect(await page.textOf('#default-layer')).toContain(`${NVR.v2}+1`);
    await expectNoDefects(page);
  }, 90_000);

  it('pin and unpin (keyboard and mouse) and rollback change what the page shows, live', async () => {
    const v1 = `${NVR.v1}+1`;
    const pinButton = `button[data-action="pin"][data-layer="${v1}"]`;
    await page.locator(pinButton).press('Enter');
    await page.waitFor(`document.querySelector('${pinButton}')?.getAttribute('aria-pressed') === 'true'`, 10_000, 'the layer to show pinned');
    expect(await page.textOf(`tr[data-layer="${v1}"] th`)).toContain('pinned');
    expect(await page.textOf(`tr[data-layer="${v1}"] td.pinned-cell`)).toBe('yes');
    expect((await layers()).find((l) => l['name'] === v1)?.['pinned']).toBe(true);
    expect((await outcome(page)).text).toBe(`Pinned ${v1}.`);
    await shot(page, '04-pinned');

    await page.locator(pinButton).click();
    await page.waitFor(`document.querySelector('${pinButton}')?.getAttribute('aria-pressed') === 'false'`, 10_000, 'the layer to show unpinned');
    expect((await outcome(page)).text).toBe(`Unpinned ${v1}.`);
    expect((await layers()).find((l) => l['name'] === v1)?.['pinned']).toBe(false);

    // Rollback to the previous layer, through the confirmation dialog.
    await page.locator('#rollback-previous').click();
    await page.waitFor('document.getElementById("confirm-dialog").open', 5_000, 'the confirmation dialog');
    expect(await page.textOf('#confirm-body')).toContain(`${v1} becomes the boot default`);
    await shot(page, '05-rollback-dialog', false);
    await page.locator('#confirm-ok').click();
    const result = await outcome(page);
    expect(result).toEqual({ kind: 'success', text: `Rollback to ${v1} succeeded.` });
    expect(await prop('DefaultLayer')).toBe(v1);
    // The host runs v2 (booted and confirmed above): v1 is what boots next.
    await page.waitFor(`document.getElementById('default-layer').innerText.trim() === ${JSON.stringify(`${v1} boots next`)}`, 10_000, 'the default layer to change');
    expect(await page.textOf(`tr[data-layer="${v1}"] th`)).toContain('boot default');
    expect(await page.textOf(`tr[data-layer="${NVR.v2}+1"] th`)).not.toContain('boot default');

    // Escape cancels the dialog: nothing is called.
    await page.locator(`button[data-action="rollback"][data-layer="${NVR.v2}+1"]`).click();
    await page.waitFor('document.getElementById("confirm-dialog").open', 5_000, 'the confirmation dialog');
    await page.page.keyboard.press('Escape');
    await page.waitFor('!document.getElementById("confirm-dialog").open', 5_000, 'the dialog to close');
    expect(await prop('DefaultLayer')).toBe(v1);
    await expectNoDefects(page);
  }, 90_000);

  it('the automatic update policy is editable; cleanup runs through its confirmation and reports the outcome', async () => {
    await page.locator('#policy-select').selectOption('check');
    await page.locator('#policy-save').click();
    expect(await outcome(page)).toEqual({ kind: 'success', text: 'Automatic update policy set to "check".' });
    await eventually(async () => (await prop('AutomaticUpdatePolicy')) === 'check');
    expect(await page.locator('#policy-select').inputValue()).toBe('check');

    // Someone else changes it: the page follows (PropertiesChanged), no reload.
    ok(await root.call({ ...LAYERS, member: 'SetAutomaticUpdatePolicy', signature: 's', body: ['none'] }));
    await page.waitFor('document.getElementById("policy-select").value === "none"', 10_000, 'the policy to follow the daemon');

    await page.locator('#cleanup-keep').fill('2');
    await page.locator('#cleanup-submit').click();
    await page.waitFor('document.getElementById("confirm-dialog").open', 5_000, 'the confirmation dialog');
    expect(await page.textOf('#confirm-body')).toContain('keeping 2 newest');
    await page.locator('#confirm-ok').press('Enter');
    expect(await outcome(page)).toEqual({ kind: 'success', text: 'Cleanup succeeded.' });
    const [record] = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, unknown>>;
    expect(record).toMatchObject({ kind: 'cleanup', state: 'succeeded' });
    await page.waitFor(`document.querySelector('#history-table tbody tr')?.dataset.id === ${JSON.stringify(record?.['id'])}`, 10_000, 'the cleanup in the history');
    expect(await bases(page)).toEqual([NVR.v1, NVR.v2]);
    await expectNoDefects(page);
  }, 60_000);

  it('a page opened while a transaction runs attaches to it, follows its progress and shows how it ended; Cancel works', async () => {
    const big = await images.image(NVR.v3, { extraMb: 128, fileName: 'v3-big.img' });
    // Started outside the page (over D-Bus), then a second tab is opened. The base is written by `cp` (method
    // "tree", what the sandbox uses anyway), a child of the daemon this test started: it is held (SIGSTOP, by pid)
    // while the tab opens, is photographed and Cancel is clicked, so the upgrade cannot end first on a busy machine;
    // the daemon keeps answering D-Bus meanwhile.
    const [tx] = ok(await root.call({ ...LAYERS, member: 'Upgrade', signature: 'sa{sv}', body: [big.imagePath, { method: v('s', 'tree') }] })) as [string];
    const held = await holdBaseCopy(daemon.pid ?? -1, () => daemonLog);
    let late: Tab;
    try {
      late = await openPage();
      const attached = await late.waitFor<{ heading: string; value: number }>(`(() => {
        const running = !document.getElementById('tx-running').hidden;
        const heading = document.getElementById('tx-heading').innerText;
        return running && heading.includes('started by') ? { heading, value: document.getElementById('tx-progress').value } : null;
      })()`, 10_000, 'the late page to attach and read who started the transaction');
      expect(attached.heading).toContain(path.basename(tx));
      expect(attached.heading).toMatch(/^Upgrade — .* \(started by uid 0\b/);
      // The first tab, open all along, picked it up live too.
      await page.waitFor(`!document.getElementById('tx-running').hidden && document.getElementById('tx-heading').innerText.includes(${JSON.stringify(path.basename(tx))})`,
        10_000, 'the first tab to show the running transaction');
      await expect(late.locator('#upgrade-newest').isDisabled()).resolves.toBe(true);
      await late.waitFor('document.getElementById("tx-progress").value > 0', 20_000, 'progress in the late page');
      expect(await late.textOf('#tx-step')).toBe('write-base');
      await shot(late, '06-upgrading');
      await late.locator('#tx-cancel').click();
      // The daemon got the Cancel and told the copy to stop (SIGTERM, pending while it is held).
      await eventually(() => pendingOrGone(held, 15), 20_000, 20);
    } finally {
      release(held);
    }
    const r = await outcome(late, 60_000);
    expect(r).toEqual({ kind: 'info', text: expect.stringMatching(/^Upgrade was cancelled\./) });
    expect(await prop('State', 'org.ovirt.Node.Transaction', tx)).toBe('cancelled');
    expect((await outcome(page)).kind).toBe('info');
    await expect(late.locator('#upgrade-newest').isDisabled()).resolves.toBe(false);
    expect(await late.textOf('#default-layer')).toBe(`${String(await prop('DefaultLayer'))} boots next`);
    expect(await prop('DefaultLayer')).toBe(`${NVR.v1}+1`);
    await shot(late, '07-cancelled');
    await expectNoDefects(late);
    await expectNoDefects(page);
    await late.close();
  }, 120_000);

  it('an upgrade started from nodectl while the page is open appears live: progress, then the new layer; nodectl exits 0', async () => {
    const v3 = await images.image(NVR.v3, { extraMb: 48, fileName: 'v3-nodectl.img' });
    await eventually(async () => (await prop('ActiveTransaction')) === '/', 30_000, 100);
    await recordProgress(page);
    // The compiled CLI, as root, on the private bus (bus.run sets DBUS_SYSTEM_BUS_ADDRESS); it follows the
    // transaction to its end.
    const cli = await bus.run('root', [process.execPath, NODECTL, 'upgrade', v3.imagePath], { timeoutMs: 120_000 });
    // boot assessment: the upgrade's last step puts the new layer on trial (it boots once next time)
    expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/\[100%\] start-trial: done/) });
    const [record] = unwrap(ok(await root.call({ ...LAYERS, member: 'GetHistory', signature: 'u', body: [1] }))[0]) as Array<Record<string, unknown>>;
    expect(record).toMatchObject({ kind: 'upgrade', state: 'succeeded' });
    const txId = String(record?.['id']);

    // The page followed it: nodectl's transaction, started by uid 0 (not by the page), with rising progress.
    expect(await outcome(page, 30_000)).toEqual({ kind: 'success', text: 'Upgrade succeeded.' });
    const progress = await recorded(page);
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) expect(p.heading).toContain(txId);
    expect(progress.map((p) => p.heading)).toContainEqual(expect.stringMatching(new RegExp(`^Upgrade — ${txId} \\(started by uid 0\\b`)));
    const values = progress.map((p) => p.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(Math.max(...values)).toBeGreaterThan(0);
    expect(progress.some((p) => p.step !== 'queued' && p.step !== 'waiting')).toBe(true);

    // The new base and layer, the new boot default and the history entry, without a reload.
    await page.waitFor(`document.querySelector('tr[data-layer="${NVR.v3}+1"]') !== null`, 10_000, 'the new layer row');
    expect(await page.evaluate<boolean>('window.__notReloaded === true')).toBe(true);
    expect(await bases(page)).toEqual([NVR.v1, NVR.v2, NVR.v3]);
    await page.waitFor(`document.getElementById('default-layer').innerText.trim() === ${JSON.stringify(`${NVR.v3}+1 boots next on trial`)}`, 10_000, 'the new boot default');
    expect(await bootShown(page, `${NVR.v3}+1`)).toEqual({ state: 'trial', badge: 'on trial', details: '' });
    expect((await banner(page)).phase).toBe('pending');
    expect(await page.textOf(`tr[data-layer="${NVR.v3}+1"] th`)).toContain('boot default');
    await page.waitFor(`document.querySelector('#history-table tbody tr')?.dataset.id === ${JSON.stringify(txId)}`, 10_000, 'the upgrade in the history');
    expect(await page.textOf('#history-table tbody tr')).toMatch(/Upgrade\s+succeeded/);
    await shot(page, '08-nodectl-upgraded');
    await expectNoDefects(page);
  }, 150_000);

  it('a boot reported bad: "failed boot" with the reason as text, the outcome says so, the last good layer is the default again', async () => {
    const v2 = `${NVR.v2}+1`;
    const v3 = `${NVR.v3}+1`;
    // v3 was put on trial by nodectl while v1 was the saved default (the rollback test made it so): the fallback.
    const fallback = `${NVR.v1}+1`;
    await eventually(async () => (await prop('ActiveTransaction')) === '/', 30_000, 100);
    expect(await sandboxReboot()).toBe(v3);
    await page.waitFor(`document.getElementById('trial-banner').dataset.phase === 'booted'`, 10_000, 'the trial-boot banner');
    expect((await banner(page)).text).toBe(`This boot of ${v3} is on trial; a reset returns to ${fallback}.`);
    // An external health check (CompleteBoot with a verdict, here over D-Bus as root) reports the boot bad.
    const reason = 'smoke test: vdsmd did not answer within 120 s; storage domain 3f2a9c0e-7d1b-4c55-9e0a-1b2c3d4e5f60 unreachable';
    ok(await root.call({ ...LAYERS, member: 'CompleteBoot', signature: 'a{sv}', body: [{ verdict: v('s', 'bad'), reason: v('s', reason) }] }));
    // The open page attaches to the assessment and tells its verdict.
    expect(await outcome(page, 60_000)).toEqual({ kind: 'danger', text: `Boot of ${v3} failed: ${reason}. The last good layer boots by default again.` });
    await page.waitFor(`document.querySelector('tr[data-layer="${v3}"] .boot-state')?.dataset.bootState === 'bad'`, 10_000, 'the failed-boot badge');
    const shown = await bootShown(page, v3);
    expect(shown).toEqual({ state: 'bad', badge: 'failed boot', details: expect.stringMatching(/^Failed boot: /) });
    expect(shown.details).toContain(reason);
    const layer = (await layers()).find((l) => l['name'] === v3);
    expect(layer).toMatchObject({ 'boot-state': 'bad', 'boot-state-reason': reason });
    await page.waitFor(`document.getElementById('trial-banner').hidden`, 10_000, 'the banner to go');
    expect(await prop('TrialLayer')).toBe('');
    expect(await prop('DefaultLayer')).toBe(fallback);
    await page.waitFor(`document.getElementById('default-layer').innerText.trim() === ${JSON.stringify(`${fallback} boots next`)}`, 10_000, 'the default to fall back');
    await page.waitFor(`/${v3.replace(/[.+]/g, '\\$&')}: boot failed — smoke test/.test(document.getElementById('history').innerText)`, 10_000, 'the verdict in the history');
    expect(await bootShown(page, v2)).toMatchObject({ state: 'good' });
    await shot(page, '08a-boot-failed');
    await expectNoDefects(page);
  }, 90_000);

  it('a tab whose bridge runs as nobody: reads everything, and every change is NotAuthorized, shown honestly', async () => {
    const nobodyWs = await CockpitWs.start({ systemBus: bus.address, dataDir: path.join(dir, 'share'), user: { uid: NOBODY_UID, gid: NOBODY_GID, home: '/nonexistent' } });
    try {
      await eventually(async () => (await prop('ActiveTransaction')) === '/', 30_000, 100);
      const p = await openPage(nobodyWs);
      expect(await p.textOf('#current-layer')).toBe(await prop('CurrentLayer'));
      const before = await layers();
      const v1 = `${NVR.v1}+1`;
      await p.locator(`button[data-action="pin"][data-layer="${v1}"]`).click();
      const pin = await outcome(p);
      expect(pin).toEqual({ kind: 'danger', text: expect.stringMatching(new RegExp(`^Pin ${v1.replace(/[.+]/g, '\\$&')} failed: org\\.ovirt\\.Node\\.Error\\.NotAuthorized: not authorized for org\\.ovirt\\.node\\.layers\\.pin`)) });
      await p.locator('#upgrade-newest').click();
      expect((await outcome(p)).text).toMatch(/^Upgrade failed: org\.ovirt\.Node\.Error\.NotAuthorized: not authorized for org\.ovirt\.node\.layers\.automatic-update/);
      expect(await layers()).toEqual(before);
      expect(await p.locator(`button[data-action="pin"][data-layer="${v1}"]`).getAttribute('aria-pressed')).toBe('false');
      await shot(p, '09-nobody');
      await expectNoDefects(p);
      await p.close();
    } finally {
      await nobodyWs.stop();
    }
  }, 90_000);

  it('is readable at 360 px: no horizontal scrolling, tables stacked, controls reachable', async () => {
    // A phone-sized tab (its own context: 360×800, mobile viewport handling).
    const narrow = await openPage(ws, { viewport: { width: 360, height: 800 }, isMobile: true, hasTouch: true });
    expect(await narrow.evaluate<number>('window.innerWidth')).toBe(360);
    const overflow = await narrow.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    expect(await narrow.evaluate<string>('getComputedStyle(document.querySelector("#layers-table tr")).display')).toBe('block');
    const offscreen = await narrow.evaluate<string[]>(`[...document.querySelectorAll('button, input, select')].filter((e) => {
      const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1); }).map((e) => e.id || e.textContent)`);
    expect(offscreen).toEqual([]);
    expect(await narrow.unnamedControls()).toEqual([]);
    await shot(narrow, '10-narrow-top', false);
    await narrow.evaluate('window.scrollTo(0, document.getElementById("layers").getBoundingClientRect().top + window.scrollY - 60)');
    await shot(narrow, '10-narrow-layers', false);
    await shot(narrow, '10-narrow');
    await expectNoDefects(narrow);
    await narrow.close();
    await expectNoDefects(page);
    expect(daemonLog).not.toMatch(/failed unexpectedly|crashed/);
  }, 30_000);
});
