#!/usr/bin/env bash
# Runs every test of the repository and ends with one line: "N passed, N failed, N skipped".
# First checks the requirements (README.md, Requirements; .ci/run installs them): if any is
# missing it prints one line naming each and exits 2 without running anything.
# `scripts/test.sh --check` only checks them.
set -uo pipefail

usage="usage: scripts/test.sh [--check]   (no argument: check the requirements, then run every test; --check: only check them)"
case "${1:-}" in
  ''|--check) [ $# -le 1 ] || { echo "$usage" >&2; exit 2; } ;;
  -h|--help) echo "$usage"; exit 0 ;;
  *) echo "scripts/test.sh: unknown argument '$1'" >&2; echo "$usage" >&2; exit 2 ;;
esac

# Bash builtins only, so the check itself needs nothing it checks for.
missing=()
[ "$EUID" -eq 0 ] || missing+=("root (the tests create network namespaces, links and nftables tables)")
for need in ip:iproute2 bridge:iproute2 dig:bind9-dnsutils kdig:knot-dnsutils nft:nftables ping:iputils-ping getent:libc-bin node:nodejs npm:npm \
  redis-server:redis-server redis-cli:redis-server psql:postgresql-client-15 curl:curl prometheus:prometheus \
  podman:podman runc:runc clang:clang unshare:util-linux script:bsdutils; do
  command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need%%:*} (Debian package ${need#*:})")
done
[ -x /bin/busybox ] || missing+=("busybox (Debian package busybox-static)")
[ -x "${CNITOOL:-/usr/local/bin/cnitool}" ] || missing+=("cnitool (scripts/build-cnitool.sh builds it)")
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=("PostgreSQL 15's server (Debian package postgresql-15)")
sdks=$(command -v dotnet >/dev/null 2>&1 && dotnet --list-sdks 2>/dev/null)
[[ $'\n'"$sdks" == *$'\n'10.* ]] || missing+=("the .NET 10 SDK (dotnet)")
if [ ${#missing[@]} -gt 0 ]; then
  list=$(printf ', %s' "${missing[@]}")
  echo "scripts/test.sh: missing ${list:2}; see Requirements in README.md"
  exit 2
fi
if [ "${1:-}" = "--check" ]; then
  echo "scripts/test.sh: every requirement is present"
  exit 0
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -d tests/Interop/node_modules/@grpc/grpc-js ]; then
  (cd tests/Interop && npm ci --no-audit --no-fund --loglevel=error) || { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi
log=$(mktemp)
dotnet test ControlPlane.sln -c Release --nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Sum the per-assembly summaries ("Passed!  - Failed: 0, Passed: 15, Skipped: 0, Total: 15").
read -r passed failed skipped < <(grep -E '(Passed|Failed)!\s+-\s+Failed:' "$log" | sed -E 's/.*Failed:\s*([0-9]+), Passed:\s*([0-9]+), Skipped:\s*([0-9]+).*/\2 \1 \3/' |
  awk '{p+=$1; f+=$2; s+=$3} END {printf "%d %d %d\n", p, f, s}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
