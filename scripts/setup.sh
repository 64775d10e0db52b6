#!/usr/bin/env bash
# Installs what confgate needs to build and test (Debian 12 packages only). Safe to re-run:
# it installs nothing when every package is already present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config python3 python3-yaml python3-jsonschema curl openssl clang-format prometheus
  man-db
  clang libclang-rt-14-dev
  libevent-dev node-llhttp libssl-dev libabsl-dev prometheus-cpp-dev libyaml-cpp-dev
  nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  etcd-server etcd-client
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
