#!/usr/bin/env bash
# The project's entry point on a fresh Debian 12 machine.
#   ops/run.sh build          install what is missing, build the release preset
#   ops/run.sh test           install, check the C++ formatting, build, run every test (ctest)
#   ops/run.sh demo [ARGS]    install, build, run the hub with the embedded broker and demo feeds
#                             on 127.0.0.1:8080 (ARGS go to `firehub demo`)
#   ops/run.sh bench [--json FILE] [--records N]  install, build, run the benchmark suite
#                             (ingest vs ceilings, rsyslog peer, fusion) into one JSON report
#   ops/run.sh faults [--long]  install, build, run the fault tests (--long: 20 kills, 10 min outage,
#                             20 kills of cluster nodes)
#   ops/run.sh asan           install, build the asan preset, run the unit and integration tests
#   ops/run.sh fuzz [SECONDS] install, build the libFuzzer targets (clang), run each SECONDS (600)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

install() { bash ops/install-deps.sh; }

build() {
  local preset=$1
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  build)
    install
    build release
    ;;
  test)
    install
    bash ops/check-format.sh
    build release
    ctest --preset release -j2 --timeout 900
    ;;
  demo)
    install
    build release
    exec build/release/bin/firehub demo --config ops/config/firehub.properties "$@"
    ;;
  bench)
    bash ops/install-deps.sh bench
    build release
    exec bash ops/bench.sh "$@"
    ;;
  faults)
    install
    build release
    if [ "${1:-}" = "--long" ]; then export FIREHUB_FAULT_LONG=1 FIREHUB_CLUSTER_KILLS=20 FIREHUB_TIERS_CUT_S=300; fi
    ctest --preset release --timeout 3600 -L fault
    ;;
  fuzz)
    install
    cmake --preset fuzz >/dev/null
    cmake --build --preset fuzz
    exec bash ops/fuzz.sh "$@"
    ;;
  asan)
    install
    build asan
    ASAN_OPTIONS=detect_leaks=0 ctest --preset asan -j2 --timeout 900 -L "unit|integration|testkit"
    ;;
  *)
    usage
    exit 2
    ;;
esac
