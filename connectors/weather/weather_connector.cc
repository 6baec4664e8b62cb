// firehub.connector.weather: surface observations of automatic weather stations (meteorological
// bureau) as CSV or JSON (array, single object or NDJSON). See README.md for the field mapping.
#include <cstdio>

#include "cap.h"
#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"
#include "firehub/v1/time_text.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;

struct Bounds {
  const char* name;
  double min;
  double max;
  bool required;
};
constexpr Bounds kTemp{"temp_c", -60, 60, true};
constexpr Bounds kRh{"rh_pct", 0, 100, true};
constexpr Bounds kWind{"wind_kmh", 0, 500, true};
constexpr Bounds kWindDir{"wind_dir_deg", 0, 360, false};
constexpr Bounds kPrecip{"precip_mm", 0, 2000, true};

bool validStationId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (unsigned char c : id) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

class WeatherConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<WeatherConnector>();
    c->offset_minutes_ = firehub::sdk::readFormatConfig(config, c->options_);
    c->options_.required_columns = {"station_id", "lon",    "lat",      "time",
                                    "temp_c",     "rh_pct", "wind_kmh", "precip_mm"};
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    const auto& t = in.content_type;
    if (t == "application/xml" || t == "text/xml" || t == "application/cap+xml" ||
        t == "application/atom+xml") {
      return decodeCap(in.data, sink);
    }
    firehub::sdk::forEachItem(in, options_, sink,
                              [&](firehub::sdk::Item& item) { map(item, sink); });
  }

 private:
  // Validates one observation and emits it as a record, or rejects it naming the field.
  void map(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    auto station = f.text("station_id");
    auto name = f.text("station_name");
    auto time = f.text("time");
    double values[5] = {};
    std::optional<double> present[5];
    const Bounds* bounds[5] = {&kTemp, &kRh, &kWind, &kWindDir, &kPrecip};
    for (int i = 0; i < 5; ++i) present[i] = f.number(bounds[i]->name);
    firehub::v1::Geometry geometry;
    std::string reason;
    if (item.geometry) {
      if (!item.geometry->has_point())
        reason = "a station's geometry must be a Point";
      else
        geometry = *item.geometry;
    } else {
      reason = firehub::sdk::pointFromFields(f, geometry);
    }
    if (firehub::sdk::rejectIfInvalid(item, "", sink)) return;
    if (!station || !validStationId(*station)) {
      sink.reject(Stage::kValidate,
                  "field 'station_id' is missing or not 1-64 characters of A-Z a-z 0-9 _ - .",
                  item.raw, item.offset);
      return;
    }
    for (int i = 0; i < 5 && reason.empty(); ++i) {
      const Bounds& b = *bounds[i];
      if (!present[i]) {
        if (b.required) reason = std::string("field '") + b.name + "' is missing";
        continue;
      }
      values[i] = *present[i];
      if (values[i] < b.min || values[i] > b.max) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "field '%s' = %g is outside [%g, %g]", b.name, values[i],
                      b.min, b.max);
        reason = buf;
      }
    }
    std::optional<google::protobuf::Timestamp> when;
    if (reason.empty()) {
      if (!time) {
        reason = "field 'time' is missing";
      } else if (!(when = firehub::sdk::parseIsoTime(*time, offset_minutes_))) {
        reason = "field 'time' = '" + *time + "' is not an ISO 8601 date-time";
      }
    }
    if (!reason.empty()) {
      sink.reject(Stage::kValidate, reason, item.raw, item.offset);
      return;
    }

    record_.Clear();
    record_.set_domain("weather");
    record_.set_entity_type("weather_station");
    record_.set_entity_id(*station);
    *record_.mutable_observed_at() = *when;
    *record_.mutable_geometry() = geometry;
    record_.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
    record_.set_op(firehub::v1::OP_UPSERT);
    auto* prov = record_.mutable_provenance();
    prov->set_source_record_id(*station + "@" + firehub::v1::rfc3339(*when));
    prov->set_source_offset(item.offset);
    auto* body = record_.mutable_weather_observation();
    body->set_station_id(*station);
    if (name) body->set_station_name(*name);
    body->set_temperature_c(values[0]);
    body->set_relative_humidity_pct(values[1]);
    body->set_wind_speed_kmh(values[2]);
    if (present[3]) body->set_wind_direction_deg(values[3]);
    body->set_precipitation_mm(values[4]);
    sink.emit(record_);
  }

  // CAP 1.2 warnings (a single alert or a feed embedding alerts).
  void decodeCap(std::string_view xml, firehub::sdk::Sink& sink) {
    cap::Parsed parsed;
    try {
      parsed = cap::parse(xml, offset_minutes_);
    } catch (const std::invalid_argument& e) {
      throw firehub::sdk::InputError(e.what());
    }
    sink.source(xml);
    for (auto& r : parsed.records) {
      r.mutable_provenance()->set_source_offset("alert " + r.weather_warning().identifier());
      sink.emit(r);
    }
    for (const auto& [identifier, reason] : parsed.rejected) {
      sink.reject(Stage::kValidate, reason, xml, "alert " + identifier);
    }
  }

  int offset_minutes_ = 8 * 60;
  firehub::sdk::ItemOptions options_;
  firehub::v1::Record record_;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(weather, firehub::connectors::WeatherConnector,
                          "firehub.connector.weather", "1.0.0", "weather",
                          "Weather station observations (CSV, JSON, NDJSON)", kConfigSchema)
