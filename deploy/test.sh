#!/usr/bin/env bash
# Installs what the tests need, builds airlock with warnings as errors, runs
# the whole test suite, then the ASan+UBSan build of the unit and sandbox
# tests, the fuzzers for a bounded time, and the clang-format check.
#   ./deploy/test.sh            everything (what CI runs)
#   AIRLOCK_FUZZ_SECONDS=N      seconds per fuzz target (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

step() { printf '\n==== %s\n' "$*"; }

step "install dependencies"
./deploy/install-deps.sh

step "browser test dependencies (tests/browser: puppeteer-core, pinned)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# the console's browser test fails instead of skipping when they are missing
export AIRLOCK_REQUIRE_BROWSER=1

step "format check"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
if [ -n "$files" ]; then
  # shellcheck disable=SC2086
  clang-format --dry-run --Werror $files
fi
./deploy/check-banned.sh
./deploy/check-layers.sh

step "build (-Werror)"
cmake -S . -B build -DAIRLOCK_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

step "kubernetes manifests (deploy/check-k8s.sh, and its refusals of broken copies)"
./deploy/check-k8s.sh --self-test --airlockd build/airlockd/airlockd

step "tests"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 300)

step "build (ASan+UBSan)"
cmake -S . -B build-asan -DAIRLOCK_WERROR=ON -DAIRLOCK_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build build-asan -j"$jobs"

step "tests under ASan+UBSan (unit, sandbox)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$jobs" --timeout 300 -L 'unit|sandbox')

step "fuzz (bounded)"
cmake -S . -B build-fuzz -DAIRLOCK_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
fuzz_targets=$(cmake --build build-fuzz --target help | sed -n 's/^\.\.\. \(fuzz_[a-z0-9_]*\).*/\1/p')
# shellcheck disable=SC2086
[ -z "$fuzz_targets" ] || cmake --build build-fuzz -j"$jobs" --target $fuzz_targets
secs=${AIRLOCK_FUZZ_SECONDS:-20}
# fuzz_one TARGET: runs one target for $secs seconds on a copy of its seed
# corpus; prints the log's tail and fails when it found a crash.
fuzz_one() {
  local f=$1 name work corpus
  name=$(basename "$f")
  corpus="$root/tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
  echo "fuzz: $name for ${secs}s"
  if ! "$f" -max_total_time="$secs" -print_final_stats=0 "$work" >"$work.log" 2>&1; then
    tail -50 "$work.log"
    echo "fuzz: $name found a crash"
    return 1
  fi
  rm -rf "$work" "$work.log"
}
# one target per core at a time (each fuzzer is single-threaded)
found=0
running=0
fuzz_failed=0
for f in $(find build-fuzz -type f -name 'fuzz_*' -perm -u+x | sort); do
  found=1
  if [ "$running" -ge "$jobs" ]; then
    wait -n || fuzz_failed=1
    running=$((running - 1))
  fi
  fuzz_one "$f" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || fuzz_failed=1
  running=$((running - 1))
done
[ "$fuzz_failed" = 0 ] || { echo "fuzz: a target failed (see above)"; exit 1; }
[ "$found" = 1 ] || echo "fuzz: no targets built"

step "all tests passed"
