# Shell test helpers. Source this file; every helper prints what it expected
# and what it got, then fails the test (exit 1).

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# expect_status WANT CMD...: runs CMD, captures stdout/stderr into $OUT/$ERR.
expect_status() {
  local want=$1
  shift
  set +e
  OUT=$("$@" 2>"$TMPD/stderr")
  local got=$?
  set -e
  ERR=$(cat "$TMPD/stderr")
  if [ "$got" != "$want" ]; then
    printf 'stdout: %s\nstderr: %s\n' "$OUT" "$ERR" >&2
    fail "exit status $got, expected $want: $*"
  fi
}

expect_contains() { # HAYSTACK NEEDLE [what]
  case "$1" in
    *"$2"*) ;;
    *) fail "${3:-output} does not contain \"$2\": $1" ;;
  esac
}

expect_not_contains() { # HAYSTACK NEEDLE [what]
  case "$1" in
    *"$2"*) fail "${3:-output} contains \"$2\": $1" ;;
    *) ;;
  esac
}

# setup_scratch: $TMPD (removed on exit), a workspace $WS (cwd) and a fake
# $HOME with credentials in it.
setup_scratch() {
  TMPD=$(mktemp -d /tmp/airlock-test.XXXXXX)
  trap 'rm -rf "$TMPD"' EXIT
  WS=$TMPD/ws
  export HOME=$TMPD/home
  mkdir -p "$WS" "$HOME/.ssh" "$HOME/.aws" "$HOME/.config/airlock"
  echo "ssh-secret-marker" >"$HOME/.ssh/id_ed25519"
  echo "aws-secret-marker" >"$HOME/.aws/credentials"
  export AIRLOCK_CONFIG_DIR=$HOME/.config/airlock
  cd "$WS"
}

# expect_failure CMD...: CMD fails with the command's own error, not one of
# airlock's (125), nor not-found/not-executable (126, 127).
expect_failure() {
  set +e
  OUT=$("$@" 2>"$TMPD/stderr")
  local got=$?
  set -e
  ERR=$(cat "$TMPD/stderr")
  case "$got" in
    0 | 125 | 126 | 127)
      printf 'stdout: %s\nstderr: %s\n' "$OUT" "$ERR" >&2
      fail "exit status $got, expected the command to fail: $*"
      ;;
  esac
}
