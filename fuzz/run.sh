#!/bin/sh
# `make fuzz`: builds the libFuzzer targets with clang (ASan + UBSan) and
# runs each for FUZZ_SECONDS (default 60), starting from the corpus in
# fuzz/corpus/NAME (the example workflows seed the workflow target).
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=build-fuzz
mkdir -p "$OUT"
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE
       -Iinclude -Isrc $(pkg-config --cflags libuv jansson libfyaml)"
LIBS="$(pkg-config --libs libuv jansson libfyaml) -lm"
SRCS="src/*.c src/exec/*.c src/tools/*.c"
for t in workflow expr; do
  # shellcheck disable=SC2086
  clang $FLAGS -o "$OUT/fuzz_$t" fuzz/fuzz_$t.c $SRCS $LIBS
  mkdir -p "fuzz/corpus/$t"
done
for f in examples/*.json examples/*.yaml; do
  case "$f" in *.json) p=0 ;; *) p=1 ;; esac
  { printf "\\$p"; cat "$f"; } > "fuzz/corpus/workflow/$(basename "$f")"
done
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in workflow expr; do
  echo "fuzz: $t for ${SECONDS_EACH}s"
  "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=65536 \
    -timeout=10 "fuzz/corpus/$t"
done
