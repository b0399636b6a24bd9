#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd used by the e2e suite from the Go
# module proxy, into an envtest-style folder outside the repo (one folder per
# Kubernetes version, its etcd beside it), and prints that folder as the LAST
# line on stdout (everything else goes to stderr), so callers can take
# `tail -n1`.
#
#   build.sh               the newest version (the highest kube-apiserver/v*)
#   build.sh 1.19.16       that version (a folder kube-apiserver/v1.19.16 holds
#                          what it needs beyond the plain recipe)
#   build.sh --all         every version under kube-apiserver/, one folder per
#                          line, the newest last
#   build.sh --list        the versions it knows, oldest first; builds nothing
#
#   KUBEBUILDER_ASSETS     for the newest version only: use that folder as is,
#                          build nothing (envtest convention). Other versions
#                          always come from the cache below.
#   NLB_GUARD_CACHE        cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard);
#                          version V lives in $NLB_GUARD_CACHE/e2e/k8s-vV
#   NLB_GUARD_K8S_VERSION  the version to build when no argument is given
#   NLB_GUARD_ETCD_VERSION override the etcd version pinned in etcd/go.mod
set -euo pipefail

log() { printf '[e2e-assets] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

known_versions() { # oldest first
  local d
  for d in "$here"/kube-apiserver/v*/; do
    d="${d%/}"
    printf '%s\n' "${d##*/}"
  done | sort -V
}
newest="$(known_versions | tail -n1)"

case "${1:-}" in
  --list)
    known_versions
    exit 0
    ;;
  --all)
    # Each build prints its folder last; keep only those lines on stdout.
    for v in $(known_versions); do
      "${BASH_SOURCE[0]}" "$v" | tail -n1
    done
    exit 0
    ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 0
    ;;
  -*) die "unknown option '$1' (try --help)" ;;
esac
(($# <= 1)) || die "at most one version (got $*)"

requested="${1:-${NLB_GUARD_K8S_VERSION:-$newest}}"
k8s_version="v${requested#v}"
[[ "$k8s_version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "unexpected k8s version '$requested' (want 1.Y.Z)"
k8s_minor="${BASH_REMATCH[1]}"
k8s_patch="${BASH_REMATCH[2]}"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && "$k8s_version" == "$newest" ]]; then
  log "KUBEBUILDER_ASSETS is set: building nothing for $k8s_version"
  for bin in kube-apiserver etcd; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || log "warning: $KUBEBUILDER_ASSETS/$bin is missing or not executable"
  done
  printf '%s\n' "$KUBEBUILDER_ASSETS"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "go is not on PATH: Go >= 1.26 is needed to build kube-apiserver and etcd"

# Never let go fetch a different toolchain behind our back: a failure that
# names the required Go version is easier to act on than a silent download.
export GOTOOLCHAIN=local
# The work modules start without go.sum entries and replace lines; -mod=mod
# lets go record what it resolves. Keep whatever else the user set.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod -buildvcs=false"

# The pinned versions live in the committed go.mod files so there is one
# source of truth; `go mod edit -json` avoids parsing go.mod by hand.
required_version() { # <go.mod> <module path>
  go mod edit -json "$1" | awk -v p="\"$2\"" '
    $1 == "\"Path\":" && $2 == p"," { found = 1; next }
    found && $1 == "\"Version\":" { gsub(/[",]/, "", $2); print $2; exit }'
}

etcd_version="${NLB_GUARD_ETCD_VERSION:-$(required_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)}"
[[ "$etcd_version" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "unexpected etcd version '$etcd_version' (want v3.Y.Z)"
# Staging modules are published as v0.<minor>.<patch> alongside each k8s release.
staging_version="v0.${k8s_minor}.${k8s_patch}"

# A version without its own folder gets the plain recipe (require it, replace
# the staging modules): enough for the recent releases.
recipe="$here/kube-apiserver/$k8s_version"
[[ -d "$recipe" ]] || log "no folder $recipe: trying the plain recipe for $k8s_version"
k8s_tools=(kube-apiserver)
if [[ -f "$recipe/go.mod" ]]; then
  mapfile -t k8s_tools < <(go mod edit -json "$recipe/go.mod" |
    awk '$1 == "\"Path\":" && $2 ~ /^"k8s\.io\/kubernetes\/cmd\// { gsub(/[",]/, "", $2); sub(/.*\//, "", $2); print $2 }')
  ((${#k8s_tools[@]} > 0)) || die "$recipe/go.mod names no k8s.io/kubernetes/cmd/... tool"
fi

cache="${NLB_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard}/e2e"
out="$cache/k8s-$k8s_version"
versions_file="$out/VERSIONS"
want_versions="kube-apiserver=$k8s_version
tools=${k8s_tools[*]}
etcd=$etcd_version
go=$(go env GOVERSION)"

is_built() {
  local bin
  for bin in "${k8s_tools[@]}"; do [[ -x "$out/$bin" ]] || return 1; done
  [[ -x "$out/etcd" && -f "$versions_file" ]] &&
    grep -qx "kube-apiserver=$k8s_version" "$versions_file" &&
    grep -qx "etcd=$etcd_version" "$versions_file"
}

if is_built; then
  log "cached: $out"
  printf '%s\n' "$out"
  exit 0
fi

mkdir -p "$out"
# Two test processes may ask for the same version at once: the second waits
# for the first instead of racing it on the same files. Different versions
# build side by side (go's own build cache is safe to share).
lock_version() { # <fd> <lock name>
  eval "exec $1>\"\$cache/.build-\$2.lock\""
  if ! flock -n "$1"; then
    log "another build holds $cache/.build-$2.lock; waiting"
    flock "$1"
  fi
}
lock_version 9 "k8s-$k8s_version"
if is_built; then
  log "cached (built by another process): $out"
  printf '%s\n' "$out"
  exit 0
fi

# go writes go.mod/go.sum while resolving, so build in a copy under the cache
# and keep the repo untouched. One work folder per version.
prepare_workdir() { # <name> <source module dir>
  local dir="$cache/work/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  if [[ -f "$2/go.mod" ]]; then
    cp "$2/go.mod" "$dir/"
    if [[ -f "$2/go.sum" ]]; then cp "$2/go.sum" "$dir/"; fi
  else
    printf 'module nlb-guard.local/e2e/kube-apiserver\n\ngo %s\n' "$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1.0/')" >"$dir/go.mod"
  fi
  printf '%s\n' "$dir"
}

module_field() { # <dir> <module@version> <field>: from `go mod download -json`
  (cd "$1" && go mod download -json "$2") | awk -v f="\"$3\":" '$1 == f { gsub(/[",]/, "", $2); print $2; exit }'
}

staging_mods=()
# 1.19 and older generate pkg/generated/openapi with `make`; the module
# lacks it and the build fails with "undefined: generatedopenapi.GetOpenAPIDefinitions".
# Do what their Makefile does: run kube-openapi's openapi-gen (at the version
# in the build list) over every package tagged +k8s:openapi-gen, on a
# writable copy of the module that the work module then uses instead.
generate_openapi() { # <workdir> <k8s.io/kubernetes module dir>
  local dir="$1" src="$2" start=$SECONDS copy="$1/kubernetes"
  log "k8s.io/kubernetes@$k8s_version ships no zz_generated.openapi.go: generating it"
  cp -r "$src" "$copy"
  chmod -R u+w "$copy"
  (cd "$dir" && go mod edit "-replace=k8s.io/kubernetes=./kubernetes")

  local openapi_version
  openapi_version="$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/kube-openapi)"
  log "building openapi-gen from k8s.io/kube-openapi@$openapi_version"
  (cd "$dir" && go build -o "$dir/openapi-gen" k8s.io/kube-openapi/cmd/openapi-gen)

  # The packages the Makefile picks: every folder of k8s.io/kubernetes and
  # of its staging modules with a file carrying the tag, as import paths;
  # code-generator and the sample-* modules have definitions of their own.
  local -a pkgs=()
  local mod mod_dir pkg
  while read -r mod mod_dir; do
    [[ -n "$mod_dir" ]] || die "no source folder for $mod"
    while read -r pkg; do
      pkgs+=("$mod${pkg:+/$pkg}")
    done < <(cd "$mod_dir" && grep -rl --include='*.go' -e '+k8s:openapi-gen=' . 2>/dev/null |
      grep -v -e '/testdata/' -e '_test\.go$' | xargs -r -n1 dirname | sed -e 's|^\./\{0,1\}||' | LC_ALL=C sort -u)
  done < <(printf 'k8s.io/kubernetes %s\n' "$copy"
    # Only the modules kube-apiserver builds with: the others' types are not served.
    local build_list
    build_list="$(cd "$dir" && go list -m -f '{{.Path}} {{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' all)"
    for mod in "${staging_mods[@]}"; do
      [[ "$mod" != k8s.io/code-generator && "$mod" != k8s.io/sample-* ]] || continue
      local version
      version="$(awk -v m="$mod" '$1 == m { print $2; exit }' <<<"$build_list")"
      [[ -n "$version" ]] || continue
      printf '%s %s\n' "$mod" "$(module_field "$dir" "$mod@$version" Dir)"
    done)
  ((${#pkgs[@]} > 0)) || die "found no package tagged +k8s:openapi-gen"
  log "running openapi-gen over ${#pkgs[@]} packages"
  local header="$dir/boilerplate.go.txt"
  printf '/*\nGenerated by test/e2e/assets/build.sh with openapi-gen.\n*/\n\n' >"$header"
  # gengo of that age warns about type aliases under new Go; the old
  # behaviour is what it was written for.
  (cd "$dir" && GODEBUG=gotypesalias=0 "$dir/openapi-gen" \
    --input-dirs "$(IFS=,; printf '%s' "${pkgs[*]}")" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi \
    --output-base "$dir/gen" \
    --go-header-file "$header" \
    --report-filename "$dir/openapi-violations.txt" >&2)
  mkdir -p "$copy/pkg/generated/openapi"
  cp "$dir/gen/k8s.io/kubernetes/pkg/generated/openapi/zz_generated.openapi.go" "$copy/pkg/generated/openapi/"
  log "openapi generated in $((SECONDS - start))s"
}

build_k8s() { # <binary>...: those of k8s.io/kubernetes/cmd to build
  local start=$SECONDS dir gomod mod_dir
  dir="$(prepare_workdir "kube-apiserver-$k8s_version" "$recipe")"
  log "resolving k8s.io/kubernetes@$k8s_version"
  gomod="$(module_field "$dir" "k8s.io/kubernetes@$k8s_version" GoMod)"
  [[ -n "$gomod" && -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$k8s_version from the module proxy"
  mod_dir="$(module_field "$dir" "k8s.io/kubernetes@$k8s_version" Dir)"

  # k8s.io/kubernetes requires its staging modules at the fake v0.0.0 and
  # points them at ./staging/src; a consumer must replace each with the
  # published version instead, or go fails with "unknown revision v0.0.0".
  # A module the recipe already replaces (one the proxy refuses) keeps its line.
  local -a edits=("-require=k8s.io/kubernetes@$k8s_version")
  local mod count=0 kept=0
  local already
  staging_mods=()
  already="$(go mod edit -json "$dir/go.mod" | awk '$1 == "\"Old\":" { getline; gsub(/[",]/, "", $2); print $2 }')"
  while read -r mod; do
    staging_mods+=("$mod")
    if grep -qx -- "$mod" <<<"$already"; then
      kept=$((kept + 1))
      continue
    fi
    edits+=("-replace=$mod=$mod@$staging_version")
    count=$((count + 1))
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print $1 }' "$gomod")
  ((count > 0)) || die "found no staging replace lines in $gomod"
  log "replacing $count staging modules with $staging_version ($kept replaced by the recipe's go.mod)"
  (cd "$dir" && go mod edit "${edits[@]}")

  if [[ ! -f "$mod_dir/pkg/generated/openapi/zz_generated.openapi.go" ]]; then
    generate_openapi "$dir" "$mod_dir"
  fi

  # Without the -X flags /version reports v0.0.0-master and nlb-guard reads a
  # wrong version. Up to 1.25 the aggregator answers /version from
  # client-go's copy of the package, so set both.
  local -a ldflags=(-s -w)
  local vpkg bin
  for vpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=(-X "$vpkg.gitVersion=$k8s_version" -X "$vpkg.gitMajor=1" -X "$vpkg.gitMinor=$k8s_minor" -X "$vpkg.gitTreeState=clean")
  done
  for bin in "$@"; do
    local bin_start=$SECONDS
    log "building $bin $k8s_version (a first build takes minutes to tens of minutes)"
    (cd "$dir" && go build -trimpath -ldflags "${ldflags[*]}" -o "$out/$bin.tmp" "k8s.io/kubernetes/cmd/$bin")
    mv -f "$out/$bin.tmp" "$out/$bin"
    printf '%s\n' "$k8s_version" >"$out/.$bin.version"
    log "$bin built in $((SECONDS - bin_start))s"
  done
  log "k8s.io/kubernetes $k8s_version: $* built in $((SECONDS - start))s"
}

# etcd is built once per etcd version into its own folder and copied beside
# each kube-apiserver: every version here works with the pinned one.
build_etcd() {
  local start=$SECONDS dir shared="$cache/etcd-$etcd_version"
  lock_version 8 "etcd-$etcd_version"
  if [[ -x "$shared/etcd" ]]; then
    log "etcd $etcd_version already built in $shared"
  else
    dir="$(prepare_workdir "etcd-$etcd_version" "$here/etcd")"
    # server/v3's own replace lines point at sibling dirs of the etcd repo;
    # as a dependency they are ignored and its requires resolve to the
    # published modules of the same release.
    (cd "$dir" && go mod edit "-require=go.etcd.io/etcd/server/v3@$etcd_version")
    log "building etcd $etcd_version"
    mkdir -p "$shared"
    (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$shared/etcd.tmp" go.etcd.io/etcd/server/v3)
    mv -f "$shared/etcd.tmp" "$shared/etcd"
    log "etcd built in $((SECONDS - start))s"
  fi
  flock -u 8
  cp -f "$shared/etcd" "$out/etcd.tmp"
  mv -f "$out/etcd.tmp" "$out/etcd"
}

# Per-binary stamps let an interrupted run, or a changed etcd pin, redo only
# what is missing; VERSIONS is written last and marks the folder complete.
stamp_ok() { [[ -x "$out/$1" && -f "$out/.$1.version" && "$(cat "$out/.$1.version")" == "$2" ]]; }
rm -f "$versions_file"
if stamp_ok etcd "$etcd_version"; then
  log "etcd $etcd_version already in $out"
else
  build_etcd
  printf '%s\n' "$etcd_version" >"$out/.etcd.version"
fi
# The binaries to build are the recipe's `tool` lines (kube-apiserver, and
# kubectl for the versions whose kustomize and validation differ from
# today's); a version without a recipe gets kube-apiserver.
missing=()
for bin in "${k8s_tools[@]}"; do
  if stamp_ok "$bin" "$k8s_version"; then
    log "$bin $k8s_version already built"
  else
    missing+=("$bin")
  fi
done
if ((${#missing[@]} > 0)); then build_k8s "${missing[@]}"; fi
printf '%s\n' "$want_versions" >"$versions_file"
log "assets ready in $out"
printf '%s\n' "$out"
