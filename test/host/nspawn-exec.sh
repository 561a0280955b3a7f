#!/bin/sh
# Starts systemd-nspawn for machine.ts:
#
#   nspawn-exec.sh [CGROUP_DIR...] -- SYSTEMD_NSPAWN_ARGS...
#
# First moves itself into each given cgroup directory, so every test host gets
# its own cgroup subtree (systemd-nspawn --keep-unit puts its "supervisor" and
# "payload" cgroups below the one it starts in; two hosts started from the same
# cgroup would share them). Then asks the kernel for SIGTERM when the parent
# (the test process) dies, which systemd-nspawn turns into a clean poweroff.
set -eu
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  echo $$ >"$1/cgroup.procs"
  shift
done
[ $# -gt 0 ] && shift
exec setpriv --pdeathsig SIGTERM -- systemd-nspawn "$@"
