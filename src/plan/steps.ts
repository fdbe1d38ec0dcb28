/**
 * Every step action and its (JSON) arguments. Plans are lists of these; src/exec/ has one executor per action
 * (ExecutorMap makes a missing executor a compile error).
 */
import type { BootState } from '../boot/boot-state';
import type { FsType } from '../storage/backend';
import type { PlannedStep, StepPhase } from '../transaction/types';

export interface StepArgs {
  /** Tag the VG and the pool (init). Undo: nothing (tags are membership marks, harmless). */
  'mark-layout': Record<string, never>;
  /** Tag the installed root LV imgbased:init. */
  'tag-init': { name: string };
  /** First base from a snapshot of the installed root (init). */
  'snapshot-base': { from: string; name: string };
  /** `format`: make the filesystem (tree writes); a block write brings its own. */
  'create-base': { name: string; sizeBytes: number; fsType: FsType; format: boolean };
  /** Full write (cp -a of the tree, or a sparse block copy); the image's manifest, built meanwhile, is stored for check --deep. */
  'write-base': { name: string; image: string; method: 'tree' | 'blocks' };
  /**
   * Delta write (after snapshot-base from the newest base): new fs UUID, grow to sizeBytes, rsync the image's tree
   * in place, trim freed blocks. Undo: only a mount may be left (the volume goes with snapshot-base's undo).
   */
  'sync-base': { name: string; from: string; sizeBytes: number };
  /** The base's manifest must equal the image's (else the transaction fails); the image's is stored for check --deep. */
  'verify-base': { name: string };
  'protect-base': { name: string };
  'create-layer': { base: string; name: string };
  'carry-etc': { from: string; to: string };
  'migrate-var': { layer: string };
  'install-boot': { layer: string; base: string; extraArgsFrom: string | null };
  /**
   * saved_entry = the layer. `next`: also set next_entry (null clears it; absent leaves it). Undo puts back
   * `previous` and, when `next` was given, `previousNext`.
   */
  'set-default': { layer: string; previous: string | null; next?: string | null; previousNext?: string | null };
  /**
   * Put a new layer on trial: its boot state becomes trial (with the fallback layer) and next_entry names it, so it
   * boots once while saved_entry keeps the last good layer. Undo: the previous next_entry and state.
   */
  'start-trial': { layer: string; fallback: string; reason: string; at: string; previousNext: string | null; previousState: BootState | null };
  /** Record a layer's boot state (null forgets it). Undo: `previous`. */
  'set-boot-state': { layer: string; value: BootState | null; previous: BootState | null };
  /** Finalize: boot entry, /boot/<layer>/ and the layer LV. */
  'remove-layer': { name: string };
  /** Finalize: the base LV (after its layers). */
  'remove-base': { name: string };
}

export type Action = keyof StepArgs;
export type Step = { [K in Action]: PlannedStep<K, StepArgs[K]> }[Action];

export function step<K extends Action>(
  action: K, args: StepArgs[K], title: string, opts: { id?: string; weight?: number; phase?: StepPhase } = {},
): PlannedStep<K, StepArgs[K]> {
  return { id: opts.id ?? action, action, args, title, weight: opts.weight ?? 1, phase: opts.phase ?? 'apply' };
}
