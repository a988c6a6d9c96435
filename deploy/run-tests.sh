#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs
# dependencies, builds, and runs unit, actor and integration tests with CTest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
"$root/deploy/build.sh"
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure -j"$(nproc)" --timeout 900)
# The benchmark in its quick smoke mode (small N, seconds per scenario), so
# it never rots; the real figures come from deploy/bench.sh without --quick.
"$root/deploy/bench.sh" --quick
