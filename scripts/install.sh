#!/usr/bin/env bash
# scripts/install.sh — install the BUILT tree (dist/ + node_modules/) the way a package lays it out.
# `make install` runs this; the RPM spec, a Debian package and the VM tier use the same thing.
#
#   make build                                   # npx tsc -p tsconfig.build.json (emits dist/)
#   make install DESTDIR=/tmp/root PREFIX=/usr   # or: DESTDIR=... PREFIX=... scripts/install.sh
#
# Layout (see docs/INSTALL.md for the table):
#   PREFIX/lib/imgbased/{package.json,dist/src/**.js,node_modules/}   the code, production dependencies only
#   PREFIX/libexec/imgbased/imgbased-daemon, imgbased-snmp            launchers started by systemd
#   PREFIX/bin/nodectl, PREFIX/bin/imgbased                           launchers for administrators
#   PREFIX/share/{dbus-1,polkit-1,bash-completion,man,snmp/mibs,cockpit}, PREFIX/lib/{systemd/system,tmpfiles.d}
#   SYSCONFDIR/imgbased/imgbased.conf                                 example config, never overwritten
# Optional parts (SNMP launcher, completion, man pages, MIBs, Cockpit page, extra units) are installed when the tree
# has them. Works offline: production node_modules are copied from the built tree (native addons included, already
# built against /usr/include/node) and pruned of devDependencies using package-lock.json.
#
# Env (the Makefile passes its variables): DESTDIR (default empty), PREFIX (/usr), SYSCONFDIR (/etc),
# LIBDIR (PREFIX/lib), LIBEXECDIR (PREFIX/libexec), BINDIR (PREFIX/bin), DATADIR (PREFIX/share),
# UNITDIR (PREFIX/lib/systemd/system), PRESETDIR (next to UNITDIR: .../systemd/system-preset), TMPFILESDIR (PREFIX/lib/tmpfiles.d),
# NODEJS (the node the launchers exec: default "node", looked up in PATH when they run; e.g. NODEJS=/usr/bin/node; not NODE, which npm sets for its scripts).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PREFIX=${PREFIX:-/usr}
SYSCONFDIR=${SYSCONFDIR:-/etc}
LIBDIR=${LIBDIR:-$PREFIX/lib}
LIBEXECDIR=${LIBEXECDIR:-$PREFIX/libexec}
BINDIR=${BINDIR:-$PREFIX/bin}
DATADIR=${DATADIR:-$PREFIX/share}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
PRESETDIR=${PRESETDIR:-$(dirname "$UNITDIR")/system-preset}
TMPFILESDIR=${TMPFILESDIR:-$PREFIX/lib/tmpfiles.d}
NODEJS=${NODEJS:-node}
APPDIR=$LIBDIR/imgbased            # where the code lives at run time (launchers hard-code it)

die() { echo "install.sh: $*" >&2; exit 1; }
for v in PREFIX SYSCONFDIR LIBDIR LIBEXECDIR BINDIR DATADIR UNITDIR PRESETDIR TMPFILESDIR; do
    case ${!v} in /*) ;; *) die "$v must be an absolute path, got '${!v}'" ;; esac
done
case $NODEJS in *[[:space:]\'\"\\]*) die "NODEJS must be a command name or path without spaces or quotes" ;; esac
[ -f "$SRC/dist/src/daemon/main.js" ] || die "no compiled tree in $SRC/dist (run: make build)"
[ -d "$SRC/node_modules" ] || die "no $SRC/node_modules (run: npm_config_nodedir=/usr npm ci)"
command -v node >/dev/null || die "node is needed at install time (to prune node_modules)"

shopt -s nullglob
COUNT=0
# inst MODE SRC DEST_PATH (DEST_PATH without DESTDIR)
inst() {
    install -D -m "$1" "$2" "$DESTDIR$3"
    COUNT=$((COUNT + 1))
}
# inst_dir MODE DIR... (created under DESTDIR)
inst_dir() {
    local mode=$1; shift
    for d in "$@"; do install -d -m "$mode" "$DESTDIR$d"; done
}

# --- the code: compiled JS (no tests, benchmarks or source maps) and package.json --------------------------------
rm -rf "$DESTDIR$APPDIR"
inst_dir 0755 "$APPDIR/dist"
(cd "$SRC/dist" && find src -type f -name '*.js' -print0) | (cd "$SRC/dist" && xargs -0 cp --parents -t "$DESTDIR$APPDIR/dist")
inst 0644 "$SRC/package.json" "$APPDIR/package.json"

# --- production node_modules: every package-lock entry not marked "dev", as present in the built tree ----------
# (an optional dependency that was not installed, e.g. another platform's binary, is simply absent)
# node lists the paths (NUL-separated) and tar copies them: one C process for the file I/O, which matters when the
# tree is on a slow share (the VM tier installs over 9p under software emulation).
# (fd 3: node's one summary line, to this script's stdout; its stdout is the list)
{ node - "$SRC" 3>&4 <<'EOF' | tar -C "$SRC" --null --no-recursion -T - -cf - | tar -C "$DESTDIR$APPDIR" --no-same-owner -xf -; } 4>&1
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const src = process.argv[2];
const lock = JSON.parse(fs.readFileSync(path.join(src, 'package-lock.json'), 'utf8'));
if (typeof lock !== 'object' || lock === null || typeof lock.packages !== 'object' || lock.packages === null) {
  throw new Error('package-lock.json has no "packages" map (lockfileVersion >= 2 needed)');
}
const all = new Set();
const prod = new Set();
for (const [key, entry] of Object.entries(lock.packages)) {
  if (key === '' || !key.startsWith('node_modules/') || entry === null || typeof entry !== 'object') continue;
  all.add(key);
  if (entry.dev === true || entry.link === true) continue;
  if (fs.existsSync(path.join(src, key, 'package.json'))) prod.add(key);
}
if (prod.size === 0) throw new Error('no production package found in node_modules');
// The package that owns a path: its longest prefix that is a package-lock entry (null for node_modules/ itself,
// @scope/ dirs and anything on disk the lockfile does not know).
const owner = (rel) => {
  for (let p = rel; p.includes('/'); p = p.slice(0, p.lastIndexOf('/'))) if (all.has(p)) return p;
  return null;
};
const leadsToProd = (rel) => [...prod].some((p) => p.startsWith(rel + '/'));
const keep = (rel) => {
  const own = owner(rel);
  // node_modules/ and @scope/ dirs: only on the way to a kept package
  if (own === null) return leadsToProd(rel);
  if (!prod.has(own)) return false;
  // a kept package's own nested node_modules/ (and @scope/ in it): only on the way to a kept package
  const inner = rel.slice(own.length + 1);
  if (inner === 'node_modules' || (inner.startsWith('node_modules/') && !inner.slice(13).includes('/'))) return leadsToProd(rel);
  return true;
};
const out = [];
const walk = (rel) => {
  // a symlinked node_modules (a git worktree sharing the main checkout's) is archived as the directory it points to
  if (!fs.lstatSync(path.join(src, rel)).isSymbolicLink()) out.push(rel);
  for (const e of fs.readdirSync(path.join(src, rel), { withFileTypes: true })) {
    const r = `${rel}/${e.name}`;
    if (!keep(r)) continue;
    if (e.isDirectory()) walk(r);
    else out.push(r);
  }
};
walk('node_modules');
fs.writeSync(3, `install.sh: node_modules: ${prod.size} production packages (${out.length} paths)\n`);
process.stdout.write(out.join('\0') + '\0');
EOF
# Packages own their files: plain modes, executables stay executable (native addons, bin scripts).
find "$DESTDIR$APPDIR" -type d -exec chmod 0755 {} +
chmod -R u+rw,go+r,go-w "$DESTDIR$APPDIR"

# --- launchers: sh scripts that exec node, so node is the main process (imgbased.service has NotifyAccess=main) ---
launcher() { # launcher DEST_PATH JS_REL_PATH WHAT
    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
#!/bin/sh
# $3 (installed by imgbased's scripts/install.sh)
exec $NODEJS $APPDIR/$2 "\$@"
EOF
    inst 0755 "$tmp" "$1"
    rm -f "$tmp"
}
launcher "$LIBEXECDIR/imgbased/imgbased-daemon" dist/src/daemon/main.js \
    "imgbased daemon: org.ovirt.Node on the system bus, started by systemd (imgbased.service); exec keeps node the main process"
if [ -f "$SRC/dist/src/snmp/main.js" ]; then
    launcher "$LIBEXECDIR/imgbased/imgbased-snmp" dist/src/snmp/main.js "imgbased SNMP AgentX subagent"
fi
launcher "$BINDIR/nodectl" dist/src/cli/nodectl.js "nodectl: manage the image layers through the imgbased daemon"
launcher "$BINDIR/imgbased" dist/src/cli/imgbased.js "imgbased: the offline engine (install-time init, recovery)"

# --- data files, each when the tree has it ----------------------------------------------------------------------
for f in "$SRC"/dbus/*.conf; do inst 0644 "$f" "$DATADIR/dbus-1/system.d/${f##*/}"; done
for f in "$SRC"/dbus/*.service; do inst 0644 "$f" "$DATADIR/dbus-1/system-services/${f##*/}"; done
for f in "$SRC"/dbus/*.xml; do inst 0644 "$f" "$DATADIR/dbus-1/interfaces/${f##*/}"; done
for f in "$SRC"/polkit/*.policy; do inst 0644 "$f" "$DATADIR/polkit-1/actions/${f##*/}"; done
for f in "$SRC"/polkit/*.rules; do inst 0644 "$f" "$DATADIR/polkit-1/rules.d/${f##*/}"; done
for f in "$SRC"/systemd/*.service "$SRC"/systemd/*.timer "$SRC"/systemd/*.socket "$SRC"/systemd/*.path; do
    inst 0644 "$f" "$UNITDIR/${f##*/}"
done
for f in "$SRC"/systemd/*.preset; do inst 0644 "$f" "$PRESETDIR/${f##*/}"; done
if [ -f "$SRC/completion/nodectl" ]; then
    inst 0644 "$SRC/completion/nodectl" "$DATADIR/bash-completion/completions/nodectl"
fi
for f in "$SRC"/man/*.[1-8]; do inst 0644 "$f" "$DATADIR/man/man${f##*.}/${f##*/}"; done
for f in "$SRC"/mibs/*.txt; do inst 0644 "$f" "$DATADIR/snmp/mibs/${f##*/}"; done
if [ -d "$SRC/dist/cockpit/ovirt-node" ]; then
    rm -rf "$DESTDIR$DATADIR/cockpit/ovirt-node"
    inst_dir 0755 "$DATADIR/cockpit/ovirt-node"
    while IFS= read -r -d '' f; do
        inst 0644 "$SRC/dist/cockpit/ovirt-node/$f" "$DATADIR/cockpit/ovirt-node/${f#./}"
    done < <(cd "$SRC/dist/cockpit/ovirt-node" && find . -type f ! -name '*.map' -print0)
fi
inst 0644 "$SRC/packaging/imgbased.tmpfiles" "$TMPFILESDIR/imgbased.conf"

# --- the example config: noreplace (an administrator's file is never overwritten) -------------------------------
inst_dir 0755 "$SYSCONFDIR/imgbased" "$SYSCONFDIR/imgbased/trusted.d"
if [ -e "$DESTDIR$SYSCONFDIR/imgbased/imgbased.conf" ]; then
    echo "install.sh: keeping the existing $DESTDIR$SYSCONFDIR/imgbased/imgbased.conf"
else
    inst 0644 "$SRC/packaging/imgbased.conf" "$SYSCONFDIR/imgbased/imgbased.conf"
fi

echo "install.sh: installed $COUNT files + $APPDIR into ${DESTDIR:-/}"
