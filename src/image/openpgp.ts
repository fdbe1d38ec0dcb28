/**
 * openpgp.js v6 is an ES module package with a CommonJS build. This project compiles to CommonJS (module node16), where
 * TypeScript refuses a static import of an ESM package; dynamic import() is not available under jest. So: types from
 * the ESM declaration, runtime through require(), which Node (and jest) resolve to openpgp's CommonJS build.
 */
import type * as OpenPgp from 'openpgp' with { 'resolution-mode': 'import' };

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const openpgp = require('openpgp') as typeof OpenPgp;

export type PublicKey = OpenPgp.PublicKey;
export type PrivateKey = OpenPgp.PrivateKey;
export type Key = OpenPgp.Key;
export type Signature = OpenPgp.Signature;
