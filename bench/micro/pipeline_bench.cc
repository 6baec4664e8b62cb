// Micro-benchmarks of the pushing thread's work, the largest share of `firehub bench ingest`: a
// push of weather JSON lines through the pipeline (the weather connector, the host's checks and
// envelope, one lake commit with the write-ahead log synced) into a real lake on disk, without
// Kafka or HTTP. CPU time of the pushing thread per record, steadier than the end-to-end run's;
// run under `valgrind --tool=callgrind` it counts the same instructions every time. Run by
// ops/bench.sh; figures, not tests.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>
#include <string>

#include "bench_data.h"  // the same weather lines as `firehub bench ingest`
#include "firehub/hub.h"

extern "C" const fh_connector_descriptor* fh_connector_weather(void);

namespace {

namespace fs = std::filesystem;

// One hub without HTTP or Kafka on a fresh lake, with the weather connector built in.
struct Fixture {
  fs::path dir;
  std::unique_ptr<firehub::Hub> hub;

  Fixture() {
    std::random_device rd;
    dir = fs::temp_directory_path() / ("firehub-pipeline-bench-" + std::to_string(rd()));
    firehub::HubConfig config;
    config.init = true;  // a fresh data dir
    config.data_dir = dir.string();
    config.serve_http = false;
    config.publish = false;
    config.plugins_dir = (dir / "plugins").string();  // empty: the weather connector is built in
    fs::create_directories(config.plugins_dir);
    auto started = firehub::Hub::start(config, {fh_connector_weather()});
    if (!started.isOk()) throw std::runtime_error(started.status().toString());
    hub = std::move(started).value();
    firehub::registry::FeedSpec spec;
    spec.id = "bench";
    spec.agency = "bench";
    spec.connector = "firehub.connector.weather";
    auto feed = hub->feeds().create(spec);
    if (!feed.isOk()) throw std::runtime_error(feed.status().toString());
  }
  ~Fixture() {
    hub.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// A push of `state.range(0)` new observations per iteration (the bodies are made outside the
// timing); items/s and CPU time per push.
void BM_PushWeatherLines(benchmark::State& state) {
  Fixture fixture;
  const size_t per_push = static_cast<size_t>(state.range(0));
  size_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string body = firehub::cli::observationBody(next, per_push, /*csv=*/false);
    next += per_push;
    state.ResumeTiming();
    firehub::pipeline::IngestRequest req{"bench", body, "application/x-ndjson", "file",
                                         std::nullopt};
    auto summary = fixture.hub->pipeline().ingest(req);
    if (!summary.isOk() || summary->accepted != per_push) {
      state.SkipWithError(summary.isOk() ? "not every record was accepted"
                                         : summary.status().toString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(next));
}
BENCHMARK(BM_PushWeatherLines)->Arg(5000)->Unit(benchmark::kMillisecond);
// The same for a fixed 40 pushes: the instruction count under callgrind
// (--toggle-collect='firehub::pipeline::Pipeline::ingest*') is the same in every run.
BENCHMARK(BM_PushWeatherLines)->Arg(5000)->Iterations(40)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
