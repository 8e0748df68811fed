#!/usr/bin/env bash
# Installs the Debian packages skiff needs to build, run and test; idempotent.
# Usage: scripts/install-deps.sh [run|test]
set -euo pipefail
mode=${1:-run}
pkgs=(build-essential cmake ninja-build ccache pkg-config
      libboost1.74-dev libssl-dev libsqlite3-dev nlohmann-json3-dev libyaml-cpp-dev
      openssl ca-certificates nftables
      containernetworking-plugins iptables runc conmon)
# Image store: registry pulls (libcurl) and layer archives (libarchive).
pkgs+=(libcurl4-openssl-dev libarchive-dev)
# The allocator of the skiff binary (src/malloc).
pkgs+=(libjemalloc-dev)
# kubectl port-forward: SPDY/3 header blocks are zlib-compressed.
pkgs+=(zlib1g-dev)
if [ "$mode" = test ]; then
  pkgs+=(libgtest-dev libgmock-dev libbenchmark-dev jq curl etcd-server util-linux iproute2 busybox-static)
  pkgs+=(docker-registry skopeo apache2-utils zstd)  # image store tests: registry, push, htpasswd
  pkgs+=(wget)  # kubectl port-forward e2e: HTTP through the forwarded port
  pkgs+=(bsdutils)  # `script`: a terminal for `kubectl exec -t` in e2e tests
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$mode" = test ]; then
  if ! command -v kubectl >/dev/null 2>&1; then
    echo "kubectl (>= 1.27) is not on PATH: the end-to-end tests drive a real kubectl; install it and re-run." >&2
    exit 1
  fi
fi
