#!/usr/bin/env bash
# Installs the CNI plugin into a CNI plugin directory as one executable named "controlplane"
# (the configuration's "type"): a framework-dependent single file (it needs the .NET runtime).
#   scripts/install-cni.sh [DIR]     DIR defaults to /opt/cni/bin
# Example network configuration: examples/cni/controlplane.conflist (goes into /etc/cni/net.d).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/opt/cni/bin}
out=$(mktemp -d /tmp/cniw-publish.XXXXXX)
trap 'rm -rf "$out"' EXIT
dotnet publish "$root/src/Cni/ControlPlane.Cni.csproj" -c Release -r linux-x64 --self-contained false \
  -p:PublishSingleFile=true -p:DebugType=none -o "$out" --nologo -v q >&2
mkdir -p "$dir"
install -m 0755 "$out/ControlPlane.Cni" "$dir/controlplane.new"
mv -f "$dir/controlplane.new" "$dir/controlplane"   # atomic: a runtime never runs a half-written plugin
echo "installed $dir/controlplane"
