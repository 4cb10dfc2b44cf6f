#!/bin/bash
# Attacks on the leak guard of airlock-gitproxy: the real upstream token (or
# a GitHub token) hidden in each place a push can carry it must be refused,
# with upstream's refs unchanged: a file, a file name, a commit message, an
# author identity, an annotated tag, a note, a blob no commit reaches, a
# blob over 8 MiB, a blob stored as a delta, the ref name, a push option.
# The real git client pushes through the real proxy (leak guard and
# fast-forward check on) to the real upstream of
# tests/integration/gitproxy/env.sh.
# usage: leak.sh BUILD_DIR CASE
set -u
ATTACKS=$(cd "$(dirname "$0")" && pwd)
CASE=${2:?usage: leak.sh BUILD_DIR CASE}
. "$ATTACKS/../../integration/gitproxy/require.sh"
require_root_and_tools "the gitproxy attack suite (nginx runs as root)"
. "$ATTACKS/../../integration/gitproxy/env.sh" "$1"

GH="ghp_$(printf 'Z%.0s' {1..36})"
TOK_NOTES=$(mint k2 sA git.test/o/r --push-ref 'refs/heads/agent/*' --push-ref refs/notes/commits \
    --push-ref 'refs/tags/*' --ttl 600)
W=$T/leak
g "$TOK_NOTES" clone -q "$PROXY_A/r.git" "$W" >"$OUT/clone" 2>&1 || { fail clone "$OUT/clone"; exit 1; }
git -C "$W" config user.name tester
git -C "$W" config user.email t@example.com
REFS_BEFORE=$(git -C "$SRV/o/r.git" for-each-ref --format='%(refname) %(objectname)' | sha256sum)

# refused NAME WORDS...: the push failed, git showed every WORD, and no ref
# of the upstream repository moved.
refused() {
    local name=$1 out=$OUT/$1
    shift
    for w in "$@"; do
        grep -qF -- "$w" "$out" || { fail "$name: git did not show '$w'" "$out"; return; }
    done
    if [ "$(git -C "$SRV/o/r.git" for-each-ref --format='%(refname) %(objectname)' | sha256sum)" != \
        "$REFS_BEFORE" ]; then
        fail "$name: an upstream ref moved" "$out"
        return
    fi
    pass "$name"
}
branch() { git -C "$W" checkout -q -B "agent/$1" origin/main; }
push() { g "$TOK_NOTES" -C "$W" push origin "$@" >"$OUT/$CASE" 2>&1; }

case $CASE in
file_content)
    branch c && printf 'export TOKEN=%s\n' "$REAL_TOKEN" > "$W/deploy.env" &&
        git -C "$W" add deploy.env && git -C "$W" commit -qm c
    push agent/c
    refused $CASE 'deploy.env contains an upstream credential held by airlock' ;;
file_name)
    branch n && echo harmless > "$W/$GH.txt" && git -C "$W" add -A && git -C "$W" commit -qm n
    push agent/n
    refused $CASE 'a file name in tree' 'contains a GitHub token' ;;
commit_message)
    branch m && echo m > "$W/m.txt" && git -C "$W" add m.txt &&
        git -C "$W" commit -qm "deploy with $REAL_TOKEN"
    push agent/m
    refused $CASE '(its message or an identity) contains an upstream credential held by airlock' ;;
author_identity)
    branch a && echo a > "$W/a.txt" && git -C "$W" add a.txt &&
        GIT_AUTHOR_NAME="bot $GH" GIT_AUTHOR_EMAIL=b@example.com git -C "$W" commit -qm a
    push agent/a
    refused $CASE '(its message or an identity) contains a GitHub token' ;;
committer_identity)
    branch i && echo i > "$W/i.txt" && git -C "$W" add i.txt &&
        GIT_COMMITTER_EMAIL="$REAL_TOKEN@example.com" git -C "$W" commit -qm i
    push agent/i
    refused $CASE '(its message or an identity) contains an upstream credential held by airlock' ;;
tag_message)
    branch t && echo t > "$W/t.txt" && git -C "$W" add t.txt && git -C "$W" commit -qm t &&
        git -C "$W" tag -a v9 -m "release notes: $REAL_TOKEN"
    push refs/tags/v9
    refused $CASE '(its message or tagger) contains an upstream credential held by airlock' ;;
note)
    git -C "$W" notes add -m "token for ci: $REAL_TOKEN" origin/main
    push refs/notes/commits
    refused $CASE 'contains an upstream credential held by airlock' ;;
unreachable_blob)
    # a blob in the pack that no pushed commit reaches (pack made by hand)
    branch u && echo u > "$W/u.txt" && git -C "$W" add u.txt && git -C "$W" commit -qm u
    stray=$(printf 'stray %s\n' "$REAL_TOKEN" | git -C "$W" hash-object -w --stdin)
    new=$(git -C "$W" rev-parse HEAD)
    printf '%s %s refs/heads/agent/u\0report-status' "$(printf '0%.0s' {1..40})" "$new" > "$T/cmd"
    { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(b"%04x" % (len(d)+4) + d + b"0000")' "$T/cmd"
      { git -C "$W" rev-list --objects "$new" --not origin/main | cut -d ' ' -f 1; echo "$stray"; } |
          git -C "$W" pack-objects --stdout -q
    } > "$T/body"
    curl -s -u "x:$TOK_NOTES" -H 'Content-Type: application/x-git-receive-pack-request' \
        --data-binary @"$T/body" "$PROXY_A/r.git/git-receive-pack" > "$OUT/$CASE"
    refused $CASE 'ng refs/heads/agent/u airlock: blob' 'contains an upstream credential held by airlock' ;;
big_blob)
    # 9 MiB of noise, the secret at its end (the old guard read 8 MiB)
    branch b && { head -c $((9 << 20)) /dev/urandom | base64 -w 0; printf '\n%s\n' "$GH"; } > "$W/big.txt" &&
        git -C "$W" add big.txt && git -C "$W" commit -qm b
    push agent/b
    refused $CASE 'big.txt contains a GitHub token' ;;
delta_blob)
    # two versions of a file in one push: the second is stored as a delta
    # of the first, and the secret is only in the delta's result
    branch d && seq 1 20000 > "$W/data.txt" && git -C "$W" add data.txt && git -C "$W" commit -qm d1 &&
        { seq 1 10000; echo "$GH"; seq 10001 20000; } > "$W/data.txt" &&
        git -C "$W" commit -qam d2
    push agent/d
    refused $CASE 'data.txt contains a GitHub token' ;;
ref_name)
    branch "x-$GH" && echo r > "$W/r.txt" && git -C "$W" add r.txt && git -C "$W" commit -qm r
    push "agent/x-$GH"
    refused $CASE 'the ref name contains a GitHub token' ;;
push_option)
    branch o && echo o > "$W/o.txt" && git -C "$W" add o.txt && git -C "$W" commit -qm o
    push -o "ci.token=$REAL_TOKEN" agent/o
    refused $CASE 'a push option contains an upstream credential held by airlock' ;;
clean_push_lands)
    # the positive control: the same kinds of push without a secret land
    branch ok && echo fine > "$W/fine.txt" && git -C "$W" add fine.txt &&
        git -C "$W" commit -qm "an ordinary message" && git -C "$W" tag -a v8 -m "an ordinary tag" &&
        git -C "$W" notes add -m "an ordinary note" HEAD
    if push agent/ok refs/tags/v8 refs/notes/commits &&
        [ "$(git -C "$SRV/o/r.git" rev-parse agent/ok)" = "$(git -C "$W" rev-parse HEAD)" ]; then
        pass $CASE
    else
        fail $CASE "$OUT/$CASE"
    fi ;;
*)
    echo "unknown case $CASE"
    exit 2 ;;
esac
echo "leak $CASE: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
