#!/usr/bin/env bash
# Build the Cockpit package "ovirt-node" (the Node Layers page): compile src/cockpit/*.ts for the browser and put
# the result beside the static files from cockpit/ovirt-node/. No npm step: only the TypeScript compiler.
#   scripts/build-cockpit.sh [OUTDIR]      (default dist/cockpit/ovirt-node; install it as /usr/share/cockpit/ovirt-node)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist/cockpit/ovirt-node}"
rm -rf "$out"
mkdir -p "$out"
npx --no-install tsc -p src/cockpit/tsconfig.json --outDir "$out"
cp cockpit/ovirt-node/manifest.json cockpit/ovirt-node/index.html cockpit/ovirt-node/*.css "$out"/
# Every page module must be there, and nothing that would need a module loader.
for f in "$out"/index.js "$out"/model.js "$out"/node-client.js "$out"/dom.js; do
  [ -s "$f" ] || { echo "build-cockpit: $f missing" >&2; exit 1; }
done
# Browsers resolve module specifiers as URLs: every import must name a .js file.
bad="$(grep -hoE "from '[^']*'" "$out"/*.js | grep -v "\.js'\$" || true)"
[ -z "$bad" ] || { echo "build-cockpit: imports without .js in $out: $bad" >&2; exit 1; }
if grep -lE '^\s*(const|var|let) .* = require\(' "$out"/*.js >/dev/null; then
  echo "build-cockpit: CommonJS output in $out (check src/cockpit/tsconfig.json)" >&2
  exit 1
fi
