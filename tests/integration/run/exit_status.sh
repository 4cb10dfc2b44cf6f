#!/bin/bash
# airlock run's exit status: the command's own, 128+N for signal N, 127 not
# found, 126 not executable, 125 airlock's own error; its messages start
# with "airlock: ".
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

expect() {
    local want=$1
    shift
    run_airlock "$@"
    if [ $rc -eq "$want" ]; then
        ok "exit $want for: $*"
    else
        fail "exit $rc, want $want, for: $*"
        show
    fi
}

expect 0 -- true
expect 1 -- false
expect 3 -c 'exit 3'
expect 42 -- sh -c 'exit 42'
expect 143 -c 'kill -TERM $$'
expect 137 -c 'kill -KILL $$'
expect 130 -- sh -c 'kill -INT $$'
expect 127 -- /nonexistent/airlock-no-such-command
expect 127 -- airlock-no-such-command-in-path
printf '#!/bin/sh\necho should not run\n' >"$T/ws/not-executable"
chmod 644 "$T/ws/not-executable"
expect 126 -- ./not-executable
mkdir -p "$T/ws/a-directory"
expect 126 -- ./a-directory
echo '{ this is not json' >"$T/bad.json"
expect 125 --settings "$T/bad.json" -- true
if grep -q '^airlock: ' <<<"$err" && grep -q "bad.json" <<<"$err"; then
    ok "bad settings message names the file: $(head -1 <<<"$err")"
else
    fail "bad settings: no 'airlock: ...bad.json...' message"
fi
expect 125 --settings "$T/missing-settings.json" -- true
expect 125 --no-such-option -- true
# Stray stderr lines from airlock itself must carry the prefix.
run_airlock --timeout 1 -- sleep 30
while IFS= read -r line; do
    case $line in airlock:\ *) ;; *) fail "airlock stderr line without prefix: $line" ;; esac
done <<<"$err"
[ $rc -eq 124 ] && ok "exit 124 on timeout" || fail "exit $rc on timeout, want 124"
finish
