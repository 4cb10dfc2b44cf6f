#!/usr/bin/env bash
# airlock run's settings and command-line behaviour, one case per ctest.
#   cli_test.sh AIRLOCK CASE
set -euo pipefail
AIRLOCK=$1
CASE=$2
. "$(dirname "$0")/../../lib/assert.sh"
setup_scratch

run() { expect_status "$@"; }

case_shape_claude() {
  cat >s.json <<'J'
{"permissions": {"allow": []},
 "sandbox": {"filesystem": {"allowedPaths": ["/tmp/x-allowed"], "deniedPaths": ["~/secret"]},
             "network": {"allowedDomains": ["github.com", "*.npmjs.org"], "httpProxyPort": 8080},
             "excludedCommands": ["docker"], "mode": "auto-allow"}}
J
  run 0 "$AIRLOCK" run --settings s.json --print-policy
  expect_contains "$OUT" '"github.com"'
  expect_contains "$OUT" '"*.npmjs.org"'
  expect_contains "$OUT" "$HOME/secret"
  expect_contains "$OUT" '"docker"'
  expect_contains "$OUT" '8080'
}

case_shape_srt() {
  mkdir -p "$TMPD/extra"
  cat >srt.json <<J
{"filesystem": {"allowWrite": ["$TMPD/extra"], "denyRead": ["~/.aws"], "denyWrite": []},
 "network": {"allowedDomains": ["example.com"], "deniedDomains": ["evil.example.com"]}}
J
  run 0 "$AIRLOCK" run --settings srt.json -- sh -c "echo w > $TMPD/extra/f && cat $TMPD/extra/f"
  expect_contains "$OUT" "w"
  run 0 "$AIRLOCK" run --settings srt.json --print-policy
  expect_contains "$OUT" '"evil.example.com"'
}

make_env_dir() {
  local d=$1
  mkdir -p "$d"
  echo '{"sandbox": {"network": {"allowedDomains": ["base.test"], "httpProxyPort": 1111}}}' >"$d/settings.json"
  echo '{"sandbox": {"network": {"allowedDomains": ["dev.test"], "httpProxyPort": 2222}}}' >"$d/settings.dev.json"
  echo '{"sandbox": {"network": {"allowedDomains": ["local.test"]}}}' >"$d/settings.local.json"
}

case_layering_env() {
  make_env_dir "$AIRLOCK_CONFIG_DIR"
  run 0 "$AIRLOCK" run --env dev --print-policy
  expect_contains "$OUT" '"base.test"'
  expect_contains "$OUT" '"dev.test"'
  expect_contains "$OUT" '"local.test"'
  expect_contains "$OUT" '2222'
  expect_not_contains "$OUT" '1111'
  # Without --env: settings.json and settings.local.json only.
  run 0 "$AIRLOCK" run --print-policy
  expect_not_contains "$OUT" '"dev.test"'
  expect_contains "$OUT" '1111'
}

case_layering_env_var() {
  make_env_dir "$AIRLOCK_CONFIG_DIR"
  AIRLOCK_ENV=dev run 0 "$AIRLOCK" run --print-policy
  expect_contains "$OUT" '"dev.test"'
}

case_layering_settings_flags() {
  make_env_dir "$TMPD/proj"
  # Later files override scalars, lists merge; --env continues from the
  # folder of the last --settings file.
  run 0 "$AIRLOCK" run --settings "$TMPD/proj/settings.json" --env dev --print-policy
  expect_contains "$OUT" '"base.test"'
  expect_contains "$OUT" '"dev.test"'
  expect_contains "$OUT" '"local.test"'
  expect_contains "$OUT" '2222'
  # Without --env: the files, then settings.local.json beside the last one
  # (where "always" answers go; issue 12, item 3).
  run 0 "$AIRLOCK" run --settings "$TMPD/proj/settings.dev.json" --settings "$TMPD/proj/settings.json" --print-policy
  expect_contains "$OUT" '1111'
  expect_contains "$OUT" '"local.test"'
  expect_not_contains "$OUT" '2222'
  # ... read once when it is the last --settings file itself.
  run 0 "$AIRLOCK" run --settings "$TMPD/proj/settings.local.json" --print-policy
  expect_contains "$OUT" '"local.test"'
}

case_env_file_missing() {
  run 125 "$AIRLOCK" run --env nosuch -- true
  expect_contains "$ERR" "settings.nosuch.json: no such settings file"
  run 125 "$AIRLOCK" run --env ../x -- true
  expect_contains "$ERR" "not a valid environment name"
}

bad_settings() { # JSON EXPECTED-MESSAGE
  printf '%s' "$1" >bad.json
  run 125 "$AIRLOCK" run --settings bad.json -- true
  expect_contains "$ERR" "airlock: "
  expect_contains "$ERR" "bad.json"
  expect_contains "$ERR" "$2"
}

case_validation_unknown_key() { bad_settings '{"sandbox": {"filesysem": {}}}' 'sandbox.filesysem: unknown key'; }
case_validation_wrong_type() { bad_settings '{"sandbox": {"network": {"allowedDomains": "x.com"}}}' 'sandbox.network.allowedDomains: expected a list of strings'; }
case_validation_broad_wildcard() { bad_settings '{"sandbox": {"network": {"allowedDomains": ["*.com"]}}}' 'allowedDomains[0]: "*.com" is too broad'; }
case_validation_star() { bad_settings '{"network": {"allowedDomains": ["ok.test", "*"]}}' 'network.allowedDomains[1]: "*" is too broad'; }
case_validation_tilde_user() { bad_settings '{"filesystem": {"allowWrite": ["~root/x"]}}' 'filesystem.allowWrite[0]'; }
case_validation_bad_json() { bad_settings '{"sandbox": {' 'invalid JSON'; }
case_validation_bad_port() { bad_settings '{"sandbox": {"network": {"httpProxyPort": 70000}}}' 'sandbox.network.httpProxyPort'; }
case_validation_mode() { bad_settings '{"sandbox": {"mode": "yolo"}}' 'sandbox.mode'; }

case_globs_deny_read() {
  mkdir -p a/b/c
  echo top >a/.secret-top && echo deep >a/b/c/.secret-deep && echo fine >a/b/c/visible
  expect_failure "$AIRLOCK" run --deny-read "$WS/**/.secret*" -- sh -c 'cat a/.secret-top a/b/c/.secret-deep'
  expect_not_contains "$OUT" "top"
  expect_not_contains "$OUT" "deep"
  run 0 "$AIRLOCK" run --deny-read "$WS/**/.secret*" -- cat a/b/c/visible
  expect_contains "$OUT" "fine"
}

case_glob_home_key() {
  echo keydata >"$HOME/.deploy_key"
  echo '{"filesystem": {"denyRead": ["~/.*_key"]}}' >s.json
  expect_failure "$AIRLOCK" run --settings s.json -- cat "$HOME/.deploy_key"
  expect_not_contains "$OUT" "keydata"
}

case_allow_write() {
  mkdir -p "$TMPD/out"
  expect_failure "$AIRLOCK" run -- sh -c "echo x > $TMPD/out/f"
  run 0 "$AIRLOCK" run --allow-write "$TMPD/out" -- sh -c "echo x > $TMPD/out/f"
  [ "$(cat "$TMPD/out/f")" = x ] || fail "write through --allow-write did not reach the host"
}

case_allow_read_reexposes() {
  mkdir -p "$HOME/private/public"
  echo hidden >"$HOME/private/h" && echo shown >"$HOME/private/public/p"
  echo '{"filesystem": {"denyRead": ["~/private"], "allowRead": ["~/private/public"]}}' >s.json
  run 0 "$AIRLOCK" run --settings s.json -- cat "$HOME/private/public/p"
  expect_contains "$OUT" "shown"
  expect_failure "$AIRLOCK" run --settings s.json -- cat "$HOME/private/h"
}

case_excluded_allowed() {
  echo '{"sandbox": {"excludedCommands": ["printenv"]}}' >s.json
  export MARKER_OUTSIDE=yes
  run 0 "$AIRLOCK" run --settings s.json -- printenv MARKER_OUTSIDE
  expect_contains "$OUT" "yes"
  expect_contains "$ERR" "OUTSIDE the sandbox"
}

case_excluded_refused() {
  echo '{"sandbox": {"excludedCommands": ["printenv"], "allowUnsandboxedCommands": false}}' >s.json
  run 125 "$AIRLOCK" run --settings s.json -- printenv
  expect_contains "$ERR" "allowUnsandboxedCommands is false"
}

case_unsandboxed_refused() {
  echo '{"sandbox": {"allowUnsandboxedCommands": false}}' >s.json
  run 125 "$AIRLOCK" run --settings s.json --unsandboxed -- true
  expect_contains "$ERR" "refusing to run"
}

case_unsandboxed_allowed() {
  run 0 "$AIRLOCK" run --unsandboxed -- sh -c 'echo ${SANDBOX_RUNTIME:-unset}'
  expect_contains "$OUT" "unset"
}

# The inner airlock may be a sanitizer build: LeakSanitizer needs ptrace,
# which the sandbox denies.
export ASAN_OPTIONS=detect_leaks=0

case_nested_refused() {
  cp "$AIRLOCK" ./airlock-inner
  run 125 "$AIRLOCK" run --pass-env ASAN_OPTIONS -- ./airlock-inner run -- true
  expect_contains "$ERR" "enableWeakerNestedSandbox"
}

case_nested_weaker() {
  cp "$AIRLOCK" ./airlock-inner
  echo '{"sandbox": {"enableWeakerNestedSandbox": true}}' >nested.json
  run 0 "$AIRLOCK" run --pass-env ASAN_OPTIONS -- ./airlock-inner run --settings nested.json -- sh -c \
    'echo inner-ok > inner.txt; cat inner.txt; if touch /usr/airlock-x 2>/dev/null; then echo USR-WRITABLE; fi; cat ~/.ssh/id_ed25519 2>/dev/null || echo ssh-hidden'
  expect_contains "$OUT" "inner-ok"
  expect_contains "$OUT" "ssh-hidden"
  expect_not_contains "$OUT" "USR-WRITABLE"
  expect_contains "$ERR" "WEAKER sandbox"
}

case_mode_regular_no_tty() {
  echo '{"sandbox": {"mode": "regular"}}' >s.json
  run 125 setsid "$AIRLOCK" run --settings s.json -- true </dev/null
  expect_contains "$ERR" "--yes"
}

case_mode_regular_yes() {
  echo '{"sandbox": {"mode": "regular"}}' >s.json
  run 0 setsid "$AIRLOCK" run --settings s.json --yes -- echo ran </dev/null
  expect_contains "$OUT" "ran"
}

case_dotenv_hidden() {
  mkdir -p sub/.env
  echo "API_KEY=dotenv-marker" >.env
  echo "X=1" >sub/.env.production
  expect_failure "$AIRLOCK" run -- sh -c 'cat .env sub/.env.production'
  expect_not_contains "$OUT" "dotenv-marker"
  # A directory named .env (a virtualenv) stays usable.
  run 0 "$AIRLOCK" run -- sh -c 'touch sub/.env/ok'
}

case_git_hooks_protected() {
  git init -q .
  expect_failure "$AIRLOCK" run -- sh -c 'echo "#!/bin/sh" > .git/hooks/pre-commit'
  expect_contains "$ERR" "Read-only file system"
  [ ! -e .git/hooks/pre-commit ] || fail "hook planted"
}

case_git_config_protected() {
  git init -q .
  expect_failure "$AIRLOCK" run -- sh -c 'echo "[core] fsmonitor = evil" >> .git/config'
  expect_contains "$ERR" "Read-only file system"
  run 0 "$AIRLOCK" run -- sh -c 'git config user.name sandboxed 2>&1 || true'
  expect_not_contains "$(cat .git/config)" "sandboxed"
  echo 'x' >.bashrc
  expect_failure "$AIRLOCK" run -- sh -c 'echo evil >> .bashrc'
}

case_git_config_allowed() {
  git init -q .
  echo '{"filesystem": {"allowGitConfig": true}}' >s.json
  run 0 "$AIRLOCK" run --settings s.json -- git config user.name sandboxed
  expect_contains "$(cat .git/config)" "sandboxed"
}

case_worktree_protected() {
  mkdir main && (cd main && git init -q . && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m init && git worktree add -q ../wt)
  cd wt
  expect_failure "$AIRLOCK" run --allow-write "$WS/main" -- sh -c "echo evil > $WS/main/.git/hooks/post-checkout"
  [ ! -e "$WS/main/.git/hooks/post-checkout" ] || fail "hook planted through worktree"
}

case_placeholder_removed() {
  git init -q . && rm -rf .git/hooks
  run 0 "$AIRLOCK" run -- sh -c 'test -d .git/hooks && ! touch .git/hooks/x 2>/dev/null'
  [ ! -e .git/hooks ] || fail "placeholder .git/hooks left behind"
}

case_pass_env() {
  export GITHUB_TOKEN=ghp_marker_secret AWS_SECRET_ACCESS_KEY=aws_marker_secret MYVAR=passed
  run 0 "$AIRLOCK" run -- sh -c 'env; cat /proc/1/environ 2>/dev/null | tr "\0" "\n"'
  expect_not_contains "$OUT" "ghp_marker_secret"
  expect_not_contains "$OUT" "aws_marker_secret"
  expect_contains "$OUT" "SANDBOX_RUNTIME=1"
  run 0 "$AIRLOCK" run --pass-env MYVAR -- printenv MYVAR
  expect_contains "$OUT" "passed"
}

case_ld_preload_refused() {
  run 125 "$AIRLOCK" run --pass-env LD_PRELOAD -- true
  expect_contains "$ERR" "refused"
  LD_PRELOAD= run 0 "$AIRLOCK" run -- sh -c 'echo ${LD_PRELOAD:-none}'
  expect_contains "$OUT" "none"
}

case_clean_env() {
  export TERM=xterm-test LANG=C.UTF-8 USER=tester RANDOM_THING=x
  run 0 "$AIRLOCK" run -- env
  for v in PATH HOME TERM=xterm-test LANG=C.UTF-8 USER=tester SANDBOX_RUNTIME=1; do
    expect_contains "$OUT" "$v"
  done
  expect_not_contains "$OUT" "RANDOM_THING"
}

case_print_policy_defaults() {
  run 0 "$AIRLOCK" run --print-policy
  expect_contains "$OUT" "$WS"
  expect_contains "$OUT" "$HOME/.ssh"
  expect_contains "$OUT" "/etc/shadow"
}

case_doctor_passes() {
  run 0 "$AIRLOCK" doctor
  expect_contains "$OUT" "PASS  write outside the workspace"
  expect_contains "$OUT" "PASS  read credential stores"
  expect_contains "$OUT" "PASS  reach a host that is not allowed"
  expect_contains "$OUT" "PASS  reach a host unix socket"
  expect_contains "$OUT" "PASS  gain privileges"
  expect_contains "$OUT" "all checks passed"
  expect_not_contains "$OUT" "FAIL"
}

# airlock creds/token/key reach the operator tool airlock-creds.
case_creds_tool() {
  run 0 "$AIRLOCK" key generate "$TMPD/master.key"
  run 0 "$AIRLOCK" key generate "$TMPD/token.key"
  echo "ghp_realsecret_marker_123" >"$TMPD/secret"
  run 0 sh -c "\"$AIRLOCK\" creds add --store $TMPD/store --master-key $TMPD/master.key --scope github.com/acme <$TMPD/secret"
  run 0 "$AIRLOCK" creds list --store "$TMPD/store" --master-key "$TMPD/master.key"
  expect_contains "$OUT" "github.com/acme"
  expect_not_contains "$OUT$ERR" "ghp_realsecret_marker_123"
  run 0 "$AIRLOCK" token mint --key "$TMPD/token.key" --kid k1 --session s1 --repo github.com/acme/app --push-ref refs/heads/airlock/s1 --ttl 60
  local tok=$OUT
  run 0 "$AIRLOCK" token inspect --key "$TMPD/token.key" --kid k1 "$tok"
  expect_contains "$OUT" "s1"
  expect_contains "$OUT" "github.com/acme/app"
}

case_bad_option() {
  run 125 "$AIRLOCK" run --frobnicate -- true
  expect_contains "$ERR" "unknown option"
  run 125 "$AIRLOCK" run --memory lots -- true
  expect_contains "$ERR" "--memory"
}

case_no_command() {
  run 125 "$AIRLOCK" run
  expect_contains "$ERR" "no command given"
}

"case_$CASE"
echo "PASS cli.$CASE"
