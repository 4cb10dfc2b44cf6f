#!/usr/bin/env bash
# Fails when airlockd's layers (docs/airlockd.md, "Layers") are crossed:
#   * a core file (airlockd/src/core, airlockd/include/airlockd/core)
#     includes microhttpd.h, an api header or an adapters header, or names
#     a libmicrohttpd type or function (MHD_*);
#   * an adapters file includes microhttpd.h or an api header;
#   * airlockd's headers include each other in a circle (the edge list goes
#     through tsort, which reports loops).
# Run from anywhere; it checks the files git knows.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
api_inc='#[[:space:]]*include[[:space:]]*[<"](microhttpd\.h|airlockd/api/|request\.h)'
adapters_inc='#[[:space:]]*include[[:space:]]*"airlockd/adapters/'

files_of() { git ls-files -- "$@" | grep -E '\.[ch]$' || true; }

core=$(files_of airlockd/src/core airlockd/include/airlockd/core)
adapters=$(files_of airlockd/src/adapters airlockd/include/airlockd/adapters)

if [ -n "$core" ] && hits=$(echo "$core" | xargs grep -nE "$api_inc|$adapters_inc"); then
  echo "check-layers: core includes the api or the adapters:"
  echo "$hits"
  fail=1
fi
if [ -n "$core" ] && hits=$(echo "$core" | xargs grep -nE '\bMHD_'); then
  echo "check-layers: core names libmicrohttpd:"
  echo "$hits"
  fail=1
fi
if [ -n "$adapters" ] && hits=$(echo "$adapters" | xargs grep -nE "$api_inc"); then
  echo "check-layers: adapters include the api:"
  echo "$hits"
  fail=1
fi

# The header graph: one "including included" pair per line. A quoted name
# is looked up as airlockd's headers are: in airlockd/include, then beside
# the including file. Headers from elsewhere (airlock/*.h) are left out.
edges=$(
  for h in $(files_of 'airlockd/*.h'); do
    dir=$(dirname "$h")
    sed -nE 's/^#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/p' "$h" | while read -r inc; do
      for cand in "airlockd/include/$inc" "$dir/$inc"; do
        if [ -f "$cand" ]; then
          echo "$h $cand"
          break
        fi
      done
    done
    echo "$h $h" # every header is a node, even one that includes nothing
  done
)
if ! loops=$(echo "$edges" | tsort 2>&1 >/dev/null) || [ -n "$loops" ]; then
  echo "check-layers: airlockd's headers include each other in a circle:"
  echo "$loops"
  fail=1
fi

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "check-layers: ok"
