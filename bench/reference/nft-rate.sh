#!/usr/bin/env bash
# Reference: how fast `nft` loads and changes the rulesets a service proxy and a policy
# enforcer would write as text, in a private network namespace removed at exit.
#   svc     kube-proxy-style service ruleset (nftables mode): a vmap from VIP . protocol . port
#           to a chain per service, which picks an endpoint chain with `numgen random mod N vmap`
#           (an anonymous map per service); each endpoint chain DNATs. SERVICES sizes (default
#           "1000 10000"), ENDPOINTS per service (5). Times: first load, then one service added
#           as a one-line change file, REPS times (median).
#   policy  NetworkPolicy-like rules: NP_ENDPOINTS local endpoints (1000) × NP_RULES ingress rules
#           (20), 10 peer addresses per rule, TCP port 1000+rule. Two layouts: a named set per
#           rule (`ip saddr @e-r tcp dport P accept`), and one concatenated set per endpoint
#           (`ip saddr . tcp dport @e`). Times: first load, then one peer address added.
# Usage: bench/reference/nft-rate.sh svc|policy. Needs root, nftables. Prints Markdown tables.
set -euo pipefail
what=${1:?usage: nft-rate.sh svc|policy}
ns=cpref-nft-$$
work=$(mktemp -d /tmp/cpref-nft-XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
nft_ns() { ip netns exec "$ns" nft "$@"; }
now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# The rulesets are written by awk (a shell loop with a subshell per address takes minutes at 10k).
# ip(first, i): the i-th IPv4 address after first.0.0.0.
awk_ip='function ip(first, i) { return first "." int(i / 65536) % 256 "." int(i / 256) % 256 "." i % 256 }'
services_ruleset() { # count endpoints
  awk -v count="$1" -v eps="$2" -v one="${3:-}" "$awk_ip"'
    function endpoint(s, e,   a) { a = ip(10, s * eps + e + 65536); return "chain ep-" s "-" e " { ip saddr " a " mark set 0x4000; meta l4proto tcp dnat to " a ":8080; }" }
    function service(s,   e, m) { for (e = 0; e < eps; e++) m = m (e ? ", " : " ") e " : goto ep-" s "-" e; return "chain svc-" s " { numgen random mod " eps " vmap {" m " }; }" }
    BEGIN {
      if (one != "") {
        for (e = 0; e < eps; e++) print "add chain ip kp " substr(endpoint(one, e), 7)
        print "add chain ip kp " substr(service(one), 7)
        print "add element ip kp service-ips { " ip(172, one + 65536) " . tcp . 80 : goto svc-" one " }"
        exit
      }
      print "table ip kp {"
      print "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"
      print "  chain services { type nat hook prerouting priority dstnat; policy accept; ip daddr . meta l4proto . th dport vmap @service-ips; }"
      for (s = 0; s < count; s++) { for (e = 0; e < eps; e++) print "  " endpoint(s, e); print "  " service(s) }
      print "}"
      for (s = 0; s < count; s++) print "add element ip kp service-ips { " ip(172, s + 65536) " . tcp . 80 : goto svc-" s " }"
    }' /dev/null
}
one_service() { services_ruleset 0 "$2" "$1"; } # index endpoints: the change that adds one service

policy_ruleset() { # layout endpoints rules
  awk -v layout="$1" -v eps="$2" -v rules="$3" "$awk_ip"'
    BEGIN {
      print "table inet np {"
      print "  map endpoints { type ipv4_addr : verdict; }"
      print "  chain ingress { type filter hook forward priority filter; policy accept; ip daddr vmap @endpoints; }"
      for (e = 0; e < eps; e++) {
        if (layout == "named") {
          chain = ""
          for (r = 0; r < rules; r++) {
            m = ""; for (p = 0; p < 10; p++) m = m (p ? ", " : " ") ip(10, (e * rules + r) * 10 + p + 65536)
            print "  set e" e "-r" r " { type ipv4_addr; elements = {" m " }; }"
            chain = chain " ip saddr @e" e "-r" r " tcp dport " 1000 + r " accept;"
          }
          print "  chain ep" e " {" chain " drop; }"
        } else {
          m = ""
          for (r = 0; r < rules; r++) for (p = 0; p < 10; p++) m = m (m == "" ? " " : ", ") ip(10, (e * rules + r) * 10 + p + 65536) " . " 1000 + r
          print "  set e" e " { type ipv4_addr . inet_service; elements = {" m " }; }"
          print "  chain ep" e " { ip saddr . tcp dport @e" e " accept; drop; }"
        }
      }
      print "}"
      for (e = 0; e < eps; e++) print "add element inet np endpoints { " ip(10, e + 1) " : goto ep" e " }"
    }' /dev/null
}

case $what in
svc)
  eps=${ENDPOINTS:-5}; reps=${REPS:-3}
  echo "| nft $(nft --version | awk '{print $2}'): services (kube-proxy-style, $eps endpoints each) | first load ms | 1 service added ms (median of $reps) |"
  echo "|---|---|---|"
  for count in ${SERVICES:-1000 10000}; do
    services_ruleset "$count" "$eps" >"$work/svc.nft"
    nft_ns flush ruleset
    t0=$(now); nft_ns -f "$work/svc.nft"; load=$(ms_since "$t0")
    changes=()
    for ((i = 0; i < reps; i++)); do
      one_service $((count + i)) "$eps" >"$work/one.nft"
      t0=$(now); nft_ns -f "$work/one.nft"; changes+=("$(ms_since "$t0")")
    done
    echo "| $count | $load | $(echo "${changes[*]}" | median) |"
  done
  ;;
policy)
  eps=${NP_ENDPOINTS:-1000}; rules=${NP_RULES:-20}
  echo "| nft $(nft --version | awk '{print $2}'): $eps endpoints × $rules rules, 10 peers per rule | sets | first load ms | 1 peer address added ms |"
  echo "|---|---|---|---|"
  for layout in named concatenated; do
    policy_ruleset "$layout" "$eps" "$rules" >"$work/np.nft"
    nft_ns flush ruleset
    t0=$(now); nft_ns -f "$work/np.nft"; load=$(ms_since "$t0")
    if [ "$layout" = named ]; then change="add element inet np e0-r0 { 10.255.255.1 }"; sets=$((eps * rules)); else change="add element inet np e0 { 10.255.255.1 . 1000 }"; sets=$eps; fi
    echo "$change" >"$work/change.nft"
    t0=$(now); nft_ns -f "$work/change.nft"; one=$(ms_since "$t0")
    echo "| ${layout} sets | $sets | $load | $one |"
  done
  ;;
*) echo "usage: nft-rate.sh svc|policy" >&2; exit 2 ;;
esac
