#!/bin/bash
# Attack suite for airlock-gitproxy: each case is one attack on the request
# side (header injection, request smuggling, connection sharing, repository
# identity, token keys) that must be refused, with positive controls. Runs
# the real proxy in front of the real upstream of
# tests/integration/gitproxy/env.sh (git http-backend behind nginx, sessions
# sA and sB), plus a public area /pub/ on that nginx that needs no
# credential, as public repositories on a forge do.
# usage: attack.sh BUILD_DIR CASE
set -u
ATTACKS=$(cd "$(dirname "$0")" && pwd)
CASE=${2:?usage: attack.sh BUILD_DIR CASE}
. "$ATTACKS/../../integration/gitproxy/require.sh"
require_root_and_tools "the gitproxy attack suite (nginx runs as root)"

# /pub/: served without a credential (an attacker's public repository).
nginx_server_extra() {
    cat <<EOF
        location /pub/ {
            fastcgi_pass unix:$T/fcgi.sock;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT $SRV;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_PROTOCOL \$http_git_protocol;
            fastcgi_param PATH_INFO \$uri;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param REMOTE_ADDR \$remote_addr;
        }
EOF
}
. "$ATTACKS/../../integration/gitproxy/env.sh" "$1"

# The attacker's public repository, with a branch only it has.
mkdir -p "$SRV/pub"
git init -q --bare "$SRV/pub/evil.git"
git -C "$T/seed" push -q "$SRV/pub/evil.git" main main:refs/heads/attacker-marker
# o/R: another repository than o/r on this case-sensitive upstream.
git init -q --bare "$SRV/o/R.git"
git -C "$T/seed" push -q "$SRV/o/R.git" main main:refs/heads/capital-r-only
R_MAIN=$(git -C "$SRV/o/r.git" rev-parse main)
TOK_B=$(mint k2 sB git.test/o/r --ttl 600)
ACCESS=$T/nginx-access.log
touch "$ACCESS"

upstream_count() { wc -l < "$ACCESS"; }
# send PORT NAME: stdin is a raw request, sent in one write; the answer goes
# to $OUT/NAME; prints the status code.
send() {
    python3 "$ATTACKS/rawreq.py" "$1" > "$OUT/$2"
    head -n 1 "$OUT/$2" | cut -d ' ' -f 2
}
# req METHOD TARGET TOKEN HEADERS BODY: a request, printf %b escapes
# interpreted in HEADERS (each line ending in \r\n) and BODY.
req() {
    local body
    body=$(printf '%b' "$5" | wc -c)
    printf '%b' "$1 $2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer $3\r\n$4Content-Length: $body\r\n\r\n$5"
}
INFO_REFS='/git.test/o/r.git/info/refs?service=git-upload-pack'
UPLOAD=/git.test/o/r.git/git-upload-pack
CT_UPLOAD='Content-Type: application/x-git-upload-pack-request\r\n'

# expect_refused NAME STATUS BEFORE [WORD]: the answer was STATUS, named
# WORD, and upstream saw no request since BEFORE requests.
expect_refused() {
    local name=$1 want=$2 before=$3 word=${4:-} got
    got=$(head -n 1 "$OUT/$name" | cut -d ' ' -f 2)
    if [ "$got" != "$want" ]; then
        fail "$name: status '$got', want $want" "$OUT/$name"
    elif [ -n "$word" ] && ! grep -aqF -- "$word" "$OUT/$name"; then
        fail "$name: answer does not name $word" "$OUT/$name"
    elif [ "$(upstream_count)" != "$before" ]; then
        fail "$name: reached upstream" "$ACCESS"
    else
        pass "$name -> $got"
    fi
}

# payload KIND VALUE: VALUE followed by an injection (printf %b escapes).
payload() {
    case $1 in
    cr) printf '%s\\rX-Injected: 1' "$2" ;;
    lf) printf '%s\\nX-Injected: 1' "$2" ;;
    crlf) printf '%s\\r\\nGET http://127.0.0.1/pub/evil.git/info/refs?service=git-upload-pack HTTP/1.1' "$2" ;;
    nul) printf '%s\\0X-Injected: 1' "$2" ;;
    lflf) printf '%s\\n\\nGET /pub/evil.git/info/refs?service=git-upload-pack HTTP/1.1\\nHost: x\\nContent-Length: 20\\nX-Pad: ' "$2" ;;
    esac
}

case_header_injection() {
    local hdr kind name before value
    for hdr in Git-Protocol Accept Content-Type Content-Encoding; do
        for kind in cr lf crlf nul lflf; do
            name=inject_${hdr}_$kind
            before=$(upstream_count)
            case $hdr in
            Git-Protocol)
                value=$(payload $kind version=2)
                req GET "$INFO_REFS" "$TOK" "Git-Protocol: $value\r\n" '' | send "$PA" "$name" >/dev/null ;;
            Accept)
                value=$(payload $kind application/x-git-upload-pack-result)
                req POST "$UPLOAD" "$TOK" "${CT_UPLOAD}Accept: $value\r\n" 0000 | send "$PA" "$name" >/dev/null ;;
            Content-Type)
                value=$(payload $kind application/x-git-upload-pack-request)
                req POST "$UPLOAD" "$TOK" "Content-Type: $value\r\n" 0000 | send "$PA" "$name" >/dev/null ;;
            Content-Encoding)
                value=$(payload $kind identity)
                req POST "$UPLOAD" "$TOK" "${CT_UPLOAD}Content-Encoding: $value\r\n" 0000 | send "$PA" "$name" >/dev/null ;;
            esac
            # the CRLF form is a header line of its own: refused as such
            if [ $kind = crlf ]; then
                expect_refused "$name" 400 "$before"
            else
                expect_refused "$name" 400 "$before" "$hdr"
            fi
        done
    done
    if grep -q '/pub/' "$ACCESS"; then fail "a smuggled request reached upstream" "$ACCESS"; fi
    # Positive controls: what real clients send still works.
    local t=control_git_clone_v0_v2
    g "$TOK" -c protocol.version=2 clone -q "$PROXY_A/r.git" "$T/c2" >"$OUT/$t" 2>&1 \
        && g "$TOK" -c protocol.version=0 clone -q "$PROXY_A/r.git" "$T/c0" >>"$OUT/$t" 2>&1 \
        && g "$TOK" -c protocol.version=1 ls-remote "$PROXY_A/r.git" >>"$OUT/$t" 2>&1 \
        && pass $t || fail $t "$OUT/$t"
    t=control_git_protocol_extra_item
    code=$(req GET "$INFO_REFS" "$TOK" 'Git-Protocol: version=2:object-format=sha1\r\n' '' | send "$PA" $t)
    [ "$code" = 200 ] && pass "$t" || fail "$t" "$OUT/$t"
    t=control_libgit2_accept
    code=$(req GET "$INFO_REFS" "$TOK" 'Accept: application/x-git-upload-pack-advertisement\r\n' '' | send "$PA" $t)
    [ "$code" = 200 ] && pass "$t" || fail "$t" "$OUT/$t"
    t=control_gzip_request
    code=$(printf '0014command=ls-refs\n0000' | gzip | curl -s -o "$OUT/$t" -w '%{http_code}' \
        -H "Authorization: Bearer $TOK" -H 'Git-Protocol: version=2' -H 'Content-Encoding: gzip' \
        -H 'Content-Type: application/x-git-upload-pack-request' \
        -H 'Accept: application/x-git-upload-pack-result' --data-binary @- "$PROXY_A/r.git/git-upload-pack")
    [ "$code" = 200 ] && grep -aq "$R_MAIN refs/heads/main" "$OUT/$t" && pass "$t" || fail "$t" "$OUT/$t"
}

case_head_hygiene() {
    local before name
    # name|method|target|headers (%b escapes)|body
    while IFS='|' read -r name method target headers body; do
        [ -z "$name" ] && continue
        before=$(upstream_count)
        req "$method" "$target" "$TOK" "$headers" "$body" | send "$PA" "$name" >/dev/null
        expect_refused "$name" 400 "$before"
    done <<EOF
obs_fold_space|GET|$INFO_REFS|Git-Protocol: version=2\r\n X-Folded: 1\r\n|
obs_fold_tab|GET|$INFO_REFS|Git-Protocol: version=2\r\n\tX-Folded: 1\r\n|
space_before_colon|GET|$INFO_REFS|Git-Protocol : version=2\r\n|
space_in_name|GET|$INFO_REFS|Git Protocol: version=2\r\n|
nul_in_other_header|GET|$INFO_REFS|User-Agent: git/2.39\0evil\r\n|
bare_lf_in_other_header|GET|$INFO_REFS|User-Agent: git/2.39\nX-Evil: 1\r\n|
bare_cr_in_other_header|GET|$INFO_REFS|User-Agent: git/2.39\rX-Evil: 1\r\n|
ctl_in_other_header|GET|$INFO_REFS|User-Agent: git\001/2.39\r\n|
del_in_git_protocol|GET|$INFO_REFS|Git-Protocol: version=2\177\r\n|
high_byte_in_git_protocol|GET|$INFO_REFS|Git-Protocol: version=2:x=\303\251\r\n|
bad_git_protocol_version|GET|$INFO_REFS|Git-Protocol: version=two\r\n|
git_protocol_semicolon|GET|$INFO_REFS|Git-Protocol: version=2;x=1\r\n|
dup_git_protocol|GET|$INFO_REFS|Git-Protocol: version=2\r\nGit-Protocol: version=1\r\n|
dup_authorization|GET|$INFO_REFS|Authorization: Bearer $TOK_OTHER\r\n|
dup_host|GET|$INFO_REFS|Host: evil.example\r\n|
dup_content_type|POST|$UPLOAD|$CT_UPLOAD$CT_UPLOAD|0000
dup_content_encoding|POST|$UPLOAD|${CT_UPLOAD}Content-Encoding: identity\r\nContent-Encoding: identity\r\n|0000
dup_content_length|POST|$UPLOAD|${CT_UPLOAD}Content-Length: 4\r\n|0000
wrong_content_type|POST|$UPLOAD|Content-Type: application/x-git-receive-pack-request\r\n|0000
form_content_type|POST|$UPLOAD|Content-Type: application/x-www-form-urlencoded\r\n|0000
unknown_content_encoding|POST|$UPLOAD|${CT_UPLOAD}Content-Encoding: br\r\n|0000
wrong_accept|POST|$UPLOAD|${CT_UPLOAD}Accept: text/html\r\n|0000
EOF
    # Two Transfer-Encoding lines (req adds a Content-Length: made by hand).
    name=dup_transfer_encoding
    before=$(upstream_count)
    printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n%bTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n0000\r\n0\r\n\r\n' \
        "$UPLOAD" "$TOK" "$CT_UPLOAD" | send "$PA" $name >/dev/null
    expect_refused $name 400 "$before"
}

case_pipelined_requests() {
    local t before lines
    # GET then GET (for another repository) in one write.
    t=pipelined_get_get
    before=$(upstream_count)
    { req GET "$INFO_REFS" "$TOK" '' ''
      req GET /git.test/o/other.git/info/refs?service=git-upload-pack "$TOK_OTHER" '' ''; } | send "$PA" $t >/dev/null
    lines=$(tail -n +$((before + 1)) "$ACCESS")
    if [ "$(grep -ac '^HTTP/1.1 ' "$OUT/$t")" = 1 ] && [ "$(head -n 1 "$OUT/$t" | cut -d ' ' -f 2)" = 200 ] \
        && [ "$(printf '%s\n' "$lines" | grep -c .)" = 1 ] && printf '%s\n' "$lines" | grep -q '/o/r.git/info/refs'; then
        pass $t
    else
        fail $t "$OUT/$t"; printf '%s\n' "$lines"
    fi
    # POST with a body, then a GET.
    t=pipelined_post_get
    before=$(upstream_count)
    { req POST "$UPLOAD" "$TOK" "$CT_UPLOAD" 0000
      req GET /git.test/o/other.git/info/refs?service=git-upload-pack "$TOK_OTHER" '' ''; } | send "$PA" $t >/dev/null
    lines=$(tail -n +$((before + 1)) "$ACCESS")
    if [ "$(grep -ac '^HTTP/1.1 ' "$OUT/$t")" = 1 ] && [ "$(printf '%s\n' "$lines" | grep -c .)" = 1 ] \
        && printf '%s\n' "$lines" | grep -q 'POST /o/r.git/git-upload-pack'; then
        pass $t
    else
        fail $t "$OUT/$t"; printf '%s\n' "$lines"
    fi
}

# Session A smuggles a request for the attacker's public repository behind
# its own; its answer must never be what session B's git reads.
case_smuggle_cross_session() {
    local t=smuggle_cross_session
    local before
    before=$(upstream_count)
    req GET /git.test/o/other.git/info/refs?service=git-upload-pack "$TOK_OTHER" \
        "Git-Protocol: $(payload lflf version=2)\r\n" '' | send "$PA" ${t}_attacker >/dev/null
    expect_refused ${t}_attacker 400 "$before" Git-Protocol
    g "$TOK_B" ls-remote "$PROXY_B/r.git" >"$OUT/$t" 2>&1
    if grep -q attacker-marker "$OUT/$t"; then
        fail "$t: session B listed the attacker's refs" "$OUT/$t"
    elif ! grep -q "^$R_MAIN	refs/heads/main" "$OUT/$t"; then
        fail "$t: session B did not list its own refs" "$OUT/$t"
    elif grep -q '/pub/' "$ACCESS"; then
        fail "$t: the smuggled request reached upstream" "$ACCESS"
    else
        pass $t
    fi
}

# Upstream connections (nginx's $connection) of sessions A and B never
# overlap; a session's own connection is reused.
case_connection_per_session() {
    local t=connection_per_session a1 b a2 n
    n=$(upstream_count)
    g "$TOK" ls-remote "$PROXY_A/r.git" >"$OUT/$t" 2>&1 || fail "$t: A" "$OUT/$t"
    a1=$(tail -n +$((n + 1)) "$ACCESS" | cut -d ' ' -f 1 | sort -u)
    n=$(upstream_count)
    g "$TOK_B" ls-remote "$PROXY_B/r.git" >>"$OUT/$t" 2>&1 || fail "$t: B" "$OUT/$t"
    b=$(tail -n +$((n + 1)) "$ACCESS" | cut -d ' ' -f 1 | sort -u)
    n=$(upstream_count)
    g "$TOK" ls-remote "$PROXY_A/r.git" >>"$OUT/$t" 2>&1 || fail "$t: A again" "$OUT/$t"
    a2=$(tail -n +$((n + 1)) "$ACCESS" | cut -d ' ' -f 1 | sort -u)
    echo "connections: A ${a1//$'\n'/ } / B ${b//$'\n'/ } / A again ${a2//$'\n'/ }"
    if [ -n "$(comm -12 <(echo "$a1"$'\n'"$a2" | sort -u) <(echo "$b"))" ]; then
        fail "$t: sessions A and B shared an upstream connection" "$ACCESS"
    elif [ -z "$(comm -12 <(echo "$a1") <(echo "$a2"))" ]; then
        fail "$t: session A's second request did not reuse its connection" "$ACCESS"
    else
        pass $t
    fi
}

# A token for git.test/o/r names exactly that repository.
case_repo_identity_exact() {
    local name target want word before
    while IFS='|' read -r name target want word; do
        [ -z "$name" ] && continue
        before=$(upstream_count)
        curl -s --path-as-is -o "$OUT/$name.body" -D "$OUT/$name.head" -H "Authorization: Bearer $TOK" \
            "http://127.0.0.1:$PA$target/info/refs?service=git-upload-pack"
        cat "$OUT/$name.head" "$OUT/$name.body" > "$OUT/$name"
        expect_refused "$name" "$want" "$before" "$word"
    done <<'EOF'
other_case_name|/git.test/o/R.git|403|token does not grant access to git.test/o/R
other_case_owner|/git.test/O/r.git|403|token does not grant access to git.test/O/r
longer_name|/git.test/o/r2.git|403|token does not grant access to git.test/o/r2
suffix_name|/git.test/o/r-x.git|403|token does not grant access to git.test/o/r-x
double_git_suffix|/git.test/o/r.git.git|403|token does not grant access to git.test/o/r.git
extra_segment|/git.test/o/r/extra.git|404|
dot_leading|/git.test/o/.r.git|404|
dot_dot|/git.test/o/...git|404|
pct_dot|/git.test/o/%2er.git|404|
pct_dot_upper|/git.test/o/%2Er.git|404|
pct_slash|/git.test/o%2Fr.git|404|
pct_letter|/git.test/o/%72.git|404|
pct_letter_upper|/git.test/o/%41pp.git|404|
non_ascii|/git.test/o/r%C3%A9.git|404|
EOF
    local t=git_ls_remote_other_case
    g "$TOK" ls-remote "$PROXY_A/R.git" >"$OUT/$t" 2>&1
    grep -q 'token does not grant access to git.test/o/R' "$OUT/$t" && ! grep -q capital-r-only "$OUT/$t" \
        && pass $t || fail $t "$OUT/$t"
    # Positive controls: the exact name, and the host in another case (DNS).
    t=control_exact_name
    g "$TOK" ls-remote "$PROXY_A/r.git" >"$OUT/$t" 2>&1 && grep -q "^$R_MAIN	refs/heads/main" "$OUT/$t" \
        && pass $t || fail $t "$OUT/$t"
    t=control_host_case
    g "$TOK" ls-remote "http://127.0.0.1:$PA/GIT.Test/o/r.git" >"$OUT/$t" 2>&1 \
        && grep -q "^$R_MAIN	refs/heads/main" "$OUT/$t" && pass $t || fail $t "$OUT/$t"
}

# With fold_case on for the upstream, o/R is the token's o/r, and what goes
# upstream is the token's spelling.
case_repo_identity_fold_case() {
    local t=fold_case_served_as_claimed pf before lines
    pf=$(free_port)
    python3 - "$STATE/gitproxy.json" "$STATE/gitproxy-fold.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["upstreams"]["git.test"]["fold_case"] = True
c["listeners"] = []
c["audit_log"] = c["audit_log"] + ".fold"
json.dump(c, open(sys.argv[2], "w"))
PY
    "$PROXY" --config "$STATE/gitproxy-fold.json" --listen "127.0.0.1:$pf=sA" -v >/dev/null 2>"$T/proxy-fold.log" &
    PIDS+=($!)
    wait_port "$pf"
    before=$(upstream_count)
    g "$TOK" ls-remote "http://127.0.0.1:$pf/git.test/O/R.git" >"$OUT/$t" 2>&1
    lines=$(tail -n +$((before + 1)) "$ACCESS")
    if grep -q "^$R_MAIN	refs/heads/main" "$OUT/$t" && ! grep -q capital-r-only "$OUT/$t" \
        && printf '%s\n' "$lines" | grep -q '"GET /o/r.git/info/refs' \
        && ! printf '%s\n' "$lines" | grep -q '/O/\|/R.git'; then
        pass $t
    else
        fail $t "$OUT/$t"; printf '%s\n' "$lines"
    fi
    t=fold_case_still_exact_otherwise
    before=$(upstream_count)
    curl -s -D "$OUT/$t" -o "$OUT/$t.body" -H "Authorization: Bearer $TOK" \
        "http://127.0.0.1:$pf/git.test/o/r2.git/info/refs?service=git-upload-pack"
    cat "$OUT/$t.body" >> "$OUT/$t"
    expect_refused $t 403 "$before" 'token does not grant access to git.test/o/r2'
}

case_unknown_key_id() {
    local t before
    "$CREDS_TOOL" key generate "$STATE/k9.key"
    # name|key file|kid: k9 is no key of the proxy's; k and k22 are near
    # names of its k2, here signed with k2's own key.
    while IFS='|' read -r t key kid; do
        [ -z "$t" ] && continue
        tok=$("$CREDS_TOOL" token mint --key "$STATE/$key.key" --kid "$kid" --session sA --user alice \
            --repo git.test/o/r --ttl 600)
        before=$(upstream_count)
        curl -s -D "$OUT/$t" -o "$OUT/$t.body" -H "Authorization: Bearer $tok" \
            "$PROXY_A/r.git/info/refs?service=git-upload-pack"
        cat "$OUT/$t.body" >> "$OUT/$t"
        expect_refused "$t" 403 "$before" 'airlock: token signed with an unknown key'
    done <<'EOF'
unknown_kid|k9|k9
kid_prefix_of_known|k2|k
kid_extends_known|k2|k22
EOF
}

"case_$CASE"
echo "gitproxy attack $CASE: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
