#!/usr/bin/env bash
# Install the real BitTorrent programs the interop cases run against (Debian packages).
#
# Idempotent: installed packages are left alone and `apt-get update` runs only when
# something is missing. Never fails on its own: a package that cannot be installed is
# reported here, and the cases that need it report themselves skipped with the reason.
set -u

PACKAGES="python3-libtorrent transmission-cli transmission-daemon opentracker mktorrent wrk"
# How long to wait for another apt/dpkg (e.g. unattended-upgrades) to release its lock.
LOCK_WAIT_SECS=300

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for p in $PACKAGES; do
    installed "$p" || missing="$missing $p"
done

if [ -z "$missing" ]; then
    echo "interop install: all packages present ($PACKAGES)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "interop install: apt-get not found; cannot install:$missing (those cases will be skipped)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "interop install: not root and no password-less sudo; cannot install:$missing (those cases will be skipped)"
        exit 0
    fi
fi

# DPkg::Lock::Timeout covers dpkg's lock; the package lists lock of a running
# `apt-get update` is not covered, so first wait for other apt/dpkg processes to end.
if command -v pgrep >/dev/null 2>&1; then
    waited=0
    while pgrep -x 'apt|apt-get|dpkg|unattended-upgr' >/dev/null 2>&1 && [ "$waited" -lt "$LOCK_WAIT_SECS" ]; do
        [ "$waited" = 0 ] && echo "interop install: waiting for a running apt/dpkg to finish"
        sleep 2
        waited=$((waited + 2))
    done
fi
APT_OPTS="-o DPkg::Lock::Timeout=$LOCK_WAIT_SECS -o Acquire::Retries=2"
echo "interop install: installing:$missing"
# Bounded so a hung mirror cannot hold the build: the cases then skip instead.
timeout 600 $SUDO apt-get $APT_OPTS update -qq \
    || echo "interop install: apt-get update failed; trying the install with the current package lists"
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get $APT_OPTS install -y -qq --no-install-recommends $missing \
    || echo "interop install: apt-get install failed (see above)"

still=""
for p in $missing; do
    installed "$p" || still="$still $p"
done
if [ -n "$still" ]; then
    echo "interop install: NOT installed:$still (the cases needing them will be skipped)"
else
    echo "interop install: done"
fi
exit 0
