#!/usr/bin/env bash
# Install Debian's `prometheus` package (for the scrape tests, which start
# their own instance on loopback with a generated config) and make sure the
# package's own service is neither running nor enabled.
#
# Idempotent: the install is skipped when /usr/bin/prometheus exists; the
# "service stopped and disabled" part is checked on every run.
# Must run as root when anything needs doing. Exits non-zero on any failure.
set -euo pipefail

bin=/usr/bin/prometheus
pidfile=/run/prometheus/prometheus.pid
export DEBIAN_FRONTEND=noninteractive

die() { echo "setup-prometheus.sh: error: $*" >&2; exit 1; }
log() { echo "setup-prometheus.sh: $*" >&2; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# The packaged daemon runs as user "prometheus"; instances started by our
# tests do not, so this matches only the package's service.
service_pids() { pgrep -u prometheus -x prometheus 2>/dev/null || true; }
service_enabled() {
    ls /etc/rc[2-5].d/S[0-9][0-9]prometheus >/dev/null 2>&1 \
        || [ -e /etc/systemd/system/multi-user.target.wants/prometheus.service ]
}

if [ ! -x "$bin" ]; then
    is_root || die "$bin is missing and installing it needs root"
    command -v apt-get >/dev/null || die "apt-get not found (not a Debian system?)"
    # (Captured first: with pipefail, `apt-cache ... | grep -q` can fail on SIGPIPE.)
    policy="$(apt-cache policy prometheus 2>/dev/null || true)"
    if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
        log "no install candidate for prometheus; running apt-get update"
        apt-get update -q >&2 || die "apt-get update failed"
    fi
    # Keep the postinst from starting the daemon (invoke-rc.d honours
    # policy-rc.d) unless the machine already has a policy of its own.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    log "installing prometheus"
    apt-get install -y -q --no-install-recommends prometheus >&2 || die "apt-get install prometheus failed"
    [ -x "$bin" ] || die "$bin still missing after install"
fi

# Stop the package's daemon if something started it.
if [ -n "$(service_pids)" ]; then
    is_root || die "the prometheus package's service is running (pids $(service_pids | xargs)); run as root to stop it"
    log "stopping the prometheus package's service"
    if [ -d /run/systemd/system ]; then
        systemctl stop prometheus.service || true
    fi
    if [ -n "$(service_pids)" ] && [ -x /etc/init.d/prometheus ]; then
        /etc/init.d/prometheus stop || true
    fi
    # Last resort: the pid the init script recorded, and only that one.
    if [ -n "$(service_pids)" ] && [ -f "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        if grep -qx "$pid" <<<"$(service_pids)"; then kill "$pid" || true; fi
    fi
    for _ in $(seq 50); do [ -z "$(service_pids)" ] && break; sleep 0.1; done
    [ -z "$(service_pids)" ] || die "the prometheus package's service is still running: pids $(service_pids | xargs)"
fi

# Disable it so it is not started at boot (sysv links and systemd wants link;
# deb-systemd-helper works without a running systemd).
if service_enabled; then
    is_root || die "the prometheus package's service is enabled; run as root to disable it"
    log "disabling the prometheus package's service"
    if [ -d /run/systemd/system ]; then
        systemctl disable prometheus.service >/dev/null 2>&1 || true
    fi
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
    fi
    rm -f /etc/systemd/system/multi-user.target.wants/prometheus.service
    update-rc.d prometheus disable >/dev/null 2>&1 || true
    service_enabled && die "could not disable the prometheus package's service"
fi

version="$("$bin" --version 2>&1)" || die "$bin --version failed"
echo "${version%%$'\n'*}" >&2
echo "$bin"
