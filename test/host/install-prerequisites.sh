#!/bin/sh
# Installs what the real-host test suite needs on the machine that runs it
# (see test/host/README or test/host/HARNESS.md). Idempotent: packages
# already present are left alone and apt is not touched at all when nothing is
# missing. Must run as root on Debian/Ubuntu.
set -eu

# command -> Debian package that provides it
need() {
  command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}

missing=""
need systemd-nspawn systemd-container
need debootstrap debootstrap
need nsenter util-linux
need pgrep procps
need mount mount
need flock util-linux
need sha256sum coreutils
need restic restic # the backup layer's unit tests run the real restic
need ssh openssh-client # SshHost: the system's OpenSSH client (its tests reach sshd in a test host)
need ssh-keygen openssh-client
need python3 python3 # ssh.spec runs the SSH host's remote helper locally
# The local signed apt repository test hosts install from (apt-repo.ts).
need apt-ftparchive apt-utils
need gpg gpg

if [ -z "$missing" ]; then
  echo "install-prerequisites: nothing to install" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-prerequisites: must run as root to install:$missing" >&2
  exit 1
fi

echo "install-prerequisites: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
