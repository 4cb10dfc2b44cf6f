#!/usr/bin/env bash
# airlock run with masked credentials (issue 15): the sandbox holds a
# sentinel; the egress proxy terminates TLS with a session CA the sandbox
# trusts and puts the real value back only for the credential's
# injectHosts. The upstream is nginx over HTTPS on loopback with a
# certificate from the test's own CA (airlock's own SSL_CERT_FILE points at
# it, OpenSSL's convention), reached by name through --add-host; it answers
# 401 unless it gets the real key, and echoes the Authorization header back
# (the proxy must re-mask it). git goes to git http-backend behind the same
# nginx with Basic auth.
#   creds_test.sh AIRLOCK CASE
set -euo pipefail
AIRLOCK=$1
CASE=$2
. "$(dirname "$0")/../../lib/assert.sh"
setup_scratch

REAL="sk-live-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export API_TOKEN=$REAL

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_all() {
  [ -n "${FCGI_PID:-}" ] && kill $(pgrep -P "$FCGI_PID") "$FCGI_PID" 2>/dev/null
  [ -f "$TMPD/pids" ] && xargs -r kill <"$TMPD/pids" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMPD"
}
trap stop_all EXIT

# The upstream: api.test (needs the real key), other.test (an allowed host
# that echoes what it gets), bad.test (a certificate nobody trusts). Keys
# and the test CA live in $TMPD/tls, which the sandbox does not see (only
# $HOME and the workspace under $TMPD are bound in).
start_upstream() {
  local d=$TMPD/tls
  mkdir -p "$d" "$TMPD/srv"
  chmod 755 "$TMPD"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=airlock creds test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=api.test" -keyout "$d/srv.key" \
    -out "$d/srv.csr" 2>/dev/null
  printf 'subjectAltName=DNS:api.test,DNS:other.test\n' >"$d/ext"
  openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext" -out "$d/srv.pem" 2>/dev/null
  # bad.test: self-signed, so no trust store airlock uses has its issuer
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bad.test" \
    -addext "subjectAltName=DNS:bad.test" -keyout "$d/bad.key" -out "$d/bad.pem" 2>/dev/null
  # git over HTTPS: Basic auth with the real key as the password
  git init -q --bare "$TMPD/srv/repo.git"
  git -C "$TMPD/srv/repo.git" config http.receivepack true
  git init -q "$TMPD/seed"
  (cd "$TMPD/seed" && echo seeded >README && git add README &&
    git -c user.email=t@t -c user.name=t commit -qm seed && git push -q "$TMPD/srv/repo.git" HEAD:master)
  printf 'x-access-token:%s\n' "$(openssl passwd -apr1 "$REAL")" >"$d/htpasswd"
  fcgiwrap -c 2 -s "unix:$d/fcgi.sock" >/dev/null 2>"$d/fcgiwrap.log" &
  FCGI_PID=$!
  PORT=$(free_port)
  cat >"$d/nginx.conf" <<C
user root;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
  log_format t '\$server_name \$status "\$request" auth="\$http_authorization"';
  access_log $d/access.log t;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  default_type text/plain;
  server {
    listen 127.0.0.1:$PORT ssl;
    server_name api.test;
    ssl_certificate $d/srv.pem;
    ssl_certificate_key $d/srv.key;
    location ~ ^/git/repo\.git(/.*)?\$ {
      auth_basic "git";
      auth_basic_user_file $d/htpasswd;
      fastcgi_pass unix:$d/fcgi.sock;
      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
      fastcgi_param GIT_PROJECT_ROOT $TMPD/srv;
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param GIT_CONFIG_NOSYSTEM 1;
      fastcgi_param PATH_INFO /repo.git\$1;
      fastcgi_param QUERY_STRING \$query_string;
      fastcgi_param REQUEST_METHOD \$request_method;
      fastcgi_param CONTENT_TYPE \$content_type;
      fastcgi_param CONTENT_LENGTH \$content_length;
      fastcgi_param REMOTE_USER \$remote_user;
      fastcgi_param GIT_PROTOCOL \$http_git_protocol;
    }
    location / {
      if (\$http_authorization != "Bearer $REAL") { return 401 "api: no valid key\n"; }
      return 200 "api: hello, you sent \$http_authorization\n";
    }
  }
  server {
    listen 127.0.0.1:$PORT ssl;
    server_name other.test;
    ssl_certificate $d/srv.pem;
    ssl_certificate_key $d/srv.key;
    location / { return 200 "other: you sent \$http_authorization\n"; }
  }
  server {
    listen 127.0.0.1:$PORT ssl;
    server_name bad.test;
    ssl_certificate $d/bad.pem;
    ssl_certificate_key $d/bad.key;
    location / { return 200 "bad: reached\n"; }
  }
}
C
  nginx -c "$d/nginx.conf" -e "$d/error.log" &
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do
    curl -s -o /dev/null --cacert "$d/ca.pem" --resolve "api.test:$PORT:127.0.0.1" \
      "https://api.test:$PORT/" && break
    sleep 0.1
  done
  # the upstream really wants the key (401 without it, 200 with it)
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$d/ca.pem" \
    --resolve "api.test:$PORT:127.0.0.1" "https://api.test:$PORT/")" = 401 ] ||
    fail "upstream did not start or does not ask for the key: $(cat "$d/error.log")"
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$d/ca.pem" -H "Authorization: Bearer $REAL" \
    --resolve "api.test:$PORT:127.0.0.1" "https://api.test:$PORT/")" = 200 ] ||
    fail "upstream refuses the real key"
}

# Claude Code's shape: sandbox.network (tlsTerminate {}), sandbox.credentials.
# $1: the credentials block's entries for envVars; $2: more network keys.
MASK_API_TOKEN='{"name": "API_TOKEN", "mode": "mask", "injectHosts": ["api.test"]}'
write_settings() {
  local env_entries=${1-$MASK_API_TOKEN} more=${2:-}
  cat >cc.json <<J
{"sandbox": {
  "network": {"allowedDomains": ["api.test", "other.test", "bad.test"],
              "allowedAddresses": ["127.0.0.1/32"],
              "tlsTerminate": {}${more:+, $more}},
  "credentials": {"envVars": [$env_entries]}
}}
J
}

# airlock run with the test CA as airlock's (the proxy's) trust store.
arun() {
  SSL_CERT_FILE=$TMPD/tls/ca.pem "$AIRLOCK" run --no-pty --settings cc.json \
    --add-host api.test=127.0.0.1 --add-host other.test=127.0.0.1 \
    --add-host bad.test=127.0.0.1 "$@"
}

# Node 20 does not read HTTPS_PROXY: a CONNECT agent of the tests' own
# (shared with tests/integration/airlockd/sesscreds_test.py).
write_node_client() {
  cp "$(dirname "$0")/../../lib/node_connect_client.js" client.js
}

# Every client authenticates with the masked variable: the sandbox has only
# the sentinel, the upstream (which wants the real key) says 200, and what
# it echoes comes back re-masked.
case_clients_use_masked_variable() {
  start_upstream; write_settings; write_node_client
  expect_status 0 arun -- sh -c 'echo "token=$API_TOKEN"'
  local sentinel=${OUT#token=}
  [ -n "$sentinel" ] && [ "$sentinel" != "$REAL" ] || fail "the sandbox did not get a sentinel: $OUT"
  [ "${sentinel:0:3}" = "sk-" ] && [ "${#sentinel}" = "${#REAL}" ] ||
    fail "the sentinel does not have the value's shape (prefix sk-, same length): $sentinel"
  expect_not_contains "$OUT$ERR" "$REAL"

  expect_status 0 arun -- sh -c "curl -sS --fail -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/curl"
  # the upstream echoed the real value; the sandbox got it re-masked (a
  # sentinel is new for every run: only its shape is known here)
  expect_contains "$OUT" "api: hello, you sent Bearer sk-" "curl's response (re-masked)"
  expect_not_contains "$OUT$ERR" "$REAL"

  expect_status 0 arun -- python3 -c "
import os, urllib.request
r = urllib.request.Request('https://api.test:$PORT/python',
                           headers={'Authorization': 'Bearer ' + os.environ['API_TOKEN']})
print('python', urllib.request.urlopen(r).read().decode())"
  expect_contains "$OUT" "python api: hello, you sent Bearer"
  expect_not_contains "$OUT$ERR" "$REAL"

  expect_status 0 arun -- node client.js api.test "$PORT" /node
  expect_contains "$OUT" "node 200 api: hello"
  expect_not_contains "$OUT$ERR" "$REAL"

  # git: Basic auth (x-access-token:SENTINEL), from a credential helper
  expect_status 0 arun -- git -c credential.helper= \
    -c 'credential.helper=!f() { echo username=x-access-token; echo "password=$API_TOKEN"; }; f' \
    clone -q "https://api.test:$PORT/git/repo.git" cloned
  [ "$(cat cloned/README)" = seeded ] || fail "git clone through the proxy has the wrong content"
  expect_not_contains "$OUT$ERR" "$REAL"
  # what the upstream saw: the real value, for api.test only
  grep -q "api.test 200 \"GET /curl HTTP/1.1\" auth=\"Bearer $REAL\"" "$TMPD/tls/access.log" ||
    fail "the upstream did not get the real key: $(cat "$TMPD/tls/access.log")"
  if grep 'auth="Bearer ' "$TMPD/tls/access.log" | grep -v "Bearer $REAL"; then
    fail "the upstream got something other than the real key (a sentinel?)"
  fi
}

# A TLS server for other.test on its own port that records every byte it
# receives (head and body), to show what a refused request left upstream.
# $SINK_PORT; the bytes in $TMPD/sink.raw.
start_sink() {
  SINK_PORT=$(free_port)
  : >"$TMPD/sink.raw"
  python3 - "$SINK_PORT" "$TMPD/tls/srv.pem" "$TMPD/tls/srv.key" "$TMPD/sink.raw" \
    >/dev/null 2>&1 <<'PY' &
import socket, ssl, sys, threading
port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(16)
def serve(c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        s.settimeout(2)
        got = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
                if b"\r\n\r\n" in got:
                    head, _, body = got.partition(b"\r\n\r\n")
                    n = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            n = int(line.split(b":")[1])
                    if len(body) >= n:
                        break
        except (socket.timeout, ssl.SSLError, OSError):
            pass
        with open(out, "ab") as f:
            f.write(got + b"\n--\n")
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsink\n")
        s.close()
    except Exception:
        pass
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
  echo $! >>"$TMPD/pids"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null && break; sleep 0.1; done
  : >"$TMPD/sink.raw" # the readiness probe's empty connection
}

# The same sentinel sent to another allowed host is refused (never
# replaced, never delivered), wherever it is in the request, and the user
# sees it once per (credential, host).
case_sentinel_to_other_host_refused() {
  start_upstream; start_sink; write_settings
  expect_status 0 arun -- sh -c "
    echo \"token=\$API_TOKEN\"
    for i in 1 2; do
      curl -sS -o /dev/null -w '%{http_code} ' -H \"Authorization: Bearer \$API_TOKEN\" https://other.test:$PORT/x
      curl -sS -w ' ' -H \"X-Key: \$API_TOKEN\" https://other.test:$PORT/header
    done
    curl -sS -o /dev/null -w '%{http_code} ' \"https://other.test:$PORT/q?key=\$API_TOKEN\"
    curl -sS -o /dev/null -w '%{http_code} ' -u \"x:\$API_TOKEN\" https://other.test:$SINK_PORT/basic
    curl -sS -o /dev/null -w '%{http_code} ' -H 'Content-Type: application/json' \
      -d \"{\\\"key\\\": \\\"\$API_TOKEN\\\"}\" https://other.test:$SINK_PORT/json
    curl -sS -o /dev/null -w '%{http_code}' -d \"key=\$API_TOKEN\" https://other.test:$SINK_PORT/form"
  local sentinel
  sentinel=$(sed -n 's/^token=//p' <<<"$OUT")
  [ -n "$sentinel" ] || fail "no sentinel: $OUT"
  # header, Authorization (Bearer and Basic), query, JSON and form bodies:
  # every one refused
  expect_contains "$OUT" "403 403 403 403" "the query, Basic, JSON and form requests"
  expect_contains "$OUT" "credential API_TOKEN is not allowed for other.test"
  expect_not_contains "$OUT" "other: you sent" "what the sandbox got"
  expect_not_contains "$OUT" "sink" "what the sandbox got"
  expect_contains "$ERR" "airlock: blocked credential: API_TOKEN sent to other.test:$PORT (GET /x), which is not one of its injectHosts (api.test): refused"
  [ "$(grep -c "blocked credential: API_TOKEN sent to other.test:$PORT" <<<"$ERR")" = 1 ] ||
    fail "the refusal is not said exactly once per (credential, host): $ERR"
  # A sentinel in the head: nothing reached other.test.
  if grep -q '^other.test ' "$TMPD/tls/access.log" 2>/dev/null; then
    fail "a request with the sentinel reached other.test: $(cat "$TMPD/tls/access.log")"
  fi
  # A sentinel in a body (JSON, form): the body is read whole before the
  # head goes, so nothing of these requests reached the upstream at all.
  expect_not_contains "$(cat "$TMPD/sink.raw")" "$sentinel" "what other.test received"
  expect_not_contains "$(cat "$TMPD/sink.raw")" "$REAL" "what other.test received"
  expect_not_contains "$(cat "$TMPD/sink.raw")" "POST /json" "what other.test received"
  expect_not_contains "$(cat "$TMPD/sink.raw")" "POST /form" "what other.test received"
  expect_not_contains "$OUT$ERR" "$REAL"
}

# Nothing the sandbox can read holds the real value or any private key
# (the session CA's included): its environment, every process's environ
# and cmdline, every readable file under $HOME, /tmp, /run, /etc/ssl and
# the workspace, and the responses it received (saved in the workspace).
case_nothing_real_readable() {
  start_upstream; write_settings; write_node_client
  mkdir -p "$HOME/.config"
  local enc
  enc=$(printf '%s' "$REAL" | base64 -w0)
  cat >scan.py <<'PY'
import base64, os, sys
real = base64.b64decode(sys.argv[1])  # never on a command line as itself
roots = sys.argv[2:]
hits = []
def check(path, data):
    if real in data:
        hits.append("real value in " + path)
    if b"PRIVATE " + b"KEY-----" in data:  # (not this file's own text)
        hits.append("private key in " + path)
check("environment", b"\0".join(k.encode() + b"=" + v.encode() for k, v in os.environ.items()))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for f in ("environ", "cmdline"):
            try:
                check("/proc/%s/%s" % (pid, f), open("/proc/%s/%s" % (pid, f), "rb").read())
            except OSError:
                pass
n = 0
for root in roots:
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                if os.path.isfile(p) and not os.path.islink(p):
                    check(p, open(p, "rb").read(16 << 20)); n += 1
            except OSError:
                pass
print("scanned %d files" % n)
for h in hits:
    print("LEAK:", h)
sys.exit(1 if hits else 0)
PY
  expect_status 0 arun -- sh -c "
    curl -sS -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/a >resp-curl.txt
    curl -sS -D resp-head.txt -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/b >/dev/null
    node client.js api.test $PORT /n >resp-node.txt
    python3 scan.py $enc \"\$HOME\" /tmp /run /etc/ssl \"\$PWD\""
  expect_contains "$OUT" "scanned"
  expect_not_contains "$OUT" "LEAK"
  expect_contains "$(cat resp-curl.txt)" "api: hello, you sent Bearer" "the response"
  # the session CA is there, and it is a certificate only
  expect_status 0 arun -- sh -c 'cat /run/airlock/ca.pem; ls /run/airlock'
  expect_contains "$OUT" "BEGIN CERTIFICATE"
  expect_not_contains "$OUT" "PRIVATE"
}

# Java: the truststore in JAVA_TOOL_OPTIONS trusts the session CA.
case_java_truststore() {
  command -v java >/dev/null || { echo "SKIP: no java"; exit 77; }
  start_upstream; write_settings
  cat >Get.java <<'JAVA'
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.ProxySelector;
import java.net.InetSocketAddress;
public class Get {
  public static void main(String[] a) throws Exception {
    HttpClient c = HttpClient.newBuilder()
        .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", 3128))).build();
    HttpRequest r = HttpRequest.newBuilder(URI.create(a[0]))
        .header("Authorization", "Bearer " + System.getenv("API_TOKEN")).build();
    HttpResponse<String> res = c.send(r, HttpResponse.BodyHandlers.ofString());
    System.out.print("java " + res.statusCode() + " " + res.body());
  }
}
JAVA
  expect_status 0 arun -- java Get.java "https://api.test:$PORT/java"
  expect_contains "$OUT" "java 200 api: hello"
  expect_not_contains "$OUT$ERR" "$REAL"
}

# tlsTerminate.caCertPath/caKeyPath: the operator's CA signs the leaves;
# the sandbox trusts its certificate and cannot read its key (even under
# $HOME, which the sandbox sees).
case_operator_ca() {
  start_upstream
  mkdir -p "$HOME/ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=operator CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$HOME/ca/ca.key" -out "$HOME/ca/ca.pem" 2>/dev/null
  write_settings "$MASK_API_TOKEN" "\"allowAllDomains\": false"
  sed -i "s|\"tlsTerminate\": {}|\"tlsTerminate\": {\"caCertPath\": \"$HOME/ca/ca.pem\", \"caKeyPath\": \"$HOME/ca/ca.key\"}|" cc.json
  grep -q caKeyPath cc.json || fail "settings not written: $(cat cc.json)"
  expect_status 0 arun -- sh -c "
    cmp /run/airlock/ca.pem $HOME/ca/ca.pem && echo same-ca
    cat $HOME/ca/ca.key >/dev/null 2>&1 && echo KEY-READABLE || echo key-hidden
    curl -sS --fail -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/op
    curl -sS -w '%{certs}' -o /dev/null https://api.test:$PORT/ | grep -m1 '^Issuer:'"
  expect_contains "$OUT" "same-ca"
  expect_contains "$OUT" "key-hidden"
  expect_contains "$OUT" "api: hello, you sent Bearer sk-"
  expect_contains "$OUT" "Issuer:CN = operator CA"
  expect_not_contains "$OUT$ERR" "$REAL"
}

# tlsTerminate.excludeDomains with extraCaCertPaths: other.test stays an
# opaque tunnel, verified by the sandbox's own TLS against the bundle (the
# host's CAs, the session CA and the extra ones); api.test is terminated.
case_exclude_domains_extra_ca() {
  start_upstream
  write_settings "$MASK_API_TOKEN" "\"allowAllDomains\": false"
  sed -i "s|\"tlsTerminate\": {}|\"tlsTerminate\": {\"excludeDomains\": [\"other.test\"], \"extraCaCertPaths\": [\"$TMPD/tls/ca.pem\"]}|" cc.json
  grep -q excludeDomains cc.json || fail "settings not written: $(cat cc.json)"
  expect_status 0 arun -- sh -c "
    curl -sS --fail https://other.test:$PORT/opaque
    curl -sS -w '%{certs}' -o /dev/null https://other.test:$PORT/ | grep -m1 '^Issuer:'
    curl -sS -w '%{certs}' -o /dev/null https://api.test:$PORT/ | grep -m1 '^Issuer:'"
  expect_contains "$OUT" "other: you sent"
  expect_contains "$OUT" "Issuer:CN = airlock creds test CA"
  expect_contains "$OUT" "Issuer:CN = airlock run session CA"
}

# sandbox-runtime's shape: the same, with its key paths in the messages.
case_srt_shape() {
  start_upstream
  cat >srt.json <<J
{"network": {"allowedDomains": ["api.test", "other.test"], "allowedAddresses": ["127.0.0.1/32"],
             "tlsTerminate": {}},
 "credentials": {"envVars": [{"name": "API_TOKEN", "mode": "mask", "injectHosts": ["api.test"]},
                             {"name": "UNSET_TOKEN", "mode": "mask", "injectHosts": ["api.test"]}]}}
J
  unset UNSET_TOKEN
  expect_status 0 env SSL_CERT_FILE="$TMPD/tls/ca.pem" "$AIRLOCK" run --no-pty --settings srt.json \
    --add-host api.test=127.0.0.1 --add-host other.test=127.0.0.1 -- sh -c "
    curl -sS --fail -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/srt
    curl -sS -o /dev/null -H \"Authorization: Bearer \$API_TOKEN\" https://other.test:$PORT/srt"
  expect_contains "$OUT" "api: hello, you sent Bearer sk-"
  expect_contains "$ERR" "airlock: warning: credentials.envVars: UNSET_TOKEN (mode \"mask\") is not set in airlock's environment: nothing passed for it"
  expect_contains "$ERR" "airlock: blocked credential: API_TOKEN sent to other.test:$PORT (GET /srt), which is not one of its injectHosts (api.test): refused"
  expect_not_contains "$OUT$ERR" "$REAL"
}

# An upstream whose certificate does not verify: 502 with the reason, on
# the client's side and on the user's terminal; never a silent pass.
case_upstream_certificate_error() {
  start_upstream; write_settings
  expect_status 0 arun -- curl -sS -w ' %{http_code}' "https://bad.test:$PORT/"
  expect_contains "$OUT" "502"
  expect_contains "$OUT" "upstream certificate for bad.test"
  expect_not_contains "$OUT" "bad: reached"
  expect_contains "$ERR" "airlock: upstream certificate for bad.test: self-signed certificate"
  [ "$(grep -c 'upstream certificate for bad.test' <<<"$ERR")" = 1 ] ||
    fail "the certificate error is not said exactly once: $ERR"
}

# credentials.files, mode "deny": the file is unreadable in the sandbox.
case_files_deny() {
  mkdir -p "$HOME/.config"
  echo "$REAL" >"$HOME/.config/tok"
  cat >cc.json <<J
{"sandbox": {"credentials": {"files": [{"path": "~/.config/tok", "mode": "deny"}]}}}
J
  expect_failure "$AIRLOCK" run --no-pty --settings cc.json -- cat "$HOME/.config/tok"
  expect_contains "$ERR" "cat: $HOME/.config/tok: Permission denied"
  expect_not_contains "$OUT" "$REAL"
}

# credentials.files, mode "mask": the sandbox reads the sentinel, and
# `Authorization: Bearer $(cat FILE)` authenticates through the proxy.
case_files_mask() {
  start_upstream
  mkdir -p "$HOME/.config"
  echo "$REAL" >"$HOME/.config/tok"
  cat >cc.json <<J
{"sandbox": {
  "network": {"allowedDomains": ["api.test", "other.test"], "allowedAddresses": ["127.0.0.1/32"],
              "tlsTerminate": {}},
  "credentials": {"files": [{"path": "~/.config/tok", "mode": "mask", "injectHosts": ["api.test"]}]}
}}
J
  expect_status 0 arun -- sh -c "
    echo \"file=\$(cat ~/.config/tok)\"
    curl -sS --fail -H \"Authorization: Bearer \$(cat ~/.config/tok)\" https://api.test:$PORT/file
    echo > ~/.config/tok 2>/dev/null && echo WRITABLE || echo read-only"
  expect_contains "$OUT" "file=sk-"
  expect_not_contains "$OUT" "file=$REAL"
  expect_contains "$OUT" "api: hello, you sent Bearer"
  expect_contains "$OUT" "read-only"
  expect_not_contains "$OUT$ERR" "$REAL"
  [ "$(cat "$HOME/.config/tok")" = "$REAL" ] || fail "the real file was changed"
  # to another host: refused, named as the file's credential
  expect_status 0 arun -- sh -c "curl -sS -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer \$(cat ~/.config/tok)\" https://other.test:$PORT/"
  expect_contains "$OUT" "403"
  expect_contains "$ERR" "airlock: blocked credential: file:$HOME/.config/tok sent to other.test:$PORT (GET /), which is not one of its injectHosts (api.test): refused"
  # a masked file that does not exist: a warning, nothing mounted
  rm "$HOME/.config/tok"
  expect_status 0 arun -- sh -c 'test -e ~/.config/tok && echo exists || echo absent'
  expect_contains "$OUT" "absent"
  expect_contains "$ERR" "airlock: warning: cc.json: sandbox.credentials.files[0].path: \"$HOME/.config/tok\" does not exist: there is nothing to mask"
}

# Request rules: on api.test only GET /repos/acme/** is allowed.
case_request_rules() {
  start_upstream
  write_settings "$MASK_API_TOKEN" '"requestRules": [{"host": "api.test", "methods": ["GET"], "paths": ["/repos/acme/**"]}]'
  expect_status 0 arun -- sh -c "
    curl -sS -w ' %{http_code}\n' -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/repos/acme/app
    curl -sS -w ' %{http_code}\n' -X POST -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/repos/acme/app
    curl -sS -w ' %{http_code}\n' -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/repos/other/app
    curl -sS -w ' %{http_code}\n' --path-as-is -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/repos/acme/../other/app"
  expect_contains "$OUT" "api: hello, you sent Bearer"
  expect_contains "$OUT" " 200"
  [ "$(grep -c ' 403$' <<<"$OUT")" = 3 ] || fail "POST, a path outside and a path leaving the rule by dot segments are not all refused: $OUT"
  expect_contains "$ERR" "airlock: blocked request: POST /repos/acme/app to api.test matches no request rule (GET /repos/acme/**)"
  expect_contains "$ERR" "airlock: blocked request: GET /repos/other/app to api.test matches no request rule (GET /repos/acme/**)"
  expect_contains "$OUT" "airlock: POST /repos/acme/app matches no request rule for api.test (GET /repos/acme/**)" "the 403 body"
  # never forwarded
  expect_not_contains "$(cat "$TMPD/tls/access.log")" "POST" "the upstream's log"
  expect_not_contains "$(cat "$TMPD/tls/access.log")" "/other/" "the upstream's log"
}

# reportOnly: a request rule miss and a domain outside the allowlist are
# logged as would-deny and let through.
case_report_only() {
  start_upstream
  cat >cc.json <<J
{"sandbox": {
  "network": {"allowedDomains": ["api.test"], "allowedAddresses": ["127.0.0.1/32"],
              "tlsTerminate": {}, "reportOnly": true, "strictAllowlist": true,
              "requestRules": [{"host": "api.test", "methods": ["GET"], "paths": ["/repos/**"]}]}
}}
J
  expect_status 0 arun -- sh -c "
    curl -sS -w ' %{http_code}\n' -X POST https://api.test:$PORT/other
    curl -sS -w ' %{http_code}\n' https://other.test:$PORT/"
  expect_contains "$OUT" "api: no valid key" "the POST passed"
  expect_contains "$OUT" "other: you sent" "the host outside the allowlist passed"
  expect_contains "$ERR" "airlock: report-only: would block request: POST /other to api.test matches no request rule (GET /repos/**): let through"
  expect_contains "$ERR" "airlock: report-only: would block network: other.test:$PORT (blocked-by-policy): let through (sandbox.network.reportOnly)"
  expect_not_contains "$ERR" "blocked request:"
}

# A mask without tlsTerminate: airlock refuses to start, naming the setting.
case_mask_without_tls_terminate() {
  cat >cc.json <<'J'
{"sandbox": {
  "network": {"allowedDomains": ["api.test"]},
  "credentials": {"envVars": [{"name": "API_TOKEN", "mode": "mask", "injectHosts": ["api.test"]}]}
}}
J
  expect_status 125 "$AIRLOCK" run --no-pty --settings cc.json -- sh -c 'echo ran'
  expect_not_contains "$OUT" "ran"
  expect_contains "$ERR" "airlock: sandbox.credentials.envVars (\"API_TOKEN\"): mode \"mask\" needs sandbox.network.tlsTerminate: without it the proxy cannot see HTTPS requests to put the real value back"
}

# injectHosts not covered by allowedDomains: refused, naming both.
case_inject_host_not_allowed() {
  write_settings '{"name": "API_TOKEN", "mode": "mask", "injectHosts": ["evil.test"]}'
  expect_status 125 "$AIRLOCK" run --no-pty --settings cc.json -- sh -c 'echo ran'
  expect_not_contains "$OUT" "ran"
  expect_contains "$ERR" "airlock: sandbox.credentials.envVars (\"API_TOKEN\"): injectHosts \"evil.test\" is not covered by sandbox.network.allowedDomains: add it (or a wildcard covering it) there, or remove it from injectHosts"
}

# A masked variable that airlock's environment does not set: a warning
# naming it, and nothing passed.
case_masked_variable_unset() {
  write_settings
  unset API_TOKEN
  expect_status 0 "$AIRLOCK" run --no-pty --settings cc.json -- sh -c 'echo "token=${API_TOKEN-unset}"'
  expect_contains "$OUT" "token=unset"
  expect_contains "$ERR" "airlock: warning: sandbox.credentials.envVars: API_TOKEN (mode \"mask\") is not set in airlock's environment: nothing passed for it"
}

# --pass-env of a masked variable is refused, naming it.
case_pass_env_masked_refused() {
  write_settings
  expect_status 125 "$AIRLOCK" run --no-pty --settings cc.json --pass-env API_TOKEN -- sh -c 'echo "token=$API_TOKEN"'
  expect_not_contains "$OUT" "$REAL"
  expect_contains "$ERR" "airlock: --pass-env API_TOKEN: refused: the settings mask it (sandbox.credentials.envVars, mode \"mask\"): the sandbox gets a sentinel, never the value"
}

# A mask entry without injectHosts (as users' Claude Code files often have
# it): the real value goes to every allowedDomains host, with a warning
# that says so; a host outside allowedDomains is never reached at all.
case_default_inject_hosts() {
  start_upstream; start_sink; write_settings '{"name": "API_TOKEN", "mode": "mask"}'
  expect_status 0 arun -- sh -c "
    curl -sS -o /dev/null -w '%{http_code} ' -H \"Authorization: Bearer \$API_TOKEN\" https://api.test:$PORT/a
    curl -sS -o /dev/null -m 5 -H \"Authorization: Bearer \$API_TOKEN\" https://other.test:$SINK_PORT/b; true"
  expect_contains "$OUT" "200 " "api.test got the real value"
  expect_contains "$(cat "$TMPD/sink.raw")" "Authorization: Bearer $REAL" "other.test (in allowedDomains) got the real value"
  expect_contains "$ERR" "airlock: warning: cc.json: sandbox.credentials.envVars[0]: mode \"mask\" without injectHosts: the real value may be sent to every allowedDomains entry (as in Claude Code and sandbox-runtime); list the hosts it is for to narrow it"
  expect_not_contains "$OUT$ERR" "$REAL"
}

"case_$CASE"
echo "PASS run_credentials.$CASE"
