#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs
# dependencies, builds (warnings are errors), and runs unit, actor and
# integration tests with CTest; then builds the unit and actor tests again
# with AddressSanitizer and UBSan (build-asan) and runs them there, and runs
# every libFuzzer target briefly (build-fuzz).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
asan="${ASAN_BUILD_DIR:-$root/build-asan}"
step() { echo "run-tests: $1 (${SECONDS} s so far)"; }

"$root/deploy/install-deps.sh"
step "build $build"
"$root/deploy/build.sh" -DCOAPFLEET_WERROR=ON
step "tests in $build"
(cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 900)

# The unit and actor tests (ctest label "unit") under the sanitizers, and
# the server and agent the datagram fuzzer drives; only those targets are
# built in this tree.
step "build $asan (ASan + UBSan: unit and actor tests, server, agent)"
cmake -S "$root" -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DCOAPFLEET_SANITIZE=ON \
  -DCOAPFLEET_WERROR=ON >/dev/null
cmake --build "$asan" -j"$(nproc)" --target unit_tests coapfleet-server coapfleet-agent
step "unit and actor tests in $asan"
(cd "$asan" && ctest -L unit --output-on-failure -j"$(nproc)" --timeout 900)

# The datagram fuzzer against that server and agent: the regression files
# first, then 60 s of mutated requests and block-wise sequences (README.md,
# Fuzzing, for the long run).
step "datagram fuzzer, 60 s"
python3 "$root/fuzz/datagrams.py" --server "$asan/coapfleet-server" \
  --agent "$asan/coapfleet-agent" --seconds 60 --seed 1 --replay "$root/fuzz/regressions/datagrams"

# Every fuzz target for 10 s after replaying its regression inputs
# (deploy/fuzz.sh; the long run is README.md's Fuzzing section).
step "fuzz targets, 10 s each"
# Fixed seeds (FUZZ_SEED, --seed 1): a CI run is repeatable; the long runs
# draw theirs.
FUZZ_SEED=1 "$root/deploy/fuzz.sh" --seconds 10

# The benchmark in its quick smoke mode (small N, seconds per scenario), so
# it never rots; the real figures come from deploy/bench.sh without --quick.
step "quick benchmark"
"$root/deploy/bench.sh" --quick
step "done"
