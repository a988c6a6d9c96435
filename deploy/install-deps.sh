#!/usr/bin/env bash
# Installs what coapfleet needs to build, run and test on Debian 12 (as root,
# or with sudo). Does nothing when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcaf-dev libcoap3-dev libcoap3-bin rapidjson-dev doctest-dev libsqlite3-dev libcli11-dev libssl-dev
  # The shared store of a cluster (--store postgresql://...): libpq to build,
  # the server for the tests, deploy/pg.sh and deploy/cluster.sh.
  libpq-dev postgresql
  python3 sqlite3 procps
  # coapfleet-server's allocator (see CMakeLists.txt).
  libjemalloc-dev
  # The X.509 tests make a CA and certificates with the openssl command line.
  openssl
  # A server stop that needs its bound prints every thread's stack (gdb
  # in batch mode) in the tests' logs.
  gdb
  # The libFuzzer targets (deploy/fuzz.sh): clang++ and its libclang_rt.fuzzer
  # (libclang-rt-14-dev is only recommended by clang's packages, and
  # recommendations are not installed here).
  clang libclang-rt-14-dev
  # The agent's pip tests install a wheel they write themselves (zipfile, no
  # build backend) with the real pip, offline (--no-index).
  python3-pip
  # The interoperability tests drive node-coap (vendored in tests/peers).
  nodejs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
