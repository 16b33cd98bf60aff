#!/usr/bin/env bash
# Make sure the network lab's tools are here: ip, tc and ss (Debian package iproute2).
#
# Idempotent and quiet when they are present. Unlike tests/interop/install.sh this does
# not hide a failure: the lab test cannot run without these tools, so it says so and
# exits non-zero (the test itself would fail the same way, with the same reason).
set -u

if command -v ip >/dev/null && command -v tc >/dev/null && command -v ss >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "lab install: ip/tc/ss missing and cannot install iproute2 here (need root and apt-get)" >&2
    exit 1
fi
echo "lab install: installing iproute2"
APT_OPTS="-o DPkg::Lock::Timeout=300 -o Acquire::Retries=2"
timeout 600 apt-get $APT_OPTS update -qq || echo "lab install: apt-get update failed; trying anyway"
# shellcheck disable=SC2086  # APT_OPTS is several words on purpose
DEBIAN_FRONTEND=noninteractive timeout 900 apt-get $APT_OPTS install -y -qq --no-install-recommends iproute2 || true
if command -v ip >/dev/null && command -v tc >/dev/null && command -v ss >/dev/null; then
    echo "lab install: done"
else
    echo "lab install: iproute2 could not be installed (see above)" >&2
    exit 1
fi
