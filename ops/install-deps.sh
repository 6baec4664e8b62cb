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
  libssl-dev zlib1g-dev libre2-dev libjemalloc-dev
  # MQTT source feeds (an agency's IoT platform)
  libmosquitto-dev
  # the one-map's vector tiles: the Mapbox Vector Tile encoder writes with protozero (headers)
  libprotozero-dev
  # the OpenAPI description, written in YAML, embedded in the binary as JSON at build time
  libyaml-cpp-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev kcat curl netcat-openbsd libxml2-utils
  # libFuzzer targets (ops/run.sh fuzz): Debian's clang and its sanitizer runtimes; clang-format
  # for the format check of ops/run.sh test
  clang libclang-rt-14-dev clang-format
  # the one-map's browser test: Debian's chromium (driven by playwright-core) and a CJK font
  chromium fonts-wqy-microhei
  # a GIS client for the OGC API - Features test (GDAL's OAPIF driver)
  gdal-bin
  # certificates made at test time for the HTTPS test
  openssl
  # network namespaces and veth pairs for the tiers' link-cut test
  iproute2
  # a real .xlsx writer for the spreadsheet test
  python3-openpyxl
  # a real MQTT broker and its clients for the MQTT source test
  mosquitto mosquitto-clients
)
# `ops/install-deps.sh bench`: also the peer of the benchmark (rsyslog with omkafka) and wrk.
if [ "${1:-}" = "bench" ]; then packages+=(rsyslog rsyslog-kafka wrk); fi
# Node.js and npm for the one-map's packages, from Debian unless the machine already has them.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The one-map's npm packages (MapLibre GL JS, playwright-core), exactly as package-lock.json
# pins them; nothing is downloaded at build time.
onemap="$(cd "$(dirname "$0")/.." && pwd)/web/onemap"
if ! cmp -s "$onemap/package-lock.json" "$onemap/node_modules/.firehub-lock" 2>/dev/null; then
  echo "install-deps: npm ci in web/onemap"
  (cd "$onemap" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$onemap/package-lock.json" "$onemap/node_modules/.firehub-lock"
fi

# The validator the tests check the API's responses with (tests/api), as its lock file pins it.
api_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/api"
if ! cmp -s "$api_tests/package-lock.json" "$api_tests/node_modules/.firehub-lock" 2>/dev/null; then
  echo "install-deps: npm ci in tests/api"
  (cd "$api_tests" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$api_tests/package-lock.json" "$api_tests/node_modules/.firehub-lock"
fi

# The independent reference the coordinate conversions are checked against (tests/crs: gcoord).
crs_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/crs"
if ! cmp -s "$crs_tests/package-lock.json" "$crs_tests/node_modules/.firehub-lock" 2>/dev/null; then
  echo "install-deps: npm ci in tests/crs"
  (cd "$crs_tests" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$crs_tests/package-lock.json" "$crs_tests/node_modules/.firehub-lock"
fi
