#!/usr/bin/env bash
# The side-by-side bench against nginx and HAProxy (see bench/peers/peers.py):
#   bench/peers/run.sh            # 3 interleaved rounds, writes bench/results/peers.md
#   bench/peers/run.sh --smoke    # one short round of every row, for CI (figures not kept)
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/setup.sh
tools=(nginx haproxy wrk h2load valgrind strace)
packages=(nginx-light haproxy wrk nghttp2-client valgrind strace)
missing=()
for i in "${!tools[@]}"; do
  command -v "${tools[$i]}" >/dev/null || missing+=("${packages[$i]}")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  # Debian's nginx and haproxy packages start their services on install; the bench starts its
  # own, so a policy-rc.d keeps the package scripts from starting (or failing to start) them.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"
  if ((created_policy)); then
    "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target confgate bench_replica
if [[ " $* " == *" --smoke "* ]]; then
  exec python3 bench/peers/peers.py --out "$(mktemp -d)/peers.md" "$@"
fi
exec python3 bench/peers/peers.py "$@"
