/** What executors may touch: passed in, never imported globals. */
import type { Config } from '../config/config';
import type { Paths } from '../config/paths';
import type { OpenedImage } from '../image/inspect';
import type { Logger } from '../log';
import type { StorageBackend } from '../storage/backend';

export interface Services {
  readonly backend: StorageBackend;
  readonly paths: Paths;
  readonly config: Config;
  readonly log: Logger;
  /** The verified, opened image of the running upgrade; null otherwise (and always during recovery). */
  readonly image: OpenedImage | null;
  /** '' when /boot is its own partition (oVirt Node's layout), '/boot' when it lives on /. */
  readonly bootPrefix: string;
}
