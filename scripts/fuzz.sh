#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each for
# FUZZ_SECONDS (default 60) on a copy of its seed corpus. Any crash, leak or sanitizer report
# fails the run; the input that caused it is left in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
scripts/setup.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFGATE_WERROR=ON \
  -DCONFGATE_FUZZ=ON -DCONFGATE_TESTS=OFF -DCONFGATE_BENCH=OFF
cmake --build build-fuzz -j "$(nproc)" --target request_codec_fuzzer response_codec_fuzzer \
  config_fuzzer cache_snapshot_fuzzer router_fuzzer llhttp_sse42_fuzzer

mkdir -p build-fuzz/artifacts
for name in request_codec response_codec config cache_snapshot router llhttp_sse42; do
  corpus="build-fuzz/corpus/$name"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$name"/* "$corpus"/
  echo "fuzz: $name for ${seconds}s"
  "build-fuzz/tests/fuzz/${name}_fuzzer" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix=build-fuzz/artifacts/"$name"- "$corpus" \
    tests/fuzz/corpus/"$name" 2>&1 | tail -n 3
done
