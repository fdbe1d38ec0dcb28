/**
 * The engine: composes state discovery, planners, executors and the transaction runner. No D-Bus here; the daemon,
 * the offline `imgbased` CLI and the tests all drive this class.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { getDefault, getNextBoot } from './boot/boot-entries';
import type { BootStates } from './boot/boot-state';
import { readBootStates } from './boot/boot-state';
import { argKey, argValue, splitArgs } from './boot/kernel-args';
import type { Config } from './config/config';
import { loadConfig } from './config/config';
import type { Paths } from './config/paths';
import { resolvePaths } from './config/paths';
import {
  CancelledError, FailedError, ImgbasedError, InvalidArgumentError, NoSpaceError, NotFoundError, toDbusError,
} from './errors';
import { executors } from './exec/executors';
import type { Services } from './exec/services';
import type { OpenedImage } from './image/inspect';
import { openImage } from './image/inspect';
import { buildManifest, compareManifests, summarizeDiff } from './image/manifest';
import { loadManifest, manifestFile } from './image/manifest-store';
import { verifyImage } from './image/verify';
import type { Logger } from './log';
import { silentLogger } from './log';
import { discoverLayout, findLayer } from './model/layout';
import { parseBaseName } from './model/names';
import type { BootVerdict, CompleteBootPlan } from './plan/boot';
import { assessmentTarget, planCompleteBoot } from './plan/boot';
import { planCleanup, planRemoveBase, planRollback } from './plan/cleanup';
import { planInit } from './plan/init';
import type { HostState } from './plan/state';
import type { Step } from './plan/steps';
import type { WriteWay } from './plan/upgrade';
import { planUpgrade } from './plan/upgrade';
import type { FsType, StorageBackend } from './storage/backend';
import { withMounted } from './storage/backend';
import { DirBackend } from './storage/dir';
import { LvmBackend } from './storage/lvm';
import { removeStaleTemps, resolveLinks, writeFileDurable } from './system/durable';
import { releaseMountsBelow } from './system/mountinfo';
import { Failpoints } from './transaction/failpoints';
import { Journal } from './transaction/journal';
import type { Outcome, RunOptions } from './transaction/runner';
import { TransactionRunner } from './transaction/runner';
import type { JournalRecord, ProgressEvent, TransactionKind } from './transaction/types';

export interface EngineOptions {
  sysroot?: string;
  config?: Config;
  backend?: StorageBackend;
  log?: Logger;
  failpoints?: Failpoints;
  bootPrefix?: string;
  now?: () => Date;
}

export interface TransactionOptions extends RunOptions {
  initiator?: string;
  /** Transaction id chosen by the caller (the daemon names its bus object after it). */
  id?: string;
}

export interface UpgradeOptions extends TransactionOptions {
  allowDowngrade?: boolean;
  keepBases?: number;
  method?: WriteWay;
  /**
   * The image came out of an image-update package whose RPM signature was checked against trusted.d (this is that
   * check's verdict), and the package carried no IMAGE.sig: the package's signature stands in for it. The image's
   * sha256 is still checked (IMAGE.sha256, from the package header when the package had none).
   */
  packageSignature?: string;
}

/** Share of an upgrade's progress taken by verifying and opening the image (before the journaled steps). */
const PREFLIGHT_PERCENT = 5;

/** Space the pool must have beyond the image's bytes (thin metadata, fs overhead). */
const SPACE_FACTOR = 1.05;

export function newTransactionId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
  return `t${stamp}_${randomBytes(3).toString('hex')}`;
}

export class Engine {
  readonly paths: Paths;
  readonly config: Config;
  readonly backend: StorageBackend;
  readonly journal: Journal;
  private readonly log: Logger;
  private readonly failpoints: Failpoints;
  private readonly bootPrefix: string;
  private readonly now: () => Date;

  private constructor(opts: Required<Omit<EngineOptions, 'sysroot'>> & { paths: Paths }) {
    this.paths = opts.paths;
    this.config = opts.config;
    this.backend = opts.backend;
    this.log = opts.log;
    this.failpoints = opts.failpoints;
    this.bootPrefix = opts.bootPrefix;
    this.now = opts.now;
    this.journal = new Journal(this.paths.stateDir);
  }

  static async open(opts: EngineOptions = {}): Promise<Engine> {
    const paths = resolvePaths(opts.sysroot ?? '/');
    const config = opts.config ?? (await loadConfig(paths.configFile));
    const backend = opts.backend ?? (await Engine.makeBackend(config, paths));
    return new Engine({
      paths,
      config,
      backend,
      log: opts.log ?? silentLogger,
      failpoints: opts.failpoints ?? Failpoints.fromEnv(),
      bootPrefix: opts.bootPrefix ?? '',
      now: opts.now ?? (() => new Date()),
    });
  }

  private static async makeBackend(config: Config, paths: Paths): Promise<StorageBackend> {
    if (config.backend === 'dir') {
      return new DirBackend({ poolDir: path.join(paths.sysroot, path.relative('/', config.dirPool)) });
    }
    const mountRoot = path.join(paths.runDir, 'mnt');
    if (config.volumeGroup && config.thinPool) {
      return new LvmBackend({ vg: config.volumeGroup, pool: config.thinPool, mountRoot });
    }
    return LvmBackend.discover({ mountRoot });
  }

  // ---- state ------------------------------------------------------------------------------------------------

  private get pinsFile(): string {
    return path.join(this.paths.stateDir, 'pinned.json');
  }

  async pinned(): Promise<Set<string>> {
    try {
      const raw: unknown = JSON.parse(await fs.readFile(this.pinsFile, 'utf8'));
      if (!Array.isArray(raw) || !raw.every((x) => typeof x === 'string')) {
        throw new FailedError(`${this.pinsFile} is not a list of layer names`);
      }
      return new Set(raw);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw e;
    }
  }

  async setPinned(layer: string, pinned: boolean): Promise<void> {
    const state = await this.state();
    if (!findLayer(state.layout, layer)) throw new NotFoundError(`no layer named ${layer}`);
    const pins = await this.pinned();
    if (pinned) pins.add(layer);
    else pins.delete(layer);
    await fs.mkdir(this.paths.stateDir, { recursive: true, mode: 0o700 });
    await writeFileDurable(this.pinsFile, JSON.stringify([...pins].sort()) + '\n', 0o600);
  }

  /** The layer named by `img.bootid=` on the running kernel's command line. */
  async bootedLayer(): Promise<string | null> {
    let cmdline: string;
    try {
      cmdline = await fs.readFile(this.paths.cmdline, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const arg = splitArgs(cmdline.trim()).find((a) => argKey(a) === 'img.bootid');
    return arg ? (argValue(arg) ?? null) : null;
  }

  async state(): Promise<HostState> {
    const layout = discoverLayout(await this.backend.list());
    const booted = await this.bootedLayer();
    const known = (l: string | undefined): string | null => (l && findLayer(layout, l) ? l : null);
    const grub = { grubenvPath: this.paths.grubenv };
    const saved = known(await getDefault(this.paths.bootDir, grub));
    const next = known(await getNextBoot(this.paths.bootDir, grub));
    return {
      layout,
      current: known(booted ?? undefined),
      defaultLayer: next ?? saved,
      savedDefault: saved,
      nextBoot: next,
      pinned: await this.pinned(),
      bootStates: await this.bootStates(),
    };
  }

  /** Boot assessment states of the layers that have one. */
  bootStates(): Promise<BootStates> {
    return readBootStates(this.paths.stateDir);
  }

  history(limit = 0): Promise<JournalRecord[]> {
    return this.journal.history(limit);
  }

  /** Record a warning on a finished transaction (shown in its history). */
  addWarning(id: string, warning: string): Promise<void> {
    return this.journal.addWarning(id, warning);
  }

  // ---- transactions -----------------------------------------------------------------------------------------

  private runner(image: OpenedImage | null): TransactionRunner<Step, Services> {
    const services: Services = {
      backend: this.backend,
      paths: this.paths,
      config: this.config,
      log: this.log,
      image,
      bootPrefix: this.bootPrefix,
    };
    return new TransactionRunner<Step, Services>({
      journal: this.journal,
      executors: executors(),
      services,
      failpoints: this.failpoints,
      now: this.now,
      log: this.log,
    });
  }

  /** Finish whatever a crash left in the journal. Run at start-up, before serving anything. */
  async recover(): Promise<JournalRecord[]> {
    await fs.mkdir(this.paths.runDir, { recursive: true });
    // A killed process leaves its image and volume mounts behind: release them before undoing.
    for (const m of await releaseMountsBelow(this.paths.runDir)) this.log.warn(`released stale mount ${m}`);
    // A power cut between an atomic write's temp file and its rename leaves the temp file behind (the old file is
    // intact); the journal's own directories are swept by the runner.
    for (const dir of await this.durableWriteDirs()) {
      for (const t of await removeStaleTemps(dir)) this.log.warn(`removed ${path.join(dir, t)}, left by an interrupted write`);
    }
    return this.runner(null).recover();
  }

  /**
   * Where the executors write files atomically (src/system/durable.ts): /boot (the layers' kernel directories, the
   * BLS entries, grubenv's directory, after its links) and the state directory (boot states, stored manifests).
   */
  private async durableWriteDirs(): Promise<string[]> {
    const { bootDir, grubenv, stateDir } = this.paths;
    const subdirs = async (dir: string): Promise<string[]> =>
      (await fs.readdir(dir, { withFileTypes: true }).catch(() => []))
        .filter((d) => d.isDirectory()).map((d) => path.join(dir, d.name));
    const dirs = [
      bootDir, ...(await subdirs(bootDir)), path.join(bootDir, 'loader', 'entries'),
      path.dirname(await resolveLinks(grubenv)), stateDir, path.dirname(manifestFile(stateDir, 'x')),
    ];
    return [...new Set(dirs)];
  }

  private async execute(
    kind: TransactionKind, request: Record<string, unknown>, steps: Step[], opts: TransactionOptions,
    image: OpenedImage | null = null,
  ): Promise<Outcome> {
    const unfinished = await this.journal.unfinished();
    if (unfinished.length > 0) {
      throw new FailedError(`transaction ${unfinished[0]?.id} is unfinished; run recovery first`);
    }
    const spec = {
      id: opts.id ?? newTransactionId(this.now()),
      kind,
      request,
      initiator: opts.initiator ?? 'root',
      steps,
    };
    this.log.info(`transaction ${spec.id} (${kind}) starts with ${steps.length} steps`, { transaction: spec.id });
    const outcome = await this.runner(image).run(spec, opts);
    this.log.info(`transaction ${spec.id} ${outcome.record.state}`, { transaction: spec.id });
    return outcome;
  }

  /** Record a transaction that failed before any step ran (bad image, no space, bad request). */
  private async recordRejected(
    kind: TransactionKind, request: Record<string, unknown>, err: unknown, opts: TransactionOptions,
  ): Promise<Outcome> {
    const error = err instanceof ImgbasedError ? err : new FailedError(String(err), { cause: err });
    const stamp = this.now().toISOString();
    const record: JournalRecord = {
      version: 1,
      id: opts.id ?? newTransactionId(this.now()),
      kind,
      request,
      initiator: opts.initiator ?? 'root',
      createdAt: stamp,
      finishedAt: stamp,
      state: error instanceof CancelledError ? 'cancelled' : 'failed',
      steps: [],
      error: toDbusError(error),
      warnings: [],
    };
    await this.journal.archive(record);
    return { record, error };
  }

  async upgrade(imagePath: string, opts: UpgradeOptions = {}): Promise<Outcome> {
    const request: Record<string, unknown> = {
      image: imagePath, allowDowngrade: opts.allowDowngrade ?? false,
      ...(opts.packageSignature === undefined ? {} : { packageSignature: opts.packageSignature }),
    };
    let image: OpenedImage | null = null;
    const emit = (percent: number, step: string, message: string, done = 0, total = 0): void =>
      opts.onProgress?.({
        transactionId: opts.id ?? '', percent, stepIndex: 0, stepCount: 0, step, message, bytesDone: done, bytesTotal: total,
      });
    let steps: Step[];
    try {
      const st = await fs.stat(imagePath).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
        // ELOOP, ENAMETOOLONG, EACCES…: a path that names no readable file is "not found", not a crash
        if (typeof e.code === 'string') throw new NotFoundError(`image ${imagePath} cannot be used (${e.code})`, { cause: e });
        throw e;
      });
      if (!st?.isFile()) throw new NotFoundError(`image ${imagePath} does not exist or is not a file`);
      emit(0, 'verify-image', 'Verifying image checksum and signature', 0, st.size);
      await verifyImage({
        imagePath,
        requireSignature: this.config.requireSignature && opts.packageSignature === undefined,
        trustedKeysDir: this.paths.trustedKeysDir,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onProgress: (done, total) => emit(Math.floor((done / Math.max(1, total)) * PREFLIGHT_PERCENT), 'verify-image', 'Verifying image', done, total),
      });
      await fs.mkdir(this.paths.runDir, { recursive: true });
      image = await openImage({ imagePath, workDir: this.paths.runDir, ...(opts.signal ? { signal: opts.signal } : {}) });
      emit(PREFLIGHT_PERCENT, 'check-space', `Image ${image.nvr}: checking pool space`);
      const state = await this.state();
      const from = state.current ?? state.defaultLayer;
      const fromVol = from ? await this.backend.get(from) : null;
      const hostFs = (from ? await this.backend.fsType(from) : null) ?? image.fsType;
      const newestBase = state.layout.bases.filter((b) => b.volume !== null).pop()?.name ?? null;
      const baseFs = newestBase ? await this.backend.fsType(newestBase) : null;
      const method = this.chooseMethod(opts.method ?? this.config.writeMethod, image.fsType, hostFs, baseFs === image.fsType ? newestBase : null);
      request.method = method;
      steps = planUpgrade(
        state,
        { path: imagePath, nvr: image.parsedNvr, usedBytes: image.usedBytes, fsType: image.fsType },
        {
          allowDowngrade: opts.allowDowngrade ?? false,
          keepBases: opts.keepBases ?? this.config.keepBases,
          method,
          ...(method === 'delta' && newestBase ? { deltaFrom: newestBase } : {}),
          sizeBytes: Math.max(fromVol?.sizeBytes ?? 0, image.imageSizeBytes),
          fsType: method === 'tree' ? hostFs : image.fsType,
          assessment: this.config.bootAssessment,
          at: this.now().toISOString(),
        },
      );
      // A delta write needs room for what changed only, unknown before the sync: ask for a tenth of the tree (a
      // pool that fills up during the sync fails the transaction, which is undone).
      await this.checkSpace(method === 'blocks' ? image.imageSizeBytes : method === 'delta' ? Math.ceil(image.usedBytes / 10) : image.usedBytes);
    } catch (e) {
      await image?.close();
      if (e instanceof ImgbasedError) return this.recordRejected('upgrade', request, e, opts);
      throw e;
    }
    // Verification and opening took the first PREFLIGHT_PERCENT; the journaled steps share the rest.
    const onProgress = opts.onProgress;
    const scaled: UpgradeOptions = onProgress
      ? { ...opts, onProgress: (e) => onProgress({ ...e, percent: Math.floor(PREFLIGHT_PERCENT + (e.percent * (100 - PREFLIGHT_PERCENT)) / 100) }) }
      : opts;
    try {
      return await this.execute('upgrade', request, steps, scaled, image);
    } finally {
      await image.close();
    }
  }

  /**
   * The way a new base is written. `auto` on lvm: delta (snapshot of the newest base + in-place sync: unchanged files
   * keep their shared thin blocks) when a base with the image's filesystem type exists; else, per bench/base-write, a sparse
   * block copy (+ fsck, grow, new UUID: 0.96 of a plain unsquashfs+copy vs 1.28 for a tree copy) on lvm when the image's
   * filesystem is the one the host runs; else (and always on the dir backend) a tree copy. A forced way that cannot
   * work is refused.
   */
  private chooseMethod(wanted: WriteWay | 'auto', imageFs: FsType, hostFs: FsType, deltaFrom: string | null): WriteWay {
    if (wanted === 'delta' && deltaFrom === null) {
      throw new InvalidArgumentError(`the delta write needs a base with the image's filesystem (${imageFs}) to start from; there is none`, {
        hint: 'use the tree or blocks method (WriteMethod= in imgbased.conf, or the "method" option)',
      });
    }
    if (wanted !== 'auto') return wanted;
    if (this.backend.kind !== 'lvm') return 'tree'; // directories share no blocks: a delta would buy nothing
    if (deltaFrom !== null) return 'delta';
    return imageFs === hostFs ? 'blocks' : 'tree';
  }

  /**
   * check --deep: does every kept base still match the manifest of its image stored when it was installed? Each
   * base is mounted read-only and hashed. Bases installed without a stored manifest (full writes, or by the original
   * imgbased) cannot be verified and say so.
   */
  async verifyBases(opts: { signal?: AbortSignal } = {}): Promise<Array<{ base: string; status: 'ok' | 'failed'; reason: string }>> {
    const out: Array<{ base: string; status: 'ok' | 'failed'; reason: string }> = [];
    for (const b of (await this.state()).layout.bases) {
      if (!b.volume) continue;
      const stored = await loadManifest(this.paths.stateDir, b.name);
      if (!stored) {
        out.push({ base: b.name, status: 'ok', reason: 'not verifiable: no manifest was stored when it was installed' });
        continue;
      }
      const actual = await withMounted(this.backend, b.name, { readOnly: true }, (root) =>
        buildManifest(root, opts.signal ? { signal: opts.signal } : {}));
      const diff = compareManifests(stored, actual);
      out.push(diff.equal
        ? { base: b.name, status: 'ok', reason: `matches its image (${stored.entries.length} entries)` }
        : { base: b.name, status: 'failed', reason: `differs from its image: ${summarizeDiff(diff, 5)}` });
    }
    return out;
  }

  /** Refuse before creating anything when the pool cannot hold the new base. */
  async checkSpace(bytes: number): Promise<void> {
    const usage = await this.backend.poolUsage();
    const need = Math.ceil(bytes * SPACE_FACTOR) + this.config.metadataMarginBytes;
    if (usage.freeBytes < need) {
      const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
      throw new NoSpaceError(`the pool has ${mib(usage.freeBytes)} free; this upgrade needs ${mib(need)}`, {
        hint: 'remove old bases (cleanup) or extend the thin pool',
      });
    }
  }

  /** Plan, then run; a plan that is refused (a typed error) is recorded in the history and returned. */
  private async planned(
    kind: TransactionKind, request: Record<string, unknown>, opts: TransactionOptions, plan: () => Promise<Step[]>,
  ): Promise<Outcome> {
    let steps: Step[];
    try {
      steps = await plan();
    } catch (e) {
      if (e instanceof ImgbasedError) return this.recordRejected(kind, request, e, opts);
      throw e;
    }
    return this.execute(kind, request, steps, opts);
  }

  rollback(target: string | null, opts: TransactionOptions = {}): Promise<Outcome> {
    return this.planned('rollback', { layer: target ?? '' }, opts, async () =>
      planRollback(await this.state(), target, this.now().toISOString()));
  }

  /**
   * CompleteBoot: judge the running layer when its boot is on trial — with `verdict` when given, else with the
   * health gates (`gates`, run only when something is on trial) — and mark trials the host left unconfirmed bad.
   * The transaction (kind boot-complete) records layer, verdict and reason in its request.
   */
  async completeBoot(
    judge: BootVerdict | ((layer: string) => Promise<BootVerdict>), opts: TransactionOptions = {},
  ): Promise<{ outcome: Outcome; plan: CompleteBootPlan }> {
    const state = await this.state();
    const target = assessmentTarget(state);
    let verdict: BootVerdict | null = null;
    let plan: CompleteBootPlan | null = null;
    try {
      if (target !== null) verdict = typeof judge === 'function' ? await judge(target) : judge;
      plan = planCompleteBoot(state, verdict, this.now().toISOString());
    } catch (e) {
      if (!(e instanceof ImgbasedError)) throw e;
      const request = { layer: target ?? '', verdict: 'none', reason: e.message };
      return { outcome: await this.recordRejected('boot-complete', request, e, opts), plan: { layer: target ?? '', verdict: 'none', reason: e.message, steps: [] } };
    }
    const request = { layer: plan.layer, verdict: plan.verdict, reason: plan.reason };
    this.log.info(`boot assessment: ${plan.layer || state.current || '(unknown layer)'}: ${plan.verdict} (${plan.reason})`);
    return { outcome: await this.execute('boot-complete', request, plan.steps, opts), plan };
  }

  cleanup(keep: number | null, opts: TransactionOptions = {}): Promise<Outcome> {
    const k = keep ?? this.config.keepBases;
    return this.planned('cleanup', { keep: k }, opts, async () => planCleanup(await this.state(), k));
  }

  removeBase(nvr: string, opts: TransactionOptions = {}): Promise<Outcome> {
    return this.planned('remove-base', { base: nvr }, opts, async () => {
      parseBaseName(nvr);
      return planRemoveBase(await this.state(), nvr);
    });
  }

  /**
   * Offline layout init (install time): the installed root LV `from` becomes the first base (NVR read from its
   * tree unless given) and layer NVR+1, which becomes the boot default.
   */
  init(from: string, nvrText: string | null, opts: TransactionOptions = {}): Promise<Outcome> {
    return this.planned('init', { from, nvr: nvrText ?? '' }, opts, async () => {
      if (!(await this.backend.get(from))) throw new NotFoundError(`no volume named ${from} to initialise from`);
      const text = nvrText ?? (await withMounted(this.backend, from, { readOnly: true }, (root) =>
        this.readNvrFile(root, from)));
      return planInit(await this.state(), from, parseBaseName(text.trim()), this.now().toISOString());
    });
  }

  private async readNvrFile(root: string, volume: string): Promise<string> {
    try {
      return await fs.readFile(path.join(root, 'usr/share/imgbase/build/meta/nvr'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      throw new InvalidArgumentError(`${volume} has no /usr/share/imgbase/build/meta/nvr: pass the NVR explicitly`);
    }
  }
}

export type { ProgressEvent };
