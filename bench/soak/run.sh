#!/usr/bin/env bash
# The soak test (see bench/soak/soak.py): confgate, three config-service replicas, 10 000
# keep-alive client connections at a steady rate, replicas killed and restarted, reloads.
#   bench/soak/run.sh                    # 300 s, writes bench/results/soak.md
#   bench/soak/run.sh --duration 600     # longer
#   bench/soak/run.sh --short            # 30 s, prints the table only (CI)
# Uses $CONFGATE_BIN and $CONFIG_SERVICE_BIN when both are set; otherwise builds both into
# build/ (incremental: nothing to do when they are up to date). Exit 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z "${CONFGATE_BIN:-}" || -z "${CONFIG_SERVICE_BIN:-}" ]]; then
  if [[ ! -x build/confgate || ! -x build/examples/config-service/config-service ]]; then
    scripts/setup.sh
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build build -j "$(nproc)" --target confgate config-service
  export CONFGATE_BIN="$PWD/build/confgate"
  export CONFIG_SERVICE_BIN="$PWD/build/examples/config-service/config-service"
fi

# confgate holds one descriptor per client connection (plus upstream and its own), and so do
# the client processes between them: raise the soft limit to the hard one.
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited ]] && ((hard < 12000)); then
  ulimit -Hn 16384 2>/dev/null || true  # allowed for root (CI)
  hard=$(ulimit -Hn)
fi
if [[ "$hard" != unlimited ]] && ((hard < 12000)); then
  echo "soak: the descriptor hard limit is $hard; 10 000 connections need about 11 500" \
       "(raise it, or pass --connections)" >&2
fi
ulimit -n "$hard"

exec python3 bench/soak/soak.py "$@"
