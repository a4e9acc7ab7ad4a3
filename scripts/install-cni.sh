#!/usr/bin/env bash
# Installs the CNI plugin into a CNI plugin directory as one native executable named
# "controlplane" (the configuration's "type"), compiled ahead of time (Native AOT): a runtime
# starts it for every VERSION, ADD, DEL, CHECK, GC and STATUS, so it must start fast, and it
# needs no .NET runtime on the node. Needs the .NET SDK and clang (apt-get install clang).
#   scripts/install-cni.sh [DIR]     DIR defaults to /opt/cni/bin
# Example network configuration: examples/cni/controlplane.conflist (goes into /etc/cni/net.d).
# The build happens in a temporary artifacts directory: the repository's bin/ and obj/ are untouched.
set -euo pipefail
usage="usage: scripts/install-cni.sh [DIR]   (installs the plugin as DIR/controlplane; DIR defaults to /opt/cni/bin)"
case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
  -*) echo "install-cni: unknown option '$1'" >&2; echo "$usage" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "$usage" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/opt/cni/bin}
command -v clang >/dev/null || { echo "install-cni: Native AOT needs clang (apt-get install clang)" >&2; exit 1; }
work=$(mktemp -d /tmp/cniw-publish.XXXXXX)
trap 'rm -rf "$work"' EXIT
dotnet publish "$root/src/Cni/ControlPlane.Cni.csproj" -c Release -r linux-x64 -p:PublishAot=true -p:DebugType=none \
  --artifacts-path "$work/artifacts" -o "$work/out" --nologo -v q >&2
mkdir -p "$dir"
install -m 0755 "$work/out/ControlPlane.Cni" "$dir/controlplane.new"
mv -f "$dir/controlplane.new" "$dir/controlplane"   # atomic: a runtime never runs a half-written plugin
echo "installed $dir/controlplane"
