# imgbased — build and install the way a package lays the project out (docs/INSTALL.md).
#
#   make build                                  compile the TypeScript into dist/ (npx tsc -p tsconfig.build.json),
#                                               then bundle nodectl into one file (scripts/bundle-nodectl.js)
#   make install DESTDIR=/tmp/root PREFIX=/usr  install the built tree (dist/ + production node_modules) under DESTDIR
#
# `install` does not build: run `make build` first (an RPM's %build, then %install). The work is done by
# scripts/install.sh, which the RPM spec, a Debian package and the VM tier share.

PREFIX      ?= /usr
DESTDIR     ?=
SYSCONFDIR  ?= /etc
LIBDIR      ?= $(PREFIX)/lib
LIBEXECDIR  ?= $(PREFIX)/libexec
BINDIR      ?= $(PREFIX)/bin
DATADIR     ?= $(PREFIX)/share
UNITDIR     ?= $(PREFIX)/lib/systemd/system
PRESETDIR   ?= $(dir $(UNITDIR))system-preset
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
# The node the launchers exec: a bare name is looked up in PATH when they run.
NODEJS      ?= node

.PHONY: all build install

all: build

build:
	npx tsc -p tsconfig.build.json
	node scripts/bundle-nodectl.js

install:
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' SYSCONFDIR='$(SYSCONFDIR)' LIBDIR='$(LIBDIR)' \
	LIBEXECDIR='$(LIBEXECDIR)' BINDIR='$(BINDIR)' DATADIR='$(DATADIR)' UNITDIR='$(UNITDIR)' \
	PRESETDIR='$(PRESETDIR)' TMPFILESDIR='$(TMPFILESDIR)' NODEJS='$(NODEJS)' ./scripts/install.sh
