#!/usr/bin/env bash
# Network policy: the NetworkPolicy-like rulesets through `nft` (bench/reference/nft-rate.sh
# policy) and the node agent's compilation and table programming (bench/Policy.Bench load) at the
# same size, in the same run; then the change latency on three hosts (bench/Policy.Bench latency).
# Needs root, nft, socat.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
reference=$root/bench/reference/nft-rate.sh
endpoints=${NP_ENDPOINTS:-1000}
rules=${NP_RULES:-20}
dotnet build -c Release "$root/bench/Policy.Bench" -v q -nologo >/dev/null
bench="$root/bench/Policy.Bench/bin/Release/net10.0/ControlPlane.Policy.Bench.dll"
echo "## NetworkPolicy-like rulesets through nft (reference)"
NP_ENDPOINTS=$endpoints NP_RULES=$rules bash "$reference" policy
echo
echo "## node agent: policy compilation + table (inet controlplane)"
dotnet "$bench" load "$endpoints" "$rules"
echo
echo "## node agent: change latency, three hosts"
dotnet "$bench" latency "${CHANGES:-100}"
