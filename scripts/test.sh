#!/usr/bin/env bash
# Set everything up and run the whole default test suite (host tier). Run as root from a fresh clone.
# The compile step type-checks everything (strict) before jest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test.sh: run as root (the tests mount loop devices and squashfs images)" >&2; exit 2; }
scripts/setup.sh
npx jest --ci "$@"
