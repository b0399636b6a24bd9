#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd used by the e2e suite from the Go
# module proxy, into an envtest-style folder outside the repo, and prints that
# folder as the LAST line on stdout (everything else goes to stderr), so
# callers can take `tail -n1`.
#
#   KUBEBUILDER_ASSETS     use that folder as is, build nothing (envtest convention)
#   NLB_GUARD_CACHE        cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard)
#   NLB_GUARD_K8S_VERSION  override the k8s.io/kubernetes version pinned in kube-apiserver/go.mod
#   NLB_GUARD_ETCD_VERSION override the etcd version pinned in etcd/go.mod
set -euo pipefail

log() { printf '[e2e-assets] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  log "KUBEBUILDER_ASSETS is set: building nothing"
  for bin in kube-apiserver etcd; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || log "warning: $KUBEBUILDER_ASSETS/$bin is missing or not executable"
  done
  printf '%s\n' "$KUBEBUILDER_ASSETS"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null 2>&1 || die "go is not on PATH: Go >= 1.26 is needed to build kube-apiserver and etcd"

# Never let go fetch a different toolchain behind our back: a failure that
# names the required Go version is easier to act on than a silent download.
export GOTOOLCHAIN=local
# The work modules start without go.sum entries and replace lines; -mod=mod
# lets go record what it resolves. Keep whatever else the user set.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"

# The pinned versions live in the committed go.mod files so there is one
# source of truth; `go mod edit -json` avoids parsing go.mod by hand.
required_version() { # <go.mod> <module path>
  go mod edit -json "$1" | awk -v p="\"$2\"" '
    $1 == "\"Path\":" && $2 == p"," { found = 1; next }
    found && $1 == "\"Version\":" { gsub(/[",]/, "", $2); print $2; exit }'
}

k8s_version="${NLB_GUARD_K8S_VERSION:-$(required_version "$here/kube-apiserver/go.mod" k8s.io/kubernetes)}"
etcd_version="${NLB_GUARD_ETCD_VERSION:-$(required_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)}"
[[ "$k8s_version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "unexpected k8s version '$k8s_version' (want v1.Y.Z)"
k8s_minor="${BASH_REMATCH[1]}"
k8s_patch="${BASH_REMATCH[2]}"
[[ "$etcd_version" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "unexpected etcd version '$etcd_version' (want v3.Y.Z)"
# Staging modules are published as v0.<minor>.<patch> alongside each k8s release.
staging_version="v0.${k8s_minor}.${k8s_patch}"

cache="${NLB_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard}/e2e"
out="$cache/k8s-$k8s_version"
versions_file="$out/VERSIONS"
want_versions="kube-apiserver=$k8s_version
etcd=$etcd_version
go=$(go env GOVERSION)"

is_built() {
  [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -f "$versions_file" ]] &&
    grep -qx "kube-apiserver=$k8s_version" "$versions_file" &&
    grep -qx "etcd=$etcd_version" "$versions_file"
}

if is_built; then
  log "cached: $out"
  printf '%s\n' "$out"
  exit 0
fi

mkdir -p "$out"
# Two test processes may ask for the assets at once: the second waits for
# the first instead of racing it on the same output files.
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build holds $cache/.build.lock; waiting"
  flock 9
fi
if is_built; then
  log "cached (built by another process): $out"
  printf '%s\n' "$out"
  exit 0
fi

# go writes go.mod/go.sum while resolving, so build in a copy under the cache
# and keep the repo untouched.
prepare_workdir() { # <name> <source module dir>
  local dir="$cache/work/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$2/go.mod" "$dir/"
  if [[ -f "$2/go.sum" ]]; then cp "$2/go.sum" "$dir/"; fi
  printf '%s\n' "$dir"
}

build_kube_apiserver() {
  local start=$SECONDS dir gomod
  dir="$(prepare_workdir "kube-apiserver-$k8s_version" "$here/kube-apiserver")"
  log "resolving k8s.io/kubernetes@$k8s_version"
  gomod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$k8s_version" |
    awk '$1 == "\"GoMod\":" { gsub(/[",]/, "", $2); print $2; exit }')"
  [[ -n "$gomod" && -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$k8s_version from the module proxy"

  # k8s.io/kubernetes requires its staging modules at the fake v0.0.0 and
  # points them at ./staging/src; a consumer must replace each with the
  # published version instead, or go fails with "unknown revision v0.0.0".
  local -a edits=("-require=k8s.io/kubernetes@$k8s_version")
  local mod count=0
  while read -r mod; do
    edits+=("-replace=$mod=$mod@$staging_version")
    count=$((count + 1))
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print $1 }' "$gomod")
  ((count > 0)) || die "found no staging replace lines in $gomod"
  log "replacing $count staging modules with $staging_version"
  (cd "$dir" && go mod edit "${edits[@]}")

  log "building kube-apiserver $k8s_version (first build takes tens of minutes)"
  # Without the -X flags /version reports v0.0.0-master; nlb-guard reads it.
  local vpkg=k8s.io/component-base/version
  (cd "$dir" && go build -trimpath \
    -ldflags "-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$k8s_minor -X $vpkg.gitTreeState=clean" \
    -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$out/kube-apiserver.tmp" "$out/kube-apiserver"
  log "kube-apiserver built in $((SECONDS - start))s"
}

build_etcd() {
  local start=$SECONDS dir
  dir="$(prepare_workdir "etcd-$etcd_version" "$here/etcd")"
  # server/v3's own replace lines point at sibling dirs of the etcd repo;
  # as a dependency they are ignored and its requires resolve to the
  # published modules of the same release.
  (cd "$dir" && go mod edit "-require=go.etcd.io/etcd/server/v3@$etcd_version")
  log "building etcd $etcd_version"
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv -f "$out/etcd.tmp" "$out/etcd"
  log "etcd built in $((SECONDS - start))s"
}

# Per-binary stamps let an interrupted run, or a changed etcd pin, redo only
# what is missing; VERSIONS is written last and marks the folder complete.
stamp_ok() { [[ -x "$out/$1" && -f "$out/.$1.version" && "$(cat "$out/.$1.version")" == "$2" ]]; }
rm -f "$versions_file"
if stamp_ok etcd "$etcd_version"; then
  log "etcd $etcd_version already built"
else
  build_etcd
  printf '%s\n' "$etcd_version" >"$out/.etcd.version"
fi
if stamp_ok kube-apiserver "$k8s_version"; then
  log "kube-apiserver $k8s_version already built"
else
  build_kube_apiserver
  printf '%s\n' "$k8s_version" >"$out/.kube-apiserver.version"
fi
printf '%s\n' "$want_versions" >"$versions_file"
log "assets ready in $out"
printf '%s\n' "$out"
