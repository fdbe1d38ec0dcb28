/**
 * Every host path resolves under a sysroot (default `/`), so sandbox mode and tests run in a temp tree.
 */
import * as path from 'node:path';

export interface Paths {
  readonly sysroot: string;
  readonly configFile: string;
  readonly trustedKeysDir: string;
  readonly stateDir: string;
  readonly bootDir: string;
  readonly grubenv: string;
  /** The shared /var (moves forward only). */
  readonly varDir: string;
  /** Kernel command line of the running system (img.bootid= names the booted layer). */
  readonly cmdline: string;
  /** Scratch space for mountpoints. */
  readonly runDir: string;
}

export function resolvePaths(sysroot = '/'): Paths {
  const root = path.resolve(sysroot);
  const at = (...p: string[]): string => path.join(root, ...p);
  return {
    sysroot: root,
    configFile: at('etc/imgbased/imgbased.conf'),
    trustedKeysDir: at('etc/imgbased/trusted.d'),
    stateDir: at('var/lib/imgbased'),
    bootDir: at('boot'),
    grubenv: at('boot/grub2/grubenv'),
    varDir: at('var'),
    cmdline: at('proc/cmdline'),
    runDir: at('run/imgbased'),
  };
}
