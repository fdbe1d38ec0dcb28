#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian 12 machine (run as root): apt packages, npm dependencies,
# and compile the TypeScript. Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' scripts/apt-packages.txt)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  # sd-notify is a native addon: build it against the Node headers Debian installs (no header download offline).
  npm_config_nodedir=/usr npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: compiling TypeScript"
npx tsc -p tsconfig.build.json
node scripts/bundle-nodectl.js

echo "setup: building the Cockpit page"
scripts/build-cockpit.sh
