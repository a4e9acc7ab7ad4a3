#!/usr/bin/env bash
# The engine benchmark: this tree's silo (Orleans, Grpc.AspNetCore), the silo of an earlier
# commit built side by side (default: the commit before the move to Orleans), and etcd (Debian's
# etcd-server, the store Kubernetes writes to) on a private loopback port, all in one run:
#   creates   CreateEndpoint over gRPC, 64 callers (etcd: Put of an endpoint-sized value), with
#             the embedded store's default durability and with fsync per commit (etcd always fsyncs)
#   watch     write → watch event latency, 100 watchers, 1,000 writes/s
#   memory    silo memory with 100,000 endpoints once idle activations are collected
#   start     cold start to serving
# Usage: bench/engine.sh [BASE_COMMIT]   (needs git, etcd; installs dotnet-gcdump into a temp dir)
#        WATCH_WARMUP=S: seconds of writes at the watch rate before the watch measurement (default 20, as the creates).
#        ONLY="watch creates" runs only those parts (start, creates, watch, memory; default all).
#        PIN=1 runs the server (silo or etcd) on CPU 0 and the load on CPU 1: the server is then the
#        bottleneck, so rates compare the servers' CPU per call, with far less spread between runs.
# This machine is shared and noisy: compare the ratios of one run.
set -euo pipefail
command -v etcd >/dev/null || { echo "etcd is not installed (apt-get install etcd-server)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
base_commit=${1:-${BASE:-42b0dc8}}
work=$(mktemp -d /tmp/cp-engine-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git -C "$root" worktree remove --force "$work/base" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

echo "# engine benchmark, $(nproc) cores, $(date -u +%FT%TZ); this tree: $(git -C "$root" rev-parse --short HEAD), base: $base_commit"
dotnet build -c Release "$root/src/Silo" -v q -nologo >/dev/null
dotnet build -c Release "$root/bench/ControlPlane.Bench" -v q -nologo >/dev/null
# The same tree published ReadyToRun, as the images are (src/Silo/Dockerfile): cold start only.
want start && dotnet publish "$root/src/Silo" -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true -o "$work/r2r" -v q -nologo >/dev/null
git -C "$root" worktree add -q --detach "$work/base" "$base_commit"
dotnet build -c Release "$work/base/src/Silo" -v q -nologo >/dev/null
want memory && dotnet tool install dotnet-gcdump --tool-path "$work/tools" >/dev/null 2>&1 || true
new_dll="$root/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll"
base_dll="$work/base/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll"
bench="$root/bench/ControlPlane.Bench/bin/Release/net10.0/ControlPlane.Bench.dll"
port=${PORT:-7181}
server_cpu=(); client_cpu=()
if [ "${PIN:-0}" = 1 ]; then server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); fi

start_silo() { # dll data [args...]: starts a silo ($silo), waits until it serves; $ms: ms to serving
  local dll=$1 data=$2; shift 2
  local t0; t0=$(date +%s%N)
  "${server_cpu[@]}" dotnet "$dll" --Silo:Port=$port --Silo:DataDirectory="$data" --Logging:LogLevel:Default=Warning --Dns:Enabled=false "$@" >"$data.log" 2>&1 &
  silo=$!; pids+=("$silo")
  until curl -sf --http2-prior-knowledge "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.02; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}
stop_silo() { kill "$silo"; wait "$silo" 2>/dev/null || true; }
cpu() { ps -o cputime= -p "$1" | tr -d ' '; }

start_etcd() { # fresh etcd on loopback ($etcd_pid); $ms: ms to healthy
  rm -rf "$work/etcd"
  local t0; t0=$(date +%s%N)
  "${server_cpu[@]}" etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls http://127.0.0.1:$((port + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((port + 1)) \
    --initial-cluster bench=http://127.0.0.1:$((port + 1)) --log-level error >"$work/etcd.log" 2>&1 &
  etcd_pid=$!; pids+=("$etcd_pid")
  until curl -sf "http://127.0.0.1:$port/health" | grep -q true; do
    kill -0 "$etcd_pid" 2>/dev/null || { echo "etcd exited:" >&2; cat "$work/etcd.log" >&2; exit 1; }
    sleep 0.02
  done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}
stop_etcd() { kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true; }

if want start; then
echo
echo "## Cold start to serving (fresh data directory)"
echo "| system | ms |"
echo "|---|---|"
for i in 1 2 3; do
  start_silo "$new_dll" "$work/s$i"; stop_silo; echo "| this tree (Orleans) | $ms |"
  start_silo "$work/r2r/ControlPlane.Silo.dll" "$work/r$i"; stop_silo; echo "| this tree, published ReadyToRun | $ms |"
  start_silo "$base_dll" "$work/b$i"; stop_silo; echo "| base $base_commit | $ms |"
  start_etcd; stop_etcd; echo "| etcd $(etcd --version | head -1 | awk '{print $3}') | $ms |"
done
fi

if want creates; then

for durability in default fsync; do
  extra=(); [ $durability = fsync ] && extra=(--Silo:SynchronousFull=true)
  for system in new base; do
    dll=$new_dll; [ $system = base ] && dll=$base_dll
    start_silo "$dll" "$work/c-$system-$durability" "${extra[@]}"
    echo; echo "### creates, $system, $durability durability"
    WARMUP_SECONDS=${WARMUP_SECONDS:-20} "${client_cpu[@]}" dotnet "$bench" "http://127.0.0.1:$port" creates | grep -v '^#'
    echo "silo CPU $(cpu "$silo")"
    stop_silo
  done
done
start_etcd
echo; echo "### puts, etcd"
WARMUP_SECONDS=${WARMUP_SECONDS:-20} "${client_cpu[@]}" dotnet "$bench" "http://127.0.0.1:$port" etcd-puts | grep -v '^#'
echo "etcd CPU $(cpu "$etcd_pid")"
stop_etcd
fi

if want watch; then

for system in new base; do
  dll=$new_dll; [ $system = base ] && dll=$base_dll
  start_silo "$dll" "$work/w-$system"
  echo; echo "### watch, $system"
  WARMUP_SECONDS=${WATCH_WARMUP:-20} "${client_cpu[@]}" dotnet "$bench" "http://127.0.0.1:$port" watch | grep -v '^#'
  stop_silo
done
start_etcd
echo; echo "### watch, etcd"
WARMUP_SECONDS=${WATCH_WARMUP:-20} "${client_cpu[@]}" dotnet "$bench" "http://127.0.0.1:$port" etcd-watch | grep -v '^#'
stop_etcd
fi

want memory || exit 0
echo; echo "## Silo memory with ${COUNT:=100000} endpoints, idle activations collected (idle timeout 10 s)"
echo "Live heap: the GC heap's live objects after a full collection (dotnet-gcdump); RSS: the process's resident memory then."
echo "| system | live heap empty MB | live heap loaded MB | live bytes per endpoint | RSS empty MB | RSS loaded MB | RSS bytes per endpoint |"
echo "|---|---|---|---|---|---|---|"
activations() { curl -s --http2-prior-knowledge "http://127.0.0.1:$port/metrics" | awk '/^orleans_catalog_activations\{/ { n += $NF } END { print n + 0 }'; }
heap() { "$work/tools/dotnet-gcdump" collect -p "$silo" -o "$work/$1.gcdump" >/dev/null 2>&1; "$work/tools/dotnet-gcdump" report "$work/$1.gcdump" 2>/dev/null | awk '/GC Heap bytes/ { gsub(",", "", $1); print $1; exit }'; }
for system in new base; do
  dll=$new_dll; [ $system = base ] && dll=$base_dll
  # The nodes' leases outlast the run: an expiring lease marks every endpoint of the node not
  # ready, which activates them all again (a workload of its own, not the idle state measured here).
  idle=--Cluster:IdleTimeout=00:00:10; [ $system = base ] && idle=--Runtime:IdleTimeout=00:00:10   # each reads only its own sections
  start_silo "$dll" "$work/m-$system" "$idle" --ControlPlane:NodeLeaseDuration=01:00:00
  empty_heap=$(heap empty-$system); empty=$(ps -o rss= -p "$silo")
  dotnet "$bench" "http://127.0.0.1:$port" memory "$COUNT" >/dev/null
  if [ $system = new ]; then
    # Orleans reports its activations: wait (up to 90 s) until the collector has taken the idle ones.
    for _ in $(seq 90); do sleep 1; [ "$(activations)" -lt 1000 ] && break; done
  else
    sleep 25   # the old runtime reports nothing: past its idle timeout and two collection quanta
  fi
  loaded_heap=$(heap loaded-$system); loaded=$(ps -o rss= -p "$silo")
  echo "| $system | $((empty_heap / 1048576)) | $((loaded_heap / 1048576)) | $(( (loaded_heap - empty_heap) / COUNT )) | $((empty / 1024)) | $((loaded / 1024)) | $(( (loaded - empty) * 1024 / COUNT )) |"
  stop_silo
done
echo; echo "Largest retained types, this tree, loaded:"
{ "$work/tools/dotnet-gcdump" report "$work/loaded-new.gcdump" 2>/dev/null || echo "(dotnet-gcdump report failed)"; } | sed -n 4,14p
