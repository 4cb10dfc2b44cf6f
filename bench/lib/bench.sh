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

# bench_peak_rss_kib OUTFILE RUNS CMD...: runs CMD RUNS times under GNU time
# and appends each run's %M (KiB) to OUTFILE, one per line. %M is ru_maxrss
# of the rusage wait4() returns for CMD: the largest resident set of CMD or
# of any descendant that was reaped inside the tree, not a sum over processes.
# Fails if CMD fails.
bench_peak_rss_kib() {
  local out=$1 runs=$2 i
  shift 2
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f '%M' -a -o "$out" "$@" >/dev/null 2>&1 ||
      bench_die "peak-RSS run of '$*' failed"
  done
}

# bench_docs_section FILE HEADING: replaces the section of FILE that starts
# with the line HEADING (up to the next heading of the same or higher level)
# by standard input; appends it if the heading is not there yet.
bench_docs_section() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/md_section.py" "$1" "$2"
}
