#!/usr/bin/env bash
# DNS benchmark: the reference servers (Knot, NSD, BIND, Unbound, dnsmasq) and ours serving the
# same generated cluster.local zone in the same run of bench/reference/dns-servers.sh, then the
# memory our index takes per record. Usage: bench/dns/run.sh  (env passes through, e.g.
# DURATION=5 REPS=1 for a quick run, SERVERS="knot nsd" for fewer references). Needs root (the
# reference script installs the servers).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dotnet build -c Release "$root/src/DnsServer" -v q -nologo >/dev/null
dll="$root/src/DnsServer/bin/Release/net10.0/ControlPlane.DnsServer.dll"
work=$(mktemp -d /tmp/cp-dnsbench-XXXXXX)
trap 'rm -rf "$work"' EXIT
WORK="$work" EXTRA_NAME=controlplane \
EXTRA_CMD="dotnet $dll --Dns:Listen=127.0.0.1:{PORT} --Dns:ControlPlane= --Dns:ZoneFiles:0={ZONEFILE} --Dns:Threads={THREADS} --Logging:LogLevel:Default=Warning" \
  bash "$root/bench/reference/dns-servers.sh"
echo
echo "memory: $(timeout 20 dotnet "$dll" --Dns:Listen=127.0.0.1:0 --Dns:ControlPlane= --Dns:ZoneFiles:0="$work/cluster.local.zone" | grep -m1 'static zones')"
