/** What planners know about the host: the layout plus boot state and pins. Plain data. */
import type { Layout } from '../model/layout';

export interface HostState {
  readonly layout: Layout;
  /** The layer the system runs on (img.bootid of the running kernel), null when unknown (e.g. before init). */
  readonly current: string | null;
  /** The boot default (grubenv saved_entry), null when unset. */
  readonly defaultLayer: string | null;
  readonly pinned: ReadonlySet<string>;
}
