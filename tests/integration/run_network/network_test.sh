#!/usr/bin/env bash
# airlock run with the egress proxy: allowed hosts are reachable through it
# (curl over HTTP and HTTPS, python3 urllib, git over https), everything else
# is blocked with airlock's messages. Upstreams: a python3 HTTP server and an
# nginx TLS server (test CA) on loopback, reached by name through --add-host.
#   network_test.sh AIRLOCK CASE
set -euo pipefail
AIRLOCK=$1
CASE=$2
. "$(dirname "$0")/../../lib/assert.sh"
setup_scratch

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_http() {
  mkdir -p "$TMPD/www"
  echo "hello from upstream" >"$TMPD/www/index.html"
  HTTP_PORT=$(free_port)
  python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$TMPD/www" >/dev/null 2>&1 &
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && return; sleep 0.1; done
  fail "http upstream did not start"
}

# A TLS upstream for allowed.test and denied.test, signed by a test CA, that
# also serves a git repository over git's dumb HTTP protocol.
start_https() {
  local d=$TMPD/tls
  mkdir -p "$d" "$TMPD/www"
  chmod 755 "$TMPD" # nginx workers run as nobody
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=airlock test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=allowed.test" -keyout "$d/srv.key" \
    -out "$d/srv.csr" 2>/dev/null
  printf 'subjectAltName=DNS:allowed.test,DNS:denied.test\n' >"$d/ext"
  openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext" -out "$d/srv.pem" 2>/dev/null
  echo "hello over tls" >"$TMPD/www/index.html"
  git init -q --bare "$TMPD/www/repo.git"
  git clone -q "$TMPD/www/repo.git" "$TMPD/seed" 2>/dev/null
  (cd "$TMPD/seed" && echo seeded >README && git add README &&
    git -c user.email=t@t -c user.name=t commit -qm seed && git push -q origin HEAD:master)
  git -C "$TMPD/www/repo.git" update-server-info
  HTTPS_PORT=$(free_port)
  cat >"$d/nginx.conf" <<C
daemon off;
pid $d/nginx.pid;
error_log $d/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  server {
    listen 127.0.0.1:$HTTPS_PORT ssl;
    ssl_certificate $d/srv.pem;
    ssl_certificate_key $d/srv.key;
    root $TMPD/www;
  }
}
C
  nginx -c "$d/nginx.conf" -e "$d/error.log" &
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do
    curl -s -o /dev/null --cacert "$d/ca.pem" --resolve "allowed.test:$HTTPS_PORT:127.0.0.1" \
      "https://allowed.test:$HTTPS_PORT/" && return
    sleep 0.1
  done
  fail "https upstream did not start: $(cat "$d/error.log")"
}

stop_all() {
  [ -f "$TMPD/pids" ] && xargs -r kill <"$TMPD/pids" 2>/dev/null
  rm -rf "$TMPD"
}
trap stop_all EXIT

# Allowed: allowed.test (and loopback, where the test upstreams live; the
# SSRF guard refuses loopback unless allowedAddresses names it).
write_settings() {
  cat >net.json <<'J'
{"sandbox": {"network": {"allowedDomains": ["allowed.test"],
                         "allowedAddresses": ["127.0.0.1/32"]}}}
J
}

arun() {
  "$AIRLOCK" run --settings net.json --add-host allowed.test=127.0.0.1 \
    --add-host denied.test=127.0.0.1 "$@"
}

case_http_allowed() {
  start_http; write_settings
  expect_status 0 arun -- curl -sS "http://allowed.test:$HTTP_PORT/"
  expect_contains "$OUT" "hello from upstream"
}

case_http_denied() {
  start_http; write_settings
  expect_status 0 arun -- curl -sS -o /dev/null -w '%{http_code}' "http://denied.test:$HTTP_PORT/"
  expect_contains "$OUT" "403"
  expect_contains "$ERR" "airlock: blocked network: denied.test:$HTTP_PORT (blocked-by-policy)"
}

case_https_allowed() {
  start_https; write_settings
  cp "$TMPD/tls/ca.pem" ca.pem
  expect_status 0 arun -- curl -sS --cacert ca.pem "https://allowed.test:$HTTPS_PORT/"
  expect_contains "$OUT" "hello over tls"
}

case_https_denied() {
  start_https; write_settings
  cp "$TMPD/tls/ca.pem" ca.pem
  expect_failure arun -- curl -sS --cacert ca.pem "https://denied.test:$HTTPS_PORT/"
  expect_contains "$ERR" "blocked network: denied.test:$HTTPS_PORT"
}

case_python_urllib() {
  start_http; write_settings
  expect_status 0 arun -- python3 -c "import urllib.request; print(urllib.request.urlopen('http://allowed.test:$HTTP_PORT/').read().decode())"
  expect_contains "$OUT" "hello from upstream"
  expect_failure arun -- python3 -c "import urllib.request; urllib.request.urlopen('http://denied.test:$HTTP_PORT/')"
  expect_contains "$ERR" "HTTP Error 403"
}

case_git_https() {
  start_https; write_settings
  cp "$TMPD/tls/ca.pem" ca.pem
  expect_status 0 arun -- git -c http.sslCAInfo="$WS/ca.pem" clone -q "https://allowed.test:$HTTPS_PORT/repo.git" cloned
  [ "$(cat cloned/README)" = seeded ] || fail "clone through the proxy has the wrong content"
  expect_failure arun -- git -c http.sslCAInfo="$WS/ca.pem" clone -q "https://denied.test:$HTTPS_PORT/repo.git" nope
  [ ! -e nope/README ] || fail "clone from a denied host succeeded"
}

case_ip_literal_denied() {
  start_http; write_settings
  expect_status 0 arun -- curl -sS -o /dev/null -w '%{http_code}' "http://1.1.1.1/"
  expect_contains "$OUT" "403"
  expect_contains "$ERR" "blocked network: 1.1.1.1:80"
}

case_bypass_proxy_fails() {
  start_http; write_settings
  # Straight to the upstream, ignoring the proxy variables: no route.
  expect_failure arun -- curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$HTTP_PORT/"
  expect_failure arun -- curl -sS --noproxy '*' --max-time 5 "http://1.1.1.1/"
}

case_no_settings_no_network() {
  start_http
  expect_status 0 "$AIRLOCK" run -- sh -c 'echo "proxy=${HTTP_PROXY:-none}"; curl -sS --max-time 5 http://1.1.1.1/ || echo unreachable'
  expect_contains "$OUT" "proxy=none"
  expect_contains "$OUT" "unreachable"
}

case_proxy_env() {
  write_settings
  expect_status 0 arun -- env
  for v in HTTP_PROXY=http://127.0.0.1:3128 HTTPS_PROXY=http://127.0.0.1:3128 \
    https_proxy=http://127.0.0.1:3128 ALL_PROXY=socks5h://127.0.0.1:1080 NO_PROXY= JAVA_TOOL_OPTIONS=; do
    expect_contains "$OUT" "$v"
  done
}

case_socks_allowed() {
  start_http; write_settings
  expect_status 0 arun -- curl -sS --proxy socks5h://127.0.0.1:1080 "http://allowed.test:$HTTP_PORT/"
  expect_contains "$OUT" "hello from upstream"
  expect_failure arun -- curl -sS --proxy socks5h://127.0.0.1:1080 "http://denied.test:$HTTP_PORT/"
}

"case_$CASE"
echo "PASS network.$CASE"
