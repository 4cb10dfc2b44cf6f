#!/bin/bash
# run.sh AIRLOCK: `airlock run` a process that reads /proc/self/mountinfo
# (check_mounts.py) with a policy that makes one mount of every kind the
# plan has: the workspace and an allowWrite dir (read-write), protected
# files inside them (.git/hooks, .git/config, .bashrc, a denyWrite dir), a
# denyRead dir with an allowRead dir inside, root's own HOME and then a HOME
# under /tmp (bound read-only over the private /tmp), the airlock-connect helper (network on),
# and the system binds. Every mount must be nosuid and nodev, and read-only
# unless the plan makes it writable. Exit 0 pass, 1 fail, 77 skip.
set -u
AIRLOCK=${1:?usage: run.sh AIRLOCK}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v git >/dev/null || { echo "SKIP: needs git for a workspace with .git"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit 77; }

# /var/tmp: the sandbox has a private /tmp, and the workspace must be a
# host path it binds.
T=$(mktemp -d /var/tmp/airlock-mountflags.XXXXXX)
H=$(mktemp -d /tmp/airlock-mountflags-home.XXXXXX)
trap 'rm -rf "$T" "$H"' EXIT
ws=$T/ws extra=$T/extra denied=$T/denied
mkdir -p "$ws" "$extra/locked" "$denied/keep"
git -C "$ws" init -q || exit 1
touch "$ws/.bashrc" "$denied/secret"
cat >"$T/settings.json" <<JSON
{"sandbox": {"filesystem": {"allowWrite": ["$extra"], "denyRead": ["$denied"],
                            "allowRead": ["$denied/keep"], "denyWrite": ["$extra/locked"]},
             "network": {"allowedDomains": ["example.test"]}}}
JSON

cd "$ws" || exit 1
# Twice: with root's own HOME, as a real install runs, and with a HOME under
# /tmp (one more mount kind: bound read-only over the private /tmp).
rc=0
for home in "$HOME" "$H"; do
    extra_ro=()
    [ "$home" = "$H" ] && extra_ro=(--expect-ro "$H")
    HOME=$home "$AIRLOCK" run --settings "$T/settings.json" -- \
        python3 -c "$(cat "$HERE/check_mounts.py")" \
        --writable "$ws" --writable "$extra" \
        --expect-ro "$ws/.git/hooks" --expect-ro "$ws/.git/config" --expect-ro "$ws/.bashrc" \
        --expect-ro "$extra/locked" --expect-ro "$denied" --expect-ro "$denied/keep" \
        "${extra_ro[@]}"
    r=$?
    echo "check_mounts exit status (HOME=$home): $r"
    [ "$r" = 0 ] || rc=1
done
[ "$rc" = 0 ]
