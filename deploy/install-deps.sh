#!/usr/bin/env bash
# Installs every Debian 12 package that airlock's build, tests and benchmarks
# need. Idempotent: packages already present are left alone.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libseccomp-dev libjansson-dev libcmocka-dev libmicrohttpd-dev
  libcurl4-openssl-dev libssl-dev libgit2-dev libsqlite3-dev libidn2-dev
  libc-ares-dev
  # tests
  git curl openssl python3 iproute2 procps util-linux strace nginx fcgiwrap
  openssh-server
  # tests of the installed man pages (man -l, groff) and completions (zsh)
  man-db groff-base zsh
  # benchmarks and peers
  bubblewrap tinyproxy squid wrk hyperfine valgrind time socat ripgrep
)

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
