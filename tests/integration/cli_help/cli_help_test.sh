#!/bin/bash
# cli_help: `--help` and command-line mistakes change nothing (issue 12).
#
#   cli_help_test.sh AIRLOCK AIRLOCKD AIRLOCK_SESSION AIRLOCK_CREDS
#                    AIRLOCK_GITPROXY AIRLOCK_NETPROXY AIRLOCK_CONNECT
#                    AIRLOCK_INIT GIT_REMOTE_AIRLOCK
#
# Runs as a real install runs (root's own HOME, no special environment).
# Every command is found in the usage of the command above it (`airlock
# --help` lists `session`, `airlock session --help` lists `create`, ...), so
# a new command that does not answer --help fails here. Each `X --help` must
# exit 0, print "usage: X" (the words as typed) on stdout and nothing on
# stderr. Each case, --help or mistake, must create, change or remove no
# file and open no network connection: every process of the command runs
# under strace, and each successful write-side file call (open for writing
# or creating, mkdir, rename, unlink, chmod, ...) and each connect or bind
# to an IP address is reported. (Comparing `find -newer MARKER` listings of
# /var/lib, /etc, /run, /tmp before and after cannot tell our files from
# those of the other builds and tests running on the same machine.)
set -u
AIRLOCK=$1 AIRLOCKD=$2 SESSION=$3 CREDS=$4 GITPROXY=$5 NETPROXY=$6 CONNECT=$7
INIT=$8 REMOTE=$9
command -v strace >/dev/null || {
    echo "SKIP: strace is not installed (deploy/install-deps.sh installs it)"
    exit 77
}
SCRATCH=$(mktemp -d /tmp/cli_help.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
FAILED=()
CASES=0
# the state dirs `airlock up` and `airlock admin` default to
DEFAULTS=(/var/lib/airlock /var/lib/airlock-gitproxy-cache)

fail() {
    echo "FAIL: $*"
    FAILED+=("$1")
}

TRACED=open,openat,openat2,creat,mkdir,mkdirat,mknod,mknodat,link,linkat,symlink,symlinkat
TRACED=$TRACED,rename,renameat,renameat2,unlink,unlinkat,rmdir,truncate,chmod,fchmodat
TRACED=$TRACED,chown,lchown,fchownat,utimensat,setxattr,lsetxattr,connect,bind

# The side effects in strace's log $1: one line per call that reached for
# an IP address (even one that failed: curl's connect "fails" with
# EINPROGRESS) and per call that succeeded in writing to the file system
# (not /dev/null or a terminal).
side_effects() {
    awk '
        / (connect|bind)\(.*AF_INET/ { print; next }
        / = -1 / { next }
        /"\/dev\/(null|tty|pts\/[0-9]+)"/ { next }
        / (open|openat|openat2)\(/ { if ($0 ~ /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/) print; next }
        / connect\(/ { next }
        /\(/ { print }
    ' "$1"
}

# check NAME WANT_RC WANT_OUT WANT_ERR -- ARGV...
# Runs ARGV (in $HOME, stdin empty). WANT_OUT and WANT_ERR are strings the
# stream must contain; "" means the stream must be empty, "*" anything.
check() {
    local name=$1 want_rc=$2 want_out=$3 want_err=$4
    shift 5
    CASES=$((CASES + 1))
    local absent=() d
    for d in "${DEFAULTS[@]}"; do
        [ -e "$d" ] || absent+=("$d")
    done
    (cd "$HOME" && strace -f -qq -o "$SCRATCH/trace" -e trace="$TRACED" "$@") \
        >"$SCRATCH/out" 2>"$SCRATCH/err" </dev/null
    local rc=$? out err created
    out=$(cat "$SCRATCH/out")
    err=$(cat "$SCRATCH/err")
    created=$(side_effects "$SCRATCH/trace")
    for d in "${absent[@]}"; do
        [ ! -e "$d" ] || created+=" (and $d now exists)"
    done
    [ "$rc" = "$want_rc" ] || fail "$name" "exit $rc, want $want_rc; stderr: ${err:0:300}"
    case "$want_out" in
    "*") ;;
    "") [ -z "$out" ] || fail "$name" "stdout not empty: ${out:0:300}" ;;
    *) [[ "$out" == *"$want_out"* ]] || fail "$name" "stdout lacks \"$want_out\": ${out:0:300}" ;;
    esac
    case "$want_err" in
    "*") ;;
    "") [ -z "$err" ] || fail "$name" "stderr not empty: ${err:0:300}" ;;
    *) [[ "$err" == *"$want_err"* ]] || fail "$name" "stderr lacks \"$want_err\": ${err:0:300}" ;;
    esac
    [ -z "$created" ] || fail "$name" "side effects: $(echo "$created" | head -20)"
}

# help TYPED_PREFIX -- ARGV... : ARGV (ending in --help or -h) prints
# "usage: TYPED_PREFIX" on stdout, nothing on stderr, exit 0, no file.
help() {
    local typed=$1
    shift 2
    check "help: $typed (${*: -1})" 0 "usage: $typed" "" -- "$@"
}

# Lines of a usage text: `commands NOUN` prints the commands listed as
# "  NAME ..." (two spaces, then a lower-case word) in the text on stdin.
listed() { awk '/^  [a-z]/ { print $1 }'; }

# --- airlock and the commands it lists --------------------------------------
top=$("$AIRLOCK" --help | awk '/^commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 }')
for want in run doctor session creds token key admin up; do
    grep -qx "$want" <<<"$top" || fail "enumerate" "airlock --help does not list $want"
done
help "airlock" -- "$AIRLOCK" --help
help "airlock" -- "$AIRLOCK" -h
for cmd in $top; do
    help "airlock $cmd" -- "$AIRLOCK" "$cmd" --help
    help "airlock $cmd" -- "$AIRLOCK" "$cmd" -h
done

# airlock session COMMAND
sub=$("$AIRLOCK" session --help | listed)
grep -qx create <<<"$sub" && grep -qx exec <<<"$sub" ||
    fail "enumerate" "airlock session --help does not list create and exec"
for s in $sub; do
    help "airlock session $s" -- "$AIRLOCK" session "$s" --help
done
help "airlock session exec" -- "$AIRLOCK" session exec some-session --help

# airlock creds|token|key COMMAND: "  NOUN VERB ..." lines
for noun in creds token key; do
    verbs=$("$AIRLOCK" "$noun" --help | awk -v n="$noun" '/^  [a-z]/ && $1 == n { print $2 }' |
        sort -u)
    [ -n "$verbs" ] || fail "enumerate" "airlock $noun --help lists no command"
    for v in $verbs; do
        help "airlock $noun $v" -- "$AIRLOCK" "$noun" "$v" --help
    done
done
help "airlock creds add" -- "$AIRLOCK" creds add --store "$SCRATCH/none" --help

# airlock admin NOUN VERB: "  NOUN VERB ..." lines
pairs=$("$AIRLOCK" admin --help | awk '/^  [a-z]/ { print $1 ":" $2 }')
grep -qx "user:ls" <<<"$pairs" || fail "enumerate" "airlock admin --help does not list user ls"
for noun in $(cut -d: -f1 <<<"$pairs" | sort -u); do
    help "airlock admin $noun" -- "$AIRLOCK" admin "$noun" --help
done
for p in $pairs; do
    help "airlock admin ${p%%:*} ${p#*:}" -- "$AIRLOCK" admin "${p%%:*}" "${p#*:}" --help
done
help "airlock admin user add" -- "$AIRLOCK" admin user add bob --state-dir /nonexistent/x --help
help "airlock up" -- "$AIRLOCK" up --state-dir /nonexistent/x --listen 127.0.0.1:0 --help
help "airlock run" -- "$AIRLOCK" run --memory 64 --help

# --- the helper binaries run directly -------------------------------------
help "airlockd" -- "$AIRLOCKD" --help
help "airlockd up" -- "$AIRLOCKD" up --help
help "airlockd admin" -- "$AIRLOCKD" admin --help
help "airlockd admin user ls" -- "$AIRLOCKD" admin user ls --help
help "airlock-session" -- "$SESSION" --help
for s in $("$SESSION" --help | listed); do
    help "airlock-session $s" -- "$SESSION" "$s" --help
    # the command line is read before AIRLOCK_URL is
    help "airlock-session $s" -- env AIRLOCK_URL=not-a-url "$SESSION" "$s" --help
done
help "airlock session create" -- env AIRLOCK_URL=not-a-url "$AIRLOCK" session create --help
help "airlock-creds" -- "$CREDS" --help
help "airlock-creds token mint" -- "$CREDS" token mint --help
help "airlock-gitproxy" -- "$GITPROXY" --help
help "airlock-netproxy" -- "$NETPROXY" --help
help "airlock-connect" -- "$CONNECT" --help
# the internal helpers say that they are
help "airlock-init" -- "$INIT" --help
help "airlock-init" -- "$INIT" -h
help "git-remote-airlock" -- "$REMOTE" --help
help "git-remote-airlock" -- "$REMOTE" -h
for h in "$INIT" "$REMOTE"; do
    "$h" --help | grep -q "internal helper" || fail "help: $h" "the usage does not say internal helper"
done

# --- mistakes: said on stderr, exit 2 (airlock run: 125), nothing made ------
check "up --bogus" 2 "" 'airlock up: unknown option "--bogus"' -- "$AIRLOCK" up --bogus
check "up --bogus (usage hint)" 2 "" "airlock up --help" -- "$AIRLOCK" up --bogus
check "up --listen (no value)" 2 "" "--listen needs a value" -- "$AIRLOCK" up --listen
check "up --log-level loud" 1 "" "log_level" -- "$AIRLOCK" up --log-level loud
check "up relative --state-dir" 1 "" "absolute" -- "$AIRLOCK" up --state-dir rel/dir
check "airlockd --bogus" 2 "" 'airlockd: unknown option "--bogus"' -- "$AIRLOCKD" --bogus
check "run --settings (no value)" 125 "" "airlock run: --settings needs a value (a settings file)" \
    -- "$AIRLOCK" run --settings
check "run --frobnicate" 125 "" 'unknown option "--frobnicate"' -- "$AIRLOCK" run --frobnicate
check "doctor --settings (no value)" 125 "" "airlock doctor: --settings needs a value" \
    -- "$AIRLOCK" doctor --settings
check "admin user ls, no state dir" 1 "" "/nonexistent/x" \
    -- "$AIRLOCK" admin user ls --state-dir /nonexistent/x
check "admin key ls, no state dir" 1 "" "/nonexistent/x" \
    -- "$AIRLOCK" admin --state-dir /nonexistent/x key ls
if [ ! -e /var/lib/airlock ]; then
    # the default state dir, absent on this machine: a read says so
    check "admin user ls, default state dir" 1 "" "/var/lib/airlock" -- "$AIRLOCK" admin user ls
fi
check "admin user add (no name)" 2 "" "airlock admin: " \
    -- "$AIRLOCK" admin user add --state-dir "$SCRATCH/state"
check "admin user add --max-sessions (no value)" 2 "" "--max-sessions needs a value" \
    -- "$AIRLOCK" admin user add bob --state-dir "$SCRATCH/state" --max-sessions
check "admin key create (no --user)" 2 "" "--user" \
    -- "$AIRLOCK" admin key create --state-dir "$SCRATCH/state"
check "admin bogus" 2 "" 'unknown command "bogus"' -- "$AIRLOCK" admin bogus
check "admin user --bogus" 2 "" 'unknown option "--bogus"' -- "$AIRLOCK" admin user ls --bogus
[ ! -e "$SCRATCH/state" ] || fail "admin mistakes" "created $SCRATCH/state"
check "creds list (no --store)" 2 "" "--store and --master-key are required" \
    -- "$AIRLOCK" creds list
check "creds add --store (no value)" 2 "" "--store needs a value" -- "$AIRLOCK" creds add --store
check "creds add --bogus" 2 "" 'unknown option "--bogus"' -- "$AIRLOCK" creds add --bogus
check "token bogus" 2 "" 'unknown token command "bogus"' -- "$AIRLOCK" token bogus
check "token mint (nothing)" 2 "" "mint needs" -- "$AIRLOCK" token mint
check "key generate (no FILE)" 2 "" "wants one FILE" -- "$AIRLOCK" key generate
check "session create --bogus" 2 "" 'unknown option "--bogus"' -- "$AIRLOCK" session create --bogus
check "session exec --timeout (no value)" 2 "" "--timeout needs a value" \
    -- "$AIRLOCK" session exec --timeout
check "session nosuch" 2 "" 'unknown command "nosuch"' -- "$AIRLOCK" session nosuch
check "session create --bogus, bad AIRLOCK_URL" 2 "" 'unknown option "--bogus"' \
    -- env AIRLOCK_URL=not-a-url "$SESSION" create --bogus
check "session ls, bad AIRLOCK_URL" 1 "" "AIRLOCK_URL must start with http:// or https://" \
    -- env AIRLOCK_URL=not-a-url "$SESSION" ls

echo "$CASES cases, ${#FAILED[@]} failed"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${FAILED[@]}" | sort -u
    exit 1
fi
echo "PASS cli_help"
