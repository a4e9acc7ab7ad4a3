#!/usr/bin/env bash
# Control-plane benchmarks. Each scenario gets a fresh Release silo on a private data directory:
#   creates  CreateEndpoint throughput over gRPC, 64 concurrent callers over 8 HTTP/2 connections (CALLERS, CONNECTIONS)
#   watch    write→watch-event latency, 100 watchers, 1,000 writes/s
# Usage: bench/run.sh [creates|watch|all]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
dotnet build -c Release "$root/src/Silo" -v q -nologo >/dev/null
dotnet build -c Release "$root/bench/ControlPlane.Bench" -v q -nologo >/dev/null
port=${PORT:-7171}

run_scenario() {
  local scenario=$1 data silo
  data=$(mktemp -d)
  dotnet "$root/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll" --Silo:Port=$port --Silo:DataDirectory="$data" \
    --Logging:LogLevel:Default=Warning --Dns:Enabled=false >"$data/silo.log" 2>&1 &
  silo=$!
  for _ in $(seq 100); do curl -sf --http2-prior-knowledge "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  /usr/bin/time -f "bench client CPU seconds: %U user + %S system" \
    dotnet "$root/bench/ControlPlane.Bench/bin/Release/net10.0/ControlPlane.Bench.dll" "http://127.0.0.1:$port" "$scenario"
  echo "silo CPU seconds: $(ps -o cputime= -p $silo)"
  kill $silo; wait $silo 2>/dev/null || true
  rm -rf "$data"
}

case $what in
  all) run_scenario creates; run_scenario watch ;;
  *) run_scenario "$what" ;;
esac
