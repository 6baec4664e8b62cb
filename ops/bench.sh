#!/usr/bin/env bash
# The benchmark suite (called by `ops/run.sh bench [--json FILE] [--records N]`): one
# `firehub broker` process for the run, then
#   firehub bench ingest   end to end (JSON lines -> lake with fsynced WAL -> Kafka) beside the
#                          RocksDB and librdkafka ceilings, on the same bytes and broker;
#   firehub bench peer     rsyslog imfile -> omkafka on the same file and broker, in three
#                          pairs with firehub's ingest run just before each (the first pair's
#                          firehub figure is the run above), each pair's ratio and the median;
#   firehub bench ingest --format mix   the same with building GeoJSON and fire-alarm events
#                          beside the weather lines (three feeds and connectors);
#   firehub bench memory   the hub's resident memory with 1 M buildings fused and live;
#   firehub bench fusion   full fusion of 1 M buildings, record-in -> delta-out latency, then
#                          viewport queries (fresh and cached) and wrk on the running hub, and
#                          its memory after them;
#   firehub bench cluster  two cluster nodes on a mock broker of their own: replication lag at
#                          10,000 records/s (p50, p99) and the catch-up rate of a stopped node;
#                          then three serve processes: seconds from kill -9 of the layers duty's
#                          holder to another node running it (session timeouts 6 s and 4 s);
#   firehub bench map      the one-map on a synthetic province (1 M buildings in 10 % of 1.9 M
#                          level-15 cells): tile times cold and warm, bytes per full-screen view,
#                          a wall of screens' connections held with /healthz timed, and in headless
#                          Chromium first paint, the longest task while panning, delta-to-screen;
#   firehub bench tiers    a county hub's link to its city hub (both in one process, each with its
#                          own lake and broker): the catch-up rate of a 300,000-record backlog after
#                          a cut, and the upward lag p50/p99 at 5,000 records/s;
#   firehub bench lifecycle  a lake of 10 M weather records and the risk layer's past (113,000
#                          cells x 24 hourly versions): an entity's history p99, the layer at a
#                          moment for a city view p99, a backup's MB/s and push p99 during it;
#   record_json_bench      Google Benchmark micro-benchmarks of the publisher's per-message JSON
#                          (one thread, no broker: steadier than the end-to-end figures);
#   pipeline_bench         the pushing thread's work alone: pushes of 5,000 weather lines through
#                          the pipeline into a lake on disk (connector, checks, synced commit).
# The hub runs against the same broker process, as against a cluster in production.
# Every figure lands in one JSON report (default build/release/bench.json). Figures, not tests.
set -euo pipefail
cd "$(dirname "$0")/.."
json=build/release/bench.json
records=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    *) echo "bench: unknown argument $1 (use --json FILE, --records N)" >&2; exit 2 ;;
  esac
done
bin=build/release/bin/firehub
work=$(mktemp -d /tmp/firehub-bench-XXXXXX)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$(dirname "$json")"
rm -f "$json"

"$bin" broker --brokers 3 --partitions 6 --bootstrap-file "$work/bootstrap" 2> "$work/broker.log" &
broker_pid=$!
for _ in $(seq 1 100); do [ -s "$work/bootstrap.control" ] && break; sleep 0.1; done
bootstrap=$(cat "$work/bootstrap")

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(. /etc/os-release && echo "$PRETTY_NAME")"
printf '{"machine": "%s", "date": "%s"}\n' "$machine" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$json"

"$bin" bench ingest --records "$records" --bootstrap "$bootstrap" --jsonl-out "$work/observations.ndjson" --json "$json"
"$bin" bench peer --file "$work/observations.ndjson" --bootstrap "$bootstrap" --json "$json" --pairs 3
"$bin" bench ingest --format mix --records "$records" --bootstrap "$bootstrap" --json "$json"
"$bin" bench memory --bootstrap "$bootstrap" --json "$json"
"$bin" bench fusion --bootstrap "$bootstrap" --json "$json"
"$bin" bench cluster --json "$json"
"$bin" bench map --bootstrap "$bootstrap" --json "$json" --source-dir .
"$bin" bench tiers --json "$json"
"$bin" bench lifecycle --json "$json"
micro="${json%.json}-micro.json"
build/release/tests/record_json_bench --benchmark_min_time=1 --benchmark_out="$micro" --benchmark_out_format=json
pipeline="${json%.json}-pipeline.json"
build/release/tests/pipeline_bench --benchmark_filter='/5000$' --benchmark_min_time=5 --benchmark_out="$pipeline" \
  --benchmark_out_format=json 2> >(grep -v ' INFO ' >&2)
echo
echo "bench: report in $json (micro-benchmarks in $micro and $pipeline)"
cat "$json"
