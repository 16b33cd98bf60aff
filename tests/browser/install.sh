#!/usr/bin/env bash
# Install what the web page's browser test drives (Debian packages only): headless Chromium,
# its chromedriver, and the Selenium client library for Debian's /usr/bin/python3.
#
# Idempotent (see tests/apt_install.sh). Nothing here downloads a browser build: the test
# points Selenium at /usr/bin/chromedriver and /usr/bin/chromium and turns Selenium Manager
# off. Unlike tests/interop/install.sh this does not hide a failure: the browser test cannot
# run without these packages, so it says so and exits non-zero (the test would fail the same
# way).
set -u
. "$(dirname "$0")/../apt_install.sh"

if ! apt_install "browser install" chromium chromium-driver python3-selenium; then
    echo "browser install: NOT installed:$APT_STILL; the browser test cannot run" >&2
    exit 1
fi
