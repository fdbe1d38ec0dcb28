#!/usr/bin/env node
/*
 * Bundle nodectl into one file after tsc: dist/src/cli/nodectl.js is replaced by an esbuild bundle of itself and
 * the modules it imports (commander, dbus-next's wire layer, our client code). nodectl is started for every command
 * and at every login (motd); resolving and compiling ~60 small modules was most of its start-up
 * (bench/nodectl: `nodectl info` 2.9x -> 2.2x `node -e 0`). The path stays the same, so the launcher, the tests and
 * the packages use the bundle. cli-progress stays a separate module (loaded only for a progress bar); the
 * transports of dbus-next we never use stay unresolved.
 *   node scripts/bundle-nodectl.js [DIST]        (default dist; run by scripts/setup.sh and `make build`)
 */
'use strict';
const path = require('node:path');
const esbuild = require('esbuild');

const dist = path.resolve(process.argv[2] || 'dist');
const file = path.join(dist, 'src/cli/nodectl.js');
// dbus-next's connection module finds a session bus through X11 (require('x11')) when it is given no address; we
// always pass one, so that module is replaced by a stub instead of leaving an unresolvable require in the bundle.
const noX11 = {
  name: 'no-x11-bus-discovery',
  setup(build) {
    build.onResolve({ filter: /\/address-x11(\.js)?$/ }, (args) => ({ path: args.path, namespace: 'no-x11' }));
    build.onLoad({ filter: /.*/, namespace: 'no-x11' }, () => ({
      contents: "module.exports.getDbusAddressFromFs = () => { throw new Error('no bus address given'); };",
      loader: 'js',
    }));
  },
};

esbuild.build({
  entryPoints: [file],
  outfile: file,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // loaded lazily or never: the progress bar, and dbus-next's usocket/x11/tcp-over-ssh transports
  external: ['cli-progress', 'usocket', 'event-stream'],
  plugins: [noX11],
  logLevel: 'warning',
  legalComments: 'inline',
}).catch(() => {
  process.exitCode = 1; // esbuild has printed the errors
});
