#!/usr/bin/env bash
# Builds coapfleet into build/ (Release with debug info unless BUILD_TYPE says otherwise).
# Extra arguments go to CMake's configure step (e.g. -DCOAPFLEET_WERROR=ON).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
