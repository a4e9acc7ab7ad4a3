#!/usr/bin/env bash
# Netlink programming rates: iproute2 (bench/reference/iproute2-rate.sh, one process per
# entry and -batch) and our library from one long-lived socket, in the same run. Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
reference=$root/bench/reference/iproute2-rate.sh
dotnet build -c Release "$root/bench/Dataplane.Bench" -v q -nologo >/dev/null
echo "## iproute2 (reference)"
N=${N:-10000} bash "$reference"
echo
echo "## ControlPlane.Dataplane.Linux (one socket, batched, ACK per 64 KiB chunk)"
dotnet "$root/bench/Dataplane.Bench/bin/Release/net10.0/ControlPlane.Dataplane.Bench.dll" ${COUNTS:-10000 20000}
