#!/bin/bash
# Builds the pristine Debian root file system the real-host tests boot from.
#
#   build-rootfs.sh DEST PACKAGE...
#
# DEST must not exist yet; it appears only when the build is complete (built in
# a temporary sibling directory, then renamed into place), so a half-built tree
# is never used. A lock file next to DEST serialises concurrent builds; a build
# that finds DEST already there (another run finished it) exits at once.
# Called by test/host/rootfs.ts, which names DEST after a hash of this script
# and the package list. Progress goes to stderr.
set -euo pipefail

SUITE=bookworm
MIRROR=${HOSTKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${HOSTKIT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HOSTNAME_IN_IMAGE=hostkit-test

# Units that only cost boot time or fire at random moments in a short-lived
# test host (timers that run apt, fstrim, scrubs or tmp cleaning mid-test,
# gettys on a console nobody reads). sshd too: a host a test reaches over SSH
# has it started by test/host/ssh.ts (sshInto), with a fresh host key.
MASKED_UNITS=(
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
  e2scrub_all.timer e2scrub_reap.service fstrim.timer
  systemd-tmpfiles-clean.timer logrotate.timer man-db.timer
  console-getty.service container-getty@.service getty@.service
  getty.target systemd-hwdb-update.service
  ssh.service ssh.socket
)

log() { printf 'build-rootfs: %s\n' "$*" >&2; }

if [ $# -lt 1 ]; then
  echo "usage: $0 DEST PACKAGE..." >&2
  exit 2
fi
DEST=$1
shift
PACKAGES=("$@")
CACHE_DIR=$(dirname "$DEST")

# shellcheck source=build-lib.sh
. "$(dirname "$0")/build-lib.sh"
require_root_and debootstrap chroot mount umount flock
start_build "$CACHE_DIR" build "$DEST"

WORK=$(mktemp -d "$CACHE_DIR/.build-XXXXXX")
trap 'discard_tree "$WORK"' EXIT
chmod 0755 "$WORK"
ROOT=$WORK

started=$SECONDS
log "debootstrap $SUITE (minbase + systemd) into $ROOT"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
  "$SUITE" "$ROOT" "$MIRROR" >&2

log "configuring apt and dpkg"
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cat >"$ROOT/etc/apt/apt.conf.d/90hostkit-test" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
# Documentation is dead weight in a test host (copyright files are kept).
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/90hostkit-test-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# Package scripts must not start services: they would run on this machine.
cat >"$ROOT/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
exit 101
EOF
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"

log "installing: ${PACKAGES[*]}"
in_root apt-get update -q >&2
in_root apt-get install -y -q "${PACKAGES[@]}" >&2
in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/*

umount "$ROOT/proc"
rm -f "$ROOT/usr/sbin/policy-rc.d"

log "configuring for fast, deterministic boots"
echo "$HOSTNAME_IN_IMAGE" >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<EOF
127.0.0.1 localhost
127.0.1.1 $HOSTNAME_IN_IMAGE
::1 localhost ip6-localhost ip6-loopback
EOF
# The test host has a private network holding only loopback: no resolver.
printf '# hostkit test host: private network, no DNS\n' >"$ROOT/etc/resolv.conf"
# A fixed, non-empty machine-id: no first-boot logic, same id on every boot.
if [ ! -s "$ROOT/etc/machine-id" ]; then
  in_root systemd-machine-id-setup >&2
fi
for unit in "${MASKED_UNITS[@]}"; do
  ln -sfn /dev/null "$ROOT/etc/systemd/system/$unit"
done
mkdir -p "$ROOT/etc/systemd/journald.conf.d"
cat >"$ROOT/etc/systemd/journald.conf.d/90-hostkit-test.conf" <<'EOF'
[Journal]
Storage=volatile
RateLimitBurst=0
EOF
# What this tree is, for whoever finds it on a disk.
{
  echo "suite=$SUITE"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "packages=${PACKAGES[*]}"
} >"$ROOT/etc/hostkit-test-rootfs"

log "enabled units: $(find "$ROOT/etc/systemd/system" -path '*.wants/*' -printf '%f ' | tr -s ' ')"

if [ -n "$(mounts_under "$ROOT")" ]; then
  log "refusing to publish: still mounted below $ROOT: $(mounts_under "$ROOT" | tr '\n' ' ')"
  exit 1
fi

mv -T "$WORK" "$DEST"
trap - EXIT
log "done in $((SECONDS - started)) s: $DEST ($(du -sh --one-file-system "$DEST" | cut -f1))"
