# shellcheck shell=bash
# Sourced, before env.sh, by the tests that run airlock as root against
# env.sh's upstream. require_root_and_tools WHAT skips the test (exit 77)
# unless it runs as root with the tools env.sh starts the upstream with;
# WHAT names what needs root.
require_root_and_tools() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: $1 needs root"
        exit 77
    fi
    for tool in nginx fcgiwrap git curl python3; do
        command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
    done
}
