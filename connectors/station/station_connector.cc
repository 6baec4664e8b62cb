// firehub.connector.station: the fire and rescue service's station register, as CSV, GeoJSON or
// JSON. See README.md for the field mapping.
#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;
using firehub::v1::FireStation;

class StationConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<StationConnector>();
    c->offset_minutes_ = firehub::sdk::readFormatConfig(config, c->options_);
    c->options_.required_columns = {"station_id", "name",   "kind",   "lon",
                                    "lat",        "status", "engines"};
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    firehub::sdk::forEachItem(in, options_, sink, [&](firehub::sdk::Item& item) {
      auto& f = *item.fields;
      std::string reason;
      auto id = f.text("station_id");
      auto name = f.text("name");
      auto engines = f.number("engines");
      FireStation::Kind kind;
      FireStation::Status status;
      firehub::v1::Record r;
      if (!id) reason = "field 'station_id' is missing";
      if (reason.empty())
        reason = firehub::sdk::parseEnumWord(f.text("kind"), "kind", "KIND_", true, &kind);
      if (reason.empty())
        reason = firehub::sdk::parseEnumWord(f.text("status"), "status", "STATUS_", true, &status);
      if (reason.empty() && engines &&
          (*engines < 0 || *engines > 200 || *engines != static_cast<int>(*engines))) {
        reason = "field 'engines' must be a whole number 0..200";
      }
      if (reason.empty()) {
        if (item.geometry) {
          if (!item.geometry->has_point())
            reason = "a station's geometry must be a Point";
          else
            *r.mutable_geometry() = *item.geometry;
        } else {
          reason = firehub::sdk::pointFromFields(f, *r.mutable_geometry());
        }
      }
      auto updated = firehub::sdk::timeField(f, "updated_at", offset_minutes_, reason);
      if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
      r.set_domain("station");
      r.set_entity_type("fire_station");
      r.set_entity_id(*id);
      *r.mutable_observed_at() = updated ? *updated : firehub::sdk::now();
      r.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
      r.set_op(firehub::v1::OP_UPSERT);
      r.mutable_provenance()->set_source_record_id(*id + "#" +
                                                   firehub::sdk::contentVersion(item.raw));
      r.mutable_provenance()->set_source_offset(item.offset);
      auto* s = r.mutable_fire_station();
      s->set_station_id(*id);
      if (name) s->set_name(*name);
      s->set_kind(kind);
      s->set_status(status);
      s->set_engines(engines ? static_cast<int32_t>(*engines) : 0);
      sink.emit(r);
    });
  }

 private:
  firehub::sdk::ItemOptions options_;
  int offset_minutes_ = 480;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(station, firehub::connectors::StationConnector,
                          "firehub.connector.station", "1.0.0", "station",
                          "Fire station register (CSV, GeoJSON, JSON)", kConfigSchema)
