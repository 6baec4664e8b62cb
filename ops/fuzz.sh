#!/usr/bin/env bash
# Runs every libFuzzer target of build/fuzz for SECONDS each (default 600), two at a time, seeded
# from the connectors' fixtures and tests/data/bad-input. Crashes land in build/fuzz/crashes/;
# prints the executions of each target. Called by `ops/run.sh fuzz [SECONDS]`; FUZZ_TARGETS="a b"
# limits the run to those targets (e.g. "connector_alarm request").
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
seconds=${1:-600}
out=build/fuzz
mkdir -p "$out/seeds" "$out/corpus" "$out/crashes" "$out/logs"

# The first byte of a connector input picks the content type (see fuzz/connector_fuzzer.cc).
type_byte() {
  case "$1" in
    *.csv) echo 0 ;; *.ndjson) echo 2 ;; *.geojson) echo 3 ;; *.gbt26875) echo 7 ;;
    *.xml) echo 5 ;; *.json) if [ "$2" = health ]; then echo 4; else echo 1; fi ;;
    *) echo 1 ;;
  esac
}
seed() {  # seed DIR BYTE FILE
  local name
  name=$(basename "$3")
  { printf "\\$(printf '%03o' "$2")"; cat "$3"; } > "$1/$name"
}
for connector in alarm building health police station water weather; do
  dir="$out/seeds/connector_$connector"
  mkdir -p "$dir" "$out/corpus/connector_$connector"
  for f in connectors/$connector/tests/fixtures/* tests/data/bad-input/*.*; do
    case "$f" in *.tsv) continue ;; esac
    seed "$dir" "$(type_byte "$f" "$connector")" "$f"
  done
  # Inputs that once crashed a target, kept as they were found (first byte included).
  for f in tests/data/fuzz-regressions/connector_$connector/*; do cp "$f" "$dir/"; done
done
dir="$out/seeds/request"
mkdir -p "$dir" "$out/corpus/request"
for f in ops/config/feeds.d/*.json; do seed "$dir" 0 "$f"; done
printf '\000{"id":"wx","agency":"met","connector":"firehub.connector.weather","config":{"utc_offset":"+08:00"},"cadence_s":600,"errors":{"tolerance":"none","retries":2},"file_drop":{"dir":"/srv/drop"}}' \
  > "$dir/feed.json"
for f in connectors/*/config.schema.json; do seed "$dir" 1 "$f"; done
for f in tests/data/fuzz-regressions/request/*; do cp "$f" "$dir/"; done
printf '\002{"topic":"firehub.v1.water","filter":{"where":[["status","eq","STATUS_IN_SERVICE"]],"bbox":[123,41,124,42]},"delivery":{"sse":{}}}' \
  > "$dir/subscription.json"

dir="$out/seeds/query"
mkdir -p "$dir" "$out/corpus/query"
for f in tests/data/fuzz-regressions/query/*; do cp "$f" "$dir/"; done

run_one() {
  local target=$1
  local crashes="$out/crashes/$target" status
  mkdir -p "$crashes"
  "$out/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$out/corpus/$target" "$out/seeds/$target" \
    > "$out/logs/$target.log" 2>&1 && status=0 || status=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/logs/$target.log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz_$target: $execs executions in ${seconds}s, exit $status, crashes: $(ls "$crashes" | wc -l)"
}
targets=(connector_alarm connector_building connector_health connector_police connector_station
         connector_water connector_weather request query)
failed=0
if [ -n "${FUZZ_TARGETS:-}" ]; then read -r -a targets <<< "$FUZZ_TARGETS"; fi
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run_one "${targets[i]}" & a=$!
  if [ $((i + 1)) -lt ${#targets[@]} ]; then run_one "${targets[i + 1]}" & b=$!; else b=""; fi
  wait $a || failed=1
  if [ -n "$b" ]; then wait $b || failed=1; fi
done
if [ -n "$(find "$out/crashes" -type f)" ]; then
  echo "fuzz: crashing inputs in $out/crashes/"
  exit 1
fi
exit $failed
