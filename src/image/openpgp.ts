/**
 * openpgp.js v6 is an ES module package with a CommonJS build. This project compiles to CommonJS (module node16), where
 * TypeScript refuses a static import of an ESM package; dynamic import() is not available under jest. So: types from
 * the ESM declaration, runtime through require(), which Node (and jest) resolve to openpgp's CommonJS build.
 */
import type * as OpenPgp from 'openpgp' with { 'resolution-mode': 'import' };

let loaded: typeof OpenPgp | undefined;
function load(): typeof OpenPgp {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('openpgp') as typeof OpenPgp;
  return loaded;
}

/**
 * openpgp.js, loaded on first use: it costs ≈ 14 MB of RSS and tens of ms at start-up, and the daemon needs it only
 * when it verifies an image (bench/api: idle RSS and start → READY=1).
 */
export const openpgp: typeof OpenPgp = new Proxy({} as typeof OpenPgp, {
  get: (_target, key) => Reflect.get(load(), key) as unknown,
});

export type PublicKey = OpenPgp.PublicKey;
export type PrivateKey = OpenPgp.PrivateKey;
export type Key = OpenPgp.Key;
export type Signature = OpenPgp.Signature;
