#!/bin/bash
# The process split of airlock-gitproxy (docs/gitproxy.md, "Processes"),
# checked on the running processes during an inspected push:
#  * the front's zygote and the connection's worker run as an unprivileged
#    user, with seccomp in filter mode (2) and no_new_privs;
#  * a scan of their memory (/proc/PID/mem, every readable mapping) finds
#    none of the master key, the token key or the real upstream token;
#  * the key holder's memory does hold them (so the scan can find them).
# The push waits in the upstream's pre-receive hook, after every check of
# the proxy ran, so the worker is alive with everything it ever touched.
# Usage: procsplit.sh BUILD_DIR
set -u
. "$(dirname "$0")/../../integration/gitproxy/require.sh"
require_root_and_tools "reading other processes' memory"
. "$(dirname "$0")/../../integration/gitproxy/env.sh"

PS=$(free_port)
sed -e "s/\"listeners\": \[.*\]}/\"listeners\": []}/" "$STATE/gitproxy.json" > "$STATE/gitproxy-split.json"
"$PROXY" --config "$STATE/gitproxy-split.json" --listen "127.0.0.1:$PS=sA" --user nobody \
    >/dev/null 2>"$T/split.log" &
KEYD=$!
PIDS+=($KEYD)
wait_port "$PS"

# The upstream holds the push in its pre-receive hook until we say so.
HOOK=$SRV/o/r.git/hooks/pre-receive
printf '#!/bin/sh\ntouch %s/hook-entered\nfor i in $(seq 1 600); do [ -e %s/hook-release ] && exit 0; sleep 0.1; done\nexit 1\n' \
    "$T" "$T" > "$HOOK"
chmod +x "$HOOK"
g "$TOK" clone -q "http://127.0.0.1:$PS/git.test/o/r.git" "$T/split" >"$OUT/split-clone" 2>&1 ||
    { fail split_clone "$OUT/split-clone"; exit 1; }
(cd "$T/split" && git checkout -q -b agent/split && head -c 300000 /dev/urandom > s.bin &&
    echo "plain text" > notes.txt && git add -A && git commit -qm split)
g "$TOK" -C "$T/split" push origin agent/split >"$OUT/split-push" 2>&1 &
PUSH=$!
for _ in $(seq 1 300); do [ -e "$T/hook-entered" ] && break; sleep 0.1; done
[ -e "$T/hook-entered" ] || { fail split_push_reached_upstream "$OUT/split-push"; exit 1; }

ZYGOTE=$(pgrep -P "$KEYD" | head -1)
WORKER=$(pgrep -P "$ZYGOTE" | head -1)
PROCMEM_DIR="$(dirname "$0")/../../lib" python3 - "$KEYD" "$ZYGOTE" "$WORKER" "$STATE/master.key" "$STATE/k2.key" "$REAL_TOKEN" \
    >"$OUT/split-scan" 2>&1 <<'PY'
import os, sys

sys.path.insert(0, os.environ["PROCMEM_DIR"])
from procmem import hardened, scan  # noqa: E402

keyd, zygote, worker = (int(x) for x in sys.argv[1:4])
secrets = {
    "master key": open(sys.argv[4], "rb").read(),
    "token key": open(sys.argv[5], "rb").read(),
    "real token": sys.argv[6].encode(),
}
for name, raw in list(secrets.items()):
    if len(raw) == 32:  # a raw key: also look for it as hex
        secrets[name + " (hex)"] = raw.hex().encode()

bad = 0
for role, pid in (("zygote", zygote), ("worker", worker)):
    ok, line = hardened(pid)
    print("%s %s -> %s" % (role, line, "ok" if ok else "BAD"))
    bad |= not ok
    found = scan(pid, secrets)
    print("%s memory: %s" % (role, ", ".join(sorted(found)) if found else "none of the secrets"))
    bad |= bool(found)
found = scan(keyd, secrets)
print("key holder memory: %s" % ", ".join(sorted(found)))
for need in ("master key", "token key", "real token"):
    if need not in found:
        print("the key holder should hold the %s (else this scan proves nothing)" % need)
        bad = 1
sys.exit(1 if bad else 0)
PY
scan_rc=$?
touch "$T/hook-release"
wait "$PUSH"
push_rc=$?
rm -f "$HOOK"
[ $scan_rc = 0 ] && pass split_memory_and_privileges || fail split_memory_and_privileges "$OUT/split-scan"
[ $push_rc = 0 ] && [ "$(upstream_ref refs/heads/agent/split)" = "$(git -C "$T/split" rev-parse HEAD)" ] &&
    pass split_push_landed || fail split_push_landed "$OUT/split-push"
cat "$OUT/split-scan"
echo "procsplit: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
