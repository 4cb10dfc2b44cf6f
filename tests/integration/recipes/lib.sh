# shellcheck shell=bash
# Shared by recipes_test.sh. The settings of every recipe are read from
# docs/recipes.md itself, from the fenced block that follows a line
# "<!-- recipe: ID -->", so the doc and the tests cannot drift apart.
# Stand-ins for registries, indexes and mirrors run on 127.0.0.1 (or on an
# address inside a network namespace the test makes), over HTTPS with a
# test CA whose certificate names the real hosts; the sandbox reaches them
# through airlock's proxy with --add-host NAME=127.0.0.1.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOC=$(cd "$HERE/../../.." && pwd)/docs/recipes.md
. "$HERE/../../lib/assert.sh"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8

# Every name a stand-in answers for.
STANDIN_NAMES="registry.npmjs.org pypi.org files.pythonhosted.org deb.debian.org
proxy.golang.org sum.golang.org index.crates.io static.crates.io github.com
mirror.corp.example"

PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMPD"
}

# on_err STATUS WHERE COMMAND: the ERR trap's line (only under `set -e`).
on_err() {
  if [[ $- == *e* ]]; then echo "FAIL: exit $1 at $2: $3" >&2; fi
}

setup() {
  setup_scratch
  trap stop_all EXIT
  # a command that fails under `set -e` says which, not a silent exit
  # (errtrace: in functions too; not where `set +e` expects a failure)
  set -E
  trap 'on_err $? "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND"' ERR
  chmod 755 "$TMPD"
}

skip() {
  echo "SKIP: $*"
  exit 77
}

# recipe_block ID: prints the fenced block after "<!-- recipe: ID -->".
recipe_block() {
  awk -v id="$1" '
    $0 == "<!-- recipe: " id " -->" { want = 1; next }
    want && /^```/ { if (inside) exit; inside = 1; next }
    inside { print; found = 1 }
    END { if (!found) exit 1 }' "$DOC" || fail "no block \"$1\" in $DOC"
}

# recipe_settings ID FILE: the block, checked to be JSON, written to FILE.
recipe_settings() {
  recipe_block "$1" >"$2"
  python3 -m json.tool "$2" >/dev/null || fail "block \"$1\" is not JSON"
}

# make_ca: $TMPD/ca.pem, and a server certificate for every stand-in name
# ($TMPD/srv.pem, $TMPD/srv.key); a copy of the CA in the workspace, where
# the sandbox can read it ($WS/ca.pem).
make_ca() {
  local d=$TMPD san="" n
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=airlock recipes test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=standin" -keyout "$d/srv.key" \
    -out "$d/srv.csr" 2>/dev/null
  for n in $STANDIN_NAMES; do san="${san:+$san,}DNS:$n"; done
  printf 'subjectAltName=%s\n' "$san" >"$d/ext"
  openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext" -out "$d/srv.pem" 2>/dev/null
  cp "$d/ca.pem" "$WS/ca.pem"
}

# start_standin ROOT [ADDR] [plain]: serves ROOT over HTTPS (HTTP with
# "plain"); sets $PORT (for the caller); requests are logged to ROOT.log.
start_standin() {
  local root=$1 addr=${2:-127.0.0.1} tls=("$TMPD/srv.pem" "$TMPD/srv.key")
  [ "${3:-}" = plain ] && tls=()
  rm -f "$root.port"
  : >"$root.log"
  python3 "$HERE/standin.py" "$root" "$addr" "$root.port" "$root.log" "${tls[@]}" \
    2>"$root.err" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$root.port" ] && break; sleep 0.05; done
  [ -s "$root.port" ] || fail "stand-in for $root did not start: $(cat "$root.err")"
  # shellcheck disable=SC2034 # read by the cases
  PORT=$(cat "$root.port")
}

# The stand-ins live on the host's loopback, which the SSRF guard refuses
# unless allowedAddresses names it. This layer is the test's, not the
# recipe's; it is loaded first so that airlock's messages name the recipe's
# file.
standin_layer() {
  cat >"$TMPD/standin.json" <<'J'
{"sandbox": {"network": {"allowedAddresses": ["127.0.0.1/32"]}}}
J
}

# hosts_args: --add-host for every stand-in name.
hosts_args() {
  local n
  HOSTS=()
  for n in $STANDIN_NAMES; do HOSTS+=(--add-host "$n=127.0.0.1"); done
}

# arun SETTINGS ARGS...: airlock run with the test layer, then SETTINGS.
arun() {
  local s=$1
  shift
  hosts_args
  "$AIRLOCK" run --settings "$TMPD/standin.json" --settings "$s" "${HOSTS[@]}" "$@"
}

# without_key IN OUT KEY...: the settings file IN without the keys (dotted
# paths, e.g. sandbox.filesystem.allowRead), written to OUT: shows what a
# line of a recipe is for.
without_key() {
  python3 - "$@" <<'PY'
import json, sys
src, dst, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
d = json.load(open(src))
for k in keys:
    *path, last = k.split(".")
    o = d
    for p in path:
        o = o[p]
    del o[last]
json.dump(d, open(dst, "w"))
PY
}
