#!/usr/bin/env bash
# Reference: how fast iproute2 programs the entries a node agent keeps (VXLAN FDB entries,
# neighbours, routes), one `ip`/`bridge` process per entry and through `-batch`, in a private
# network namespace that is removed at exit. Prints one Markdown table.
# Usage: bench/reference/iproute2-rate.sh   (env: N entries per batch run, default 10000;
#        SINGLE entries for the one-process-per-entry runs, default 500). Needs root, iproute2.
set -euo pipefail
n=${N:-10000}
single=${SINGLE:-500}
ns=cpref-ip-$$
work=$(mktemp -d /tmp/cpref-ip-XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
# The underlay: one end of a veth pair with a /16, so every gateway and VTEP below is on-link.
in_ns ip link add under type veth peer name under-peer
in_ns ip addr add 10.200.0.1/16 dev under
in_ns ip link set under-peer up
in_ns ip link set under up
in_ns ip link add vx type vxlan id 4242 local 10.200.0.1 dstport 4789 nolearning
in_ns ip link set vx up

mac() { printf '02:%02x:%02x:%02x:%02x:%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)) 1; }
addr() { printf '%s.%d.%d' "$1" $(($2 >> 8 & 255)) $(($2 & 255)); } # prefix(two octets) index
# Routes: /24s out of 10.32.0.0/11 (the first 8192), then /28s out of 10.64.0.0/12.
route_prefix() { if [ "$1" -lt 8192 ]; then printf '10.%d.%d.0/24' $((32 + $1 / 256)) $(($1 % 256)); else printf '10.%d.%d.%d/28' $((64 + ($1 - 8192) / 4096)) $((($1 - 8192) / 16 % 256)) $((($1 - 8192) % 16 * 16)); fi; }
now() { date +%s%N; }
row() { # what entries t0 t1
  local ms=$(( ($4 - $3) / 1000000 ))
  [ "$ms" -gt 0 ] || ms=1
  printf '| %s | %d | %d.%03d | %d |\n' "$1" "$2" $((ms / 1000)) $((ms % 1000)) $(( $2 * 1000 / ms ))
}
flush() { # between runs; the namespace goes at exit with whatever is left
  in_ns bridge fdb flush dev vx >/dev/null 2>&1 || true
  in_ns ip neigh flush dev vx >/dev/null 2>&1 || true
  in_ns ip route flush table 100 >/dev/null 2>&1 || true
}

echo "| $(ip -V | grep -o 'iproute2-[^ ,]*') | entries | seconds | entries/s |"
echo "|---|---|---|---|"

# One process per entry (what a shell-driven agent does).
t0=$(now)
for ((i = 1; i <= single; i++)); do in_ns bridge fdb append "$(mac "$i")" dev vx dst "$(addr 10.200 $((i % 65000 + 2)))"; done
row "FDB, one process per entry" "$single" "$t0" "$(now)"
flush
t0=$(now)
for ((i = 1; i <= single; i++)); do in_ns ip neigh replace "$(addr 10.201 "$i")" lladdr "$(mac "$i")" dev vx nud permanent; done
row "neighbour, one process per entry" "$single" "$t0" "$(now)"
flush
t0=$(now)
for ((i = 0; i < single; i++)); do in_ns ip route replace "$(route_prefix "$i")" via "$(addr 10.200 $((i + 2)))" dev under onlink table 100; done
row "route with its own gateway, one process per entry" "$single" "$t0" "$(now)"
flush

# Batches: one process, one netlink socket.
for ((i = 1; i <= n; i++)); do echo "fdb append $(mac "$i") dev vx dst $(addr 10.200 $((i % 65000 + 2)))"; done >"$work/fdb"
for ((i = 1; i <= n; i++)); do echo "neigh replace $(addr 10.201 "$i") lladdr $(mac "$i") dev vx nud permanent"; done >"$work/neigh"
for ((i = 0; i < n; i++)); do echo "route replace $(route_prefix "$i") via $(addr 10.200 $((i % 65000 + 2))) dev under onlink table 100"; done >"$work/route"
for ((i = 0; i < n; i++)); do echo "nexthop replace id $((i + 1)) via $(addr 10.200 $((i % 65000 + 2))) dev under onlink"; done >"$work/nexthop"
for ((i = 0; i < n; i++)); do echo "route replace $(route_prefix "$i") nhid $((i + 1)) table 100"; done >"$work/nhroute"

t0=$(now); in_ns bridge -batch "$work/fdb"; row "FDB, bridge -batch" "$n" "$t0" "$(now)"
t0=$(now); in_ns ip -batch "$work/neigh"; row "neighbour, ip -batch" "$n" "$t0" "$(now)"
t0=$(now); in_ns ip -batch "$work/route"; row "route with its own gateway, ip -batch" "$n" "$t0" "$(now)"
flush
t0=$(now); in_ns ip -batch "$work/nexthop"; in_ns ip -batch "$work/nhroute"; row "nexthop object + route, ip -batch" "$n" "$t0" "$(now)"
