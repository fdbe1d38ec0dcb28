/**
 * One executor per step action: the only code that changes the host during a transaction.
 * Every undo is idempotent and copes with a `do` that never ran or stopped half-way (after a crash the process that
 * mounted things is gone, but its mounts are not).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { findEntry, getDefault, installKernel, removeEntry, writeEntry } from '../boot/boot-entries';
import { blsOptions } from '../boot/bls';
import { putBootState } from '../boot/boot-state';
import { readGrubenv, updateGrubenv, withVar, NEXT_ENTRY, SAVED_ENTRY } from '../boot/grubenv';
import { expandGrubVars, extraArgs, splitArgs } from '../boot/kernel-args';
import { carryForwardEtc } from '../etc/carry-forward';
import { FailedError, ImgbasedError } from '../errors';
import { alongsideImageManifest, imageManifest } from '../image/image-manifest';
import { buildManifest, compareManifests, manifestDigest, summarizeDiff, type Manifest } from '../image/manifest';
import { loadManifest, manifestFile, storeManifest } from '../image/manifest-store';
import { quickCheckBlind, resyncFiles, syncTree } from '../image/sync-base';
import { copyBlocks, copyTree, type CopyBlocksResult } from '../image/write-base';
import { mkdirDurable, removeDurable } from '../system/durable';
import { run } from '../system/run';
import type { Step } from '../plan/steps';
import type { StorageBackend } from '../storage/backend';
import { TAG, withMounted } from '../storage/backend';
import type { ExecutorMap, StepContext } from '../transaction/runner';
import { migrateVar } from '../var/migrate';
import { poolAware } from './pool-full';
import type { Services } from './services';

async function readIfExists(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

/** The BLS id of the layer's entry (what grubenv names); NotFound without an entry. */
async function entryIdOf(bootDir: string, layer: string): Promise<string> {
  const e = await findEntry(bootDir, layer);
  if (!e) throw new FailedError(`no boot entry for layer ${layer}`);
  return e.id;
}

/** Like entryIdOf, null when the entry is gone (undo puts back what still exists). */
async function entryIdOrNull(bootDir: string, layer: string): Promise<string | null> {
  return (await findEntry(bootDir, layer))?.id ?? null;
}

/** Set saved_entry and/or next_entry in one durable grubenv write (undefined leaves a variable, null unsets it). */
async function writeBootVars(grubenv: string, saved: string | null | undefined, next: string | null | undefined): Promise<void> {
  await mkdirDurable(path.dirname(grubenv));
  await updateGrubenv(grubenv, (env) => {
    let out = env;
    if (saved !== undefined) out = withVar(out, SAVED_ENTRY, saved ?? undefined);
    if (next !== undefined) out = withVar(out, NEXT_ENTRY, next ?? undefined);
    return out;
  });
}

/** fstrim a mounted filesystem; returns the bytes it reports trimmed (0 when it says nothing). */
async function trimFs(mountpoint: string): Promise<number> {
  const { stdout } = await run(['fstrim', '-v', mountpoint]);
  const m = /\((\d+) bytes\) trimmed/.exec(stdout);
  return m?.[1] ? Number(m[1]) : 0;
}

/** Unmount if the volume exists and is mounted; used by undo paths. */
async function release(ctx: StepContext<Services>, name: string): Promise<void> {
  const { backend, log } = ctx.services;
  if (!(await backend.get(name))) return;
  try {
    await backend.unmount(name);
  } catch (e) {
    if (!(e instanceof ImgbasedError)) throw e;
    log.debug(`unmount ${name} during undo: ${e.message}`, { transaction: ctx.transactionId });
  }
}

async function removeVolume(ctx: StepContext<Services>, name: string): Promise<void> {
  await release(ctx, name);
  await ctx.services.backend.removeIfExists(name);
}

function needImage(ctx: StepContext<Services>) {
  const image = ctx.services.image;
  if (!image) throw new FailedError('no image is open for this step (write-base runs only inside an upgrade)');
  return image;
}

/**
 * Progress of a step that writes bytes. Its `during:` failpoint fires once bytes were written (not at the 0 % tick
 * that comes before the copying tool starts), so a crash test kills the step while the tool is writing.
 */
function byteProgress(ctx: StepContext<Services>): (done: number, total: number) => void {
  return (done, total) => {
    ctx.progress({ bytesDone: done, bytesTotal: total });
    if (done > 0) ctx.failpoint();
  };
}

async function writeTree(ctx: StepContext<Services>, backend: StorageBackend, name: string): Promise<{ bytesTotal: number }> {
  const image = needImage(ctx);
  return withMounted(backend, name, {}, async (dst) => {
    const r = await copyTree({
      srcRoot: image.root,
      dstRoot: dst,
      signal: ctx.signal,
      onProgress: byteProgress(ctx),
    });
    return r;
  });
}

async function writeBlocks(ctx: StepContext<Services>, backend: StorageBackend, name: string): Promise<CopyBlocksResult> {
  const image = needImage(ctx);
  const device = backend.blockDevice(name);
  if (!device) throw new FailedError(`the ${backend.kind} backend has no block devices: use the tree write method`);
  await backend.activate(name);
  const r = await copyBlocks({
    rootfsImage: image.rootfsImage,
    device,
    signal: ctx.signal,
    onProgress: byteProgress(ctx),
  });
  // New UUID first: its e2fsck -f is the check offline resize2fs wants, so grow needs no second one.
  await backend.newFsUuid(name);
  const size = (await backend.get(name))?.sizeBytes ?? 0;
  await backend.grow(name, size);
  return r;
}

/** Store the image's manifest as the base's (for check --deep); what the journal keeps of it. */
async function keepManifest(ctx: StepContext<Services>, base: string, m: Manifest): Promise<{ entries: number; digest: string }> {
  await storeManifest(ctx.services.paths.stateDir, base, m);
  return { entries: m.entries.length, digest: manifestDigest(m) };
}

/** Undo of a step that wrote a base: release its mount, drop its stored manifest (the volume goes with its creator). */
async function forgetBase(ctx: StepContext<Services>, base: string): Promise<void> {
  await release(ctx, base);
  await removeDurable(manifestFile(ctx.services.paths.stateDir, base));
}

export function executors(): ExecutorMap<Step, Services> {
  return {
    'mark-layout': {
      do: (_a, ctx) => ctx.services.backend.markLayout(),
      // Membership tags are harmless on their own; real imgbased never removes them either.
      undo: async () => undefined,
    },
    'tag-init': {
      // imgbased layout --init: the installed root is tagged imgbased:init and protected (read-only, activation skip,
      // inactive) like a base; its snapshot becomes the first base.
      do: async (a, ctx) => {
        const { backend } = ctx.services;
        await backend.addTags(a.name, [TAG.init]);
        await backend.protect(a.name);
      },
      undo: async (a, ctx) => {
        const { backend } = ctx.services;
        if (!(await backend.get(a.name))) return;
        await backend.unprotect(a.name);
        await backend.removeTags(a.name, [TAG.init]);
      },
    },
    'snapshot-base': {
      do: (a, ctx) => ctx.services.backend.snapshot(a.from, a.name, { tags: [TAG.base] }),
      undo: (a, ctx) => removeVolume(ctx, a.name),
    },
    'create-base': {
      do: (a, ctx) => ctx.services.backend.createThin(a.name, {
        sizeBytes: a.sizeBytes, tags: [TAG.base], ...(a.format ? { fsType: a.fsType } : {}),
      }),
      undo: (a, ctx) => removeVolume(ctx, a.name),
    },
    'write-base': {
      // The image's manifest is built while the copy runs and stored for check --deep.
      do: async (a, ctx) => {
        const { backend } = ctx.services;
        const { result, manifest } = await poolAware(() => backend.poolUsage(), a.name, () =>
          alongsideImageManifest(needImage(ctx), ctx.signal, () => (a.method === 'blocks' ? writeBlocks : writeTree)(ctx, backend, a.name)));
        return { ...result, manifest: await keepManifest(ctx, a.name, manifest) };
      },
      // The base itself goes with create-base's undo; only a mount and the stored manifest may be left behind.
      undo: (a, ctx) => forgetBase(ctx, a.name),
    },
    'sync-base': {
      do: async (a, ctx) => {
        const { backend, paths } = ctx.services;
        const image = needImage(ctx);
        await backend.activate(a.name);
        // The snapshot shares its origin's filesystem UUID; two mounted filesystems must never share one.
        const fsUuid = await backend.newFsUuid(a.name);
        const size = (await backend.get(a.name))?.sizeBytes ?? 0;
        if (a.sizeBytes > size) await backend.grow(a.name, a.sizeBytes);
        // What the origin holds, as stored when it was installed; null for init's base (then rsync compares contents).
        const origin = await loadManifest(paths.stateDir, a.from);
        return poolAware(() => backend.poolUsage(), a.name, () => withMounted(backend, a.name, {}, async (dst) => {
          // The image is hashed while rsync runs; verify-base reuses that manifest.
          const { result: r, manifest } = await alongsideImageManifest(image, ctx.signal, () => syncTree({
            srcRoot: image.root, dstRoot: dst, signal: ctx.signal, bytesTotal: image.usedBytes, checksum: origin === null,
            onProgress: byteProgress(ctx),
          }));
          // Files rsync's quick check skipped although their content changed (same size and mtime) go again.
          const blind = origin ? quickCheckBlind(origin, manifest) : [];
          const again = blind.length > 0 ? await resyncFiles({ srcRoot: image.root, dstRoot: dst, paths: blind, signal: ctx.signal }) : null;
          // Blocks of deleted and rewritten files go back to the thin pool before the base is protected.
          const trimmed = backend.kind === 'lvm' ? await trimFs(dst) : 0;
          return {
            ...r, bytesWritten: r.bytesWritten + (again?.bytesWritten ?? 0), compared: origin ? 'manifest' : 'checksum',
            resent: blind.slice(0, 100), fsUuid, trimmedBytes: trimmed,
          };
        }));
      },
      undo: (a, ctx) => release(ctx, a.name),
    },
    'verify-base': {
      do: async (a, ctx) => {
        const { backend, paths } = ctx.services;
        const image = needImage(ctx);
        const progress = (files: number): void => {
          ctx.progress({ message: `${files} files hashed` });
          ctx.failpoint();
        };
        const expected = await imageManifest(image, { signal: ctx.signal, onProgress: progress });
        const actual = await withMounted(backend, a.name, { readOnly: true }, (root) =>
          buildManifest(root, { signal: ctx.signal, onProgress: progress }));
        const diff = compareManifests(expected, actual);
        if (!diff.equal) {
          throw new FailedError(`${a.name} does not match the image after the delta write: ${summarizeDiff(diff)}`, {
            hint: 'the base it was made from may have changed since it was installed (nodectl check --deep); WriteMethod=blocks writes the image in full',
          });
        }
        return keepManifest(ctx, a.name, expected);
      },
      undo: (a, ctx) => forgetBase(ctx, a.name),
    },
    'protect-base': {
      do: (a, ctx) => ctx.services.backend.protect(a.name),
      undo: async (a, ctx) => {
        if (await ctx.services.backend.get(a.name)) await ctx.services.backend.unprotect(a.name);
      },
    },
    'create-layer': {
      do: async (a, ctx) => {
        const { backend } = ctx.services;
        await backend.snapshot(a.base, a.name, { tags: [TAG.layer] });
        await backend.setActivationSkip(a.name, false);
        await backend.activate(a.name);
        return { fsUuid: await backend.newFsUuid(a.name) };
      },
      undo: (a, ctx) => removeVolume(ctx, a.name),
    },
    'carry-etc': {
      do: async (a, ctx) => {
        const { backend } = ctx.services;
        const result = await withMounted(backend, a.from, { readOnly: true }, (oldRoot) =>
          withMounted(backend, a.to, {}, (newRoot) =>
            carryForwardEtc({
              oldRoot,
              newRoot,
              signal: ctx.signal,
              onProgress: (done, total) => ctx.progress({ fraction: total ? done / total : 1 }),
            })));
        return { counts: result.counts, conflicts: result.conflicts.slice(0, 100), accounts: result.accounts ?? null };
      },
      undo: async (a, ctx) => {
        await release(ctx, a.to);
        await release(ctx, a.from);
      },
    },
    'migrate-var': {
      do: async (a, ctx) => {
        const r = await withMounted(ctx.services.backend, a.layer, { readOnly: true }, (root) =>
          migrateVar({ imageVar: path.join(root, 'var'), sharedVar: ctx.services.paths.varDir, signal: ctx.signal }));
        return { copied: r.copied.slice(0, 100), imgnew: r.imgnew.slice(0, 100), conflicts: r.conflicts.slice(0, 100) };
      },
      // /var only moves forward: entries the new image added stay (they are new paths nobody used before).
      undo: (a, ctx) => release(ctx, a.layer),
    },
    'install-boot': {
      do: async (a, ctx) => {
        const { backend, paths, bootPrefix } = ctx.services;
        let extra: string[] = [];
        if (a.extraArgsFrom) {
          // The running layer's entry; at init (no entry yet) the installed system's own command line.
          const running = await findEntry(paths.bootDir, a.extraArgsFrom);
          const options = running
            // EL8 entries say `$kernelopts`: expand grub variables so no second root= is carried.
            ? expandGrubVars(blsOptions(running.entry), await readGrubenv(paths.grubenv))
            : splitArgs((await readIfExists(paths.cmdline)).trim());
          extra = extraArgs(options, { layer: a.extraArgsFrom, vg: backend.vgName });
        }
        const kernel = await withMounted(backend, a.layer, { readOnly: true }, (layerRoot) =>
          installKernel({ bootDir: paths.bootDir, layer: a.layer, layerRoot }));
        await writeEntry({ bootDir: paths.bootDir, layer: a.layer, nvr: a.base, vg: backend.vgName, kernel, extraArgs: extra, bootPrefix });
        return { kernelVersion: kernel.kernelVersion, extraArgs: extra };
      },
      undo: async (a, ctx) => {
        await release(ctx, a.layer);
        await removeEntry(ctx.services.paths.bootDir, a.layer);
      },
    },
    'set-default': {
      do: async (a, ctx) => {
        const { paths } = ctx.services;
        const before = (await getDefault(paths.bootDir, { grubenvPath: paths.grubenv })) ?? null;
        // One grubenv write: saved_entry and (when asked) next_entry change together or not at all.
        const saved = await entryIdOf(paths.bootDir, a.layer);
        const next = a.next === undefined ? undefined : a.next === null ? null : await entryIdOf(paths.bootDir, a.next);
        await writeBootVars(paths.grubenv, saved, next);
        return { before };
      },
      undo: async (a, ctx) => {
        const { paths } = ctx.services;
        const saved = a.previous ? await entryIdOrNull(paths.bootDir, a.previous) : null;
        const next = a.next === undefined ? undefined : a.previousNext ? await entryIdOrNull(paths.bootDir, a.previousNext) : null;
        await writeBootVars(paths.grubenv, saved, next);
      },
    },
    'start-trial': {
      do: async (a, ctx) => {
        const { paths } = ctx.services;
        const id = await entryIdOf(paths.bootDir, a.layer);
        await putBootState(paths.stateDir, a.layer, { state: 'trial', reason: a.reason, changedAt: a.at, fallback: a.fallback });
        await writeBootVars(paths.grubenv, undefined, id);
      },
      undo: async (a, ctx) => {
        const { paths } = ctx.services;
        const next = a.previousNext ? await entryIdOrNull(paths.bootDir, a.previousNext) : null;
        await writeBootVars(paths.grubenv, undefined, next);
        await putBootState(paths.stateDir, a.layer, a.previousState);
      },
    },
    'set-boot-state': {
      do: async (a, ctx) => {
        await putBootState(ctx.services.paths.stateDir, a.layer, a.value);
      },
      undo: async (a, ctx) => {
        await putBootState(ctx.services.paths.stateDir, a.layer, a.previous);
      },
    },
    'remove-layer': {
      do: async (a, ctx) => {
        await removeEntry(ctx.services.paths.bootDir, a.name);
        await removeVolume(ctx, a.name);
        await putBootState(ctx.services.paths.stateDir, a.name, null);
      },
      undo: async () => undefined,
    },
    'remove-base': {
      do: async (a, ctx) => {
        await removeVolume(ctx, a.name);
        await removeDurable(manifestFile(ctx.services.paths.stateDir, a.name));
      },
      undo: async () => undefined,
    },
  };
}
