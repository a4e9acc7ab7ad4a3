#!/usr/bin/env bash
# What observability and security cost, measured in one run so the ratios count on a noisy machine:
#   api  CreateEndpoint and GetEndpoint over gRPC (bench/ControlPlane.Bench, 64 callers) against a
#        fresh silo per configuration, the silo pinned to CPU 0 and the bench to CPU 1 (SILO_CPUS,
#        BENCH_CPUS): the silo is then the bottleneck, so calls/s measure its CPU per call, and the
#        run-to-run spread falls from about ±20% unpinned to a few percent:
#          off        OTEL_SDK_DISABLED=true: no meter or span is collected, plain HTTP/2
#          metrics    the default: every ControlPlane.* meter collected, /metrics scraped each second
#          telemetry  metrics plus every span exported over OTLP/HTTP (to a sink in this script)
#          mtls       mutual TLS with client certificates (netctl pki), telemetry off
#          all        mutual TLS, metrics and traces
#   dns  dnsperf against our DNS server serving a generated cluster.local zone, server pinned to
#        CPU 0 and dnsperf to CPU 1: off (OTEL_SDK_DISABLED=true) against metrics on (Metrics:Listen,
#        scraped each second)
# Configurations are interleaved (REPS rounds of each, each round starting one configuration
# later) and the table gives the median and the ratio to "off". Usage: bench/security.sh [api|dns|all]   env: REPS (3), DURATION (10 s), DNS_SECONDS (10)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
reps=${REPS:-3}
export DURATION=${DURATION:-10} WARMUP_SECONDS=${WARMUP_SECONDS:-3}
dns_seconds=${DNS_SECONDS:-10}
work=$(mktemp -d /tmp/cp-security-XXXXXX)
port=${PORT:-7191}
silo_cpus=${SILO_CPUS:-0}
bench_cpus=${BENCH_CPUS:-1}
health=$((port + 1))
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "# security and telemetry cost, $(nproc) cores, $(date -u +%FT%TZ), $(git -C "$root" rev-parse --short HEAD)"
dotnet build -c Release "$root/src/Silo" -v q -nologo >/dev/null
dotnet build -c Release "$root/src/Cli" -v q -nologo >/dev/null
dotnet build -c Release "$root/src/DnsServer" -v q -nologo >/dev/null
dotnet build -c Release "$root/bench/ControlPlane.Bench" -v q -nologo >/dev/null
silo_dll="$root/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll"
dns_dll="$root/src/DnsServer/bin/Release/net10.0/ControlPlane.DnsServer.dll"
bench="$root/bench/ControlPlane.Bench/bin/Release/net10.0/ControlPlane.Bench.dll"
netctl="$root/src/Cli/bin/Release/net10.0/netctl.dll"

# Certificates: a cluster CA, the silo's server certificate and an admin client certificate.
pki="$work/pki"
dotnet "$netctl" pki init --dir "$pki" >/dev/null
dotnet "$netctl" pki issue --dir "$pki" --name silo --role silo >/dev/null
dotnet "$netctl" pki issue --dir "$pki" --name bench --role admin >/dev/null

# An OTLP/HTTP sink: accepts every export and discards it, so span export is paid in full by the silo.
sink_port=$((port + 2))
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Type", "application/x-protobuf"); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$sink_port" &
pids+=($!)

scrape() { # url: fetches it every second until killed
  while curl -sf -o /dev/null "$1"; do sleep 1; done
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

api_run() { # config scenario: one fresh silo, one bench run; prints calls/s
  local config=$1 scenario=$2 data="$work/data-$1-$2-$RANDOM" scheme=http env=() args=() client=()
  case $config in
    off) env=(OTEL_SDK_DISABLED=true) ;;
    metrics) ;;
    telemetry|all) env=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf) ;;
    mtls) env=(OTEL_SDK_DISABLED=true) ;;
  esac
  if [ "$config" = mtls ] || [ "$config" = all ]; then
    scheme=https
    args=(--Tls:Certificate="$pki/silo.crt" --Tls:Key="$pki/silo.key" --Tls:ClientCa="$pki/ca.crt")
    client=(NETCTL_CA="$pki/ca.crt" NETCTL_CERT="$pki/bench.crt" NETCTL_KEY="$pki/bench.key")
  fi
  mkdir -p "$data"
  env "${env[@]}" taskset -c "$silo_cpus" dotnet "$silo_dll" --Silo:Port=$port --Silo:HealthPort=$health --Silo:DataDirectory="$data" \
    --Logging:LogLevel:Default=Warning --Dns:Enabled=false "${args[@]}" >"$data.log" 2>&1 &
  local silo=$! scraper=
  pids+=("$silo")
  until curl -sf "http://127.0.0.1:$health/healthz" >/dev/null; do sleep 0.05; done
  if [ "$config" != off ] && [ "$config" != mtls ]; then scrape "http://127.0.0.1:$health/metrics" & scraper=$!; fi
  env "${client[@]}" taskset -c "$bench_cpus" dotnet "$bench" "$scheme://127.0.0.1:$port" "$scenario" > "$data.bench" 2>&1 || { cat "$data.bench" "$data.log" >&2; return 1; }
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null
  kill "$silo"; wait "$silo" 2>/dev/null || true
  # The table row: | silos | callers | connections | calls | failed | seconds | calls/s | p50 | p99 |
  awk -F'|' '/^\| 1 \|/ {gsub(/ /, "", $8); print $8}' "$data.bench"
  rm -rf "$data"
}

rounds() { # title runner config...: REPS interleaved rounds of "runner config", then the table of medians and ratios to the first config
  local title=$1 runner=$2; shift 2
  local configs=("$@") config m base i
  declare -A rates=()
  for ((r = 0; r < reps; r++)); do
    # Each round starts one configuration later, so that no configuration always follows the same one.
    for ((i = 0; i < ${#configs[@]}; i++)); do
      config=${configs[$(((i + r) % ${#configs[@]}))]}
      rates[$config]+="$($runner "$config") "
    done
  done
  base=$(tr ' ' '\n' <<<"${rates[${configs[0]}]}" | grep . | median)
  echo
  echo "## $title"
  echo "| configuration | runs | median | ratio to ${configs[0]} |"
  echo "|---|---|---|---|"
  for config in "${configs[@]}"; do
    m=$(tr ' ' '\n' <<<"${rates[$config]}" | grep . | median)
    printf '| %s | %s| %.0f | %.2f |\n' "$config" "${rates[$config]}" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {print a / b}')"
  done
}

api_creates() { api_run "$1" creates; }
api_gets() { api_run "$1" gets; }

api() {
  rounds "API creates over gRPC, 64 callers, ${DURATION} s × $reps rounds (calls/s)" api_creates off metrics telemetry mtls all
  rounds "API gets over gRPC, 64 callers, ${DURATION} s × $reps rounds (calls/s)" api_gets off metrics telemetry mtls all
}

dns_zone() { # dir: a cluster.local zone with 10,000 services and the query file for them
  awk -v d="$1" 'BEGIN {
    z = d "/cluster.local.zone"; q = d "/queries"
    print "$ORIGIN cluster.local.\n$TTL 30" > z
    print "@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30" > z
    print "@ IN NS ns.dns.cluster.local.\nns.dns IN A 10.96.0.10" > z
    for (i = 0; i < 10000; i++) {
      n = "svc-" i ".ns-" (i % 100) ".svc"
      print n " IN A 10.96." (int(i / 256) + 1) "." (i % 256) > z
      print n ".cluster.local A" > q
      if (i % 10 == 0) print "missing-" i ".ns-" (i % 100) ".svc.cluster.local A" > q
    }
  }'
}

dns_run() { # config: one DNS server, one dnsperf run; prints queries/s
  local config=$1 env=() args=() dport=$((port + 3)) mport=$((port + 4)) scraper=
  [ "$config" = off ] && env=(OTEL_SDK_DISABLED=true)
  [ "$config" = metrics ] && args=(--Metrics:Listen=127.0.0.1:$mport)
  env "${env[@]}" taskset -c 0 dotnet "$dns_dll" --Dns:Listen=127.0.0.1:$dport --Dns:ControlPlane= \
    --Dns:ZoneFiles:0="$work/dns/cluster.local.zone" --Dns:Threads=1 --Logging:LogLevel:Default=Warning "${args[@]}" >"$work/dns.log" 2>&1 &
  local server=$!
  pids+=("$server")
  until dig +short +time=1 +tries=1 -p $dport @127.0.0.1 svc-1.ns-1.svc.cluster.local A | grep -q 10.96; do sleep 0.1; done
  [ "$config" = metrics ] && { scrape "http://127.0.0.1:$mport/metrics" & scraper=$!; }
  taskset -c 1 dnsperf -s 127.0.0.1 -p $dport -d "$work/dns/queries" -l "$dns_seconds" -c 4 -q 200 -t 1 > "$work/dnsperf.out" 2>&1
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null
  kill "$server"; wait "$server" 2>/dev/null || true
  awk '/Queries per second:/ {print $4}' "$work/dnsperf.out"
}

dns() {
  mkdir -p "$work/dns"
  dns_zone "$work/dns"
  rounds "DNS over UDP, dnsperf (4 clients, 200 outstanding), ${dns_seconds} s × $reps rounds (queries/s)" dns_run off metrics
}

case $what in
  api) api ;;
  dns) dns ;;
  all) api; dns ;;
  *) echo "usage: bench/security.sh [api|dns|all]" >&2; exit 2 ;;
esac
