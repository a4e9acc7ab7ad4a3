#!/usr/bin/env bash
# DNS benchmark: the reference servers (Knot, NSD, BIND, Unbound, dnsmasq) and ours, serving the
# same generated cluster.local zone in the same run of ../shared/bench/dns-anchors/run.sh, then
# the memory our index takes per record. Usage: bench/dns/run.sh  (env passes through, e.g.
# DURATION=5 REPS=1 for a quick run). Needs root (the script installs the servers).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
anchors=${ANCHORS:-$root/../shared/bench/dns-anchors/run.sh}
dotnet build -c Release "$root/src/DnsServer" -v q -nologo >/dev/null
dll="$root/src/DnsServer/bin/Release/net10.0/ControlPlane.DnsServer.dll"
results=${RESULTS_DIR:-$(mktemp -d)}
mkdir -p "$results"
EXTRA_NAME=controlplane \
EXTRA_CMD="dotnet $dll --Dns:Listen=127.0.0.1:{PORT} --Dns:ControlPlane= --Dns:ZoneFiles:0={ZONEFILE} --Dns:Threads={THREADS} --Logging:LogLevel:Default=Warning" \
KEEP=1 RESULTS_DIR="$results" bash "$anchors" 2> "$results/anchors.log"
zone=$(grep -o '/tmp/[^ ]*cluster.local.zone' "$results/anchors.log" | head -1)
if [ -n "$zone" ] && [ -f "$zone" ]; then
  echo
  echo "memory: $(timeout 20 dotnet "$dll" --Dns:Listen=127.0.0.1:0 --Dns:ControlPlane= --Dns:ZoneFiles:0="$zone" | grep -m1 'static zones')"
  rm -rf "$(dirname "$(dirname "$zone")")"
fi
