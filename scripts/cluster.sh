#!/usr/bin/env bash
# The docker-compose topology as local processes: redis-server (membership), a private
# PostgreSQL 15 cluster (the shared store), several silos, a cluster DNS server and node agents
# (each agent in a network namespace of its own, on an underlay bridge in another namespace).
#
#   scripts/cluster.sh up DIR [--silos N] [--agents N]   start everything; DIR/cluster.env says where
#   scripts/cluster.sh silo DIR I                        (re)start silo I after it stopped
#   scripts/cluster.sh postgres DIR stop|start           take the store away and bring it back
#   scripts/cluster.sh down DIR                          stop everything it started, remove the namespaces
#
# Every process listens on loopback at a free port; silos also listen on DIR/silo-I.sock, which
# is how the agents (inside their namespaces) reach them. Logs go to DIR/*.log. Needs root (for
# postgres' user switch and the namespaces), redis-server and postgresql-15. Programs run from
# their Release builds (built first when missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pg=/usr/lib/postgresql/15/bin

usage() { sed -n '6,9p' "$0" | sed 's/^#   //' >&2; exit 2; }

# A loopback port nobody listens on, TCP or UDP (and that this run has not handed out yet),
# below the kernel's ephemeral range: a port chosen there could be given to another program's
# connection or port-0 listener before ours binds it.
taken=" "
read -r ephemeral_low _ < /proc/sys/net/ipv4/ip_local_port_range
port_span=$(( ephemeral_low > 24000 ? ephemeral_low - 22000 : 8000 ))
free_port() {
  local port
  while :; do
    port=$(( (RANDOM << 15 | RANDOM) % port_span + 22000 ))
    [[ "$taken" == *" $port "* ]] && continue
    ss -Htuln "sport = :$port" | grep -q . && continue
    taken+="$port "
    echo "$port"
    return
  done
}

program() { # project dll: the Release build of src/<project>
  local dll="$root/src/$1/bin/Release/net10.0/$2"
  [ -f "$dll" ] || dotnet build "$root/src/$1" -c Release --nologo -v q >&2
  echo "$dll"
}

# Waits until a check passes (a health endpoint answers, a socket exists); fails after 60 s, or
# at once if the process PID (when given) exits meanwhile.
wait_for() {
  local what=$1 check=$2 pid=${3:-} i
  for i in $(seq 600); do
    eval "$check" >/dev/null 2>&1 && return 0
    if [ -n "$pid" ] && ! alive "$pid"; then return 1; fi
    sleep 0.1
  done
  echo "cluster.sh: $what did not come up (logs in $dir)" >&2
  return 1
}

# DIR/cluster.env: KEY='value' lines, for `. DIR/cluster.env` in a shell (values hold no quotes).
# Whether a process runs (an exited process may linger as a zombie until it is reaped).
# Alive: the process has a state and it is not Z (a zombie). A process reaped between two reads
# has no state, so it is not alive (checking kill -0 first and the state after took one reaped
# in between for a running one).
alive() {
  local state
  [ -n "$1" ] || return 1
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ -n "$state" ] && [ "$state" != Z ]
}

setting() { (. "$dir/cluster.env" && eval "echo \"\${$1:-}\""); }
record() { echo "$1='$2'" >>"$dir/cluster.env"; }

start_postgres() {
  local port
  port=$(setting POSTGRES_PORT)
  nohup runuser -u postgres -- "$pg/postgres" -D "$dir/pg/data" -p "$port" -k "$dir/pg" \
    -c listen_addresses=127.0.0.1 -c max_connections=300 >>"$dir/postgres.log" 2>&1 </dev/null &
  wait_for postgres "$pg/pg_isready -U postgres -h 127.0.0.1 -p $port" $! || return 1
  record POSTGRES_PID "$(head -1 "$dir/pg/data/postmaster.pid")"
}

start_silo() { # index [keep]: start silo I; "keep" (a restart) keeps its ports, else a port taken meanwhile is replaced
  local i=$1 keep=${2:-} attempt port silo_port pid log
  log="$dir/silo-$i.log"
  mkdir -p "$dir/silo-$i"
  for attempt in 1 2 3 4 5; do
    port=$(setting "SILO${i}_PORT")
    silo_port=$(setting "SILO${i}_CLUSTER_PORT")
    if [ -z "$port" ] || { [ -z "$keep" ] && [ "$attempt" -gt 1 ]; }; then
      port=$(free_port)
      silo_port=$(free_port)
      record "SILO${i}_PORT" "$port"
      record "SILO${i}_CLUSTER_PORT" "$silo_port"
    fi
    CONTROLPLANE_Logging__LogLevel__Default=Warning \
    nohup dotnet "$(program Silo ControlPlane.Silo.dll)" \
      --Silo:ListenAddress=127.0.0.1 --Silo:Port="$port" --Silo:UnixSocket="$dir/silo-$i.sock" \
      --Silo:DataDirectory="$dir/silo-$i" --Dns:Enabled=false \
      --Cluster:Membership=redis --Cluster:Redis="127.0.0.1:$(setting REDIS_PORT)" \
      --Cluster:SiloPort="$silo_port" --Cluster:AdvertisedAddress=127.0.0.1 \
      --Store:Provider=postgres --Store:Postgres="$(setting POSTGRES)" --Store:SiloId="silo-$i" \
      --Logging:LogLevel:ControlPlane.Silo.Hosting.MembershipGuard=Information \
      >>"$log" 2>&1 </dev/null &
    pid=$!
    record "SILO${i}_PID" "$pid"
    # Up once healthy; if it exits first, another process most likely took a port meanwhile
    # (tests run beside other tests): try again.
    wait_for "silo $i" "curl -fs --http2-prior-knowledge http://127.0.0.1:$port/healthz" "$pid" && return 0
    alive "$pid" && return 1
  done
  echo "cluster.sh: silo $i exited at every start (logs in $dir)" >&2
  return 1
}

up() {
  local silos=3 agents=2
  while [ $# -gt 0 ]; do
    case $1 in
      --silos) silos=$2; shift 2 ;;
      --agents) agents=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  : >"$dir/cluster.env"
  local tag
  tag=$(printf '%s' "$dir" | md5sum | cut -c1-6)
  record TAG "$tag"
  record SILOS "$silos"
  record AGENTS "$agents"

  # Membership: redis-server, nothing persisted.
  # A free port may be taken before redis binds it: then redis exits and another port is tried.
  local redis_port redis_pid attempt
  mkdir -p "$dir/redis"
  for attempt in 1 2 3 4 5; do
    redis_port=$(free_port)
    nohup redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --save '' --appendonly no \
      >>"$dir/redis.log" 2>&1 </dev/null &
    redis_pid=$!
    wait_for redis "redis-cli -p $redis_port ping | grep -q PONG" "$redis_pid" && break
    alive "$redis_pid" && return 1
    [ "$attempt" -lt 5 ] || { echo "cluster.sh: redis exited at every start (logs in $dir)" >&2; return 1; }
  done
  record REDIS_PID "$redis_pid"
  record REDIS_PORT "$redis_port"

  # The store: a private PostgreSQL cluster, run as the postgres user (initdb and postgres refuse root).
  local pg_port
  pg_port=$(free_port)
  mkdir -p "$dir/pg"
  chown postgres "$dir/pg"
  chmod o+x "$dir"
  runuser -u postgres -- "$pg/initdb" -D "$dir/pg/data" -A trust -U postgres >"$dir/postgres.log" 2>&1 ||
    { echo "cluster.sh: initdb failed (the postgres user must be able to reach $dir): $(tail -1 "$dir/postgres.log")" >&2; return 1; }
  for attempt in 1 2 3 4 5; do
    record POSTGRES_PORT "$pg_port"
    record POSTGRES "Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres;Timeout=5;Command Timeout=30"
    start_postgres && break
    # (its port was taken before it bound it: another one)
    [ -f "$dir/pg/data/postmaster.pid" ] && return 1
    [ "$attempt" -lt 5 ] || { echo "cluster.sh: PostgreSQL exited at every start (logs in $dir)" >&2; return 1; }
    pg_port=$(free_port)
  done

  # Silos: one after the other, so the first one creates the schema alone.
  local i addresses="" sockets=""
  for i in $(seq "$silos"); do
    start_silo "$i"
    addresses+="${addresses:+,}http://127.0.0.1:$(setting "SILO${i}_PORT")"
    sockets+="${sockets:+,}unix:$dir/silo-$i.sock"
  done
  record SILO_ADDRESSES "$addresses"
  record SILO_SOCKETS "$sockets"

  # The cluster DNS server follows the silos' Watch stream, failing over between them.
  local dns_port attempt pid
  for attempt in 1 2 3 4 5; do
    dns_port=$(free_port)
    CONTROLPLANE_Logging__LogLevel__Default=Warning \
    nohup dotnet "$(program DnsServer ControlPlane.DnsServer.dll)" --Dns:Listen="127.0.0.1:$dns_port" \
      --Dns:ControlPlane="$addresses" --Dns:Zone=cluster.local >>"$dir/dns.log" 2>&1 </dev/null &
    pid=$!
    record DNS_PID "$pid"
    record DNS_PORT "$dns_port"
    wait_for "the DNS server" "ss -Hulnp 'sport = :$dns_port' | grep -q ." "$pid" && break
    alive "$pid" && return 1
    [ "$attempt" -lt 5 ] || { echo "cluster.sh: the DNS server exited at every start (logs in $dir)" >&2; return 1; }
  done

  # Node agents: namespace cpc<tag>-n<I> with underlay address 10.123.0.<10+I>/24 on a bridge in
  # namespace cpc<tag>-ul. They reach the silos through the silos' unix sockets.
  if [ "$agents" -gt 0 ]; then
    local ul="cpc$tag-ul" ns
    ip netns add "$ul"
    ip -n "$ul" link add br0 type bridge
    ip -n "$ul" link set br0 up
    for i in $(seq "$agents"); do
      ns="cpc$tag-n$i"
      ip netns add "$ns"
      ip link add "cpc$tag-u$i" netns "$ul" type veth peer name eth0 netns "$ns"
      ip -n "$ul" link set "cpc$tag-u$i" master br0 up
      ip -n "$ns" addr add "10.123.0.$((10 + i))/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
      CONTROLPLANE_Logging__LogLevel__Default=Warning \
      nohup ip netns exec "$ns" dotnet "$(program NodeAgent ControlPlane.NodeAgent.dll)" \
        --Agent:ControlPlane="$sockets" --Agent:NodeName="node-$i" --Agent:UnderlayIp="10.123.0.$((10 + i))" \
        --Agent:AttachSocket="$dir/agent-$i.sock" >"$dir/agent-$i.log" 2>&1 </dev/null &
      record "AGENT${i}_PID" $!
      record "AGENT${i}_NETNS" "$ns"
    done
    for i in $(seq "$agents"); do wait_for "agent $i" "[ -S $dir/agent-$i.sock ]"; done
  fi
  echo "cluster up: $silos silos ($addresses), DNS on 127.0.0.1:$dns_port, $agents agents; settings in $dir/cluster.env"
}

stop_pid() { # pid [signal]: stop a process this script started and wait for it (up to 15 s, then SIGKILL, and wait until it is gone)
  local pid=$1 i
  alive "$pid" || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for i in $(seq 150); do alive "$pid" || return 0; sleep 0.1; done
  echo "cluster.sh: pid $pid did not stop within 15 s: killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.1; done
}

down() {
  [ -f "$dir/cluster.env" ] || { echo "cluster.sh: no cluster in $dir" >&2; exit 1; }
  local i tag
  tag=$(setting TAG)
  for i in $(seq "$(setting AGENTS)"); do stop_pid "$(setting "AGENT${i}_PID")"; done
  stop_pid "$(setting DNS_PID)"
  for i in $(seq "$(setting SILOS)"); do stop_pid "$(setting "SILO${i}_PID")" & done
  wait
  stop_pid "$(setting REDIS_PID)"
  stop_pid "$(setting POSTGRES_PID)" INT
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^cpc$tag-" || true); do ip netns del "$ns"; done
  echo "cluster down: logs in $dir"
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2
case $command in
  up) up "$@" ;;
  silo)
    [ $# -eq 1 ] || usage
    dir=$(cd "$dir" && pwd)
    running=$(setting "SILO${1}_PID")
    if alive "$running"; then echo "cluster.sh: silo $1 is running (pid $running)" >&2; exit 1; fi
    start_silo "$1" keep
    echo "silo $1 up on http://127.0.0.1:$(setting "SILO${1}_PORT") (pid $(setting "SILO${1}_PID"))" ;;
  postgres)
    dir=$(cd "$dir" && pwd)
    case ${1:-} in
      stop) stop_pid "$(setting POSTGRES_PID)" INT ;;
      start) start_postgres ;;
      *) usage ;;
    esac ;;
  down) dir=$(cd "$dir" && pwd); down ;;
  *) usage ;;
esac
