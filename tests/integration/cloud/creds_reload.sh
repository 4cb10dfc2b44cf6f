#!/bin/bash
# Usage: creds_reload.sh BUILD_DIR
# `airlock creds add` takes effect on a running `airlock up` without a
# restart. `airlock up` on a scratch state dir whose gitproxy.json maps
# git.test to a real git http-backend behind nginx on loopback (accepting
# only $REAL_TOKEN), and no credential stored yet:
#   1. a session on git.test/o/r cannot clone: the gitproxy answers 502 "no
#      upstream credential for git.test/o/r";
#   2. `airlock creds add` of the real token: the next session clones and
#      pushes (same gitproxy process, still running as nobody);
#   3. the credential replaced by a wrong token: the next push fails with the
#      gitproxy's "upstream refused airlock's credential" (upstream 401);
#   4. the right token again (pushes work), then a store file that does not
#      decrypt: the reload fails, is logged, the right credential stays;
#   5. the gitproxy never restarted;
#   6. revocation on an operator "*" listener: a session id the operator
#      adds to the gitproxy's own revoked_file is refused from the next
#      request (the file is read again when it changes, never per request),
#      and allowed again when removed; a removed session's token, which
#      worked there, is refused, also after the gitproxy was killed and
#      restarted: airlockd sends the revoked sessions (and the token keys)
#      over the control socket again, and writes no side file.
set -u
. "$(dirname "$0")/../gitproxy/require.sh"
require_root_and_tools "airlock up"
. "$(dirname "$0")/../gitproxy/env.sh"
# env.sh's own proxy and store are not used here
kill "$PROXY_PID" 2>/dev/null
AIRLOCK=$BUILD/cli/airlock
AS=$T/up-state
W=$T/reload
mkdir -p "$W"
PORT=$(free_port)
STAR=$(free_port)
UP_PID=
KEY=
export AIRLOCK_URL=http://127.0.0.1:$PORT

reload_cleanup() {
    # Sessions outlive airlockd: delete ours, then stop it.
    if [ -n "$UP_PID" ] && [ -n "$KEY" ]; then
        for sid in $(AIRLOCK_API_KEY=$KEY "$AIRLOCK" session ls --json 2>/dev/null |
            python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]' \
            2>/dev/null); do
            AIRLOCK_API_KEY=$KEY "$AIRLOCK" session rm "$sid" >/dev/null 2>&1
        done
        kill -TERM "$UP_PID" 2>/dev/null
        wait "$UP_PID" 2>/dev/null
    fi
    cleanup
}
trap reload_cleanup EXIT

# gitproxy.json before the first start (airlock up writes only missing files)
mkdir -m 700 "$AS"
cat > "$AS/gitproxy.json" <<JSON
{"store": "$AS/creds.store", "master_key": "$AS/master.key",
 "upstreams": {"git.test": {"url": "$UP"}},
 "cache_dir": "$T/up-state-gitproxy-cache", "audit_log": "$AS/git-audit.jsonl",
 "revoked_file": "$T/revoked", "listeners": [{"address": "127.0.0.1:$STAR", "session": "*"}]}
JSON
chmod 600 "$AS/gitproxy.json"
printf 's_0000000000000000dead 1000\noperator-entry\n' > "$T/revoked"
chmod 644 "$T/revoked"
"$AIRLOCK" up --state-dir "$AS" --listen "127.0.0.1:$PORT" >"$W/up.log" 2>&1 &
UP_PID=$!
for _ in $(seq 1 400); do
    [ -s "$AS/airlockd.addr" ] && break
    kill -0 "$UP_PID" 2>/dev/null || break
    sleep 0.05
done
[ -s "$AS/airlockd.addr" ] || { fail "airlock up did not start" "$W/up.log"; exit 1; }
KEY=$(grep -o 'alk_[0-9a-f]*' "$W/up.log" | head -1)
export AIRLOCK_API_KEY=$KEY
[ -e "$AS/creds.store" ] && { fail "the state dir has a credential store already"; exit 1; }

# The daemon of the airlockd (or `airlock up`) started as $1: the child of
# its reaper (docs/airlockd.md, "Who reaps a sandbox that outlived its
# daemon"); the proxies are the daemon's children.
daemon_of() { local r; r=$(pgrep -P "$1" -x airlockd-reaper) && pgrep -P "$r" -x airlockd; }
gitproxy_pid() { pgrep -P "$(daemon_of "$UP_PID")" -x airlock-gitprox; }
GP=
for _ in $(seq 1 400); do
    GP=$(gitproxy_pid)
    [ -n "$GP" ] && [ "$(awk '/^Uid:/ {print $2}' "/proc/$GP/status")" = "$(id -u nobody)" ] && break
    sleep 0.05
done
[ -n "$GP" ] || { fail "no gitproxy under airlock up" "$W/up.log"; exit 1; }

creds_add() { # creds_add TOKEN
    printf '%s\n' "$1" | "$AIRLOCK" creds add --store "$AS/creds.store" \
        --master-key "$AS/master.key" --scope git.test/o
}
create() { # create N: prints the new session's id; its stderr goes to create-N.err
    "$AIRLOCK" session create --repo https://git.test/o/r.git --ttl 600 2>"$W/create-$1.err"
}

# 1. nothing stored: the clone fails with the gitproxy's reason
if create 1 >/dev/null; then
    fail "reload_no_credential_clone_fails (the session was created)" "$W/create-1.err"
elif grep -q 'no upstream credential for git.test/o/r' "$W/up.log" &&
    grep -q 'GET /git.test/o/r.git/info/refs -> 502' "$W/up.log"; then
    pass "reload_no_credential_clone_fails"
else
    fail "reload_no_credential_clone_fails (no reason in the log)" "$W/up.log"
fi

# 2. the token added, nothing restarted: the next session clones and pushes
creds_add "$REAL_TOKEN"
if SID=$(create 2) && [ -n "$SID" ]; then
    pass "reload_added_credential_clones"
else
    fail "reload_added_credential_clones" <(cat "$W/create-2.err"; tail -30 "$W/up.log")
fi
push() { # push NAME: a commit on the session branch, pushed
    "$AIRLOCK" session exec "$SID" --shell "git config user.name t && git config user.email t@t &&
        echo $1 > $1.txt && git add $1.txt && git commit -qm $1 && git push 2>&1"
}
if push one >"$W/push1.out" 2>&1 &&
    git -C "$SRV/o/r.git" show "airlock/$SID:one.txt" 2>/dev/null | grep -qx one; then
    pass "reload_added_credential_pushes"
else
    fail "reload_added_credential_pushes" "$W/push1.out"
fi
if grep -q 'credential store reloaded (1 entry)' "$W/up.log"; then
    pass "reload_logged"
else
    fail "reload_logged" "$W/up.log"
fi

# 3. a wrong token replaces it: the next push is refused by upstream
creds_add "wrong-token-0123456789"
before=$(upstream_ref "refs/heads/airlock/$SID")
if push two >"$W/push2.out" 2>&1; then
    fail "reload_wrong_credential_push_fails (the push worked)" "$W/push2.out"
elif grep -q "upstream refused airlock's credential" "$W/push2.out" &&
    [ "$(upstream_ref "refs/heads/airlock/$SID")" = "$before" ]; then
    pass "reload_wrong_credential_push_fails"
else
    fail "reload_wrong_credential_push_fails (reason)" "$W/push2.out"
fi

# 4. the right token again (used), then a store that does not decrypt: the
#    right token stays in use
creds_add "$REAL_TOKEN"
if push three >"$W/push3.out" 2>&1 &&
    git -C "$SRV/o/r.git" show "airlock/$SID:three.txt" 2>/dev/null | grep -qx three; then
    pass "reload_right_credential_again_pushes"
else
    fail "reload_right_credential_again_pushes" "$W/push3.out"
fi
cp -p "$AS/creds.store" "$W/good.store"
{ printf 'ALKSTOR1'; head -c 200 /dev/urandom; } > "$W/bad.store"
install -m 600 "$W/bad.store" "$AS/creds.store.new"
mv "$AS/creds.store.new" "$AS/creds.store"
if push four >"$W/push4.out" 2>&1 &&
    git -C "$SRV/o/r.git" show "airlock/$SID:four.txt" 2>/dev/null | grep -qx four &&
    grep -q 'credential store reload failed, keeping the previous credentials: .*cannot decrypt' \
        "$W/up.log"; then
    pass "reload_bad_store_keeps_previous"
else
    fail "reload_bad_store_keeps_previous" <(cat "$W/push4.out"; tail -20 "$W/up.log")
fi
# a good store again (a gitproxy restarting on a bad one would not start)
cp -p "$W/good.store" "$AS/creds.store.new"
mv "$AS/creds.store.new" "$AS/creds.store"
if grep -qF "$REAL_TOKEN" "$W/up.log" "$W"/push*.out "$W"/create-*.err; then
    fail "reload_token_not_logged"
else
    pass "reload_token_not_logged"
fi

# 5. one gitproxy process all along
if [ "$(gitproxy_pid)" = "$GP" ] && ! grep -q 'gitproxy (pid .*) \(exited\|killed\)' "$W/up.log"; then
    pass "reload_gitproxy_not_restarted"
else
    fail "reload_gitproxy_not_restarted ($GP -> $(gitproxy_pid))" "$W/up.log"
fi
# 6. the revoked file (the session's scoped token: its credential helper
# answers for the git listener only)
TOKEN=$("$AIRLOCK" session exec "$SID" --shell \
    "printf 'protocol=http\nhost=127.0.0.1:7418\npath=git.test/o/r.git\n\n' | git credential fill" |
    sed -n 's/^password=//p')
STAR_URL=http://127.0.0.1:$STAR/git.test/o/r.git
if [ -n "$TOKEN" ] && g "$TOKEN" ls-remote "$STAR_URL" >"$W/star1.out" 2>&1; then
    pass "revoked_token_works_on_star_listener_while_live"
else
    fail "revoked_token_works_on_star_listener_while_live" "$W/star1.out"
fi
before=$(sha256sum < "$T/revoked")
printf '%s\n' "$SID" >> "$T/revoked"
if ! g "$TOKEN" ls-remote "$STAR_URL" >"$W/star-op.out" 2>&1 && grep -q 'token revoked' "$W/star-op.out"; then
    pass "operator_revoked_file_read_when_changed"
else
    fail "operator_revoked_file_read_when_changed" "$W/star-op.out"
fi
printf 's_0000000000000000dead 1000\noperator-entry\n' > "$T/revoked.new"
mv "$T/revoked.new" "$T/revoked"
chmod 644 "$T/revoked"
if g "$TOKEN" ls-remote "$STAR_URL" >"$W/star-op2.out" 2>&1; then
    pass "operator_revoked_file_entry_removed"
else
    fail "operator_revoked_file_entry_removed" "$W/star-op2.out"
fi
"$AIRLOCK" session rm "$SID" >/dev/null 2>&1
if [ "$(sha256sum < "$T/revoked")" = "$before" ]; then
    pass "revoked_file_not_written_by_airlockd"
else
    fail "revoked_file_not_written_by_airlockd" "$T/revoked"
fi
if g "$TOKEN" ls-remote "$STAR_URL" >"$W/star2.out" 2>&1; then
    fail "revoked_token_refused_on_star_listener" "$W/star2.out"
else
    pass "revoked_token_refused_on_star_listener"
fi
kill -9 "$GP"
NEW=
for _ in $(seq 1 400); do
    NEW=$(gitproxy_pid)
    [ -n "$NEW" ] && [ "$NEW" != "$GP" ] &&
        [ "$(awk '/^Uid:/ {print $2}' "/proc/$NEW/status" 2>/dev/null)" = "$(id -u nobody)" ] &&
        (exec 3<>/dev/tcp/127.0.0.1/"$STAR") 2>/dev/null && break
    sleep 0.05
done
if [ -n "$NEW" ] && [ "$NEW" != "$GP" ] && ! g "$TOKEN" ls-remote "$STAR_URL" >"$W/star3.out" 2>&1 &&
    grep -q revoked "$W/star3.out"; then
    pass "revoked_token_refused_after_gitproxy_restart"
else
    fail "revoked_token_refused_after_gitproxy_restart ($GP -> $NEW)" "$W/star3.out"
fi
echo "creds reload: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
