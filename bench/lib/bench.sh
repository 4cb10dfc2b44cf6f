# shellcheck shell=bash
# Shared helpers for the benchmark scripts in bench/. Source it; it defines
# functions only and sets no shell options.

# bench_note MSG...: progress line on stderr, prefixed with the script name.
bench_note() {
  printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
}

# bench_die MSG...: error line on stderr, exit 1.
bench_die() {
  printf '%s: error: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
  exit 1
}

# bench_need TOOL [PACKAGE]: fail with an install hint unless TOOL is on PATH.
bench_need() {
  command -v "$1" >/dev/null 2>&1 ||
    bench_die "'$1' not found (Debian package ${2:-$1}; deploy/install-deps.sh installs it)"
}

# bench_machine_json: one JSON object describing the machine and the moment,
# for the report: cores, CPU model, kernel, UTC date, load average.
bench_machine_json() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  jq -n \
    --arg nproc "$(nproc)" \
    --arg cpu "${cpu:-unknown}" \
    --arg kernel "$(uname -r)" \
    --arg os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")" \
    --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{nproc: ($nproc | tonumber), cpu: $cpu, kernel: $kernel, os: $os,
      date: $date, load: $load}'
}

# bench_treeusage_build OUT: compiles bench/lib/treeusage.c to OUT.
bench_treeusage_build() {
  cc -std=c17 -O2 -Wall -Wextra -o "$1" "$(dirname "${BASH_SOURCE[0]}")/treeusage.c" ||
    bench_die "cannot compile bench/lib/treeusage.c (needs a C compiler)"
}

# bench_treeusage TREEUSAGE OUTFILE RUNS CMD...: runs CMD RUNS times under
# treeusage (see treeusage.c), which appends one line per run to OUTFILE:
# max RSS (KiB) of any process of the tree, user and system seconds of the
# whole tree, wall seconds, processes reaped, exit status. Fails if CMD fails.
bench_treeusage() {
  local tu=$1 out=$2 runs=$3 i
  shift 3
  for ((i = 0; i < runs; i++)); do
    "$tu" "$out" "$@" >/dev/null 2>&1 || bench_die "run of '$*' under treeusage failed"
  done
}

# bench_docs_section FILE HEADING: replaces the section of FILE that starts
# with the line HEADING (up to the next heading of the same or higher level)
# by standard input; appends it if the heading is not there yet.
bench_docs_section() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/md_section.py" "$1" "$2"
}
