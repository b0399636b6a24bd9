#!/usr/bin/env bash
# Builds the health-check sidecar (a static Go binary, standard library only) into a cache outside
# the repository, keyed by its sources, the Go version and the build flags, and prints the binary's
# path as the LAST line on stdout (everything else goes to stderr), so callers can take `tail -n1`.
# A cached binary is reused: the first build on a machine takes seconds, later calls none.
#
#   NLB_GUARD_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard)
#
# The Dockerfile's sidecar-build stage runs the same `go build` command (test/docker/production.test.ts
# keeps the two equal).
set -euo pipefail

log() { printf '[sidecar] %s\n' "$*" >&2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null 2>&1 || { log "ERROR: go is not on PATH: Go >= 1.23 builds the sidecar"; exit 1; }
# Never let go fetch another toolchain: a failure naming the Go it needs is easier to act on.
export GOTOOLCHAIN=local CGO_ENABLED=0
flags=(-trimpath -ldflags "-s -w")

go_version="$(go env GOVERSION)"
key="$(
  {
    printf '%s\n' "$go_version" "$(go env GOOS GOARCH)" "${flags[*]}"
    cd "$here" && for f in go.mod $(ls ./*.go ./*.s | grep -v '_test\.go$' | sort); do printf '%s\n' "$f"; cat "$f"; done
  } | sha256sum | cut -c1-16
)"
cache="${NLB_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard}/sidecar"
binary="$cache/$key/nlb-guard-healthcheck"
mkdir -p "$cache"

if [[ ! -x "$binary" ]]; then
  # One build at a time per cache: parallel test files wait for the first one's result.
  exec 9>"$cache/.lock"
  flock 9
  if [[ ! -x "$binary" ]]; then
    log "building nlb-guard-healthcheck with $go_version into $binary"
    mkdir -p "$cache/$key"
    partial="$binary.$$.tmp"
    (cd "$here" && go build "${flags[@]}" -o "$partial" .)
    mv "$partial" "$binary"
  fi
  flock -u 9
fi
printf '%s\n' "$binary"
