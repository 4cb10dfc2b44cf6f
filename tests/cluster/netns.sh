#!/usr/bin/env bash
# The test hosts of tests/cluster and bench/cluster: one bridge on the host
# and N network namespaces, each joined to it by a veth pair, with addresses
# on a /24 of 10.231.0.0/16 that no route of the host uses yet.
#   netns.sh up [N]      makes them (default N = 3); prints "TAG SUB": the
#                        bridge is albrTAG with 10.231.SUB.1/24, namespace i
#                        (1..N) is alnTAG-i with 10.231.SUB.1i on its eth0
#                        (/run/netns/alnTAG-i), the host side is alvTAGi
#   netns.sh down TAG    removes exactly those (namespaces alnTAG-*, the
#                        bridge albrTAG and its veths); never anything else
# TAG is 4 random hex digits, so cases run in parallel never share a name;
# SUB is retried while `ip route` or an address of the host shows it used.
# Needs root and iproute2 (`ip`).
set -euo pipefail

up() {
    local n=${1:-3} tag sub i ns
    if [ "$n" -lt 1 ] || [ "$n" -gt 9 ]; then
        echo "netns.sh: 1 to 9 namespaces" >&2
        exit 2
    fi
    for _ in $(seq 1 50); do
        tag=$(printf %04x $((RANDOM)))
        sub=$((100 + RANDOM % 150))
        ip link show "albr$tag" >/dev/null 2>&1 && continue
        ip -4 route show | grep -q "^10\.231\.$sub\." && continue
        ip -4 addr show | grep -q " 10\.231\.$sub\." && continue
        # claim the name: a parallel `up` that drew the same tag fails here
        ip link add "albr$tag" type bridge 2>/dev/null || continue
        # (the route of an address appears once the link is up)
        if ! ip addr add "10.231.$sub.1/24" dev "albr$tag" 2>/dev/null ||
            ! ip link set "albr$tag" up ||
            [ "$(ip -4 route show | grep -c "^10\.231\.$sub\.")" != 1 ]; then
            ip link del "albr$tag"
            continue
        fi
        for i in $(seq 1 "$n"); do
            ns=aln$tag-$i
            ip netns add "$ns"
            ip link add "alv$tag$i" type veth peer name eth0 netns "$ns"
            ip link set "alv$tag$i" master "albr$tag" up
            ip -n "$ns" addr add "10.231.$sub.1$i/24" dev eth0
            ip -n "$ns" link set lo up
            ip -n "$ns" link set eth0 up
        done
        echo "$tag $sub"
        return 0
    done
    echo "netns.sh: no free tag and subnet after 50 tries" >&2
    exit 1
}

down() {
    local tag=$1 ns
    [[ "$tag" =~ ^[0-9a-f]{4}$ ]] || { echo "netns.sh: bad tag $tag" >&2; exit 2; }
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^aln$tag-[0-9]$" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    for link in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^alv${tag}[0-9]$" || true); do
        ip link del "$link" 2>/dev/null || true
    done
    ip link del "albr$tag" 2>/dev/null || true
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    down) down "${2:?netns.sh down TAG}" ;;
    *) echo "usage: netns.sh up [N] | down TAG" >&2; exit 2 ;;
esac
