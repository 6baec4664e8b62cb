// firehub.connector.water: the fire water-source registry (CSV or GeoJSON) and pressure
// telemetry (NDJSON), which patches the source it names. See README.md.
#include <cstdio>

#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"
#include "firehub/v1/time_text.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;
using firehub::v1::WaterSource;

std::string checkPressure(const std::optional<double>& p) {
  if (p && (*p < 0 || *p > 2)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "field 'pressure_mpa' = %g is outside [0, 2]", *p);
    return buf;
  }
  return "";
}

class WaterConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<WaterConnector>();
    c->offset_minutes_ = firehub::sdk::readFormatConfig(config, c->options_);
    c->options_.required_columns = {"source_id", "kind", "lon", "lat", "status"};
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    firehub::sdk::forEachItem(in, options_, sink, [&](firehub::sdk::Item& item) {
      // Telemetry names a source and a reading; registry entries describe the source.
      bool telemetry = !item.fields->text("kind") && item.fields->text("time") && !item.geometry;
      if (telemetry) {
        pressure(item, sink);
      } else {
        registry(item, sink);
      }
    });
  }

 private:
  void registry(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    std::string reason;
    firehub::v1::Record r;
    WaterSource::Kind kind;
    WaterSource::Status status;
    auto id = f.text("source_id");
    auto p = f.number("pressure_mpa");
    if (!id) reason = "field 'source_id' is missing";
    if (reason.empty())
      reason = firehub::sdk::parseEnumWord(f.text("kind"), "kind", "KIND_", true, &kind);
    if (reason.empty())
      reason = firehub::sdk::parseEnumWord(f.text("status"), "status", "STATUS_", true, &status);
    if (reason.empty()) reason = checkPressure(p);
    if (reason.empty()) {
      if (item.geometry) {
        if (!item.geometry->has_point())
          reason = "a water source's geometry must be a Point";
        else
          *r.mutable_geometry() = *item.geometry;
      } else {
        reason = firehub::sdk::pointFromFields(f, *r.mutable_geometry());
      }
    }
    auto updated = firehub::sdk::timeField(f, "updated_at", offset_minutes_, reason);
    auto name = f.text("name");
    if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
    r.set_domain("water");
    r.set_entity_type("water_source");
    r.set_entity_id(*id);
    *r.mutable_observed_at() = updated ? *updated : firehub::sdk::now();
    r.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
    r.set_op(firehub::v1::OP_UPSERT);
    r.mutable_provenance()->set_source_record_id(*id + "#" +
                                                 firehub::sdk::contentVersion(item.raw));
    r.mutable_provenance()->set_source_offset(item.offset);
    auto* b = r.mutable_water_source();
    b->set_source_id(*id);
    b->set_kind(kind);
    b->set_status(status);
    if (p) {
      b->set_pressure_mpa(*p);
      *b->mutable_pressure_at() = r.observed_at();
    }
    if (updated) *b->mutable_updated_at() = *updated;
    if (name) b->set_name(*name);
    sink.emit(r);
  }

  void pressure(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    std::string reason;
    auto id = f.text("source_id");
    auto p = f.number("pressure_mpa");
    if (!id) reason = "field 'source_id' is missing";
    if (reason.empty() && !p) reason = "field 'pressure_mpa' is missing";
    if (reason.empty()) reason = checkPressure(p);
    auto when = firehub::sdk::timeField(f, "time", offset_minutes_, reason);
    if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
    firehub::v1::Record r;
    r.set_domain("water");
    r.set_entity_type("water_source");
    r.set_entity_id(*id);
    *r.mutable_observed_at() = *when;
    r.set_op(firehub::v1::OP_PATCH);  // the hub merges it into the source's latest state
    r.mutable_provenance()->set_source_record_id(*id + "@" + firehub::v1::rfc3339(*when));
    r.mutable_provenance()->set_source_offset(item.offset);
    auto* b = r.mutable_water_source();
    b->set_source_id(*id);
    b->set_pressure_mpa(*p);
    *b->mutable_pressure_at() = *when;
    sink.emit(r);
  }

  firehub::sdk::ItemOptions options_;
  int offset_minutes_ = 480;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(water, firehub::connectors::WaterConnector, "firehub.connector.water",
                          "1.0.0", "water",
                          "Water-source registry (CSV, GeoJSON) and pressure telemetry (NDJSON)",
                          kConfigSchema)
