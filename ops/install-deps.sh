#!/usr/bin/env bash
# Installs what firehub needs to build, run and test on Debian 12. Idempotent: packages already
# present are not touched, and `apt-get update` runs at most once per call, only when something
# is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries (DESIGN: Debian packages only)
  librdkafka-dev librocksdb-dev libpoco-dev libboost-dev libboost-filesystem-dev
  libprotobuf-dev protobuf-compiler libs2-dev libsimdjson-dev libcli11-dev prometheus-cpp-dev
  libssl-dev zlib1g-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev kcat curl netcat-openbsd libxml2-utils
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
