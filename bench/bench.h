// `firehub bench ...`: the benchmark commands, registered on the firehub executable's CLI. They
// start hubs, brokers and peers of their own and print one JSON report each (ops/bench.sh runs
// them all into one); see docs/benchmarks.md for what each measures and today's figures.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace firehub::cli {

// `firehub bench` with `ingest` (and `query`), `fusion` and `peer` under it.
void addBenchCommand(CLI::App& app);
// `firehub bench fusion` (registered by addBenchCommand).
void addFusionBench(CLI::App& bench);
// `firehub bench peer` (registered by addBenchCommand).
void addPeerBench(CLI::App& bench);
// `firehub bench cluster` (registered by addBenchCommand).
void addClusterBench(CLI::App& bench);
// `firehub bench map` (registered by addBenchCommand).
void addMapBench(CLI::App& bench);
// `firehub bench tiers` (registered by addBenchCommand).
void addTiersBench(CLI::App& bench);
// `firehub bench lifecycle` (registered by addBenchCommand).
void addLifecycleBench(CLI::App& bench);
// The duty failover phase of `firehub bench cluster`: three `firehub serve` processes of one
// cluster on `bootstrap` (data under `dir`); seconds from each kill -9 of the layers duty's holder
// to a surviving node holding it, for up to `rounds` kills.
std::vector<double> measureDutyFailover(const std::string& bootstrap, const std::string& dir,
                                        int rounds, int session_timeout_ms);

}  // namespace firehub::cli
