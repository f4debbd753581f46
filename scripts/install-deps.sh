#!/usr/bin/env bash
# Installs every Debian 12 package infergate needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt-get. Run as root.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libboost-dev libboost-system-dev
  libyaml-cpp-dev prometheus-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libnghttp2-dev zlib1g-dev libssl-dev libscitokens-dev libsqlite3-dev libc-ares-dev
  libhiredis-dev
)
# Tools the tests and benchmarks drive: peers to compare with, the metrics checker,
# a browser for the status page, kubectl for manifest checks, clang for the fuzzer.
tool_pkgs=(
  nginx-light haproxy nghttp2-proxy caddy dnsmasq-base redis-server prometheus
  chromium
  clang libclang-rt-14-dev
  procps iproute2 python3 python3-yaml python3-h2 python3-grpcio python3-jwt openssl
)

want=("${build_pkgs[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${tool_pkgs[@]}")
  # Some images carry kubectl from Kubernetes' own package, which conflicts with
  # Debian's kubernetes-client; any kubectl will do for the manifest checks.
  command -v kubectl >/dev/null 2>&1 || want+=(kubernetes-client)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}; run as root (apt-get needs it)" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts nginx and haproxy as services on install; the benchmarks run their own.
for svc in nginx haproxy nghttpx caddy prometheus; do
  if command -v systemctl >/dev/null 2>&1; then
    "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
  "${sudo[@]}" service "$svc" stop >/dev/null 2>&1 || true
done
echo "install-deps: done"
