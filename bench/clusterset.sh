#!/usr/bin/env bash
# ClusterSet benchmarks (bench/ClusterSet.Bench; results in bench/clusterset.md):
#   latency: export → resolvable and reachable in the peer cluster, 100 exports, beside a local
#            service in the same run (two clusters of one host each, agents in namespaces; root)
#   rejoin:  a peer with 1,000 exports: the importer's memory (live GC heap by dotnet-gcdump, and
#            RSS) and the time to import them on joining and after the peer was killed and restarted
# Usage: bench/clusterset.sh [latency|rejoin|all] [count]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet build -c Release "$root/bench/ClusterSet.Bench" -v q -nologo >/dev/null
dotnet tool install dotnet-gcdump --tool-path "$work/tools" >/dev/null 2>&1 || true
[ -x "$work/tools/dotnet-gcdump" ] && export GCDUMP="$work/tools/dotnet-gcdump"
bench="$root/bench/ClusterSet.Bench/bin/Release/net10.0/ControlPlane.ClusterSet.Bench.dll"
run() { (cd "$work" && dotnet "$bench" "$@" 2> >(grep -v -e '^\s*[0-9]* service, ClusterSetIP' -e 'Watchdog' >&2)); }
case $what in
  all) run latency ${2:-100}; echo; run rejoin ${2:-1000} ;;
  *) run "$what" ${2:-} ;;
esac
