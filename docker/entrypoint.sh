#!/bin/sh
# Entry point of the lab image (installed as /usr/local/bin/lab-entrypoint).
#
# As the image's user `lab` (the default: every worker) it only execs the command.
# Started as root, which docker-compose.yml does for the producer alone (`user: "0"`), it hands
# the command to the owner of $RESULTS_DIR (the ./results bind mount) with setpriv, so the
# records land on the host owned by whoever owns ./results, and never as root. A results dir
# owned by root (docker creates ./results as root when it is missing) is given to `lab` first.
# LAB_KEEP_ROOT=1 skips all that (debugging only).
#
# A worker's readiness file (WORKER_READY_FILE, written by app/celery.py on worker_ready, read by
# the Compose healthcheck) is removed first: a restarted container keeps its /tmp, and a file from
# the previous start would report the worker ready before it is.
set -eu
[ -z "${WORKER_READY_FILE:-}" ] || rm -f "$WORKER_READY_FILE"
if [ "$(id -u)" = 0 ] && [ "${LAB_KEEP_ROOT:-0}" != 1 ]; then
  dir=${RESULTS_DIR:-/results}
  mkdir -p "$dir"
  uid=$(stat -c %u "$dir")
  gid=$(stat -c %g "$dir")
  if [ "$uid" = 0 ]; then
    chown lab:lab "$dir"
    uid=$(id -u lab)
    gid=$(id -g lab)
  fi
  export HOME=/tmp
  exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
fi
exec "$@"
