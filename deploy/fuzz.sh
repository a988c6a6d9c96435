#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang++, ASan + UBSan) in build-fuzz
# and runs each: first the crashes found before (fuzz/regressions/<target>,
# which must all pass), then N seconds of fuzzing from a temporary copy of
# fuzz/corpus/<target>, so the repository's corpus changes only with --merge.
# Exits non-zero when any target crashes, leaks, times out or runs out of
# memory; the input that did it is kept in build-fuzz/findings/<target>/.
#
#   deploy/fuzz.sh                  10 s per target (CI, from run-tests.sh)
#   deploy/fuzz.sh --seconds 600    the long run (README.md, Fuzzing)
#   deploy/fuzz.sh --merge json     also merge new inputs into fuzz/corpus/json
#   deploy/fuzz.sh block1 query     only these targets
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds=10
merge=0
targets=()
all=(json query agent_notification journal sim_codec block1)

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
step() { echo "fuzz: $1 (${SECONDS} s so far)"; }

step "build $build (clang++, -j2)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER=clang -DCOAPFLEET_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target fuzz_targets

# Leaks count as findings; UBSan's options (halt on error, suppressions)
# are built into the targets (fuzz/ubsan_options.cpp).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  exe="$build/fuzz/fuzz_$t"
  [ -x "$exe" ] || { echo "fuzz.sh: no target $t (have: ${all[*]})" >&2; exit 2; }
  findings="$build/findings/$t"
  mkdir -p "$findings"
  regressions=("$root/fuzz/regressions/$t"/*)
  if [ -e "${regressions[0]}" ]; then
    step "$t: replaying ${#regressions[@]} regression inputs"
    if ! "$exe" -timeout=10 -rss_limit_mb=2048 "${regressions[@]}" >"$work/$t.replay.log" 2>&1; then
      cat "$work/$t.replay.log"
      failed+=("$t (regressions)")
      continue
    fi
  fi
  step "$t: fuzzing ${seconds} s"
  corpus="$work/corpus-$t"
  cp -r "$root/fuzz/corpus/$t" "$corpus"
  if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
       -artifact_prefix="$findings/" "$corpus" >"$work/$t.log" 2>&1; then
    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added' \
      "$work/$t.log" || true
  else
    tail -n 60 "$work/$t.log"
    failed+=("$t")
    continue
  fi
  if [ "$merge" -eq 1 ]; then
    step "$t: merging new inputs into fuzz/corpus/$t"
    "$exe" -merge=1 -timeout=10 -rss_limit_mb=2048 "$root/fuzz/corpus/$t" "$corpus" \
      >"$work/$t.merge.log" 2>&1 || { tail -n 20 "$work/$t.merge.log"; failed+=("$t (merge)"); }
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/findings/)" >&2
  exit 1
fi
step "all ${#targets[@]} targets passed"
