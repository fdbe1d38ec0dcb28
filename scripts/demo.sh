#!/usr/bin/env bash
# The main job, from a fresh clone (Debian 12, as root): set everything up, then run the imgbased daemon in sandbox
# mode — a private system bus with the shipped bus policy, a real polkitd with the shipped actions, the dir backend
# in ./sandbox/sysroot — show an upgrade with live progress over D-Bus, and keep serving its clients until Ctrl-C:
# cockpit-ws with the Cockpit page, snmpd with the imgbased-snmp subagent (127.0.0.1 and unix sockets only).
#   scripts/demo.sh [WORKDIR]      (default ./sandbox; recreated on every run)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root" >&2; exit 2; }
scripts/setup.sh
exec node dist/src/sandbox/demo.js "$@"
