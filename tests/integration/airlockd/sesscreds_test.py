#!/usr/bin/env python3
"""HTTP secrets in airlockd sessions (issue 15, docs/airlockd.md "HTTP
secrets"): an operator stores a secret with `airlock creds add --kind http`
and grants it to alice; her session's `credentials` give a command a
sentinel in $VAR, and the netproxy (TLS-terminated with the session's own
CA) puts the real value back only in requests to the injectHosts.

usage: sesscreds_test.py AIRLOCKD AIRLOCK_SESSION CASE

The upstream is nginx with a certificate from the test's own CA, on one of
the host's own non-loopback addresses (a session may never reach loopback;
the operator grants alice that address), reached as api.test and
other.test through proxies.hosts. airlockd's netproxy trusts the test CA
through SSL_CERT_FILE in airlockd's environment (docs/airlockd.md, "The
proxies: their environment"). Exit 0 pass, 1 fail, 77 skip."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from harness import SKIP, Daemon, check, run_case, sse_events, thread, wait_until  # noqa: E402
import procmem  # noqa: E402

REAL = "sk-live-R3alV4lueR3alV4lueR3alV4lue0042"
OTHER_REAL = "npm_0therS3cretValue0therS3cretValue99"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def host_addr():
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


class Upstream:
    """nginx with TLS on ADDR:PORT for api.test and other.test (one
    certificate from the test CA), requiring the real value."""

    def __init__(self, addr):
        self.addr = addr
        self.dir = tempfile.mkdtemp(prefix="airlockd-sesscreds.")
        os.chmod(self.dir, 0o755)
        t = self.dir
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
            "/CN=airlock test upstream CA", "-keyout", f"{t}/ca.key", "-out", f"{t}/ca.pem")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", "/CN=api.test", "-keyout", f"{t}/up.key", "-out", f"{t}/up.csr")
        with open(f"{t}/ext.cnf", "w") as f:
            f.write("subjectAltName=DNS:api.test,DNS:other.test\n")
        run("openssl", "x509", "-req", "-in", f"{t}/up.csr", "-CA", f"{t}/ca.pem", "-CAkey",
            f"{t}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{t}/ext.cnf",
            "-out", f"{t}/up.pem")
        # git over HTTPS: git http-backend (fcgiwrap) behind Basic auth with
        # the real value as the password, as a forge takes a token
        run("git", "init", "-q", "--bare", f"{t}/srv/repo.git")
        run("git", "-C", f"{t}/srv/repo.git", "config", "http.receivepack", "true")
        run("git", "init", "-q", f"{t}/seed")
        with open(f"{t}/seed/README", "w") as f:
            f.write("seeded\n")
        run("git", "-C", f"{t}/seed", "add", "README")
        run("git", "-C", f"{t}/seed", "-c", "user.email=t@t", "-c", "user.name=t", "commit",
            "-qm", "seed")
        run("git", "-C", f"{t}/seed", "push", "-q", f"{t}/srv/repo.git", "HEAD:refs/heads/main")
        run("git", "-C", f"{t}/srv/repo.git", "symbolic-ref", "HEAD", "refs/heads/main")
        pw = subprocess.run(["openssl", "passwd", "-apr1", REAL], check=True,
                            capture_output=True, text=True).stdout.strip()
        with open(f"{t}/htpasswd", "w") as f:
            f.write(f"x-access-token:{pw}\n")
        self.fcgi = subprocess.Popen(["fcgiwrap", "-c", "2", "-s", f"unix:{t}/fcgi.sock"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        with socket.socket() as s, socket.socket() as s2:
            s.bind((addr, 0))
            s2.bind((addr, 0))
            self.port = s.getsockname()[1]
            self.plain_port = s2.getsockname()[1]  # the same site without TLS
        with open(f"{t}/nginx.conf", "w") as f:
            f.write(f"""user root;
daemon off;
pid {t}/nginx.pid;
error_log {t}/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    log_format t '$status "$request" user="$remote_user" auth="$http_authorization"';
    access_log {t}/access.log t;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    server {{
        listen {addr}:{self.port} ssl;
        listen {addr}:{self.plain_port};
        ssl_certificate {t}/up.pem;
        ssl_certificate_key {t}/up.key;
        location = /auth {{
            if ($http_authorization != "Bearer {REAL}") {{ return 401 "no\\n"; }}
            return 200 "auth ok\\n";
        }}
        location = /echo {{ return 200 "got=$http_authorization\\n"; }}
        location ~ ^/git/repo\\.git(/.*)?$ {{
            auth_basic "git";
            auth_basic_user_file {t}/htpasswd;
            fastcgi_pass unix:{t}/fcgi.sock;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT {t}/srv;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param PATH_INFO /repo.git$1;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param GIT_PROTOCOL $http_git_protocol;
        }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", f"{t}/nginx.conf"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(20, self._up, "nginx listens")

    def _up(self):
        if self.proc.poll() is not None:
            raise RuntimeError("nginx exited: " + open(f"{self.dir}/error.log").read())
        try:
            socket.create_connection((self.addr, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def access_log(self):
        with open(f"{self.dir}/access.log") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        try:
            os.killpg(self.fcgi.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.fcgi.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


UP = None
CREDS_TOOL = None
CLIENT = None


def creds(d, *args, stdin=None):
    return subprocess.run([CREDS_TOOL, "creds", *args, "--store", d.store, "--master-key",
                           d.master], input=stdin, capture_output=True, text=True, timeout=60)


def add_secrets(d):
    r = creds(d, "add", "--kind", "http", "--name", "apikey", "--hosts", "api.test,*.corp.test",
              stdin=REAL + "\n")
    check(r.returncode == 0, "creds add --kind http", r)
    r = creds(d, "add", "--kind", "http", "--name", "npm", "--hosts", "registry.test",
              stdin=OTHER_REAL)
    check(r.returncode == 0, "creds add a second secret", r)
    r = creds(d, "ls")
    check(r.returncode == 0 and "http:apikey\thttp\thosts=api.test,*.corp.test" in r.stdout
          and REAL not in r.stdout, "creds ls lists it without its value", r)


def settings():
    return {"network": {"allowedDomains": ["api.test", "other.test", "*.corp.test"],
                        "allowedAddresses": [UP.addr]}}


def curl(url, var="API_KEY", extra=""):
    return (f"curl -sS --max-time 60 -o /dev/null -w '%{{http_code}}' {extra} "
            f"-H \"Authorization: Bearer ${var}\" {url}; echo")


def url(host, path):
    return f"https://{host}:{UP.port}{path}"


def db_rows(d, sql, args=()):
    db = sqlite3.connect(f"file:{d.state}/airlockd.db?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def no_secret_in_db(d):
    """Neither real value nor the CA's key in clear anywhere in the state
    database (the CA key is stored sealed)."""
    for name in os.listdir(d.state):
        if not name.startswith("airlockd.db"):
            continue
        with open(os.path.join(d.state, name), "rb") as f:
            data = f.read()
        check(REAL.encode() not in data and OTHER_REAL.encode() not in data,
              f"no real value in {name}")
        i = max(data.find(b"BEGIN PRIVATE KEY"), data.find(b"BEGIN EC PRIVATE KEY"))
        check(i < 0, f"no CA key in clear in {name}", data[max(0, i - 400):i + 200])


# What the sandbox can read: its environment, every process's environ and
# cmdline, and the files a secret could have been written to. The value
# looked for comes in two halves (the scan's own environment must not
# hold it whole), joined only in the shell.
SCAN = (r"for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat $f 2>/dev/null; echo; done;"
        r" env; N=\"$NA$NB\"; grep -rsIl -e 'BEGIN [A-Z ]*PRIVATE KEY' -e \"$N\" /etc /workspace /tmp /run"
        r" /var /opt /home /root 2>/dev/null | sed 's/^/FILE:/'; true")


# The files and variables by which `airlock run`'s sandbox trusts its CA
# (cli/src/run_creds.c, netproxy.h np_trust_*): a session's are the same.
TRUST_VARS = {"SSL_CERT_FILE": "/run/airlock/ca-bundle.pem",
              "NODE_EXTRA_CA_CERTS": "/run/airlock/ca.pem",
              "REQUESTS_CA_BUNDLE": "/run/airlock/ca-bundle.pem",
              "CURL_CA_BUNDLE": "/run/airlock/ca-bundle.pem",
              "GIT_SSL_CAINFO": "/run/airlock/ca-bundle.pem"}
JAVA_TRUST = ("-Djavax.net.ssl.trustStore=/run/airlock/truststore.p12"
              " -Djavax.net.ssl.trustStoreType=PKCS12 -Djavax.net.ssl.trustStorePassword=changeit")
JAVA_PROXY = ("-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=3128"
              " -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128")


def trust_env_checks(env):
    lines = env.splitlines()
    for var, path in TRUST_VARS.items():
        check(f"{var}={path}" in lines, f"{var}={path}, as airlock run sets it", env)
    check(f"JAVA_TOOL_OPTIONS={JAVA_PROXY} {JAVA_TRUST}" in lines,
          "JAVA_TOOL_OPTIONS: the proxy's properties and the truststore, as airlock run", env)


def session_with_apikey(d, **body):
    """The secrets stored, and a session with API_KEY for api.test."""
    add_secrets(d)
    return d.create(settings=settings(), credentials=[
        {"secret": "apikey", "env": "API_KEY", "injectHosts": ["api.test"]}], **body)


def write_file(d, sid, name, text):
    d.run(sid, f"cat > {name}", stdin=text)


@case
def creds_session(d):
    add_secrets(d)
    body = {"settings": settings(),
            "credentials": [{"secret": "apikey", "env": "API_KEY", "injectHosts": ["api.test"]}]}
    r = d.post("/v1/sessions", body)
    check(r.status == 201, "create with credentials", r)
    sid = r.json["id"]
    d.sessions.add(sid)
    check(r.json["credentials"] == [{"secret": "apikey", "env": "API_KEY",
                                     "injectHosts": ["api.test"]}],
          "the session lists its credentials (no value)", r.json)
    check(REAL not in r.body.decode(), "create's answer has no real value")
    P = f"/v1/sessions/{sid}"
    c, ev = d.stream("GET", P + "/events")
    sentinel = d.run(sid, "printf %s \"$API_KEY\"").decode()
    check(sentinel and sentinel != REAL and len(sentinel) >= len("sk-") + 20
          and sentinel.startswith("sk-"), "the command sees a sentinel, same prefix", sentinel)
    trust_env_checks(d.run(sid, "env").decode())
    # the real value goes to the inject host (the upstream requires it)
    out = d.run(sid, curl(url("api.test", "/auth")))
    check(out == b"200\n", "curl with Bearer $API_KEY to api.test: 200 (real value sent)", out)
    # trusting the CA through the distribution bundle alone, without the variable
    out = d.run(sid, "unset CURL_CA_BUNDLE SSL_CERT_FILE; " + curl(url("api.test", "/auth")))
    check(out == b"200\n", "the bundle at the distribution's path trusts the session CA", out)
    # Python's urllib (HTTPS_PROXY, the CA through SSL_CERT_FILE) likewise
    py = ("/usr/bin/python3 -c \"import os, urllib.request as u; r = u.Request('%s', "
          "headers={'Authorization': 'Bearer ' + os.environ['API_KEY']}); "
          "print(u.urlopen(r, timeout=60).status)\"" % url("api.test", "/auth"))
    out = d.run(sid, py)
    check(out == b"200\n", "python urllib with $API_KEY to api.test: 200", out)
    # the same sentinel to another allowed host: refused, never replaced
    out = d.run(sid, curl(url("other.test", "/echo"), extra="-D /tmp/h"))
    check(out == b"403\n", "the sentinel to other.test: 403", out)
    hdrs = d.run(sid, "cat /tmp/h").decode()
    check("credential-not-allowed-here" in hdrs, "X-Airlock-Error credential-not-allowed-here",
          hdrs)
    # in plain HTTP (no TLS) the sentinel is refused too, even to its own host
    out = d.run(sid, f"curl -sS --max-time 60 -o /dev/null -w '%{{http_code}}' "
                     f"-H \"Authorization: Bearer $API_KEY\" http://api.test:{UP.port}/auth; echo")
    check(out == b"403\n", "the sentinel in a plain-HTTP request: 403", out)
    # a response never carries the real value back (nginx echoes the header)
    got = d.run(sid, f"curl -sS --max-time 60 -H \"Authorization: Bearer $API_KEY\" "
                     f"{url('api.test', '/echo')}").decode()
    check(REAL not in got, "the echoed real value is re-masked", got)
    # events: a use and a refusal, names only
    evs = sse_events(ev, until=lambda e: e["event"] == "credential-refused", deadline=60)
    c.close()
    uses = [e["data"] for e in evs if e["event"] == "credential"]
    refused = [e["data"] for e in evs if e["event"] == "credential-refused"]
    check(any(u["secret"] == "apikey" and u["host"] == "api.test" and u["method"] == "GET"
              and u["path"] == "/auth" and u["status"] == 200 for u in uses),
          "a credential event for the use (secret, host, method, path, status)", uses)
    check(any(x["secret"] == "apikey" and x["host"] == "other.test"
              and x["reason"] == "credential-not-allowed-here" for x in refused),
          "a credential-refused event", refused)
    check(all(REAL not in json.dumps(e["data"]) for e in evs), "no event holds the value")
    rows = db_rows(d, "SELECT method, path, status FROM audit WHERE session = ? AND "
                   "method = 'CRED' ORDER BY seq", (sid,))
    check(any(p.startswith("credential apikey api.test GET /auth") and st == 200
              for m, p, st in rows), "an audit row for the use", rows)
    check(any(p.startswith("credential-refused apikey other.test") for m, p, st in rows),
          "an audit row for the refusal", rows)
    check(all(REAL not in p for m, p, st in rows), "no audit row holds the value", rows)
    # GET, the session list, the policy: never the value
    for path in (P, "/v1/sessions", P + "/policy"):
        r = d.get(path)
        check(r.status == 200 and REAL not in r.body.decode(), f"GET {path} has no value", r)
    # the sandbox cannot read the value nor the CA's key anywhere
    half = len(REAL) // 2
    scan = d.run(sid, SCAN, env={"NA": REAL[:half], "NB": REAL[half:]})
    files = [x for x in scan.split(b"\n") if x.startswith(b"FILE:")]
    check(REAL.encode() not in scan and not files,
          "nothing the sandbox reads holds the value or a private key", files or scan[-2000:])
    check(sentinel.encode() in scan, "(the scan did read the environment)")
    # `airlock session create --credential ENV=SECRET@HOST` makes the same
    sf = os.path.join(d.dir, "settings.json")
    with open(sf, "w") as f:
        json.dump(settings(), f)
    env = dict(os.environ, AIRLOCK_URL=d.url, AIRLOCK_API_KEY=d.keys["alice"])
    r = subprocess.run([CLIENT, "create", "--settings", sf, "--credential",
                        "API_KEY=apikey@api.test,x.corp.test", "--json"],
                       capture_output=True, env=env, timeout=120)
    check(r.returncode == 0, "airlock session create --credential", r)
    made = json.loads(r.stdout)
    d.sessions.add(made["id"])
    check(made["credentials"] == [{"secret": "apikey", "env": "API_KEY",
                                   "injectHosts": ["api.test", "x.corp.test"]}],
          "the CLI sends credentials", made)
    out = d.run(made["id"], curl(url("api.test", "/auth")))
    check(out == b"200\n", "a session made by the CLI authenticates too", out)
    r = subprocess.run([CLIENT, "create", "--credential", "API_KEY=apikey"], capture_output=True,
                       env=env, timeout=120)
    check(r.returncode == 2 and b"ENV=SECRET@HOST" in r.stderr, "a malformed --credential", r)
    r = subprocess.run([CLIENT, "create", "--settings", sf, "--credential",
                        "API_KEY=nosuch@api.test"], capture_output=True, env=env, timeout=120)
    check(r.returncode != 0 and b"credentials[0].secret" in r.stderr,
          "the server's refusal names the entry", r)
    # a session whose settings ask for tlsTerminate (no credentials) gets a
    # CA too: its HTTPS is terminated and trusted through the same bundle
    st = settings()
    st["network"]["tlsTerminate"] = {}
    sid2 = d.create(settings=st)
    got = d.run(sid2, f"curl -sS --max-time 60 -H 'Authorization: Bearer x' "
                      f"{url('other.test', '/echo')}")
    check(got == b"got=Bearer x\n", "tlsTerminate without credentials: terminated, trusted", got)
    r = d.post("/v1/sessions", {"settings": {"network": {"tlsTerminate": {
        "caCertPath": os.environ["SSL_CERT_FILE"], "caKeyPath": os.environ["SSL_CERT_FILE"]}}}})
    check(r.status == 403 and r.json["error"]["code"] == "forbidden",
          "a CA from the server's files is refused", r)
    no_secret_in_db(d)
    log = d.log_tail(1 << 20)
    check(REAL not in log, "the daemon's log never holds the value")


@case
def creds_bad_inputs(d):
    add_secrets(d)

    def bad(creds_list, status, code, field, extra=None, key="alice"):
        body = {"settings": settings(), "credentials": creds_list}
        body.update(extra or {})
        r = d.post("/v1/sessions", body, key=key)
        if r.status == 201:
            d.sessions.add(r.json["id"])
        check(r.status == status, f"{creds_list!r}: {status}", r)
        e = r.json["error"]
        check(e["code"] == code and e["field"] == field, f"{creds_list!r}: {code} {field}", e)
        return e["message"]

    ok = {"secret": "apikey", "env": "API_KEY", "injectHosts": ["api.test"]}
    m = bad([dict(ok, secret="nosuch")], 403, "forbidden", "credentials[0].secret")
    check("grants.alice.credentials" in m, "names the grant", m)
    m = bad([dict(ok, secret="ghost")], 400, "invalid_value", "credentials[0].secret")
    check("no HTTP secret \"ghost\"" in m, "granted but not in the store", m)
    m = bad([ok], 403, "forbidden", "credentials[0].secret", key="bob")
    bad([dict(ok, injectHosts=["other.test"])], 403, "forbidden",
        "credentials[0].injectHosts[0]")
    m = bad([dict(ok, injectHosts=["x.corp.test", "nope.test"])], 400, "invalid_value",
            "credentials[0].injectHosts[1]")
    check("allowedDomains" in m, "not covered by the session's allowedDomains", m)
    bad([dict(ok, injectHosts=["*.com"])], 400, "invalid_value", "credentials[0].injectHosts[0]")
    bad([dict(ok, injectHosts=[])], 400, "invalid_value", "credentials[0].injectHosts")
    bad([dict(ok, injectHosts="api.test")], 400, "wrong_type", "credentials[0].injectHosts")
    bad([dict(ok, env="1BAD")], 400, "invalid_value", "credentials[0].env")
    bad([dict(ok, env="BAD-NAME")], 400, "invalid_value", "credentials[0].env")
    for reserved in ("HTTPS_PROXY", "SSL_CERT_FILE", "PATH", "AIRLOCK_GIT_PROXY",
                     "GIT_CONFIG_KEY_0"):
        bad([dict(ok, env=reserved)], 400, "invalid_value", "credentials[0].env")
    bad([ok], 400, "invalid_value", "credentials[0].env", extra={"env": {"API_KEY": "x"}})
    bad([ok, dict(ok, env="OTHER")], 400, "invalid_value", "credentials[1].secret")
    bad([ok, dict(ok, secret="npm", env="NPM", injectHosts=["api.test"])], 403, "forbidden",
        "credentials[1].injectHosts[0]")
    bad([dict(ok, extra=1)], 400, "unknown_field", "credentials[0].extra")
    bad([{"secret": "apikey", "env": "API_KEY"}], 400, "invalid_value",
        "credentials[0].injectHosts")
    bad({"secret": "apikey"}, 400, "wrong_type", "credentials")
    bad([ok] * 17, 400, "invalid_value", "credentials")
    bad(["apikey"], 400, "wrong_type", "credentials[0]")
    bad([dict(ok, secret="api.key")], 400, "invalid_value", "credentials[0].secret")
    r = d.get("/v1/sessions")
    check(r.status == 200 and r.json.get("sessions") == [], "no session was made", r)
    d.healthy()


@case
def creds_restart(d):
    # the sentinel and the CA stay for the session's life: after a restart
    # of airlockd (and of its netproxy) the same sentinel still works and the
    # sandbox still trusts the CA it had; the CA's key is stored sealed
    sid = session_with_apikey(d)
    # the sentinel, the trust files and the trust variables (rebuilt from
    # the row on re-adoption)
    trust = ("printf %s \"$API_KEY\"; echo; sha256sum /etc/ssl/certs/ca-certificates.crt "
             "/run/airlock/*; env | grep -E '^(SSL_CERT_FILE|NODE_EXTRA_CA_CERTS|"
             "REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GIT_SSL_CAINFO|JAVA_TOOL_OPTIONS)=' | sort")
    before = d.run(sid, trust)
    check(before.count(b"/run/airlock/") >= 3 and b"truststore.p12" in before,
          "the trust files are there", before)
    check(d.run(sid, curl(url("api.test", "/auth"))) == b"200\n", "works before")
    (rec,) = db_rows(d, "SELECT priv FROM sessions WHERE id = ?", (sid,))[0]
    stored = json.loads(rec)["creds"]
    check(stored["ca_key"].startswith("alks1.") and "BEGIN" not in stored["ca_key"]
          and "PRIVATE KEY" not in rec and REAL not in rec,
          "the row keeps the CA key sealed and no value", stored)
    d.proc.send_signal(signal.SIGTERM)
    check(d.proc.wait(60) == 0, "airlockd exits 0")
    d.logf.close()
    d.start()
    check(d.session(sid)["state"] == "ready", "re-adopted")
    after = d.run(sid, trust)
    check(after == before, "same sentinel, same trust files and variables after the restart",
          (before, after))
    out = d.run(sid, curl(url("api.test", "/auth")))
    check(out == b"200\n", "the real value is put back after the restart", out)
    out = d.run(sid, curl(url("other.test", "/echo")))
    check(out == b"403\n", "and still refused elsewhere", out)
    # the netproxy alone crashes: airlockd restarts it and re-sends the
    # session with its CA and values (the same re-send path)
    from harness import pgrep_children
    daemon = d.daemon_pid()
    nps = pgrep_children(daemon, "airlock-netprox")  # comm: 15 bytes
    check(len(nps) == 1, "found the netproxy", nps)
    os.kill(nps[0], signal.SIGKILL)
    wait_until(30, lambda: (lambda p: p and p != nps)(pgrep_children(daemon, "airlock-netprox")),
               "the netproxy is restarted")
    out = wait_until(60, lambda: (lambda o: o if o == b"200\n" else None)(
        d.run(sid, curl(url("api.test", "/auth")))), "the value is put back after a netproxy crash")
    check(d.run(sid, curl(url("other.test", "/echo"))) == b"403\n", "and refused elsewhere")
    no_secret_in_db(d)
    # a secret removed from the store: after the next restart its sentinel
    # is never replaced (the upstream gets the sentinel: 401), never the value
    r = creds(d, "rm", "--kind", "http", "--name", "apikey")
    check(r.returncode == 0, "creds rm --kind http", r)
    d.proc.send_signal(signal.SIGTERM)
    check(d.proc.wait(60) == 0, "airlockd exits 0")
    d.logf.close()
    d.start()
    out = d.run(sid, curl(url("api.test", "/auth")))
    check(out == b"401\n", "a removed secret is no longer put back", out)


def proc_children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


@case
def creds_keyholder_split(d):
    # The netproxy's privilege split (docs/netproxy.md, "Processes"): after
    # a request that had the real value put back, the front (the process
    # that parsed the sandbox's TLS and HTTP) holds neither the value nor
    # its base64 forms anywhere in its memory, and runs as a user other
    # than root with no_new_privs and a seccomp filter; the key holder
    # holds the value (so the scan can find it). On a one-process netproxy
    # (no front) the scan looks at that one process and finds the value.
    from harness import pgrep_children
    sid = session_with_apikey(d)
    out = d.run(sid, curl(url("api.test", "/auth")))
    check(out == b"200\n", "the real value was put back (the upstream requires it)", out)
    got = d.run(sid, f"curl -sS --max-time 60 -H \"Authorization: Bearer $API_KEY\" "
                     f"{url('api.test', '/echo')}").decode()
    check(got.startswith("got=Bearer ") and REAL not in got, "an echoed value re-masked", got)
    (keyholder,) = pgrep_children(d.daemon_pid(), "airlock-netprox")
    fronts = proc_children(keyholder)
    front = fronts[0] if len(fronts) == 1 else keyholder
    secrets = {"value": REAL.encode()}
    for i, form in enumerate(procmem.base64_forms(REAL.encode())):
        secrets[f"value (base64, alignment {i})"] = form
    found = procmem.scan(front, secrets)
    check(not found, f"the front (pid {front}) holds no real value in its memory", sorted(found))
    check(len(fronts) == 1, "the key holder has one child, the front", fronts)
    ok, line = procmem.hardened(front)
    check(ok, "the front is not root, NoNewPrivs 1, Seccomp 2", line)
    found = procmem.scan(keyholder, secrets)
    check("value" in found, "the key holder holds the value (so the scan finds it)", found)
    st = os.stat(f"/proc/{keyholder}/mem")
    check(st.st_uid == 0, "the key holder is not dumpable (its /proc files are root's)", st)


@case
def creds_plaintext_inject(d):
    # allowPlaintextInject (the user asked for it): on plain HTTP the value
    # is put back too, by the key holder, which serves a plain connection
    # only for a session whose policy allows it (docs/netproxy.md,
    # "Processes")
    add_secrets(d)
    st = settings()
    st["credentials"] = {"allowPlaintextInject": True}
    sid = d.create(settings=st, credentials=[
        {"secret": "apikey", "env": "API_KEY", "injectHosts": ["api.test"]}])
    plain = (f"curl -sS --max-time 60 -o /dev/null -w '%{{http_code}}' "
             f"-H \"Authorization: Bearer $API_KEY\" http://api.test:{UP.plain_port}/auth; echo")
    out = d.run(sid, plain)
    check(out == b"200\n", "plain HTTP with allowPlaintextInject: the value is put back", out)
    out = d.run(sid, plain.replace("api.test", "other.test"))
    check(out == b"403\n", "and refused to another host", out)


@case
def creds_trust_files(d):
    # the session CA's files: at airlock run's paths, read-only, the
    # certificate alone (no key), the bundle also over the distribution's
    # path, a truststore Java reads with the CA as a trusted entry
    sid = session_with_apikey(d)
    trust_env_checks(d.run(sid, "env").decode())
    out = d.run(sid, "cd /run/airlock && ls && for f in ca.pem ca-bundle.pem truststore.p12; do"
                     " test -r $f && echo readable-$f; (: >> $f) 2>/dev/null && echo WRITABLE-$f;"
                     " done; grep -c 'BEGIN CERTIFICATE' ca.pem; grep -c PRIVATE ca.pem ca-bundle.pem;"
                     " cmp ca-bundle.pem /etc/ssl/certs/ca-certificates.crt && echo bundle-bound;"
                     " head -c $(wc -c < ca.pem) ca-bundle.pem | cmp - ca.pem && echo ca-first;"
                     " true").decode()
    for f in ("ca.pem", "ca-bundle.pem", "truststore.p12"):
        check(f"readable-{f}" in out and f"WRITABLE-{f}" not in out,
              f"/run/airlock/{f} is there, read-only", out)
    check("\n1\n" in out, "ca.pem holds one certificate", out)
    check("ca.pem:0" in out and "ca-bundle.pem:0" in out, "and no private key", out)
    check("bundle-bound" in out, "the bundle is bound over /etc/ssl/certs/ca-certificates.crt",
          out)
    check("ca-first" in out, "the bundle starts with the session CA", out)
    # the truststore as a PKCS#12 reader sees it: the CA first, trusted
    p12 = d.run(sid, "openssl pkcs12 -in /run/airlock/truststore.p12 -nokeys -passin "
                     "pass:changeit -info 2>&1 | head -40; openssl x509 -in /run/airlock/ca.pem "
                     "-noout -subject").decode()
    # (OpenSSL 3.0 prints the JDK's trusted-usage attribute by its OID;
    # the unit test checks its value)
    first = p12[p12.find("Bag Attributes"):p12.find("-----BEGIN CERTIFICATE-----")]
    check("friendlyName: airlock-session-ca" in first and
          "2.16.840.1.113894.746875.1.1:" in first and
          f"subject=CN = airlock session {sid}" in first,
          "truststore.p12: the session CA first, as a trusted certificate entry", p12)
    check(f"subject=CN = airlock session {sid}" in p12, "ca.pem is this session's CA", p12)


# Node 20 does not read HTTPS_PROXY: a CONNECT agent of the tests' own,
# shared with tests/integration/run_credentials/creds_test.sh.
NODE_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib",
                           "node_connect_client.js")


@case
def creds_node(d):
    sid = session_with_apikey(d)
    with open(NODE_CLIENT) as f:
        write_file(d, sid, "client.js", f.read())
    out = d.run(sid, f"node client.js api.test {UP.port} /auth API_KEY 2>&1; echo rc=$?")
    check(out == b"node 200 auth ok\nrc=0\n",
          "node (https through the proxy, the CA from NODE_EXTRA_CA_CERTS) with $API_KEY "
          "to api.test: 200", out)
    # Node trusts the CA only through that variable: without it, the
    # session's leaf is refused (the check above can fail)
    out = d.run(sid, f"env -u NODE_EXTRA_CA_CERTS node client.js api.test {UP.port} /auth "
                     "API_KEY 2>&1; echo rc=$?")
    check(b"rc=3" in out and b"certificate" in out,
          "without NODE_EXTRA_CA_CERTS node refuses the session's certificate", out)
    # the sentinel to another allowed host: refused, never replaced
    out = d.run(sid, f"node client.js other.test {UP.port} /echo API_KEY 2>&1; echo rc=$?")
    check(out.startswith(b"node 403 ") and b"is not allowed for other.test" in out,
          "node: the sentinel to other.test is refused (403)", out)
    check(REAL.encode() not in out, "and no real value comes back", out)


@case
def creds_git(d):
    sid = session_with_apikey(d)
    repo = url("api.test", "/git/repo.git")
    # Basic auth x-access-token:$API_KEY from a credential helper (the
    # sentinel, base64 inside the header, is replaced for api.test)
    helper = ("-c credential.helper= -c 'credential.helper=!f() { echo username=x-access-token;"
              " echo \"password=$API_KEY\"; }; f'")
    out = d.run(sid, f"git {helper} clone -q {repo} cloned 2>&1; echo rc=$?; cat cloned/README")
    check(out == b"rc=0\nseeded\n", "git clone over HTTPS with the masked variable", out)
    # a push: the request body (a pack) goes through the terminated tunnel
    out = d.run(sid, f"cd cloned && echo pushed > NEW && git add NEW && git -c user.email=s@s "
                     f"-c user.name=s commit -qm push && git {helper} push -q origin "
                     "HEAD:refs/heads/from-session 2>&1; echo rc=$?")
    check(out == b"rc=0\n", "git push over HTTPS with the masked variable", out)
    r = subprocess.run(["git", "-C", f"{UP.dir}/srv/repo.git", "show", "from-session:NEW"],
                       capture_output=True, text=True)
    check(r.stdout == "pushed\n", "the upstream has the pushed commit", r)
    # the masked variable in the URL works the same way
    at = repo.replace("https://", "https://x-access-token:$API_KEY@")
    out = d.run(sid, f"git -c credential.helper= ls-remote {at} 2>&1; echo rc=$?")
    check(b"refs/heads/from-session" in out and out.endswith(b"rc=0\n"),
          "git ls-remote with $API_KEY in the URL", out)
    # the upstream really wants the real value: a wrong one is refused
    out = d.run(sid, f"git -c credential.helper= ls-remote "
                     f"{repo.replace('https://', 'https://x-access-token:wrong@')} 2>&1;"
                     " echo rc=$?")
    check(b"rc=128" in out and (b"401" in out or b"Authentication failed" in out),
          "a wrong password is refused by the upstream", out)
    log = UP.access_log()
    check('user="x-access-token"' in log, "the upstream authenticated the git requests", log)
    check(REAL not in out.decode(), "no real value in git's output")
    # the sentinel towards another host is never replaced
    other = url("other.test", "/git/repo.git").replace("https://",
                                                       "https://x-access-token:$API_KEY@")
    out = d.run(sid, f"git -c credential.helper= ls-remote {other} 2>&1; echo rc=$?")
    check(b"rc=128" in out and b"403" in out, "git to other.test with the sentinel: 403", out)


JAVA_CLIENT = r"""
import java.net.URI;
import java.net.ProxySelector;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
public class Get {
  public static void main(String[] a) throws Exception {
    // the proxy from JAVA_TOOL_OPTIONS' https.proxyHost/Port, the trust
    // from its javax.net.ssl.trustStore
    HttpClient c = HttpClient.newBuilder().proxy(ProxySelector.getDefault()).build();
    HttpRequest r = HttpRequest.newBuilder(URI.create(a[0]))
        .header("Authorization", "Bearer " + System.getenv("API_KEY")).build();
    HttpResponse<String> res = c.send(r, HttpResponse.BodyHandlers.ofString());
    System.out.print("java " + res.statusCode() + " " + res.body());
  }
}
"""


@case
def creds_java(d):
    sid = session_with_apikey(d, limits={"memory_mb": 2048})  # javac runs inside
    write_file(d, sid, "Get.java", JAVA_CLIENT)
    st, out, err, ex, _ = d.exec(sid, shell=f"java Get.java {url('api.test', '/auth')}",
                                 timeout_s=300)
    check(st == 200 and ex.get("code") == 0 and out == b"java 200 auth ok\n",
          "java (proxy and truststore from JAVA_TOOL_OPTIONS) with $API_KEY to api.test: 200",
          (ex, out, err[:1500], err[-1000:]))
    check(REAL.encode() not in out + err, "no real value in java's output")


def main():
    global UP, CREDS_TOOL, CLIENT
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(f"usage: {sys.argv[0]} AIRLOCKD AIRLOCK_SESSION CASE\ncases: {' '.join(CASES)}",
              file=sys.stderr)
        return 2
    binary, CLIENT, name = sys.argv[1:]
    if not os.access(binary, os.X_OK):
        print(f"SKIP: {binary} is not built")
        return SKIP
    CREDS_TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(binary))),
                              "creds", "airlock-creds")
    # the clients a case needs (java: javac's source launcher too)
    needs = {"creds_node": "node", "creds_git": "fcgiwrap", "creds_java": "java"}
    if name in needs and not shutil.which(needs[name]):
        print(f"SKIP: {name} needs {needs[name]}, which this machine lacks")
        return SKIP
    addr = host_addr()
    if not addr or not shutil.which("nginx") or not os.access(CREDS_TOOL, os.X_OK):
        print("SKIP: needs a non-loopback address, nginx and airlock-creds")
        return SKIP
    UP = Upstream(addr)
    # airlockd's netproxy trusts the test CA as a user's would: SSL_CERT_FILE
    # in airlockd's environment (kept for the proxies)
    os.environ["SSL_CERT_FILE"] = os.path.join(UP.dir, "ca.pem")
    base = tempfile.mkdtemp(prefix="airlockd-sesscreds-keys.")
    master = os.path.join(base, "master.key")
    subprocess.run([CREDS_TOOL, "key", "generate", master], check=True)
    config = {
        "proxies": {"hosts": [f"api.test={addr}", f"other.test={addr}",
                              f"x.corp.test={addr}"],
                    "master_key": master, "credential_store": os.path.join(base, "creds.store")},
        "grants": {"alice": {"allowedAddresses": [f"{addr}/32"],
                             "credentials": ["apikey", "npm", "ghost"]},
                   "bob": {"allowedAddresses": [f"{addr}/32"]}},
    }
    d = Daemon(binary, config, name=name)
    d.master = master
    d.store = os.path.join(base, "creds.store")

    def cleanup():
        UP.stop()
        shutil.rmtree(base, ignore_errors=True)
    return run_case(d, name, CASES[name], cleanup)


if __name__ == "__main__":
    sys.exit(main())
