#!/usr/bin/env bash
# Sets up, builds and runs every test (unit + integration).
#   scripts/test.sh              # build/ , RelWithDebInfo
#   scripts/test.sh --sanitize   # build-asan/ , AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/test.sh --tsan       # build-tsan/ , clang with -Wthread-safety + ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFGATE_WERROR=ON)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DCONFGATE_SANITIZE=ON -DCONFGATE_WERROR=ON)
  export CONFGATE_SANITIZED=1
elif [[ "${1:-}" == "--tsan" ]]; then
  build_dir=build-tsan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFGATE_TSAN=ON -DCONFGATE_BENCH=OFF -DCONFGATE_WERROR=ON
              -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
  export CONFGATE_SANITIZED=1
fi

scripts/setup.sh
cmake -S . -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir" -j "$(nproc)"
# A small quarantine keeps ASan's own memory out of the streaming test's RSS bound.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# A report does not stop the process; the harness fails the test that saw one.
export TSAN_OPTIONS="second_deadlock_stack=1:history_size=4:suppressions=$PWD/tests/support/tsan.supp"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
