#!/usr/bin/env bash
# Builds cnitool (the CNI project's reference runtime for one network configuration) from Debian
# bookworm's source package golang-github-appc-cni, offline with Debian's Go, and installs it as
# $CNITOOL_DIR/cnitool (default /usr/local/bin). Debian's golang-github-appc-cni-dev leaves
# cnitool out; its source package has it. The source comes through a private deb-src list and
# private apt lists under a temporary directory: the machine's apt configuration is not changed.
# The CNI tests look for cnitool where this script puts it (or in $CNITOOL).
# Needs root for apt-get install; does nothing when the same version is already installed.
set -euo pipefail
dir=${CNITOOL_DIR:-/usr/local/bin}
export DEBIAN_FRONTEND=noninteractive

need=()
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] || need+=(golang-github-appc-cni-dev)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
version=$(dpkg-query -W -f '${Version}' golang-github-appc-cni-dev)
if [ -x "$dir/cnitool" ] && [ "$(cat "$dir/cnitool.version" 2>/dev/null)" = "$version" ]; then
  echo "cnitool $version is in $dir"
  exit 0
fi

# The Debian mirror the machine already uses (deb822 or one-line sources), for bookworm main.
mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && / bookworm / {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "build-cnitool: no Debian bookworm mirror in /etc/apt/sources.list*" >&2; exit 1; }

work=$(mktemp -d /tmp/cniw-cnitool.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/parts" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >"$work/sources.list"
apt_private=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts" -o "Dir::State::Lists=$work/lists")
apt-get "${apt_private[@]}" update -qq >/dev/null
(cd "$work/src" && apt-get "${apt_private[@]}" source --download-only -qq "golang-github-appc-cni=$version" >/dev/null)
dpkg-source --no-check -x "$work"/src/*.dsc "$work/cni" >/dev/null

(cd "$work/cni/cnitool" && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOCACHE="$work/gocache" go build -o "$work/cnitool" .)
mkdir -p "$dir"
install -m 0755 "$work/cnitool" "$dir/cnitool"
echo "$version" >"$dir/cnitool.version"
echo "cnitool $version installed in $dir"
