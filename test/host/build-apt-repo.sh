#!/bin/bash
# Builds the local signed apt repository bare test hosts install from.
#
#   build-apt-repo.sh DEST BARE_ROOTFS KEY_DIR PACKAGE...
#
# Downloads PACKAGE... and every dependency BARE_ROOTFS lacks (apt resolves
# them inside a throw-away overlay of that tree, whose own Debian sources name
# the mirror), indexes them with apt-ftparchive and signs the Release file
# (InRelease and Release.gpg) with a key made once in KEY_DIR (its own
# GNUPGHOME; this machine's gpg and apt configuration are never read or
# written). DEST appears only when complete (built in a temporary sibling,
# then renamed into place); a lock next to DEST serialises concurrent builds,
# and a build that finds DEST already there exits at once. Called by
# test/host/apt-repo.ts, which names DEST after a hash of this script, the
# package list and the bare tree. Progress goes to stderr.
set -euo pipefail

SUITE=hostkit-test
COMPONENT=main
KEY_NAME='HostKit test repository <hostkit-test@localhost>'

log() { printf 'build-apt-repo: %s\n' "$*" >&2; }

if [ $# -lt 4 ]; then
  echo "usage: $0 DEST BARE_ROOTFS KEY_DIR PACKAGE..." >&2
  exit 2
fi
DEST=$1
BARE_ROOTFS=$2
KEY_DIR=$3
shift 3
PACKAGES=("$@")
CACHE_DIR=$(dirname "$DEST")

# shellcheck source=build-lib.sh
. "$(dirname "$0")/build-lib.sh"
require_root_and chroot mount umount flock apt-ftparchive gpg dpkg
[ -f "$BARE_ROOTFS/etc/os-release" ] || { log "$BARE_ROOTFS is not a root file system"; exit 1; }
start_build "$CACHE_DIR" apt-repo "$DEST"

# gpg with a home of its own: nothing of this machine's keyrings or agent.
in_keyring() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$1" GNUPGHOME="$1/gnupg" gpg --batch --quiet "${@:2}"
}

# The signing key: made once, kept across package lists (a rebuilt repository keeps its key).
if [ ! -s "$KEY_DIR/public.asc" ]; then
  log "making the repository's signing key in $KEY_DIR"
  keywork=$(mktemp -d "$CACHE_DIR/.apt-repo-key-XXXXXX")
  mkdir -m 0700 "$keywork/gnupg"
  in_keyring "$keywork" --passphrase '' --quick-generate-key "$KEY_NAME" ed25519 sign never
  in_keyring "$keywork" --armor --export "$KEY_NAME" >"$keywork/public.asc"
  # The agent gpg started for the key goes with the throw-away home it was started for.
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin GNUPGHOME="$keywork/gnupg" gpgconf --kill gpg-agent || true
  rm -rf "$KEY_DIR"
  mv -T "$keywork" "$KEY_DIR"
fi

WORK=$(mktemp -d "$CACHE_DIR/.apt-repo-XXXXXX")
trap 'discard_tree "$WORK"' EXIT
ROOT=$WORK/root
REPO=$WORK/repo
mkdir -p "$WORK/upper" "$WORK/work" "$ROOT" "$REPO/pool" "$REPO/dists/$SUITE/$COMPONENT"

# The bare tree stays pristine: apt runs in an overlay whose changes are thrown away.
mount -t overlay overlay -o "lowerdir=$BARE_ROOTFS,upperdir=$WORK/upper,workdir=$WORK/work" "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc"

started=$SECONDS
log "resolving and downloading for the bare image: ${PACKAGES[*]}"
in_root apt-get update -q >&2
in_root apt-get install -y -q --download-only --no-install-recommends "${PACKAGES[@]}" >&2
ARCH=$(in_root dpkg --print-architecture)
cp "$ROOT"/var/cache/apt/archives/*.deb "$REPO/pool/"
umount "$ROOT/proc"
umount "$ROOT"

log "indexing $(find "$REPO/pool" -name '*.deb' | wc -l) packages and signing the Release file"
BINARY=dists/$SUITE/$COMPONENT/binary-$ARCH
mkdir -p "$REPO/$BINARY"
(cd "$REPO" && apt-ftparchive packages pool >"$BINARY/Packages")
gzip -9 -n -k "$REPO/$BINARY/Packages"
(cd "$REPO/dists/$SUITE" && apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=HostKit \
  -o APT::FTPArchive::Release::Label=HostKit-test \
  -o APT::FTPArchive::Release::Suite=$SUITE \
  -o APT::FTPArchive::Release::Codename=$SUITE \
  -o APT::FTPArchive::Release::Components=$COMPONENT \
  -o APT::FTPArchive::Release::Architectures=$ARCH \
  release . >"$WORK/Release")
mv "$WORK/Release" "$REPO/dists/$SUITE/Release"
# The key is copied into a scratch home so the cached one is only ever read.
cp -a "$KEY_DIR" "$WORK/key"
in_keyring "$WORK/key" --armor --detach-sign -o "$REPO/dists/$SUITE/Release.gpg" "$REPO/dists/$SUITE/Release"
in_keyring "$WORK/key" --clearsign -o "$REPO/dists/$SUITE/InRelease" "$REPO/dists/$SUITE/Release"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin GNUPGHOME="$WORK/key/gnupg" gpgconf --kill gpg-agent || true
cp "$KEY_DIR/public.asc" "$REPO/key.asc"
chmod -R a+rX "$REPO"

mv -T "$REPO" "$DEST"
log "done in $((SECONDS - started)) s: $DEST ($(du -sh "$DEST" | cut -f1))"
