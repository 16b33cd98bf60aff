#!/usr/bin/env bash
# Install the real BitTorrent programs the interop cases run against (Debian packages).
#
# Idempotent (see tests/apt_install.sh). Never fails on its own: a package that cannot be
# installed is reported here, and the cases that need it report themselves skipped with the
# reason.
set -u
. "$(dirname "$0")/../apt_install.sh"

PACKAGES="python3-libtorrent transmission-cli transmission-daemon opentracker mktorrent wrk"

if apt_install "interop install" $PACKAGES; then
    echo "interop install: done"
else
    echo "interop install: NOT installed:$APT_STILL (the cases needing them will be skipped)"
fi
exit 0
