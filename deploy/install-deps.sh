#!/usr/bin/env bash
# Installs every Debian 12 package that airlock's build, tests and benchmarks
# need. Idempotent: packages already present are left alone.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libseccomp-dev libjansson-dev libcmocka-dev libmicrohttpd-dev
  libcurl4-openssl-dev libssl-dev libgit2-dev libsqlite3-dev libidn2-dev
  libc-ares-dev libpq-dev
  # tests (tests/cluster and bench/cluster: `ip` of iproute2 makes their
  # network namespaces, `nsenter` of util-linux starts the nodes in them)
  git curl openssl python3 iproute2 procps util-linux strace nginx fcgiwrap
  openssh-server
  # tests: the store tests and airlockd.store_postgres on PostgreSQL (issue
  # 13) start their own scratch server from /usr/lib/postgresql/*/bin
  postgresql
  # tests: docs/recipes.md's clients (npm is added below). golang-go is
  # ~80 MB to download, ~470 MB installed; cargo (with rustc) ~58 MB and
  # ~280 MB: together about 45 s of apt-get on a 2-core box. A rustup
  # cargo in ~/.cargo/bin is left alone (the recipe tests use /usr/bin's
  # unless RECIPES_CARGO names another).
  python3-pip python3-venv dpkg-dev golang-go cargo
  # tests of the installed man pages (man -l, groff) and completions (zsh)
  man-db groff-base zsh
  # deploy/check-k8s.sh parses the Kubernetes manifests (deploy/kubernetes)
  python3-yaml
  # the web console's browser tests (docs/console.md): headless chromium,
  # driven by tests/browser's pinned puppeteer-core (deploy/test.sh)
  chromium
  # benchmarks and peers
  bubblewrap tinyproxy squid wrk hyperfine valgrind time socat ripgrep
)

# Debian's npm (about 350 small packages) only where no npm is installed:
# Node.js from NodeSource ships its own and conflicts with Debian's.
if ! command -v npm >/dev/null; then PKGS+=(nodejs npm); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# Daemons from packages (nginx, squid, tinyproxy) must not start on install:
# tests and benchmarks start their own instances on loopback.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod 755 /usr/sbin/policy-rc.d
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
$SUDO rm -f /usr/sbin/policy-rc.d
