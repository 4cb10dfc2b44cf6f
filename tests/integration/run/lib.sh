# Shared by the `airlock run` integration scripts. Sourced with AIRLOCK and
# HELPER set; gives a scratch dir $T (removed on exit), a unique $TAG for
# pgrep, and small assertion helpers.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Not under /tmp: the sandbox has a private /tmp and must see the helper.
T=$(mktemp -d "${RUN_SCRATCH:-/var/tmp}/run.XXXXXX")
cp "$HELPER" "$T/helper" && HELPER=$T/helper
TAG=airlock-run-test-$(basename "$T")-$$
trap 'pkill -KILL -f -- "helper (sleep|bomb [0-9]+) $TAG"; rm -rf "$T"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

ok() {
    echo "ok: $*"
}

# run_airlock ARGS...: runs airlock in $T/ws; sets $rc, $out (stdout), $err.
run_airlock() {
    mkdir -p "$T/ws"
    (cd "$T/ws" && "$AIRLOCK" run "$@" >"$T/stdout" 2>"$T/stderr")
    rc=$?
    out=$(cat "$T/stdout")
    err=$(cat "$T/stderr")
}

show() {
    echo "  exit $rc; stdout: $(head -c 2000 "$T/stdout")"
    echo "  stderr: $(head -c 2000 "$T/stderr")"
}

# Host processes of the helper carrying the tag (not airlock itself, whose
# -c string quotes the helper's path).
tagged_procs() {
    pgrep -f -- "helper (sleep|bomb [0-9]+) $TAG"
}

no_tagged_procs() {
    [ -z "$(tagged_procs)" ]
}

# wait_until SECONDS CMD...: readiness/cleanup wait, not a timing assertion:
# true as soon as CMD succeeds, false if it never did within the bound.
wait_until() {
    local limit=$(($1 * 20))
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    "$@"
}

finish() {
    if [ $failures -ne 0 ]; then
        echo "$failures check(s) failed"
        exit 1
    fi
    exit 0
}
