#!/usr/bin/env bash
# Scale-out benchmark, in one run on this machine:
#   1. CreateEndpoint writes/s (64 callers spread evenly over the silos) with 1, 2 and 3 silos on
#      PostgreSQL (scripts/cluster.sh: Redis membership, a private PostgreSQL 15 with its default
#      durability, fsync per commit) and with 1 silo on its embedded SQLite store; the CPU
#      seconds each process used over the run (warm-up included);
#   2. failover: SIGKILL → every moved object takes a write again, 10 rounds on 3 silos;
#   3. write → watch event latency with 1,000 watchers spread over 3 silos at 1,000 writes/s.
# Needs root, redis-server and postgresql-15. Usage: sudo bench/cluster.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-10}
dotnet build "$root/bench/ControlPlane.Bench" -c Release --nologo -v q >/dev/null
dotnet build "$root/src/Silo" -c Release --nologo -v q >/dev/null
dotnet build "$root/src/DnsServer" -c Release --nologo -v q >/dev/null
bench=("dotnet" "$root/bench/ControlPlane.Bench/bin/Release/net10.0/ControlPlane.Bench.dll")
export WARMUP_SECONDS=${WARMUP_SECONDS:-10}
work=$(mktemp -d /tmp/cpbench-XXXXXX)
chmod 755 "$work"   # PostgreSQL runs as the postgres user
hz=$(getconf CLK_TCK)

ticks() { # pid…: CPU time used so far (user + system), in clock ticks
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
seconds() { awk -v t="$1" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }'; }
setting() { (. "$1/cluster.env" && eval "echo \"\${$2:-}\""); }

pg_pids() { # the PostgreSQL server of cluster DIR and its backends
  local postmaster
  postmaster=$(setting "$1" POSTGRES_PID)
  echo "$postmaster" $(pgrep -P "$postmaster")
}

cpu_table=()
run_creates() { # store, label, addresses, "name:pid"… ("postgres:DIR" for the cluster's database)
  local store=$1 label=$2 addresses=$3
  shift 3
  local -A before
  local entry
  for entry in "$@"; do before[$entry]=$(cpu_of "$entry"); done
  "${bench[@]}" "$addresses" creates | tee "$work/$label.out" | grep -E '^\| [0-9]' | tail -1 | sed "s/^|/| $store |/"
  local row="| $label |"
  for entry in "$@"; do row+=" ${entry%%:*} $(seconds $(( $(cpu_of "$entry") - before[$entry] ))) s;"; done
  cpu_table+=("$row |")
}
cpu_of() { # "name:pid" or "postgres:DIR"
  case $1 in
    postgres:*) ticks $(pg_pids "${1#postgres:}") ;;
    *) ticks "${1#*:}" ;;
  esac
}

echo "# Scale-out benchmark, $(nproc) cores, $(date -u '+%F %T') UTC"
echo
echo "## CreateEndpoint writes/s"
echo "| store | silos | callers | connections per silo | calls | failed | seconds | calls/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"

# One silo on SQLite (the embedded default).
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$work/sqlite"
dotnet "$root/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll" --Silo:Port=$port --Silo:DataDirectory="$work/sqlite" --Dns:Enabled=false \
  --Logging:LogLevel:Default=Warning >"$work/sqlite.log" 2>&1 &
silo=$!
until curl -fs --http2-prior-knowledge "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.2; done
run_creates sqlite sqlite "http://127.0.0.1:$port" "silo:$silo"
kill $silo; wait $silo 2>/dev/null || true

for n in 1 2 3; do
  dir="$work/pg$n"
  "$root/scripts/cluster.sh" up "$dir" --silos $n --agents 0 >/dev/null
  kill "$(setting "$dir" DNS_PID)"   # the cluster DNS server is not part of this load
  pids=()
  for i in $(seq $n); do pids+=("silo$i:$(setting "$dir" "SILO${i}_PID")"); done
  pids+=("postgres:$dir")
  run_creates postgres "postgres, $n silo$([ $n -gt 1 ] && echo s)" "$(setting "$dir" SILO_ADDRESSES)" "${pids[@]}"
  if [ $n -lt 3 ]; then "$root/scripts/cluster.sh" down "$dir" >/dev/null; fi
done
echo
echo "## CPU seconds per process over each run (warm-up included)"
echo "| run | processes |"
echo "|---|---|"
printf '%s\n' "${cpu_table[@]}"

echo
"${bench[@]}" "$(setting "$work/pg3" SILO_ADDRESSES)" failover "$work/pg3" "$rounds" | grep -v '^#'
echo
"${bench[@]}" "$(setting "$work/pg3" SILO_ADDRESSES)" watchers 1000 | grep -v '^#'
"$root/scripts/cluster.sh" down "$work/pg3" >/dev/null
rm -rf "$work"
