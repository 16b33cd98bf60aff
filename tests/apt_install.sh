# Sourced by the install scripts under tests/: installs missing Debian packages, idempotently.
#
# `apt_install WHO PACKAGE...` leaves installed packages alone, runs `apt-get update` only when
# something is missing, waits for another apt/dpkg to release its lock, and prints its progress
# prefixed with WHO. It returns 0 when every package is installed afterwards; otherwise 1, with
# the packages still missing in APT_STILL. Whether that is fatal is the caller's decision.

# How long to wait for another apt/dpkg (e.g. unattended-upgrades) to release its lock.
APT_LOCK_WAIT_SECS=300

apt_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

apt_install() {
    local who=$1
    shift
    local missing="" p sudo="" waited=0
    APT_STILL=""
    for p in "$@"; do
        apt_installed "$p" || missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        echo "$who: all packages present ($*)"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: apt-get not found; cannot install:$missing" >&2
        APT_STILL=$missing
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "$who: not root and no password-less sudo; cannot install:$missing" >&2
            APT_STILL=$missing
            return 1
        fi
    fi
    # DPkg::Lock::Timeout covers dpkg's lock; the package lists lock of a running
    # `apt-get update` is not covered, so first wait for other apt/dpkg processes to end.
    if command -v pgrep >/dev/null 2>&1; then
        while pgrep -x 'apt|apt-get|dpkg|unattended-upgr' >/dev/null 2>&1 && [ "$waited" -lt "$APT_LOCK_WAIT_SECS" ]; do
            [ "$waited" = 0 ] && echo "$who: waiting for a running apt/dpkg to finish"
            sleep 2
            waited=$((waited + 2))
        done
    fi
    local opts="-o DPkg::Lock::Timeout=$APT_LOCK_WAIT_SECS -o Acquire::Retries=2"
    echo "$who: installing:$missing"
    # Bounded so a hung mirror cannot hold the build.
    # shellcheck disable=SC2086  # word splitting of the options and package list is intended
    timeout 600 $sudo apt-get $opts update -qq \
        || echo "$who: apt-get update failed; trying the install with the current package lists"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get $opts install -y -qq --no-install-recommends $missing \
        || echo "$who: apt-get install failed (see above)" >&2
    for p in $missing; do
        apt_installed "$p" || APT_STILL="$APT_STILL $p"
    done
    [ -z "$APT_STILL" ]
}
