#!/usr/bin/env bash
# Fails when C sources call a function the style guide bans.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|system|strtok|tmpnam)[[:space:]]*\('
if hits=$(git ls-files '*.c' '*.h' | xargs -r grep -nE "$pattern"); then
  echo "banned functions used:"
  echo "$hits"
  exit 1
fi
echo "check-banned: ok"
