#!/usr/bin/env bash
# netctl apply of 1,000 objects against the same 1,000 writes through the API client, in one run
# against one fresh Release silo. Prints a markdown table with the ratio per round.
# Usage: bench/cli.sh [objects] [rounds]     (PORT, PARALLEL override the defaults)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
objects=${1:-1000}
rounds=${2:-3}
port=${PORT:-26170}
dotnet build -c Release "$root/src/Silo" -v q -nologo >/dev/null
dotnet build -c Release "$root/src/Cli" -v q -nologo >/dev/null
dotnet build -c Release "$root/bench/Cli.Bench" -v q -nologo >/dev/null
data=$(mktemp -d /tmp/cliw-bench-data-XXXXXX)
dotnet "$root/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll" --Silo:Port=$port --Silo:DataDirectory="$data" \
  --Logging:LogLevel:Default=Warning --Dns:Enabled=false >"$data/silo.log" 2>&1 &
silo=$!
trap 'kill $silo 2>/dev/null; wait $silo 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf --http2-prior-knowledge "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
dotnet "$root/bench/Cli.Bench/bin/Release/net10.0/ControlPlane.Cli.Bench.dll" "http://127.0.0.1:$port" \
  "$root/src/Cli/bin/Release/net10.0/netctl.dll" "$objects" "$rounds"
echo "silo CPU seconds: $(ps -o cputime= -p $silo)"
