#!/usr/bin/env bash
# CNI ADD → workload reachable from another host, p50/p99 over COUNT containers (default 100),
# with the plugin as installed (Native AOT, scripts/install-cni.sh) and cnitool
# (scripts/build-cnitool.sh). "breakdown" instead times the plugin's parts (process start,
# a call to the agent, the agent's attach alone, a direct ADD).
# Usage: bench/cni.sh [COUNT] [breakdown]      (as root: it makes namespaces)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
plugin=$(mktemp -d /tmp/cniw-bench.XXXXXX)
trap 'rm -rf "$plugin"' EXIT
"$root/scripts/build-cnitool.sh" >/dev/null
"$root/scripts/install-cni.sh" "$plugin" >/dev/null
dotnet build -c Release "$root/bench/Cni.Bench" -v q -nologo >/dev/null
CNI_PLUGIN="$plugin/controlplane" dotnet "$root/bench/Cni.Bench/bin/Release/net10.0/ControlPlane.Cni.Bench.dll" "${1:-100}" ${2:-}
