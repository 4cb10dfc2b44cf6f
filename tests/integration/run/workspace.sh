#!/bin/bash
# The workspace works inside the sandbox: files, git, a C build, python3;
# and what the command did there is on the host afterwards.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/ws"
echo original >"$T/ws/edit-me.txt"
echo doomed >"$T/ws/delete-me.txt"

run_airlock -c 'echo created >new.txt && mkdir -p sub/dir && echo deep >sub/dir/f &&
    echo modified >>edit-me.txt && rm delete-me.txt && mv new.txt renamed.txt &&
    ln -s renamed.txt link && cat link'
[ $rc -eq 0 ] && [ "$out" = created ] && ok "file operations" || { fail "file operations"; show; }
[ "$(cat "$T/ws/renamed.txt" 2>/dev/null)" = created ] && ok "created file on the host" ||
    fail "renamed.txt missing on the host"
[ "$(cat "$T/ws/sub/dir/f" 2>/dev/null)" = deep ] && ok "nested dir on the host" ||
    fail "sub/dir/f missing on the host"
[ "$(tail -1 "$T/ws/edit-me.txt")" = modified ] && ok "modification on the host" ||
    fail "edit-me.txt not modified on the host"
[ ! -e "$T/ws/delete-me.txt" ] && ok "deletion on the host" || fail "delete-me.txt still on the host"

run_airlock -c 'git init -q . && git config user.name t && git config user.email t@example.invalid &&
    echo hello >readme && git add readme && git commit -q -m "first commit" &&
    git log --format=%s'
if [ $rc -eq 0 ] && [ "$out" = "first commit" ]; then
    ok "git init, add, commit"
else
    fail "git init/commit"
    show
fi
[ "$(git -C "$T/ws" log --format=%s 2>/dev/null)" = "first commit" ] && ok "commit visible on the host" ||
    fail "commit not visible on the host"

cat >"$T/ws/hello.c" <<'C'
#include <stdio.h>
int main(void)
{
    printf("hello from %s\n", "cc");
    return 0;
}
C
run_airlock -c 'cc -O2 -o hello hello.c && ./hello'
[ $rc -eq 0 ] && [ "$out" = "hello from cc" ] && ok "cc build and run" || { fail "cc build and run"; show; }
[ -x "$T/ws/hello" ] && ok "built binary on the host" || fail "hello binary missing on the host"

run_airlock -- python3 -c 'import os, json; open("py.json", "w").write(json.dumps({"v": 6 * 7})); print(os.getcwd())'
[ $rc -eq 0 ] && [ "$out" = "$T/ws" ] && ok "python3 runs in the workspace" || { fail "python3"; show; }
grep -q '"v": 42' "$T/ws/py.json" 2>/dev/null && ok "python3 wrote into the workspace" ||
    fail "py.json missing on the host"

# /tmp inside is private and writable.
run_airlock -c 'echo x >/tmp/airlock-run-test && cat /tmp/airlock-run-test'
[ $rc -eq 0 ] && [ "$out" = x ] && ok "private /tmp writable" || { fail "/tmp"; show; }
[ ! -e /tmp/airlock-run-test ] && ok "sandbox /tmp is not the host's" || {
    fail "sandbox /tmp write reached the host /tmp"
    rm -f /tmp/airlock-run-test
}
finish
