/** What planners know about the host: the layout plus boot state and pins. Plain data. */
import type { BootStates } from '../boot/boot-state';
import type { Layout } from '../model/layout';

export interface HostState {
  readonly layout: Layout;
  /** The layer the system runs on (img.bootid of the running kernel), null when unknown (e.g. before init). */
  readonly current: string | null;
  /**
   * The layer the next boot starts: the one-shot trial boot (grubenv next_entry) when one is pending, else the saved
   * default (saved_entry); null when neither names a layer.
   */
  readonly defaultLayer: string | null;
  readonly pinned: ReadonlySet<string>;
  /** The saved default (grubenv saved_entry): the last good layer a reset falls back to. Absent = defaultLayer. */
  readonly savedDefault?: string | null;
  /** The pending one-shot boot (grubenv next_entry), null when none. */
  readonly nextBoot?: string | null;
  /** Boot assessment of the layers that have one. */
  readonly bootStates?: BootStates;
}

/** The saved default (falls back to defaultLayer for states built without grubenv detail). */
export function savedDefaultOf(state: HostState): string | null {
  return state.savedDefault === undefined ? state.defaultLayer : state.savedDefault;
}

/** The layer on trial (the newest if, against the rules, there are several), or null. */
export function trialLayerOf(state: HostState): string | null {
  const trials = state.layout.layers.filter((l) => state.bootStates?.get(l.name)?.state === 'trial');
  return trials[trials.length - 1]?.name ?? null;
}
