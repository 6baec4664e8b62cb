// Micro-benchmarks of the publisher's per-message work, steadier than the end-to-end figures of
// `firehub bench ingest` (one thread, no broker, no disk): a stored record to its Kafka JSON
// value, straight from the bytes (the publisher's path) and by parsing first (its fallback), and
// protobuf's own JSON printer for scale. Run by ops/bench.sh; figures, not tests.
#include <benchmark/benchmark.h>
#include <google/protobuf/util/json_util.h>

#include <string>

#include "firehub/bus.h"

namespace {

firehub::v1::Record envelope(const std::string& domain, const std::string& source_id) {
  firehub::v1::Record r;
  r.set_id("wx-shenyang:" + source_id);
  r.set_feed_id("wx-shenyang");
  r.set_agency("Shenyang Meteorological Bureau");
  r.set_domain(domain);
  r.set_entity_id("54342");
  r.mutable_observed_at()->set_seconds(1795305600);
  r.mutable_received_at()->set_seconds(1795305612);
  r.mutable_received_at()->set_nanos(345000000);
  r.set_s2_cell("35e21d");
  r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
  r.set_op(firehub::v1::OP_UPSERT);
  auto* prov = r.mutable_provenance();
  prov->set_connector_id("firehub.connector." + domain);
  prov->set_connector_version("1.0.0");
  prov->set_source_record_id(source_id);
  prov->set_source_offset("line 1234");
  prov->set_transport("http_push");
  return r;
}

// A weather observation as the weather connector stores it.
std::string weatherBytes() {
  firehub::v1::Record r = envelope("weather", "54342@2026-11-22T10:40:00Z");
  r.set_entity_type("weather_station");
  r.mutable_geometry()->mutable_point()->set_lon(123.4315);
  r.mutable_geometry()->mutable_point()->set_lat(41.7968);
  auto* w = r.mutable_weather_observation();
  w->set_station_id("54342");
  w->set_temperature_c(-3.7);
  w->set_relative_humidity_pct(28.5);
  w->set_wind_speed_kmh(17.3);
  w->set_wind_direction_deg(292.5);
  w->set_precipitation_mm(0);
  w->set_station_name("沈阳");
  return r.SerializeAsString();
}

// A building footprint (a polygon of 12 corners).
std::string buildingBytes() {
  firehub::v1::Record r = envelope("building", "B-210102-00042");
  r.set_entity_type("building");
  auto* ring = r.mutable_geometry()->mutable_polygon()->add_rings();
  for (int i = 0; i < 12; ++i) {
    auto* p = ring->add_points();
    p->set_lon(123.43 + 0.0001 * (i % 4));
    p->set_lat(41.79 + 0.0001 * (i / 4));
  }
  auto* b = r.mutable_building();
  b->set_building_id("B-210102-00042");
  b->set_name("和平区南京北街 42 号");
  b->set_height_m(87.5);
  b->set_floors(28);
  b->set_occupancy(firehub::v1::Building::OCCUPANCY_HIGH_RISE);
  return r.SerializeAsString();
}

void fromWire(benchmark::State& state, const std::string& bytes) {
  std::string out;
  firehub::bus::WireRecordFacts facts;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(firehub::bus::appendRecordJsonFromWire(out, bytes, false, &facts));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}

void parsed(benchmark::State& state, const std::string& bytes) {
  std::string out;
  firehub::v1::Record record;
  for (auto _ : state) {
    out.clear();
    record.ParseFromString(bytes);
    firehub::bus::appendJson(out, record);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}

void protobufPrinter(benchmark::State& state, const std::string& bytes) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  firehub::v1::Record record;
  for (auto _ : state) {
    out.clear();
    record.ParseFromString(bytes);
    benchmark::DoNotOptimize(
        google::protobuf::util::MessageToJsonString(record, &out, options).ok());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}

void BM_WeatherJsonFromWire(benchmark::State& s) { fromWire(s, weatherBytes()); }
void BM_WeatherJsonParsed(benchmark::State& s) { parsed(s, weatherBytes()); }
void BM_WeatherJsonProtobufPrinter(benchmark::State& s) { protobufPrinter(s, weatherBytes()); }
void BM_BuildingJsonFromWire(benchmark::State& s) { fromWire(s, buildingBytes()); }
void BM_BuildingJsonParsed(benchmark::State& s) { parsed(s, buildingBytes()); }
BENCHMARK(BM_WeatherJsonFromWire);
BENCHMARK(BM_WeatherJsonParsed);
BENCHMARK(BM_WeatherJsonProtobufPrinter);
BENCHMARK(BM_BuildingJsonFromWire);
BENCHMARK(BM_BuildingJsonParsed);

}  // namespace

BENCHMARK_MAIN();
