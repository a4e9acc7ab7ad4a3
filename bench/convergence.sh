#!/usr/bin/env bash
# Convergence benchmark (bench/Convergence.Bench), in one run on this machine:
#   1. hosts: three real hosts (the NodeAgent.Tests bed: in-process silo, an agent process per host
#      namespace, pods on a VXLAN network). CHANGES NetworkPolicy updates, each timed from the
#      Update's return until WaitProgrammed returns and, as the reference, until a probe from a
#      pod on another host first shows the new behaviour; probes right after WaitProgrammed must
#      agree with the policy. Convergence/Status per node at the end.
#   2. simulated: NODES simulated agents (a watch, programmed reports, heartbeats each) against a
#      separate Release silo process; CHANGES updates at 10/s each followed by WaitProgrammed;
#      the silo's CPU (utime + stime) and RSS from /proc: idle, with the idle nodes, during the
#      changes; and the same changes on a fresh silo without nodes as the reference.
# Needs root (network namespaces). Usage: sudo bench/convergence.sh [hosts|simulated|all]
#   CHANGES (200), NODES (1000), IDLE_SECONDS (30), REPEAT_SECONDS (5: the simulated agents repeat
#   their position like the real agent; 0: only when it moves), PROBE_INTERVAL_MS (5), PROBE_TIMEOUT_MS (100).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
changes=${CHANGES:-200}
nodes=${NODES:-1000}
dotnet build -c Release "$root/src/Silo" -v q -nologo >/dev/null
dotnet build -c Release "$root/bench/Convergence.Bench" -v q -nologo >/dev/null
bench=("dotnet" "$root/bench/Convergence.Bench/bin/Release/net10.0/ControlPlane.Convergence.Bench.dll")
silo="$root/src/Silo/bin/Release/net10.0/ControlPlane.Silo.dll"

echo "# Convergence benchmark, $(nproc) cores, $(date -u '+%F %T') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
if [ "$what" = all ] || [ "$what" = hosts ]; then
  echo
  start=$SECONDS
  "${bench[@]}" hosts "$changes"
  echo
  echo "(part 1 took $((SECONDS - start)) s)"
fi
if [ "$what" = all ] || [ "$what" = simulated ]; then
  echo
  start=$SECONDS
  "${bench[@]}" simulated "$silo" "$nodes" "$changes"
  echo
  echo "(part 2 took $((SECONDS - start)) s)"
fi
