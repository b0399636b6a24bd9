#!/usr/bin/env bash
# Builds the helm CLIs (Helm 3 and Helm 4) and promtool the chart tests use, from the Go module
# proxy, into a cache folder outside the repo, and prints that folder as the LAST line on stdout
# (everything else goes to stderr), so callers can take `tail -n1`. The folder holds `helm3`,
# `helm4` (when the proxy serves Helm 4) and `promtool`.
#
#   NLB_GUARD_HELM_BIN      use that folder as is, build nothing
#   NLB_GUARD_CACHE         cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard)
#   NLB_GUARD_HELM3_VERSION / NLB_GUARD_HELM4_VERSION / NLB_GUARD_PROMETHEUS_VERSION  override the pins
set -euo pipefail

log() { printf '[helm-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -n "${NLB_GUARD_HELM_BIN:-}" ]]; then
  log "NLB_GUARD_HELM_BIN is set: building nothing"
  printf '%s\n' "$NLB_GUARD_HELM_BIN"
  exit 0
fi
command -v go >/dev/null 2>&1 || die "go is not on PATH: Go >= 1.25 is needed to build helm"
export GOTOOLCHAIN=local
# GOFLAGS from the environment (say -mod=mod) does not apply to `go install module@version`.
export GOFLAGS=

# Pinned so a run is repeatable; bump deliberately.
helm3_version="${NLB_GUARD_HELM3_VERSION:-v3.22.0}"
helm4_version="${NLB_GUARD_HELM4_VERSION:-v4.3.2}"
prometheus_version="${NLB_GUARD_PROMETHEUS_VERSION:-v0.316.0}"

cache="${NLB_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard}/helm"
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build holds $cache/.build.lock; waiting"
  flock 9
fi

stamp_ok() { [[ -x "$cache/$1" && -f "$cache/.$1.version" && "$(cat "$cache/.$1.version")" == "$2" ]]; }

# go install with a version needs no module of ours: go resolves the tool's own go.mod.
build() { # <binary name> <package path> <version> <ldflags>
  local name=$1 pkg=$2 version=$3 ldflags=$4 start=$SECONDS tmp
  if stamp_ok "$name" "$version"; then
    log "cached: $cache/$name ($version)"
    return 0
  fi
  # A build that failed once fails again: do not spend minutes on it at every run.
  if [[ -f "$cache/.$name.failed" && "$(cat "$cache/.$name.failed")" == "$version" ]]; then
    log "$name $version failed to build before ($cache/.$name.failed): not retrying"
    return 1
  fi
  log "building $name from $pkg@$version (the first build takes minutes)"
  tmp="$(mktemp -d "$cache/gobin.XXXXXX")"
  if ! GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "$pkg@$version" >&2; then
    rm -rf "$tmp"
    printf '%s\n' "$version" >"$cache/.$name.failed"
    return 1
  fi
  mv -f "$tmp/$(basename "$pkg")" "$cache/$name"
  rm -rf "$tmp"
  printf '%s\n' "$version" >"$cache/.$name.version"
  log "$name built in $((SECONDS - start))s"
}

build helm3 helm.sh/helm/v3/cmd/helm "$helm3_version" \
  "-s -w -X helm.sh/helm/v3/internal/version.version=$helm3_version" || die "building helm $helm3_version failed"
# Helm 4 is optional: the tests run the chart through every helm this folder holds.
build helm4 helm.sh/helm/v4/cmd/helm "$helm4_version" \
  "-s -w -X helm.sh/helm/v4/internal/version.version=$helm4_version" || log "warning: building helm $helm4_version failed; testing Helm 3 only"
build promtool github.com/prometheus/prometheus/cmd/promtool "$prometheus_version" "-s -w" ||
  log "warning: building promtool failed; the rule checks fall back to the metric-name test"
printf '%s\n' "$cache"
