#!/bin/bash
# Settings that would silently mean nothing (issue 12, item 6): the real
# `airlock run` with each mistake, and the words it must say on stderr.
AIRLOCK=$1 HELPER=$2
. "$(dirname "$0")/lib.sh"

# expect_err WANT_RC TEXT ARGS...: runs airlock; the exit status is WANT_RC
# and stderr contains TEXT.
expect_err() {
    local want=$1 text=$2
    shift 2
    run_airlock "$@"
    if [ "$rc" -eq "$want" ] && grep -qF -- "$text" <<<"$err"; then
        ok "exit $want and \"$text\""
    else
        fail "want exit $want and \"$text\""
        show
    fi
}

mkdir -p "$T/ws"
S=$T/settings.json

# A typo of "sandbox" beside "permissions": refused, not the default policy.
echo '{"permissions": {}, "sandbx": {"filesystem": {"denyRead": ["~/x"]}}}' >"$S"
expect_err 125 'sandbx: unknown key (did you mean "sandbox"?)' --settings "$S" -- true

# Another unknown top-level key: a warning naming it, and the run goes on.
echo '{"modle": "opus", "sandbox": {}}' >"$S"
expect_err 0 'warning: '"$S"': modle: unknown key, ignored (did you mean "model"?)' \
    --settings "$S" -- true

# A non-existent allowWrite path; a non-existent denyRead path is kept.
echo '{"sandbox": {"filesystem": {"allowWrite": ["/nonexistent/airlock-aw"],
       "denyRead": ["/nonexistent/airlock-dr"]}}}' >"$S"
expect_err 0 'sandbox.filesystem.allowWrite: "/nonexistent/airlock-aw" does not exist' \
    --settings "$S" -- true
grep -qF 'sandbox.filesystem.denyRead: "/nonexistent/airlock-dr" does not exist (yet): the rule is kept' <<<"$err" &&
    ok "missing denyRead path: kept, and said so" || fail "no denyRead warning: $err"

# The attack: a Read() deny rule must hide the file from the command (it was
# ignored before: the secret was readable).
echo "top secret" >"$T/ws/secret.txt"
echo '{"permissions": {"deny": ["Read(secret.txt)", "Bash(rm:*)"]}}' >"$S"
run_airlock --settings "$S" -- cat secret.txt
if [ "$rc" -ne 0 ] && ! grep -q "top secret" <<<"$out"; then
    ok "permissions.deny Read(secret.txt) hides it"
else
    fail "Read(secret.txt) deny did not hide the file"
    show
fi
# Edit() deny: readable, not writable.
echo '{"permissions": {"deny": ["Edit(./secret.txt)"]}}' >"$S"
run_airlock --settings "$S" -c 'cat secret.txt && echo changed >secret.txt'
if [ "$rc" -ne 0 ] && grep -q "top secret" <<<"$out" && grep -q "top secret" "$T/ws/secret.txt"; then
    ok "permissions.deny Edit(./secret.txt) write-protects it"
else
    fail "Edit(./secret.txt) deny did not write-protect the file"
    show
fi
# Claude Code documents "/x" in sandbox.filesystem as relative to the settings
# file (the project folder for .claude/settings.json): a project's denyRead
# "/secret.txt" must hide the project's secret.txt (it named the absolute
# /secret.txt only before).
mkdir -p "$T/ws/.claude"
echo '{"sandbox": {"filesystem": {"denyRead": ["/secret.txt"]}}}' >"$T/ws/.claude/settings.json"
run_airlock --settings "$T/ws/.claude/settings.json" -- cat secret.txt
if [ "$rc" -ne 0 ] && ! grep -q "top secret" <<<"$out"; then
    ok "denyRead \"/secret.txt\" in .claude/settings.json hides the project's secret.txt"
else
    fail "denyRead \"/secret.txt\" did not hide the project's secret.txt"
    show
fi
rm -rf "$T/ws/.claude"
# WebFetch(domain:) allow: an allowed domain (the effective policy shows it).
echo '{"permissions": {"allow": ["WebFetch(domain:docs.example.com)"]}}' >"$S"
run_airlock --settings "$S" --print-policy
grep -q '"docs.example.com"' <<<"$out" && ok "WebFetch(domain:) allow is an allowed domain" ||
    fail "WebFetch(domain:) not in allowedDomains: $out"

# A URL in allowedDomains: refused, saying what to write.
echo '{"sandbox": {"network": {"allowedDomains": ["https://pypi.example.com/simple"]}}}' >"$S"
expect_err 125 'is a URL, not a domain: write the host name alone, "pypi.example.com"' \
    --settings "$S" -- true

# Managed-only switches outside managed settings: named, ignored.
echo '{"sandbox": {"network": {"allowManagedDomainsOnly": true}}}' >"$S"
expect_err 0 'allowManagedDomainsOnly: ignored: it has an effect only in Claude Code'"'"'s managed settings' \
    --settings "$S" -- true

# No network settings: a failing command gets one line saying so.
expect_err 2 'airlock: note: this sandbox has no network (no network settings); to allow a host add it to sandbox.network.allowedDomains' \
    -- getent hosts example.com
# srt's shape names srt's key.
echo '{"filesystem": {"allowWrite": []}}' >"$S"
expect_err 2 'to allow a host add it to network.allowedDomains' --settings "$S" -- getent hosts example.com
# ... and a command that succeeds gets no note.
run_airlock -- true
grep -q "note:" <<<"$err" && fail "note on success: $err" || ok "no note when the command succeeds"

# .git/config is protected: a failing git write names allowGitConfig.
if command -v git >/dev/null; then
    git -C "$T/ws" init -q
    expect_err 4 '"sandbox.filesystem.allowGitConfig": true' -- git config user.name sandboxed
    grep -q "no network" <<<"$err" && fail "network note for git config: $err" ||
        ok "no network note for git config"
    expect_err 4 '"sandbox.filesystem.allowGitConfig": true' -c 'git -C . config user.name x'
    run_airlock -- git fetch origin
    grep -q "allowGitConfig" <<<"$err" && fail "allowGitConfig note for git fetch: $err" ||
        ok "no allowGitConfig note for git fetch"
    grep -q "this sandbox has no network" <<<"$err" && ok "network note for git fetch" ||
        fail "no network note for git fetch: $err"
    echo '{"sandbox": {"filesystem": {"allowGitConfig": true}}}' >"$S"
    run_airlock --settings "$S" -- git config user.name sandboxed
    [ "$rc" -eq 0 ] && ok "allowGitConfig lets git write .git/config" || { fail "allowGitConfig"; show; }
    rm -rf "$T/ws/.git"
fi

# A large tree: more than 20000 entries in node_modules and .git must not make
# every run warn that the dotenv search stopped; a .env file is still hidden.
mkdir -p "$T/ws/node_modules/big" "$T/ws/src"
(cd "$T/ws/node_modules/big" && seq 1 22000 | xargs touch)
echo "SECRET=1" >"$T/ws/src/.env"
run_airlock -- cat src/.env
if grep -q "stopped" <<<"$err" || grep -q "SECRET" <<<"$out"; then
    fail "large tree: warned or .env readable"
    show
else
    ok "large tree: no walk warning, .env hidden"
fi
rm -rf "$T/ws/node_modules"

# A .env file ten folders down is hidden (the walk stopped at 8 levels
# before, silently); below 32 levels the warning names the folder.
d10=$T/ws/$(printf 'l/%.0s' $(seq 1 10))
mkdir -p "$d10" && echo "SECRET=deep" >"$d10/.env"
run_airlock -c "cat ./$(printf 'l/%.0s' $(seq 1 10)).env"
if [ "$rc" -ne 0 ] && ! grep -q "SECRET" <<<"$out"; then
    ok ".env ten folders down is hidden"
else
    fail ".env ten folders down is readable"
    show
fi
mkdir -p "$T/ws/$(printf 'z/%.0s' $(seq 1 34))"
expect_err 0 'searches 32 levels deep; '"$T"'/ws/z/z/z' -- true
grep -q "files there are NOT hidden" <<<"$err" && ok "deep tree: says what is not hidden" ||
    fail "deep tree warning incomplete: $err"
# Issue 15: credentials and keys airlock cannot honour are refused by name
# before anything runs (none silently ignored).
echo '{"sandbox": {"network": {"allowedDomains": ["api.github.com"]}, "credentials":
       {"envVars": [{"name": "GITHUB_TOKEN", "mode": "mask", "injectHosts": ["api.github.com"]}]}}}' >"$S"
expect_err 125 'sandbox.credentials.envVars ("GITHUB_TOKEN"): mode "mask" needs sandbox.network.tlsTerminate' \
    --settings "$S" -- true
echo '{"sandbox": {"network": {"allowedDomains": ["github.com"], "tlsTerminate": {}}, "credentials":
       {"envVars": [{"name": "GITHUB_TOKEN", "mode": "mask", "injectHosts": ["api.github.com"]}]}}}' >"$S"
expect_err 125 'injectHosts "api.github.com" is not covered by sandbox.network.allowedDomains' \
    --settings "$S" -- true
echo '{"sandbox": {"network": {"allowedDomains": ["api.github.com"], "tlsTerminate": {}}, "credentials":
       {"envVars": [{"name": "GITHUB_TOKEN", "mode": "mask", "injectHosts": ["api.github.com"]},
                    {"name": "NPM_TOKEN", "mode": "deny"}]}}}' >"$S"
GITHUB_TOKEN=real-value expect_err 125 \
    '--pass-env GITHUB_TOKEN: refused: the settings mask it (sandbox.credentials.envVars, mode "mask")' \
    --settings "$S" --pass-env GITHUB_TOKEN -- true
NPM_TOKEN=real-value expect_err 125 '--pass-env NPM_TOKEN: refused by the settings' \
    --settings "$S" --pass-env NPM_TOKEN -- true
echo '{"network": {"allowedDomains": [], "deniedDomains": [], "mitmProxy": {"socketPath": "/tmp/m.sock",
       "domains": ["api.example.com"]}}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}' >"$S"
expect_err 125 'network.mitmProxy: not supported: airlock does not hand domains to another proxy' \
    --settings "$S" -- true
finish
