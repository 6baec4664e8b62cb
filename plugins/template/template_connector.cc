// firehub.connector.template: the smallest complete connector, to copy when adding an agency.
//
// It reads NDJSON lines {"id": "...", "lon": 123.4, "lat": 41.8, "time": "2026-11-22T08:00:00Z",
// "temp_c": 3.5} and emits WeatherObservation records. To make a new connector: copy this folder
// to connectors/<name>/, rename the class and the ids, map your agency's fields onto the body of
// your domain in schemas/firehub/v1, and add one line to connectors/CMakeLists.txt.
#include <simdjson.h>

#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/text.h"

namespace firehub::connectors {
namespace {

class TemplateConnector final : public firehub::sdk::Connector {
 public:
  // Read every config key here (with its default); unknown keys are rejected by the SDK.
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<TemplateConnector>();
    c->entity_type_ = config.getString("entity_type", "weather_station");
    if (c->entity_type_.empty()) throw firehub::sdk::ConfigError("config key 'entity_type': empty");
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    if (in.content_type != "application/x-ndjson" && in.content_type != "application/json") {
      throw firehub::sdk::InputError("unsupported content type '" + std::string(in.content_type) +
                                     "': use application/x-ndjson");
    }
    for (const auto& line : firehub::sdk::splitLines(in.data)) {
      std::string offset = "line " + std::to_string(line.number);
      simdjson::padded_string padded(line.text);
      simdjson::dom::object obj;
      if (parser_.parse(padded).get(obj)) {
        sink.reject(firehub::sdk::Stage::kDecode, "not a JSON object", line.text, offset);
        continue;
      }
      std::string_view id, time;
      double lon = 0, lat = 0, temp = 0;
      if (obj["id"].get(id) || obj["time"].get(time) || obj["lon"].get(lon) ||
          obj["lat"].get(lat) || obj["temp_c"].get(temp)) {
        sink.reject(firehub::sdk::Stage::kDecode,
                    "fields id, time (strings) and lon, lat, temp_c (numbers) are required",
                    line.text, offset);
        continue;
      }
      auto when = firehub::sdk::parseIsoTime(time, 0);
      if (id.empty() || !when || lon < -180 || lon > 180 || lat < -90 || lat > 90) {
        sink.reject(firehub::sdk::Stage::kValidate,
                    "id empty, time invalid or lon/lat out of range", line.text, offset);
        continue;
      }
      firehub::v1::Record r;
      r.set_domain("weather");
      r.set_entity_type(entity_type_);
      r.set_entity_id(std::string(id));
      *r.mutable_observed_at() = *when;
      r.mutable_geometry()->mutable_point()->set_lon(lon);
      r.mutable_geometry()->mutable_point()->set_lat(lat);
      r.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
      r.mutable_provenance()->set_source_record_id(std::string(id) + "@" + std::string(time));
      r.mutable_provenance()->set_source_offset(offset);
      auto* body = r.mutable_weather_observation();
      body->set_station_id(std::string(id));
      body->set_temperature_c(temp);
      sink.emit(r);
    }
  }

 private:
  std::string entity_type_;
  simdjson::dom::parser parser_;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(template, firehub::connectors::TemplateConnector,
                          "firehub.connector.template", "0.1.0", "weather",
                          "Template connector: NDJSON temperature readings", kConfigSchema)
