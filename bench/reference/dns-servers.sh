#!/usr/bin/env bash
# Reference: authoritative DNS servers (Knot DNS, NSD, BIND 9, Unbound with an auth-zone, and
# dnsmasq from a hosts file, the kube-dns baseline) serving one generated Kubernetes-style
# cluster.local zone, measured with dnsperf over UDP on loopback, plus one extra server given as a
# command (the server under test). Each server runs with one thread pinned to SERVER_CPU (0),
# dnsperf pinned to CLIENT_CPU (1); queries per second are the median of REPS runs of DURATION
# seconds, and "per CPU-second" divides them by the CPU the server used (one dnsperf core tops out
# below what the fastest servers answer, so compare that column too).
#
# Usage: bench/reference/dns-servers.sh     (as root: installs missing packages with apt-get)
# Env:   SERVERS ("knot nsd bind unbound dnsmasq"), DURATION (10), REPS (3), BASE_PORT (5301),
#        N_SVC (10000 ClusterIP services), N_NS (100 namespaces), N_HEADLESS (1000 headless
#        services) with N_EP (5) endpoints each, N_SRV (2000 services with an SRV record),
#        EXTRA_NAME / EXTRA_CMD: one more server; EXTRA_CMD may use {PORT}, {ZONEFILE}, {THREADS}
#        and must stay in the foreground. WORK: keep the zone and the query file in this folder.
# Query mix: 80% ClusterIP A, 10% headless A (N_EP records), 5% SRV, 5% NXDOMAIN.
# Every server is started here and stopped by its PID; the work folder is removed at exit
# unless WORK was given.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
servers=${SERVERS-"knot nsd bind unbound dnsmasq"}
duration=${DURATION:-10}; reps=${REPS:-3}; port=${BASE_PORT:-5301}
server_cpu=${SERVER_CPU:-0}; client_cpu=${CLIENT_CPU:-1}
n_svc=${N_SVC:-10000}; n_ns=${N_NS:-100}; n_headless=${N_HEADLESS:-1000}; n_ep=${N_EP:-5}; n_srv=${N_SRV:-2000}
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; keep=1; else work=$(mktemp -d /tmp/cpref-dns-XXXXXX); keep=0; fi
pid=; made_rc=
cleanup() {
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
  [ -z "$made_rc" ] || rm -f "$made_rc"
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# Packages: installed without starting their daemons (policy-rc.d), so nothing runs that this
# script did not start.
need=()
for pair in dnsperf:dnsperf dig:bind9-dnsutils knotd:knot nsd:nsd named:bind9 unbound:unbound dnsmasq:dnsmasq-base; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  rc=/usr/sbin/policy-rc.d
  if [ ! -e $rc ]; then printf '#!/bin/sh\nexit 101\n' >$rc; chmod +x $rc; made_rc=$rc; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  [ -z "$made_rc" ] || { rm -f "$made_rc"; made_rc=; }
fi

# The zone (RFC 1035 text), a hosts file and SRV lines for dnsmasq, and the query file.
zone=$work/cluster.local.zone
awk -v svc="$n_svc" -v nns="$n_ns" -v headless="$n_headless" -v eps="$n_ep" -v srv="$n_srv" \
    -v hosts="$work/hosts" -v srvs="$work/dnsmasq-srv.conf" -v queries="$work/queries" '
  function ip(first, i) { return first "." int(i / 65536) % 256 "." int(i / 256) % 256 "." i % 256 }
  function name(kind, i) { return kind "-" i ".ns-" i % nns ".svc.cluster.local" }
  BEGIN {
    srand(7)
    print "$ORIGIN cluster.local."
    print "$TTL 30"
    print "@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30"
    print "@ IN NS ns.dns.cluster.local."
    print "ns.dns IN A 10.96.0.10"
    print "kubernetes.default.svc IN A 10.96.0.1"
    print "10.96.0.1 kubernetes.default.svc.cluster.local" > hosts
    for (i = 0; i < svc; i++) {
      print name("svc", i) ". IN A " ip(10, 6291456 + 256 + i)
      print ip(10, 6291456 + 256 + i) " " name("svc", i) > hosts
      if (i < srv) {
        print "_http._tcp." name("svc", i) ". IN SRV 0 100 80 " name("svc", i) "."
        print "srv-host=_http._tcp." name("svc", i) "," name("svc", i) ",80,0,100" > srvs
      }
    }
    for (i = 0; i < headless; i++)
      for (e = 0; e < eps; e++) {
        print name("hl", i) ". IN A " ip(10, 244 * 65536 + i * eps + e)
        print ip(10, 244 * 65536 + i * eps + e) " " name("hl", i) > hosts
      }
    for (q = 0; q < 100000; q++) {
      r = rand()
      if (r < 0.80) print name("svc", int(rand() * svc)) " A" > queries
      else if (r < 0.90) print name("hl", int(rand() * headless)) " A" > queries
      else if (r < 0.95) print "_http._tcp." name("svc", int(rand() * srv)) " SRV" > queries
      else print "missing-" q ".ns-0.svc.cluster.local A" > queries
    }
  }' /dev/null >"$zone"

start() { # name: starts the server on $port in the background ($pid)
  local dir=$work/$1; mkdir -p "$dir"
  case $1 in
  knot)
    cat >"$dir/knot.conf" <<EOF
server:
  rundir: "$dir"
  listen: 127.0.0.1@$port
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: "$dir"
template:
  - id: default
    storage: "$work"
zone:
  - domain: cluster.local
    file: "$zone"
EOF
    taskset -c "$server_cpu" knotd -c "$dir/knot.conf" >"$dir/log" 2>&1 & ;;
  nsd)
    cat >"$dir/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$port
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$work"
  database: ""
  zonelistfile: "$dir/zone.list"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  pidfile: "$dir/nsd.pid"
  verbosity: 0
  # Response rate limiting would drop most of a benchmark's queries from one address.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: cluster.local
  zonefile: "$zone"
EOF
    taskset -c "$server_cpu" nsd -d -c "$dir/nsd.conf" >"$dir/log" 2>&1 & ;;
  bind)
    cat >"$dir/named.conf" <<EOF
options {
  directory "$dir";
  pid-file "$dir/named.pid";
  listen-on port $port { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
};
controls { };
zone "cluster.local" { type primary; file "$zone"; };
EOF
    taskset -c "$server_cpu" named -g -n 1 -U 1 -c "$dir/named.conf" >"$dir/log" 2>&1 & ;;
  unbound)
    cat >"$dir/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$port
  port: $port
  num-threads: 1
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  use-syslog: no
  verbosity: 0
remote-control:
  control-enable: no
auth-zone:
  name: cluster.local
  zonefile: "$zone"
  for-downstream: yes
  for-upstream: no
EOF
    taskset -c "$server_cpu" unbound -d -c "$dir/unbound.conf" >"$dir/log" 2>&1 & ;;
  dnsmasq)
    taskset -c "$server_cpu" dnsmasq -k -u root --port="$port" --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
      --addn-hosts="$work/hosts" --conf-file="$work/dnsmasq-srv.conf" --local=/cluster.local/ --cache-size=0 --pid-file="$dir/pid" --log-facility=- >"$dir/log" 2>&1 & ;;
  extra)
    local cmd=${EXTRA_CMD//\{PORT\}/$port}; cmd=${cmd//\{ZONEFILE\}/$zone}; cmd=${cmd//\{THREADS\}/1}
    taskset -c "$server_cpu" bash -c "exec $cmd" >"$dir/log" 2>&1 & ;;
  esac
  pid=$!
  local deadline=$((SECONDS + 120))
  until [ "$(dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 kubernetes.default.svc.cluster.local A 2>/dev/null)" = 10.96.0.1 ]; do
    kill -0 "$pid" 2>/dev/null || { echo "$1 exited; its log:" >&2; cat "$dir/log" >&2; pid=; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "$1 did not answer within 120 s" >&2; return 1; }
    sleep 0.2
  done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
descendants() { local c; echo "$1"; for c in $(pgrep -P "$1"); do descendants "$c"; done; }
ticks() { # CPU ticks of a process and its descendants (NSD answers from a grandchild)
  local sum=0 p
  for p in $(descendants "$1"); do sum=$((sum + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo $sum
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; } # of its arguments

echo "Zone: $n_svc ClusterIP services in $n_ns namespaces, $n_headless headless × $n_ep endpoints, $n_srv SRV; $(wc -l <"$zone") records."
echo "| server | version | queries/s (median of $reps) | server CPU % | queries per server CPU-second | lost % |"
echo "|---|---|---|---|---|---|"
list=$servers; [ -z "${EXTRA_CMD:-}" ] || list="$list extra"
hz=$(getconf CLK_TCK)
for s in $list; do
  port=$((port + 1))
  case $s in
  knot) version=$(knotd -V | awk '{print $NF; exit}') ;;
  nsd) version=$(nsd -v 2>&1 | awk '{print $NF; exit}') ;;
  bind) version=$(named -v | awk '{print $2}') ;;
  unbound) version=$(unbound -V | awk '/Version/ {print $2; exit}') ;;
  dnsmasq) version=$(dnsmasq -v | awk '{print $3; exit}') ;;
  extra) version=- ;;
  esac
  name=$s; [ "$s" != extra ] || name=${EXTRA_NAME:-extra}
  start "$s" || { echo "| $name | $version | failed to start | | | |"; continue; }
  qps=(); cpu=(); per=(); lost=()
  for ((r = 0; r < reps; r++)); do
    t0=$(ticks "$pid")
    out=$(taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$duration" -c 4 -q 200 -t 1 2>&1)
    used=$(( $(ticks "$pid") - t0 ))
    q=$(awk '/Queries per second/ { print $4 }' <<<"$out")
    qps+=("$q")
    cpu+=("$(awk -v u="$used" -v hz="$hz" -v d="$duration" 'BEGIN { printf "%.0f", 100 * u / hz / d }')")
    per+=("$(awk -v q="$q" -v u="$used" -v hz="$hz" -v d="$duration" 'BEGIN { printf("%.0f", (u > 0 ? q * d / (u / hz) : 0)) }')")
    lost+=("$(awk '/Queries lost/ { gsub(/[()%]/, "", $4); print $4 }' <<<"$out")")
  done
  stop
  printf '| %s | %s | %.0f | %s | %s | %s |\n' "$name" "$version" "$(median "${qps[@]}")" "$(median "${cpu[@]}")" "$(median "${per[@]}")" "$(median "${lost[@]}")"
done
