#!/usr/bin/env bash
# Installs Dovecot's IMAP server for the email channel's tests (Debian's dovecot-imapd).
# The tests start their own Dovecot on loopback with a private config; the system service
# the package starts would hold ports 143/993, so it is stopped and disabled.
# Safe to run again: it does nothing when Dovecot is already installed.
set -euo pipefail

if [ -x /usr/sbin/dovecot ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "dovecot-setup: /usr/sbin/dovecot is missing; run this script as root (or apt-get install dovecot-imapd) to install it" >&2
    exit 1
fi

# Several test processes may start at once on a fresh machine: one installs, the others wait
# for it and then find Dovecot there.
exec 9>/var/lock/kaltalk-dovecot-setup.lock
flock 9
if [ -x /usr/sbin/dovecot ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Keep the package's postinst from starting the service where policy-rc.d is honoured.
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=yes
fi
cleanup() {
    if [ "$created_policy" = yes ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

# A fresh machine may have no package lists yet; a failed update is not fatal when the
# lists it has already know the package.
apt-get -o DPkg::Lock::Timeout=300 update -qq || echo "dovecot-setup: apt-get update failed; trying the install with the lists already on this machine" >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends dovecot-imapd >/dev/null

# Wherever an init system did start it anyway, stop it and keep it from coming back.
if command -v systemctl >/dev/null 2>&1; then
    systemctl stop dovecot.service dovecot.socket >/dev/null 2>&1 || true
    systemctl disable dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi
if command -v service >/dev/null 2>&1; then
    service dovecot stop >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d dovecot disable >/dev/null 2>&1 || true
fi

test -x /usr/sbin/dovecot || {
    echo "dovecot-setup: dovecot-imapd installed but /usr/sbin/dovecot is missing" >&2
    exit 1
}
