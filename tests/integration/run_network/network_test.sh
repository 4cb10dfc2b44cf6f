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
  expect_contains "$ERR" "airlock: blocked network: denied.test:$HTTP_PORT (not in the allowlist): add \"denied.test\" to sandbox.network.allowedDomains in net.json"
}

# The terminal line says what to add to which key of which file, in the
# shape of that file; the 403 body names the same key path.
case_denied_message_srt() {
  start_http
  cat >srt-settings.json <<'J'
{"network": {"allowedDomains": ["allowed.test"], "allowedAddresses": ["127.0.0.1/32"]}}
J
  expect_status 0 "$AIRLOCK" run --settings ./srt-settings.json --add-host denied.test=127.0.0.1 \
    -- curl -sS "http://denied.test:$HTTP_PORT/"
  expect_contains "$OUT" "add \"denied.test\" to network.allowedDomains to allow it" "the 403 body"
  expect_not_contains "$OUT" "sandbox.network" "the 403 body"
  expect_contains "$ERR" "airlock: blocked network: denied.test:$HTTP_PORT (not in the allowlist): add \"denied.test\" to network.allowedDomains in ./srt-settings.json"
  expect_not_contains "$ERR" "sandbox.network"
}

# Control bytes of the settings file's name never reach the terminal.
case_message_control_bytes() {
  start_http
  local f=$'srt\e[31m\n.json'
  printf '{"network": {"allowedDomains": ["allowed.test"], "allowedAddresses": ["127.0.0.1/32"]}}' >"$f"
  expect_status 0 "$AIRLOCK" run --settings "$f" --add-host denied.test=127.0.0.1 \
    -- curl -sS -o /dev/null "http://denied.test:$HTTP_PORT/"
  expect_contains "$ERR" "to network.allowedDomains in srt?[31m?.json"
  expect_not_contains "$ERR" $'\e'
}

case_denied_message_cc() {
  start_https; write_settings
  cp "$TMPD/tls/ca.pem" ca.pem
  expect_failure arun -- curl -sS --cacert ca.pem "https://denied.test:$HTTPS_PORT/"
  expect_contains "$ERR" "airlock: blocked network: denied.test:$HTTPS_PORT (not in the allowlist): add \"denied.test\" to sandbox.network.allowedDomains in net.json"
}

# An allowed name that resolves to a private address: the line names the
# address, its class and the allowedAddresses entry that would allow it.
case_private_address_message() {
  start_http
  cat >srt-settings.json <<'J'
{"network": {"allowedDomains": ["mirror.test"]}}
J
  expect_status 0 "$AIRLOCK" run --settings srt-settings.json --add-host mirror.test=10.1.2.3 \
    -- curl -sS "http://mirror.test:$HTTP_PORT/"
  expect_contains "$OUT" "add it to network.allowedAddresses" "the 403 body"
  expect_contains "$ERR" "airlock: blocked network: mirror.test:$HTTP_PORT resolved to 10.1.2.3 (private address): to allow it, add \"10.1.2.3\" to network.allowedAddresses in srt-settings.json"
}

# A name that does not resolve is a DNS failure, not a block.
case_dns_failure_message() {
  cat >net.json <<'J'
{"sandbox": {"network": {"allowedDomains": ["nothing.invalid"]}}}
J
  expect_status 0 "$AIRLOCK" run --settings net.json -- \
    curl -sS -o /dev/null -w '%{http_code}' "http://nothing.invalid/"
  expect_contains "$OUT" "502"
  expect_contains "$ERR" "airlock: network: nothing.invalid:80: the name does not resolve (DNS)"
  expect_not_contains "$ERR" "blocked"
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
  # an IPv6 literal is written in brackets, as in a URL
  expect_status 0 arun -- curl -sS -o /dev/null -w '%{http_code}' "http://[2606:4700::1111]:8080/"
  expect_contains "$OUT" "403"
  expect_contains "$ERR" "blocked network: [2606:4700::1111]:8080 (an IP address, not in the allowlist): to allow it, add \"2606:4700::1111\""
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
  # ssh through the proxy: airlock-connect from the build tree
  expect_contains "$OUT" "GIT_SSH_COMMAND=ssh -o ProxyCommand='"
  expect_contains "$OUT" "/airlock-connect %h %p'"
  # a GIT_SSH_COMMAND of the user's own (--pass-env) is kept
  GIT_SSH_COMMAND="ssh -v" expect_status 0 arun --pass-env GIT_SSH_COMMAND -- env
  expect_contains "$OUT" "GIT_SSH_COMMAND=ssh -v"
  expect_not_contains "$OUT" "airlock-connect"
}

case_socks_allowed() {
  start_http; write_settings
  expect_status 0 arun -- curl -sS --proxy socks5h://127.0.0.1:1080 "http://allowed.test:$HTTP_PORT/"
  expect_contains "$OUT" "hello from upstream"
  expect_failure arun -- curl -sS --proxy socks5h://127.0.0.1:1080 "http://denied.test:$HTTP_PORT/"
}

# ---- external proxies (httpProxyPort / socksProxyPort / customProxy)

# A tinyproxy on a host port that logs every request: the user's own
# filtering proxy. Writes $TMPD/tp.conf; $TP_PORT, $TMPD/tp.log.
tinyproxy_conf() {
  TP_PORT=$(free_port)
  cat >"$TMPD/tp.conf" <<C
Port $TP_PORT
Listen 127.0.0.1
Timeout 30
LogFile "$TMPD/tp.log"
LogLevel Info
MaxClients 20
DisableViaHeader Yes
C
  touch "$TMPD/tp.log"
  chmod 666 "$TMPD/tp.log"
}

start_tinyproxy() {
  tinyproxy_conf
  tinyproxy -d -c "$TMPD/tp.conf" >/dev/null 2>&1 &
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$TP_PORT") 2>/dev/null && return; sleep 0.1; done
  fail "tinyproxy did not start"
}

# NO_PROXY lists 127.0.0.1; the upstreams live there, so curl is told to use
# the proxy anyway.
case_external_http_proxy() {
  start_http; start_tinyproxy
  cat >net.json <<J
{"sandbox": {"network": {"httpProxyPort": $TP_PORT}}}
J
  expect_status 0 "$AIRLOCK" run --settings net.json -- \
    curl -sS --noproxy '' "http://127.0.0.1:$HTTP_PORT/"
  expect_contains "$OUT" "hello from upstream"
  expect_contains "$(cat "$TMPD/tp.log")" "GET http://127.0.0.1:$HTTP_PORT/" "tinyproxy's log"
  # the variables inside are unchanged: the sandbox still sees 127.0.0.1:3128
  expect_status 0 "$AIRLOCK" run --settings net.json -- env
  expect_contains "$OUT" "HTTP_PROXY=http://127.0.0.1:3128"
  # only the HTTP listener is relayed: SOCKS5 stays airlock's own proxy,
  # with the (empty) policy, so it refuses (sandbox-runtime does the same)
  expect_failure "$AIRLOCK" run --settings net.json -- \
    curl -sS --max-time 10 --noproxy '' --proxy socks5h://127.0.0.1:1080 "http://127.0.0.1:$HTTP_PORT/"
  expect_contains "$ERR" "blocked network: 127.0.0.1:$HTTP_PORT"
  # and still no route around it
  expect_failure "$AIRLOCK" run --settings net.json -- \
    curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$HTTP_PORT/"
}

case_external_socks_proxy() {
  start_http
  # a minimal SOCKS5 server (no auth, CONNECT) that logs its targets
  S_PORT=$(free_port)
  python3 - "$S_PORT" "$TMPD/socks.log" >/dev/null 2>&1 <<'PY' &
import socket, struct, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(16)
def pipe(a, b):
    while True:
        d = a.recv(65536)
        if not d: break
        b.sendall(d)
    try: b.shutdown(socket.SHUT_WR)
    except OSError: pass
def exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError
        b += d
    return b
def serve(c):
    exact(c, exact(c, 2)[1]); c.sendall(b"\x05\x00")
    ver, cmd, _, atyp = exact(c, 4)
    if atyp == 1: host = socket.inet_ntoa(exact(c, 4))
    elif atyp == 3: host = exact(c, exact(c, 1)[0]).decode()
    else: return
    p, = struct.unpack("!H", exact(c, 2))
    open(log, "a").write("CONNECT %s:%d\n" % (host, p))
    u = socket.create_connection((host, p))
    c.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    threading.Thread(target=pipe, args=(c, u)).start(); pipe(u, c)
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$S_PORT") 2>/dev/null && break; sleep 0.1; done
  cat >net.json <<J
{"network": {"allowedDomains": [], "deniedDomains": [], "socksProxyPort": $S_PORT}}
J
  expect_status 0 "$AIRLOCK" run --settings net.json -- \
    curl -sS --max-time 20 --noproxy '' --proxy socks5h://127.0.0.1:1080 "http://localhost:$HTTP_PORT/"
  expect_contains "$OUT" "hello from upstream"
  expect_contains "$(cat "$TMPD/socks.log")" "CONNECT localhost:$HTTP_PORT" "the SOCKS server's log"
}

case_external_proxy_down() {
  cat >net.json <<J
{"sandbox": {"network": {"httpProxyPort": $(free_port)}}}
J
  expect_failure "$AIRLOCK" run --settings net.json -- \
    curl -sS --max-time 10 --noproxy '' "http://127.0.0.1:9/"
  expect_contains "$ERR" "airlock: cannot reach the external proxy at 127.0.0.1:"
}

case_custom_proxy() {
  start_http; tinyproxy_conf
  cat >net.json <<J
{"sandbox": {"network": {"httpProxyPort": $TP_PORT,
  "customProxy": "echo started on \$AIRLOCK_HTTP_PROXY_PORT >&2; exec tinyproxy -d -c $TMPD/tp.conf"}}}
J
  expect_status 0 "$AIRLOCK" run --settings net.json -- \
    curl -sS --noproxy '' "http://127.0.0.1:$HTTP_PORT/"
  expect_contains "$OUT" "hello from upstream"
  expect_contains "$ERR" "started on $TP_PORT"
  expect_contains "$(cat "$TMPD/tp.log")" "GET http://127.0.0.1:$HTTP_PORT/" "tinyproxy's log"
  # stopped when the run ended
  if (exec 3<>"/dev/tcp/127.0.0.1/$TP_PORT") 2>/dev/null; then
    fail "customProxy still listening after the run"
  fi
  # a customProxy that never listens is an airlock error, not a hang
  cat >net.json <<J
{"sandbox": {"network": {"httpProxyPort": $TP_PORT, "customProxy": "exit 3"}}}
J
  expect_status 125 "$AIRLOCK" run --settings net.json -- true
  expect_contains "$ERR" "exited (status 3) before listening"
  cat >net.json <<J
{"sandbox": {"network": {"customProxy": "tinyproxy"}}}
J
  expect_status 125 "$AIRLOCK" run --settings net.json -- true
  expect_contains "$ERR" "customProxy needs httpProxyPort or socksProxyPort"
}

# ---- git over ssh through airlock-connect (GIT_SSH_COMMAND)

start_sshd() {
  command -v /usr/sbin/sshd >/dev/null || { echo "SKIP: no sshd (openssh-server)"; exit 77; }
  local d=$TMPD/sshd
  mkdir -p "$d" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
  cp "$d/client_key.pub" "$d/authorized_keys"
  SSH_PORT=$(free_port)
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
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null && break; sleep 0.1; done
  git init -q --bare "$TMPD/ssh-repo.git"
  git clone -q "$TMPD/ssh-repo.git" "$TMPD/ssh-seed" 2>/dev/null
  (cd "$TMPD/ssh-seed" && echo over-ssh >README && git add README &&
    git -c user.email=t@t -c user.name=t commit -qm seed && git push -q origin HEAD:master)
  cp "$d/client_key" "$WS/key"
  chmod 600 "$WS/key"
}

case_git_ssh() {
  start_sshd; write_settings
  local user
  user=$(id -un)
  # the key and host-key checking are the test's; the ProxyCommand is airlock's
  local extra="-i $WS/key -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o BatchMode=yes"
  expect_status 0 arun -- sh -c "echo \"\$GIT_SSH_COMMAND\"; GIT_SSH_COMMAND=\"\$GIT_SSH_COMMAND $extra\" git clone -q ssh://$user@allowed.test:$SSH_PORT$TMPD/ssh-repo.git cloned"
  expect_contains "$OUT" "ProxyCommand="
  expect_contains "$OUT" "airlock-connect %h %p"
  [ "$(cat cloned/README)" = over-ssh ] || fail "clone over ssh has the wrong content"
  expect_failure arun -- sh -c "GIT_SSH_COMMAND=\"\$GIT_SSH_COMMAND $extra\" git clone -q ssh://$user@denied.test:$SSH_PORT$TMPD/ssh-repo.git nope"
  expect_contains "$ERR" "airlock-connect: the proxy refused CONNECT denied.test:$SSH_PORT: 403 blocked-by-policy"
  expect_contains "$ERR" "blocked network: denied.test:$SSH_PORT (not in the allowlist): add \"denied.test\" to sandbox.network.allowedDomains in net.json"
  [ ! -e nope/README ] || fail "clone from a denied host succeeded"
}

"case_$CASE"
echo "PASS network.$CASE"
