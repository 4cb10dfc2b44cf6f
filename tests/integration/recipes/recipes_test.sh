#!/usr/bin/env bash
# The recipes of docs/recipes.md, each run with the real built airlock and
# the real client (npm, pip, apt, go, cargo, git, ssh) against a local
# stand-in: settings come from the doc's blocks, in both settings shapes.
#   recipes_test.sh AIRLOCK CASE
set -euo pipefail
AIRLOCK=$1
CASE=$2
. "$(dirname "$0")/lib.sh"
# corp_mirror runs in a network namespace of its own (before any scratch
# directory is made, so none is left behind by the exec)
if [ "$CASE" = corp_mirror ] && [ -z "${RECIPES_IN_NETNS:-}" ]; then
  command -v unshare >/dev/null || skip "no unshare (util-linux)"
  RECIPES_IN_NETNS=1 exec unshare --net -- "$HERE/recipes_test.sh" "$AIRLOCK" "$CASE"
fi
setup

# ---- npm: a registry stand-in (package document + tarball)

npm_registry() {
  local r=$TMPD/npm
  mkdir -p "$r/airlock-recipe-demo/-" "$TMPD/pkg/package"
  echo '{"name": "airlock-recipe-demo", "version": "1.0.0", "main": "index.js"}' \
    >"$TMPD/pkg/package/package.json"
  echo 'module.exports = "hello from the npm stand-in";' >"$TMPD/pkg/package/index.js"
  tar -C "$TMPD/pkg" -czf "$r/airlock-recipe-demo/-/airlock-recipe-demo-1.0.0.tgz" package
  start_standin "$r"
  python3 - "$r" "$PORT" <<'PY'
import base64, hashlib, json, sys
root, port = sys.argv[1], sys.argv[2]
tgz = open(root + "/airlock-recipe-demo/-/airlock-recipe-demo-1.0.0.tgz", "rb").read()
v = {"name": "airlock-recipe-demo", "version": "1.0.0", "main": "index.js",
     "dist": {"tarball": "https://registry.npmjs.org:%s/airlock-recipe-demo/-/"
                         "airlock-recipe-demo-1.0.0.tgz" % port,
              "shasum": hashlib.sha1(tgz).hexdigest(),
              "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}
json.dump({"name": "airlock-recipe-demo", "dist-tags": {"latest": "1.0.0"},
           "versions": {"1.0.0": v}}, open(root + "/airlock-recipe-demo/index.json", "w"))
PY
}

case_npm() {
  command -v npm >/dev/null || skip "npm is not installed"
  make_ca; standin_layer; npm_registry
  local shape
  for shape in cc srt; do
    recipe_settings "npm.$shape" "$TMPD/settings.json"
    rm -rf "$HOME/.npm" "$WS/node_modules" "$WS/package.json" "$WS/package-lock.json"
    echo '{"name": "proj", "version": "0.0.0"}' >"$WS/package.json"
    local npm=(npm install --registry "https://registry.npmjs.org:$PORT/" --cafile "$WS/ca.pem"
      --no-audit --no-fund --update-notifier=false airlock-recipe-demo)
    # without ~/.npm the cache cannot be created: the path is skipped, not made
    expect_failure arun "$TMPD/settings.json" -- "${npm[@]}"
    expect_contains "$ERR" "$HOME/.npm"
    case "$ERR" in *ENOENT* | *EROFS*) ;; *) fail "$shape: npm did not fail on its cache: $ERR" ;; esac
    mkdir -p "$HOME/.npm"
    expect_status 0 arun "$TMPD/settings.json" -- "${npm[@]}"
    expect_contains "$OUT" "added 1 package"
    expect_status 0 arun "$TMPD/settings.json" -- node -p 'require("airlock-recipe-demo")'
    expect_contains "$OUT" "hello from the npm stand-in"
    ls "$HOME/.npm/_cacache" >/dev/null || fail "$shape: npm's cache was not written"
    expect_contains "$(cat "$TMPD/npm.log")" \
      "GET /airlock-recipe-demo/-/airlock-recipe-demo-1.0.0.tgz registry.npmjs.org:$PORT"
    # another registry is not in the list
    expect_failure arun "$TMPD/settings.json" -- npm install --registry "https://registry.yarnpkg.com/" \
      --no-audit --no-fund --update-notifier=false --fetch-retries=0 left-pad
    local key=sandbox.network
    [ $shape = srt ] && key=network
    expect_contains "$ERR" "airlock: blocked network: registry.yarnpkg.com:443 (not in the allowlist): add \"registry.yarnpkg.com\" to $key.allowedDomains in $TMPD/settings.json"
    : >"$TMPD/npm.log"
  done
}

# ---- pip: a PEP 503 simple index and a wheel built here

pip_index() { # [FILES_HOST [ADDR]]: the index; wheels linked on FILES_HOST
  local r=$TMPD/pypi
  mkdir -p "$r/simple/airlock-recipe-demo" "$r/packages"
  start_standin "$r" "${2:-127.0.0.1}"
  python3 - "$r" "$PORT" "${1:-files.pythonhosted.org}" <<'PY'
import base64, hashlib, sys, zipfile
root, port, host = sys.argv[1], sys.argv[2], sys.argv[3]
name = "airlock_recipe_demo-1.0.0-py3-none-any.whl"
files = {
    "airlock_recipe_demo.py": "GREETING = 'hello from the pip stand-in'\n",
    "airlock_recipe_demo-1.0.0.dist-info/METADATA":
        "Metadata-Version: 2.1\nName: airlock-recipe-demo\nVersion: 1.0.0\n",
    "airlock_recipe_demo-1.0.0.dist-info/WHEEL":
        "Wheel-Version: 1.0\nGenerator: recipes_test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
    record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(text.encode())))
record.append("airlock_recipe_demo-1.0.0.dist-info/RECORD,,")
files["airlock_recipe_demo-1.0.0.dist-info/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(root + "/packages/" + name, "w") as z:
    for path, text in files.items():
        z.writestr(path, text)
sha = hashlib.sha256(open(root + "/packages/" + name, "rb").read()).hexdigest()
open(root + "/simple/index.html", "w").write(
    '<!DOCTYPE html><html><body><a href="airlock-recipe-demo/">airlock-recipe-demo</a></body></html>\n')
open(root + "/simple/airlock-recipe-demo/index.html", "w").write(
    '<!DOCTYPE html><html><body><a href="https://%s:%s/packages/%s#sha256=%s">%s</a>'
    '</body></html>\n' % (host, port, name, sha, name))
PY
}

case_pip() {
  python3 -c 'import venv, ensurepip' 2>/dev/null || skip "python3-venv is not installed"
  make_ca; standin_layer; pip_index
  local shape
  for shape in cc srt; do
    recipe_settings "pip.$shape" "$TMPD/settings.json"
    # one venv for both shapes (making one is the slow part); the package
    # is installed again from the index each time
    rm -rf "$HOME/.cache" "$WS"/.venv/lib/python3*/site-packages/airlock_recipe_demo*
    mkdir -p "$HOME/.cache/pip"
    [ -d "$WS/.venv" ] || expect_status 0 arun "$TMPD/settings.json" -- python3 -m venv .venv
    expect_status 0 arun "$TMPD/settings.json" -- .venv/bin/pip install \
      --index-url "https://pypi.org:$PORT/simple/" --cert "$WS/ca.pem" \
      --disable-pip-version-check airlock-recipe-demo
    expect_contains "$OUT" "Successfully installed airlock-recipe-demo-1.0.0"
    expect_not_contains "$ERR" "cache has been disabled"
    expect_status 0 arun "$TMPD/settings.json" -- .venv/bin/python -c \
      'import airlock_recipe_demo as m; print(m.GREETING)'
    expect_contains "$OUT" "hello from the pip stand-in"
    expect_contains "$(cat "$TMPD/pypi.log")" "GET /packages/airlock_recipe_demo-1.0.0-py3-none-any.whl files.pythonhosted.org:$PORT"
    # outside a venv, Debian's pip refuses to touch the system (PEP 668)
    expect_failure arun "$TMPD/settings.json" -- python3 -m pip install \
      --index-url "https://pypi.org:$PORT/simple/" --cert "$WS/ca.pem" airlock-recipe-demo
    expect_contains "$ERR" "externally-managed-environment"
    : >"$TMPD/pypi.log"
  done
}

# ---- apt: a flat repository with one .deb built here

apt_repo() {
  local r=$TMPD/apt d=$TMPD/deb
  mkdir -p "$r/debian" "$d/DEBIAN" "$d/usr/share/airlock-recipe-demo"
  cat >"$d/DEBIAN/control" <<C
Package: airlock-recipe-demo
Version: 1.0.0
Architecture: all
Maintainer: airlock tests <tests@example.com>
Description: recipe stand-in package
C
  echo "hello from the apt stand-in" >"$d/usr/share/airlock-recipe-demo/hello"
  dpkg-deb -Zgzip --build "$d" "$r/debian/airlock-recipe-demo_1.0.0_all.deb" >/dev/null
  (cd "$r/debian" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
  start_standin "$r"
}

case_apt() {
  command -v dpkg-scanpackages >/dev/null || skip "dpkg-dev is not installed"
  make_ca; standin_layer; apt_repo
  local shape
  for shape in cc srt; do
    recipe_settings "apt.$shape" "$TMPD/settings.json"
    rm -rf "$WS/.apt" "$WS/debs" "$WS/root"
    recipe_block apt.conf | sed "s|/home/me/proj|$WS|g" >"$WS/apt.conf"
    echo "deb [trusted=yes] https://deb.debian.org:$PORT/debian ./" >"$WS/sources.list"
    mkdir -p "$WS/.apt/lists/partial" "$WS/.apt/cache/archives/partial" "$WS/debs"
    # the CA of the stand-in; a real mirror needs no such line
    echo "Acquire::https::CaInfo \"$WS/ca.pem\";" >>"$WS/apt.conf"
    local apt=(env APT_CONFIG=apt.conf apt-get)
    # without APT::Sandbox::User "root" apt's methods cannot drop to _apt
    expect_failure arun "$TMPD/settings.json" -- "${apt[@]}" -o APT::Sandbox::User=_apt update
    expect_contains "$ERR" "E: seteuid 42 failed - seteuid (22: Invalid argument)"
    expect_status 0 arun "$TMPD/settings.json" -- "${apt[@]}" update
    expect_contains "$OUT" "deb.debian.org:$PORT/debian ./ Packages"
    expect_status 0 arun "$TMPD/settings.json" -- sh -c \
      "cd debs && env APT_CONFIG=../apt.conf apt-get download airlock-recipe-demo"
    expect_status 0 arun "$TMPD/settings.json" -- dpkg-deb -x debs/airlock-recipe-demo_1.0.0_all.deb root
    [ "$(cat "$WS/root/usr/share/airlock-recipe-demo/hello")" = "hello from the apt stand-in" ] ||
      fail "$shape: the .deb did not arrive"
    # installing into the system is not possible: / is read-only
    expect_failure arun "$TMPD/settings.json" -- "${apt[@]}" install -y airlock-recipe-demo
    expect_contains "$ERR" "W: Not using locking for read only lock file /var/lib/dpkg/lock-frontend"
    expect_contains "$ERR" "(30: Read-only file system)"
    expect_contains "$ERR" "E: Sub-process /usr/bin/dpkg returned an error code"
    if dpkg-query -W airlock-recipe-demo >/dev/null 2>&1; then
      fail "$shape: the package reached the host's dpkg database"
    fi
  done
}

# ---- go: a GOPROXY stand-in (static files) with one module

goproxy() {
  local r=$TMPD/goproxy m=example.com/demo
  mkdir -p "$r/$m/@v"
  echo v1.0.0 >"$r/$m/@v/list"
  echo '{"Version": "v1.0.0", "Time": "2024-01-01T00:00:00Z"}' >"$r/$m/@v/v1.0.0.info"
  printf 'module %s\n\ngo 1.19\n' "$m" >"$r/$m/@v/v1.0.0.mod"
  python3 - "$r/$m/@v/v1.0.0.zip" "$m" <<'PY'
import sys, zipfile
out, mod = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w") as z:
    z.writestr(mod + "@v1.0.0/go.mod", "module %s\n\ngo 1.19\n" % mod)
    z.writestr(mod + "@v1.0.0/demo.go",
               'package demo\n\nconst Greeting = "hello from the GOPROXY stand-in"\n')
PY
  start_standin "$r"
}

case_go() {
  command -v go >/dev/null ||
    skip "go is not installed (deploy/install-deps.sh installs golang-go)"
  echo "using $(go version)"
  make_ca; standin_layer; goproxy
  local shape
  for shape in cc srt; do
    recipe_settings "go.$shape" "$TMPD/settings.json"
    rm -rf "$HOME/go" "$HOME/.cache/go-build" "$WS"/*.go "$WS"/go.*
    mkdir -p "$HOME/go" "$HOME/.cache/go-build"
    printf 'module proj\n\ngo 1.19\n' >"$WS/go.mod"
    cat >"$WS/main.go" <<'G'
package main

import (
	"fmt"

	"example.com/demo"
)

func main() { fmt.Println(demo.Greeting) }
G
    # the stand-in's port and CA; sum.golang.org cannot be stood in for
    # (its answers are signed), so the test turns the checksum database off
    local genv=(env GOPROXY="https://proxy.golang.org:$PORT" GOSUMDB=off SSL_CERT_FILE="$WS/ca.pem")
    expect_status 0 arun "$TMPD/settings.json" -- "${genv[@]}" go mod tidy
    expect_status 0 arun "$TMPD/settings.json" -- "${genv[@]}" go run .
    expect_contains "$OUT" "hello from the GOPROXY stand-in"
    [ -d "$HOME/go/pkg/mod/example.com/demo@v1.0.0" ] || fail "$shape: the module cache was not written"
    expect_contains "$(cat "$TMPD/goproxy.log")" "GET /example.com/demo/@v/v1.0.0.zip proxy.golang.org:$PORT"
    # without ~/.cache/go-build writable go cannot build
    local fs=sandbox.filesystem
    [ $shape = srt ] && fs=filesystem
    python3 - "$TMPD/settings.json" "$TMPD/no-cache.json" "$fs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o = d
for k in sys.argv[3].split("."):
    o = o[k]
o["allowWrite"] = [p for p in o["allowWrite"] if "go-build" not in p]
json.dump(d, open(sys.argv[2], "w"))
PY
    rm -rf "$HOME/.cache/go-build"/* # an empty cache, so go has to write
    expect_failure arun "$TMPD/no-cache.json" -- "${genv[@]}" go build -o /dev/null .
    expect_contains "$ERR" "read-only file system"
    : >"$TMPD/goproxy.log"
  done
}

# ---- cargo: a registry stand-in, with the index as a git repository
# (recipes.cargo: any cargo, and the only form Debian 12's cargo 0.66
# knows) or as a sparse index (recipes.cargo_sparse: cargo 1.68 or later)

# cargo_crate ROOT: the .crate at ROOT/crates/NAME/NAME-1.0.0.crate; its
# index line in $INDEX_LINE, its index path (ai/rl/NAME) in $INDEX_PATH.
cargo_crate() {
  local r=$1 c=airlock-recipe-demo d=$TMPD/crate/airlock-recipe-demo-1.0.0
  mkdir -p "$r/crates/$c" "$d/src"
  printf '[package]\nname = "%s"\nversion = "1.0.0"\nedition = "2021"\n' "$c" >"$d/Cargo.toml"
  echo 'pub const GREETING: &str = "hello from the cargo stand-in";' >"$d/src/lib.rs"
  tar -C "$TMPD/crate" -czf "$r/crates/$c/$c-1.0.0.crate" "$c-1.0.0"
  local sum
  sum=$(sha256sum "$r/crates/$c/$c-1.0.0.crate" | cut -d' ' -f1)
  INDEX_LINE=$(printf '{"name": "%s", "vers": "1.0.0", "deps": [], "cksum": "%s", "features": {}, "yanked": false}' "$c" "$sum")
  INDEX_PATH=ai/rl/$c
}

# cargo_config_json PORT: config.json's text; crates from static.crates.io.
cargo_config_json() {
  printf '{"dl": "https://static.crates.io:%s/crates/{crate}/{crate}-{version}.crate"}\n' "$1"
}

# sparse: config.json and the index file as static files
cargo_sparse_registry() {
  local r=$TMPD/crates
  cargo_crate "$r"
  start_standin "$r"
  cargo_config_json "$PORT" >"$r/config.json"
  mkdir -p "$r/$(dirname "$INDEX_PATH")"
  echo "$INDEX_LINE" >"$r/$INDEX_PATH"
}

# git: the index as a bare repository at /rust-lang/crates.io-index, where
# GitHub has crates.io's, served by the stand-in for github.com over smart
# HTTP (neither libgit2 nor cargo's libcurl transport for it speaks dumb
# HTTP); the crates from the same stand-in as static.crates.io.
cargo_git_registry() {
  local r=$TMPD/crates idx=$TMPD/crates/rust-lang/crates.io-index w=$TMPD/index-work
  cargo_crate "$r"
  start_standin "$r"
  git init -q --bare "$idx"
  git init -q "$w"
  mkdir -p "$w/$(dirname "$INDEX_PATH")"
  cargo_config_json "$PORT" >"$w/config.json"
  echo "$INDEX_LINE" >"$w/$INDEX_PATH"
  git -C "$w" add -A
  git -C "$w" -c user.email=t@example.com -c user.name=t commit -qm index
  git -C "$w" push -q "$idx" HEAD:refs/heads/master
  git -C "$idx" symbolic-ref HEAD refs/heads/master
  rm -rf "$w"
}

# cargo_bin [MIN_MINOR]: puts the cargo to test on the PATH, or skips.
cargo_bin() {
  local cargo=${RECIPES_CARGO:-$(command -v cargo || true)} v major minor
  [ -n "$cargo" ] || skip "cargo is not installed (deploy/install-deps.sh installs Debian's)"
  v=$("$cargo" --version | sed -n 's/^cargo \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [ -n "$v" ] || skip "cannot read the version of $cargo"
  read -r major minor <<<"$v"
  [ "$major" -gt 1 ] || [ "$minor" -ge "${1:-0}" ] ||
    skip "$cargo is cargo $major.$minor: no sparse registries (1.68 or later needed; recipes.cargo tests the git index)"
  PATH=$(dirname "$cargo"):$PATH
  echo "using $("$cargo" --version)"
}

# cargo_project REGISTRY_URL: a project using airlock-recipe-demo, with
# crates.io replaced by the stand-in (and its CA) in .cargo/config.toml.
cargo_project() {
  rm -rf "$HOME/.cargo" "$WS/proj"
  mkdir -p "$HOME/.cargo/registry" "$WS/proj/src" "$WS/proj/.cargo"
  printf '[package]\nname = "proj"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nairlock-recipe-demo = "1"\n' \
    >"$WS/proj/Cargo.toml"
  echo 'fn main() { println!("{}", airlock_recipe_demo::GREETING); }' >"$WS/proj/src/main.rs"
  printf '[source.crates-io]\nreplace-with = "standin"\n[source.standin]\nregistry = "%s"\n[http]\ncainfo = "%s"\n' \
    "$1" "$WS/ca.pem" >"$WS/proj/.cargo/config.toml"
}

# cargo_no_cache SETTINGS SHAPE: without ~/.cargo/registry writable, cargo
# cannot store what it fetches.
cargo_no_cache() {
  local fs=sandbox.filesystem
  [ "$2" = srt ] && fs=filesystem
  rm -rf "$HOME/.cargo/registry"/* "$WS/proj/target" "$WS/proj/Cargo.lock"
  without_key "$1" "$TMPD/no-cache.json" "$fs.allowWrite"
  expect_failure arun "$TMPD/no-cache.json" -- sh -c 'cd proj && cargo build -q'
  expect_contains "$ERR" "$HOME/.cargo/registry/"
  expect_contains "$ERR" "Read-only file system (os error 30)"
}

case_cargo() {
  cargo_bin
  make_ca; standin_layer; cargo_git_registry
  local shape log=$TMPD/crates.log crate=airlock-recipe-demo
  for shape in cc srt; do
    recipe_settings "cargo-git.$shape" "$TMPD/settings.json"
    cargo_project "https://github.com:$PORT/rust-lang/crates.io-index"
    # cargo's own git (libgit2): airlock's HTTPS_PROXY makes cargo fetch
    # through its libcurl transport, which uses the proxy. Each fetch of a
    # github.com index asks api.github.com first (cargo's "GitHub fast
    # path"); refused, cargo fetches from github.com all the same.
    expect_status 0 arun "$TMPD/settings.json" -- sh -c 'cd proj && cargo run -q'
    expect_contains "$OUT" "hello from the cargo stand-in"
    expect_contains "$ERR" "airlock: blocked network: api.github.com:443 (not in the allowlist)"
    # (libgit2's requests name the host without its port)
    expect_contains "$(cat "$log")" "POST /rust-lang/crates.io-index/git-upload-pack github.com"
    expect_contains "$(cat "$log")" "GET /crates/$crate/$crate-1.0.0.crate static.crates.io:$PORT"
    # so does an update
    : >"$log"
    expect_status 0 arun "$TMPD/settings.json" -- sh -c 'cd proj && cargo update'
    expect_contains "$ERR" "airlock: blocked network: api.github.com:443 (not in the allowlist)"
    expect_contains "$(cat "$log")" "GET /rust-lang/crates.io-index/info/refs?service=git-upload-pack github.com"
    # net.git-fetch-with-cli: the git command fetches instead, through the
    # same proxy (https_proxy); it does not read cargo's http.cainfo
    rm -rf "$HOME/.cargo/registry"/* "$WS/proj/target" "$WS/proj/Cargo.lock"
    : >"$log"
    expect_status 0 arun "$TMPD/settings.json" -- sh -c \
      "cd proj && CARGO_NET_GIT_FETCH_WITH_CLI=true GIT_SSL_CAINFO=$WS/ca.pem cargo run -q"
    expect_contains "$OUT" "hello from the cargo stand-in"
    expect_contains "$(cat "$log")" "GET /rust-lang/crates.io-index/info/refs?service=git-upload-pack github.com:$PORT"
    cargo_no_cache "$TMPD/settings.json" $shape
    expect_contains "$ERR" "failed to create directory \`$HOME/.cargo/registry/index/github.com-"
    : >"$log"
  done
}

case_cargo_sparse() {
  cargo_bin 68
  make_ca; standin_layer; cargo_sparse_registry
  local shape crate=airlock-recipe-demo
  for shape in cc srt; do
    recipe_settings "cargo.$shape" "$TMPD/settings.json"
    cargo_project "sparse+https://index.crates.io:$PORT/"
    expect_status 0 arun "$TMPD/settings.json" -- sh -c 'cd proj && cargo run -q'
    expect_contains "$OUT" "hello from the cargo stand-in"
    expect_contains "$(cat "$TMPD/crates.log")" "GET /crates/$crate/$crate-1.0.0.crate static.crates.io:$PORT"
    cargo_no_cache "$TMPD/settings.json" $shape
    expect_contains "$ERR" "failed to create directory \`$HOME/.cargo/registry/cache/"
    : >"$TMPD/crates.log"
  done
}

# ---- git over https: a repository served by a stand-in for github.com

git_repo() { # DIR: a bare repository with one commit, README = "seeded"
  git init -q --bare "$1"
  git clone -q "$1" "$TMPD/seed" 2>/dev/null
  (cd "$TMPD/seed" && echo seeded >README && git add README &&
    git -c user.email=t@example.com -c user.name=t commit -qm seed &&
    git push -q origin HEAD:main)
  git -C "$1" symbolic-ref HEAD refs/heads/main
  git -C "$1" update-server-info
  rm -rf "$TMPD/seed"
}

case_git_https() {
  make_ca; standin_layer
  mkdir -p "$TMPD/gh/org"
  git_repo "$TMPD/gh/org/repo.git"
  start_standin "$TMPD/gh"
  local shape
  for shape in cc srt; do
    recipe_settings "git-https.$shape" "$TMPD/settings.json"
    rm -rf "$WS/repo" "$WS/nope"
    expect_status 0 arun "$TMPD/settings.json" -- git -c http.sslCAInfo="$WS/ca.pem" \
      clone -q "https://github.com:$PORT/org/repo.git"
    [ "$(cat "$WS/repo/README")" = seeded ] || fail "$shape: the clone has the wrong content"
    expect_status 0 arun "$TMPD/settings.json" -- git -C repo -c http.sslCAInfo="$WS/ca.pem" pull -q
    expect_contains "$(cat "$TMPD/gh.log")" "GET /org/repo.git/info/refs?service=git-upload-pack github.com:$PORT"
    # the clone's .git/config is write-protected from the next run on
    expect_status 128 arun "$TMPD/settings.json" -- git -C repo remote add up https://github.com/x/y.git
    expect_contains "$ERR" "error: could not write config file .git/config: Device or resource busy"
    expect_failure arun "$TMPD/settings.json" -- git -c http.sslCAInfo="$WS/ca.pem" \
      clone -q "https://gitlab.com:$PORT/org/repo.git" nope
    local key=sandbox.network
    [ $shape = srt ] && key=network
    expect_contains "$ERR" "airlock: blocked network: gitlab.com:$PORT (not in the allowlist): add \"gitlab.com\" to $key.allowedDomains in $TMPD/settings.json"
    [ ! -e "$WS/nope/README" ] || fail "$shape: a clone from gitlab.com succeeded"
  done
}

# ---- git over ssh: sshd on loopback standing in for github.com:22, the
# key in an ssh-agent whose socket the sandbox may use

start_sshd() {
  [ -x /usr/sbin/sshd ] || skip "no sshd (openssh-server)"
  local d=$TMPD/sshd
  mkdir -p "$d" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
  cp "$d/client_key.pub" "$d/authorized_keys"
  SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$d/sshd_config" <<C
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
C
  /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/log" &
  PIDS+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null && break; sleep 0.05; done
  # the host key, as `ssh-keyscan` or a first connection would have stored it
  mkdir -p "$HOME/.ssh" "$HOME/.cache"
  echo "[github.com]:$SSH_PORT $(cut -d' ' -f1,2 "$d/host_key.pub")" >"$HOME/.ssh/known_hosts"
}

# start_agent SOCKET: an ssh-agent listening there, holding the client key.
start_agent() {
  rm -f "$1"
  # in the foreground, as this script's child: no daemon left holding
  # ctest's output pipe
  ssh-agent -D -a "$1" >/dev/null 2>"$TMPD/agent.err" &
  PIDS+=($!)
  # The socket file appears at bind(), before the agent listens: until
  # then a connect is refused, so ssh-add is retried, not the file awaited.
  for _ in $(seq 200); do
    SSH_AUTH_SOCK=$1 ssh-add -q "$TMPD/sshd/client_key" 2>"$TMPD/ssh-add.err" && return 0
    sleep 0.05
  done
  echo "FAIL: the ssh-agent at $1 did not take the key: $(cat "$TMPD/ssh-add.err" "$TMPD/agent.err")"
  exit 1
}

case_git_ssh() {
  start_sshd; standin_layer
  git_repo "$TMPD/ssh-repo.git"
  start_agent "$HOME/.cache/ssh-agent.sock"
  local user shape url
  user=$(id -un)
  url="ssh://$user@github.com:$SSH_PORT$TMPD/ssh-repo.git"
  # ssh finds ~/.ssh through the password database, not $HOME, and this
  # test's $HOME is not root's: name the files the recipe is about.
  local ssh_opts="-o UserKnownHostsFile=$HOME/.ssh/known_hosts -o IdentityFile=$HOME/.ssh/id_ed25519"
  for shape in cc srt; do
    recipe_settings "git-ssh.$shape" "$TMPD/settings.json"
    rm -rf "$WS/cloned" "$WS/nope"
    SSH_AUTH_SOCK=$HOME/.cache/ssh-agent.sock expect_status 0 \
      arun "$TMPD/settings.json" --pass-env SSH_AUTH_SOCK -- sh -c \
      "GIT_SSH_COMMAND=\"\$GIT_SSH_COMMAND $ssh_opts\" git clone -q $url cloned"
    [ "$(cat "$WS/cloned/README")" = seeded ] || fail "$shape: the clone over ssh has the wrong content"
    # the private key itself stays hidden; known_hosts is readable
    expect_status 0 arun "$TMPD/settings.json" -- sh -c \
      'cat ~/.ssh/known_hosts >/dev/null && echo known_hosts-readable; cat ~/.ssh/id_ed25519 2>&1 || true'
    expect_contains "$OUT" "known_hosts-readable"
    expect_not_contains "$OUT" "ssh-secret-marker"
    # each line of the recipe is needed
    local fs=sandbox.filesystem sock=sandbox.allowUnixSockets
    [ $shape = srt ] && fs=filesystem sock=network.allowUnixSockets
    without_key "$TMPD/settings.json" "$TMPD/no-read.json" "$fs.allowRead"
    SSH_AUTH_SOCK=$HOME/.cache/ssh-agent.sock expect_failure \
      arun "$TMPD/no-read.json" --pass-env SSH_AUTH_SOCK -- sh -c \
      "GIT_SSH_COMMAND=\"\$GIT_SSH_COMMAND $ssh_opts\" git clone -q $url nope"
    expect_contains "$ERR" "Host key verification failed."
    without_key "$TMPD/settings.json" "$TMPD/no-sock.json" "$sock"
    SSH_AUTH_SOCK=$HOME/.cache/ssh-agent.sock expect_status 2 \
      arun "$TMPD/no-sock.json" --pass-env SSH_AUTH_SOCK -- ssh-add -l
    expect_contains "$ERR" "Error connecting to agent: Operation not permitted"
    # without the agent: no key, so the server refuses
    expect_failure arun "$TMPD/settings.json" -- sh -c \
      "GIT_SSH_COMMAND=\"\$GIT_SSH_COMMAND $ssh_opts\" git clone -q $url nope"
    expect_contains "$ERR" "Permission denied (publickey)"
    # a host not in the list: the proxy refuses the CONNECT for ssh too
    SSH_AUTH_SOCK=$HOME/.cache/ssh-agent.sock expect_failure \
      arun "$TMPD/settings.json" --pass-env SSH_AUTH_SOCK -- sh -c \
      "GIT_SSH_COMMAND=\"\$GIT_SSH_COMMAND $ssh_opts\" git clone -q ssh://$user@gitlab.com:$SSH_PORT$TMPD/ssh-repo.git nope"
    expect_contains "$ERR" "airlock-connect: the proxy refused CONNECT gitlab.com:$SSH_PORT: 403 blocked-by-policy"
  done
}

# An agent at OpenSSH's default place (/tmp/ssh-XXXXXXXXXX/agent.PID), and
# one inside the hidden ~/.ssh, listed in allowUnixSockets: the sandbox's
# /tmp is its own and ~/.ssh is an empty mount, so airlock binds each listed
# socket in at its path. The key files beside the second stay hidden.
case_git_ssh_agent_in_tmp() {
  start_sshd; standin_layer
  local d sock
  d=$(mktemp -d /tmp/ssh-XXXXXXXXXX)
  start_agent "$d/agent.1"
  cat >"$TMPD/settings.json" <<J
{"sandbox": {"allowUnixSockets": ["$d/agent.1"], "network": {"allowedDomains": ["github.com"]}}}
J
  SSH_AUTH_SOCK=$d/agent.1 expect_status 0 arun "$TMPD/settings.json" --pass-env SSH_AUTH_SOCK \
    -- ssh-add -l
  expect_contains "$OUT" "ED25519"
  # not listed: not there
  cat >"$TMPD/unlisted.json" <<J
{"sandbox": {"allowUnixSockets": ["$HOME/.cache/none.sock"], "network": {"allowedDomains": ["github.com"]}}}
J
  SSH_AUTH_SOCK=$d/agent.1 expect_status 2 arun "$TMPD/unlisted.json" --pass-env SSH_AUTH_SOCK \
    -- ssh-add -l
  expect_contains "$ERR" "Error connecting to agent"
  rm -rf "$d"
  mkdir -p "$HOME/.ssh"
  sock="$HOME/.ssh/airlock-test-agent.$$.sock"
  start_agent "$sock"
  cat >"$TMPD/in-ssh.json" <<J
{"sandbox": {"allowUnixSockets": ["$sock"], "network": {"allowedDomains": ["github.com"]}}}
J
  SSH_AUTH_SOCK=$sock expect_status 0 arun "$TMPD/in-ssh.json" --pass-env SSH_AUTH_SOCK \
    -- sh -c 'ssh-add -l && ls -A ~/.ssh'
  rm -f "$sock"
  expect_contains "$OUT" "ED25519"
  expect_contains "$OUT" "airlock-test-agent.$$.sock"
  case "$OUT" in *id_*) echo "FAIL: a key file in ~/.ssh is visible: $OUT"; exit 1 ;; esac
}

# ---- a service on the host's loopback (a dev server on 127.0.0.1)

case_host_service() {
  mkdir -p "$TMPD/dev"
  echo "hello from the dev server" >"$TMPD/dev/index.html"
  start_standin "$TMPD/dev" 127.0.0.1 plain
  local shape key
  for shape in cc srt; do
    recipe_settings "host-service.$shape" "$TMPD/settings.json"
    key=sandbox.network
    [ $shape = srt ] && key=network
    # NO_PROXY cleared for the command: through the proxy to the host
    expect_status 0 "$AIRLOCK" run --settings "$TMPD/settings.json" -- \
      env NO_PROXY= no_proxy= curl -sS "http://localhost:$PORT/"
    expect_contains "$OUT" "hello from the dev server"
    expect_status 0 "$AIRLOCK" run --settings "$TMPD/settings.json" -- \
      env NO_PROXY= no_proxy= curl -sS "http://127.0.0.1:$PORT/"
    expect_contains "$OUT" "hello from the dev server"
    expect_status 0 "$AIRLOCK" run --settings "$TMPD/settings.json" -- \
      env NO_PROXY= no_proxy= python3 -c \
      "import urllib.request as u; print(u.urlopen('http://localhost:$PORT/').read().decode())"
    expect_contains "$OUT" "hello from the dev server"
    # with airlock's NO_PROXY the client goes to the sandbox's own loopback
    expect_status 7 "$AIRLOCK" run --settings "$TMPD/settings.json" -- \
      curl -sS "http://localhost:$PORT/"
    expect_contains "$ERR" "Couldn't connect to server"
    # a NO_PROXY passed with --pass-env wins over the one airlock sets
    NO_PROXY='' no_proxy='' expect_status 0 "$AIRLOCK" run --settings "$TMPD/settings.json" \
      --pass-env NO_PROXY --pass-env no_proxy -- sh -c 'echo "NO_PROXY=[$NO_PROXY]"; curl -sS "http://localhost:'"$PORT"'/"'
    expect_contains "$OUT" "NO_PROXY=[]"
    expect_contains "$OUT" "hello from the dev server"
    # without allowedAddresses the SSRF guard refuses loopback
    without_key "$TMPD/settings.json" "$TMPD/no-addr.json" "$key.allowedAddresses"
    expect_status 0 "$AIRLOCK" run --settings "$TMPD/no-addr.json" -- \
      env NO_PROXY= no_proxy= curl -sS -o /dev/null -w '%{http_code}' "http://localhost:$PORT/"
    expect_contains "$OUT" "403"
    expect_contains "$ERR" "airlock: blocked network: localhost:$PORT resolved to 127.0.0.1 (loopback address): to allow it, add \"127.0.0.1\" to $key.allowedAddresses in $TMPD/no-addr.json"
  done
}

# ---- a corporate mirror on a private address, in a network namespace
# this test makes: 10.20.30.40 on its loopback, mirror.corp.example
# pointing there (--add-host stands in for the company's DNS).

case_corp_mirror() {
  ip link set lo up
  ip addr add 10.20.30.40/32 dev lo
  make_ca
  pip_index mirror.corp.example 10.20.30.40
  ln -s . "$TMPD/pypi/pypi" # the doc's mirror has its index under /pypi/simple/
  local shape key
  for shape in cc srt; do
    recipe_settings "corp-mirror.$shape" "$TMPD/settings.json"
    key=sandbox.network
    [ $shape = srt ] && key=network
    rm -rf "$WS"/.venv/lib/python3*/site-packages/airlock_recipe_demo* # one venv for both
    recipe_block pip.conf | sed "s|mirror.corp.example/|mirror.corp.example:$PORT/|" >"$WS/pip.conf"
    expect_status 0 "$AIRLOCK" run --settings "$TMPD/settings.json" \
      --add-host mirror.corp.example=10.20.30.40 -- sh -c \
      "{ [ -d .venv ] || python3 -m venv .venv; } && PIP_CONFIG_FILE=pip.conf PIP_CERT=ca.pem .venv/bin/pip install --disable-pip-version-check airlock-recipe-demo"
    expect_contains "$OUT" "Successfully installed airlock-recipe-demo-1.0.0"
    expect_contains "$(cat "$TMPD/pypi.log")" "GET /packages/airlock_recipe_demo-1.0.0-py3-none-any.whl mirror.corp.example:$PORT"
    # without allowedAddresses: the name is allowed, its address is not
    without_key "$TMPD/settings.json" "$TMPD/no-addr.json" "$key.allowedAddresses"
    expect_status 56 "$AIRLOCK" run --settings "$TMPD/no-addr.json" \
      --add-host mirror.corp.example=10.20.30.40 -- \
      curl -sS -o /dev/null --cacert ca.pem "https://mirror.corp.example:$PORT/simple/"
    # airlock's own notice and curl's message share the stderr pipe, and the
    # notice may land inside curl's line: take it out before matching
    expect_contains "$(printf '%s' "$ERR" | perl -0pe 's/airlock: blocked network:[^\n]*\n//g')" \
      "curl: (56) CONNECT tunnel failed, response 403"
    expect_contains "$ERR" "airlock: blocked network: mirror.corp.example:$PORT resolved to 10.20.30.40 (private address): to allow it, add \"10.20.30.40\" to $key.allowedAddresses in $TMPD/no-addr.json"
    # the address entry does not open the rest of the private network
    expect_status 56 "$AIRLOCK" run --settings "$TMPD/settings.json" \
      --add-host other.corp.example=10.20.30.40 -- \
      curl -sS -o /dev/null --cacert ca.pem "https://other.corp.example:$PORT/simple/"
    expect_contains "$ERR" "airlock: blocked network: other.corp.example:$PORT (not in the allowlist)"
    : >"$TMPD/pypi.log"
  done
}

# ---- Docker in the sandbox: refused

case_docker() {
  local shape
  for shape in cc srt; do
    recipe_settings "docker.$shape" "$TMPD/settings.json"
    # the docker socket of the host is not there
    expect_status 0 "$AIRLOCK" run --settings "$TMPD/settings.json" -- sh -c \
      'for s in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock; do [ -e $s ] && echo "present: $s"; done; echo checked'
    expect_contains "$OUT" "checked"
    expect_not_contains "$OUT" "present:"
    # nor could the sandbox make its own containers: no new namespaces
    expect_failure "$AIRLOCK" run --settings "$TMPD/settings.json" -- unshare --user --map-root-user true
    expect_contains "$ERR" "Operation not permitted"
  done
  # the Claude Code shape also refuses the command by name
  recipe_settings docker.cc "$TMPD/settings.json"
  expect_status 125 "$AIRLOCK" run --settings "$TMPD/settings.json" -- docker run --rm -it alpine
  expect_contains "$ERR" "airlock: refusing to run docker outside the sandbox: it is listed in sandbox.excludedCommands, but sandbox.allowUnsandboxedCommands is false"
  expect_status 125 "$AIRLOCK" run --settings "$TMPD/settings.json" -c 'docker compose up'
  expect_contains "$ERR" "airlock: refusing to run docker outside the sandbox"
  # a stand-in docker daemon socket in the workspace: still not reachable
  # (socket(AF_UNIX) itself is refused without allowUnixSockets)
  local sock=$WS/docker.sock
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
while True:
    c, _ = s.accept(); c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"); c.close()
' "$sock" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
  recipe_settings docker.srt "$TMPD/settings.json"
  expect_status 7 "$AIRLOCK" run --settings "$TMPD/settings.json" -- \
    curl -sS --unix-socket "$sock" http://docker/_ping
  expect_contains "$ERR" "Couldn't connect to server"
  if command -v docker >/dev/null; then
    expect_failure "$AIRLOCK" run --settings "$TMPD/settings.json" -- docker version
    expect_contains "$ERR" "unix:///var/run/docker.sock"
    expect_contains "$ERR" "socket: operation not permitted"
  else
    echo "note: no docker CLI here; its message is not checked"
  fi
}

[ -n "${RECIPES_DEBUG:-}" ] && set -x
"case_$CASE"
echo "PASS recipes.$CASE"
