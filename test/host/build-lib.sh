# Sourced by build-rootfs.sh and build-apt-repo.sh (which define log): how a
# cached tree is built once per machine. The tree is made in a temporary
# sibling and renamed into place when complete; a lock serialises builds.

# Exits unless running as root with every command named.
require_root_and() {
  local tool
  if [ "$(id -u)" -ne 0 ]; then
    log "must run as root"
    exit 1
  fi
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { log "missing $tool (run test/host/install-prerequisites.sh)"; exit 1; }
  done
}

# Runs a command inside the tree being built ($ROOT), with the clean environment apt and dpkg expect.
in_root() {
  chroot "$ROOT" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Every mount point at or below $1, deepest first.
mounts_under() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
# Unmount everything below $1, then delete it without ever crossing into a
# file system that is still mounted there (e.g. a bind mount of /dev).
discard_tree() {
  local dir=$1 m
  for m in $(mounts_under "$dir"); do umount "$m" 2>/dev/null || umount -l "$m"; done
  rm -rf --one-file-system "$dir"
}

# start_build CACHE_DIR NAME DEST: takes CACHE_DIR/.NAME.lock (fd 9, held until
# the script exits), exits 0 at once when DEST is there (another run built it),
# then removes the build directories CACHE_DIR/.NAME-* of builds that died.
start_build() {
  local cache_dir=$1 name=$2 dest=$3 stale
  mkdir -p "$cache_dir"
  exec 9>"$cache_dir/.$name.lock"
  if ! flock -n 9; then
    log "another build holds $cache_dir/.$name.lock; waiting"
    flock 9
  fi
  if [ -d "$dest" ]; then
    log "$dest already built"
    exit 0
  fi
  # Holding the lock, any leftover build directory belongs to a build that died.
  for stale in "$cache_dir"/."$name"-*; do
    [ -e "$stale" ] || continue
    log "removing stale build directory $stale"
    discard_tree "$stale"
  done
}
