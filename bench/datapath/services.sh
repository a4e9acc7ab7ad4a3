#!/usr/bin/env bash
# Service table programming: the kube-proxy-style ruleset through `nft`
# (bench/reference/nft-rate.sh svc) and the node agent's table (data-only maps, element
# changes over netlink, bench/Services.Bench) at the same sizes, in the same run. Needs root, nft.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
reference=$root/bench/reference/nft-rate.sh
sizes=${SERVICES:-"1000 10000"}
dotnet build -c Release "$root/bench/Services.Bench" -v q -nologo >/dev/null
echo "## kube-proxy-style ruleset through nft (reference)"
SERVICES="$sizes" REPS=${REPS:-3} bash "$reference" svc
echo
echo "## node agent table (inet controlplane), 5 endpoints per service"
# shellcheck disable=SC2086
dotnet "$root/bench/Services.Bench/bin/Release/net10.0/ControlPlane.Services.Bench.dll" $sizes
