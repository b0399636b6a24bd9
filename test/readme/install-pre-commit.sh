#!/usr/bin/env bash
# test/readme/pre-commit.test.ts runs the README's pre-commit hook with the real pre-commit tool.
# A fresh machine of this project's kind has none, and PyPI is not reachable here: install Debian's
# package when we may (root with apt-get), else say exactly what to install. Runs before tap starts
# (npm's pretest and .ci/run), never inside a test's timeout. Prints the version as its last line.
set -euo pipefail
log() { printf '[pre-commit] %s\n' "$*" >&2; }

if ! command -v pre-commit >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "not installed: installing Debian's package (test/readme/pre-commit.test.ts needs it)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pre-commit >&2
  else
    log "ERROR: pre-commit is not installed and this is not a root shell with apt-get."
    log "Install it (Debian/Ubuntu: sudo apt-get install pre-commit; elsewhere: pipx install pre-commit),"
    log "then run the tests again: test/readme/pre-commit.test.ts runs the README's hook with it."
    exit 1
  fi
fi
pre-commit --version
