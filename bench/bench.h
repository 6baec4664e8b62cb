// `firehub bench ...`: the benchmark commands, registered on the firehub executable's CLI. They
// start hubs, brokers and peers of their own and print one JSON report each (ops/bench.sh runs
// them all into one); see docs/benchmarks.md for what each measures and today's figures.
#pragma once

#include <CLI/CLI.hpp>

namespace firehub::cli {

// `firehub bench` with `ingest` (and `query`), `fusion` and `peer` under it.
void addBenchCommand(CLI::App& app);
// `firehub bench fusion` (registered by addBenchCommand).
void addFusionBench(CLI::App& bench);
// `firehub bench peer` (registered by addBenchCommand).
void addPeerBench(CLI::App& bench);
// `firehub bench cluster` (registered by addBenchCommand).
void addClusterBench(CLI::App& bench);

}  // namespace firehub::cli
