#!/usr/bin/env bash
# Install what the web page's browser test drives (Debian packages only): headless Chromium,
# its chromedriver, and the Selenium client library for Debian's /usr/bin/python3.
#
# Idempotent: installed packages are left alone and `apt-get update` runs only when something
# is missing. Nothing here downloads a browser build: the test points Selenium at
# /usr/bin/chromedriver and /usr/bin/chromium and turns Selenium Manager off. Unlike
# tests/interop/install.sh this does not hide a failure: the browser test cannot run without
# these packages, so it says so and exits non-zero (the test would fail the same way).
set -u

PACKAGES="chromium chromium-driver python3-selenium"
# How long to wait for another apt/dpkg (e.g. unattended-upgrades) to release its lock.
LOCK_WAIT_SECS=300

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for p in $PACKAGES; do
    installed "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser install: apt-get not found; cannot install:$missing" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "browser install: not root and no password-less sudo; cannot install:$missing" >&2
        exit 1
    fi
fi

# DPkg::Lock::Timeout covers dpkg's lock; the package lists lock of a running
# `apt-get update` is not covered, so first wait for other apt/dpkg processes to end.
if command -v pgrep >/dev/null 2>&1; then
    waited=0
    while pgrep -x 'apt|apt-get|dpkg|unattended-upgr' >/dev/null 2>&1 && [ "$waited" -lt "$LOCK_WAIT_SECS" ]; do
        [ "$waited" = 0 ] && echo "browser install: waiting for a running apt/dpkg to finish"
        sleep 2
        waited=$((waited + 2))
    done
fi
APT_OPTS="-o DPkg::Lock::Timeout=$LOCK_WAIT_SECS -o Acquire::Retries=2"
echo "browser install: installing:$missing"
timeout 600 $SUDO apt-get $APT_OPTS update -qq \
    || echo "browser install: apt-get update failed; trying the install with the current package lists"
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get $APT_OPTS install -y -qq --no-install-recommends $missing \
    || echo "browser install: apt-get install failed (see above)" >&2

still=""
for p in $missing; do
    installed "$p" || still="$still $p"
done
if [ -n "$still" ]; then
    echo "browser install: NOT installed:$still; the browser test cannot run" >&2
    exit 1
fi
echo "browser install: done"
