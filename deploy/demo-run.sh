#!/usr/bin/env bash
# Runs a demo command in the sandbox with `airlock run` (needs a build in
# build/, as ./deploy/quickstart.sh makes). Non-interactive; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
echo "== airlock run: a shell in the sandbox looks around"
demo=$(mktemp -d /tmp/airlock-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
cd "$demo"
"$root/build/cli/airlock" run -c '
  echo "in the sandbox as $(id -un), pid $$, cwd $PWD"
  echo hello > note.txt && echo "workspace write: ok ($(cat note.txt))"
  touch /etc/airlock-demo 2>/dev/null && echo "/etc write: ALLOWED" || echo "/etc write: refused"
  if [ ! -e ~/.ssh ]; then echo "~/.ssh: absent"
  elif ! n=$(ls -A ~/.ssh 2>/dev/null); then echo "~/.ssh: hidden (unreadable)"
  elif [ -z "$n" ]; then echo "~/.ssh: hidden (an empty mount over it)"
  else echo "~/.ssh: VISIBLE ($(printf "%s\n" "$n" | wc -l) entries)"; fi
  (exec 3<>/dev/tcp/1.1.1.1/80) 2>/dev/null && echo "network: OPEN" || echo "network: none"
  echo "processes visible: $(ls /proc | grep -c "^[0-9]")"
' || true
echo
echo "Try it yourself:  $root/build/cli/airlock run -- bash"
echo "Check a policy:    $root/build/cli/airlock doctor"
