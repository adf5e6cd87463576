#!/bin/sh
# `make fuzz` and `make fuzz-short` (docs/reliability.md): builds the
# libFuzzer targets fuzz/fuzz_*.c with clang, ASan and UBSan in build-fuzz,
# seeds their corpora (fuzz/seeds.py), replays the crashes already fixed
# (fuzz/regressions/TARGET/*), then runs each target for FUZZ_SECONDS
# (default 60) on fuzz/corpus/TARGET.
#
#   sh fuzz/run.sh [TARGET...]     TARGET: workflow, expr, ... (default: all)
#
# FUZZ_ARGS adds libFuzzer options. Each run's output is in
# build-fuzz/log/TARGET.log, and a crash's input in
# build-fuzz/artifacts/TARGET-crash-*; the script goes on with the other
# targets and exits non-zero at the end when any of them failed.
set -eu
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
OUT=build-fuzz
SUPP=$(pwd)/tests/lsan.supp

if [ $# -eq 0 ]; then
  # shellcheck disable=SC2046
  set -- $(for f in fuzz/fuzz_*.c; do basename "$f" .c; done | sed 's/^fuzz_//')
fi

# The project's own build with clang: fuzz/fuzz.cmake adds the targets.
# -fsanitize=fuzzer-no-link puts the coverage feedback in every object.
if [ ! -f "$OUT/build.ninja" ]; then
  cmake -S . -B "$OUT" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DICE_ASAN=ON -DICE_TESTS=OFF \
    -DCMAKE_PROJECT_INCLUDE="$(pwd)/fuzz/fuzz.cmake" \
    -DCMAKE_C_FLAGS="-O1 -fsanitize=fuzzer-no-link" \
    -DCMAKE_CXX_FLAGS="-O1 -fsanitize=fuzzer-no-link" >/dev/null
fi
mkdir -p "$OUT/log" "$OUT/artifacts"
# shellcheck disable=SC2046
if ! cmake --build "$OUT" --target ice $(for t; do echo "fuzz_$t"; done) \
  >"$OUT/log/build.log" 2>&1; then
  tail -n 30 "$OUT/log/build.log" >&2
  echo "fuzz: the build failed (all of it: $OUT/log/build.log)" >&2
  exit 2
fi
python3 fuzz/seeds.py --ice "$OUT/ice" >/dev/null

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# LeakSanitizer: libfyaml has no frame pointers, so with the fast unwinder
# (8 times the executions of the slow one) a leak inside it shows only its
# module: fuzz/lsan.supp suppresses leaks allocated inside libfyaml while
# fuzzing. What the run added to the corpus is then replayed with the slow
# unwinder and tests/lsan.supp, which names the one known libfyaml leak
# exactly (the regressions are replayed so too).
FAST="suppressions=$(pwd)/fuzz/lsan.supp"
SLOW="suppressions=$SUPP:fast_unwind_on_malloc=0"
failed=""
for t; do
  bin=$OUT/fuzz_$t
  log=$OUT/log/$t.log
  opts="-artifact_prefix=$OUT/artifacts/$t- -timeout=10"
  : >"$log"
  if [ -n "$(ls -A "fuzz/regressions/$t" 2>/dev/null)" ]; then
    # shellcheck disable=SC2086
    if ! LSAN_OPTIONS=$SLOW "$bin" $opts fuzz/regressions/"$t"/* >>"$log" 2>&1
    then
      echo "fuzz: $t: a regression fails again (see $log)" >&2
      failed="$failed $t"
      continue
    fi
  fi
  [ -f "fuzz/corpus/$t.dict" ] && opts="$opts -dict=fuzz/corpus/$t.dict"
  touch "$OUT/log/$t.start"
  # shellcheck disable=SC2086
  if LSAN_OPTIONS=$FAST "$bin" $opts -max_total_time="$SECS" -max_len=65536 \
    -print_final_stats=1 ${FUZZ_ARGS:-} "fuzz/corpus/$t" >>"$log" 2>&1 &&
    LSAN_OPTIONS=$SLOW find "fuzz/corpus/$t" -type f \
      -newer "$OUT/log/$t.start" -exec "$bin" $opts {} + >>"$log" 2>&1
  then
    status=ok
  else
    status=FAILED
    failed="$failed $t"
  fi
  last=$(grep -E 'DONE +cov:' "$log" | tail -1)
  [ -n "$last" ] || last=$(grep -E '#[0-9]+.*cov:' "$log" | tail -1)
  last=$(echo "$last" | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz: $t: $status, ${SECS}s, ${runs:-?} runs, $last"
done
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed (logs in $OUT/log, inputs in $OUT/artifacts)" >&2
  exit 1
fi
