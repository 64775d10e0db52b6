#!/usr/bin/env bash
# Builds confgate and runs its demo: three config-service replicas on 127.0.0.1:18081-18083,
# confgate on 127.0.0.1:8080 (conf/demo.yaml), a few requests you can repeat with curl, then
# an outage: every replica stops and confgate answers reads from its cache (read-only mode)
# while refusing writes.
#   scripts/demo.sh          # runs until Ctrl-C
#   scripts/demo.sh --once   # makes the requests and stops everything
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target confgate config-service

run_dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT INT TERM

printf 'app/feature-flags={"dark_mode":true}\napp/db-url=postgres://db:5432/app\n' >"$run_dir/seed"
for i in 1 2 3; do
  build/examples/config-service/config-service --port "1808$i" --id "replica-$i" \
    --seed "$run_dir/seed" >"$run_dir/replica-$i.log" 2>&1 &
  pids+=($!)
done
build/confgate -c conf/demo.yaml >"$run_dir/access.log" 2>"$run_dir/confgate.log" &
pids+=($!)

for _ in $(seq 50); do
  if curl -s -o /dev/null http://127.0.0.1:8080/health; then
    break
  fi
  sleep 0.1
done

run() {
  printf '$'
  printf ' %q' "$@"
  echo
  "$@"
  echo
}
run curl -s -i http://127.0.0.1:8080/v1/kv/app/feature-flags
# Every replica was seeded from the same file, so the ETag matches whichever one answers.
run curl -s -i -H 'If-None-Match: "1"' http://127.0.0.1:8080/v1/kv/app/feature-flags
run curl -s -i http://127.0.0.1:8080/v1/kv/no-such-key
run curl -s -o /dev/null http://127.0.0.1:8080/v1/kv/app/db-url   # warms the cache
for _ in 1 2 3; do
  curl -s -o /dev/null -w 'answered by %header{x-replica-id}\n' http://127.0.0.1:8080/health
done
echo
echo "access log (one JSON line per request):"
sleep 0.3
cat "$run_dir/access.log"

echo
echo "now every replica goes down: once no host has been available for read_only_after (3 s),"
echo "confgate turns read-only and keeps serving the last good copies"
for i in 0 1 2; do
  kill "${pids[$i]}" 2>/dev/null || true
done
for _ in $(seq 100); do
  if curl -s http://127.0.0.1:9901/status | grep -q '"mode":"read_only"'; then
    break
  fi
  sleep 0.1
done
run curl -s -i http://127.0.0.1:8080/v1/kv/app/db-url
run curl -s -i -X PUT --data 'v2' http://127.0.0.1:8080/v1/kv/app/db-url
run curl -s http://127.0.0.1:9901/status

if [[ "${1:-}" == "--once" ]]; then
  exit 0
fi
echo
echo "confgate still runs on http://127.0.0.1:8080 (admin and metrics on http://127.0.0.1:9901)."
echo "Try: curl -i http://127.0.0.1:8080/v1/kv/app/db-url    (Ctrl-C stops everything)"
wait
