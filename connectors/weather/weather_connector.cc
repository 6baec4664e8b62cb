// firehub.connector.weather: surface observations of automatic weather stations (meteorological
// bureau) as CSV or JSON (array, single object or NDJSON). See README.md for the field mapping.
#include <simdjson.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/text.h"
#include "google/protobuf/util/time_util.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;

// Field values of one observation as read from any of the formats, before validation.
struct RawObservation {
  std::optional<std::string> station_id;
  std::optional<std::string> station_name;
  std::optional<double> lon, lat, temp_c, rh_pct, wind_kmh, wind_dir_deg, precip_mm;
  std::optional<std::string> time;
  std::string bad_field;  // first field that had the wrong type or could not be parsed
};

struct Bounds {
  const char* name;
  double min;
  double max;
};
constexpr Bounds kLon{"lon", -180, 180};
constexpr Bounds kLat{"lat", -90, 90};
constexpr Bounds kTemp{"temp_c", -60, 60};
constexpr Bounds kRh{"rh_pct", 0, 100};
constexpr Bounds kWind{"wind_kmh", 0, 500};
constexpr Bounds kWindDir{"wind_dir_deg", 0, 360};
constexpr Bounds kPrecip{"precip_mm", 0, 2000};

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
    std::string offset = config.getString("utc_offset", "+08:00");
    auto minutes = firehub::sdk::parseUtcOffset(offset);
    if (!minutes) {
      throw firehub::sdk::ConfigError("config key 'utc_offset': '" + offset +
                                      "' is not Z or ±hh:mm");
    }
    c->offset_minutes_ = *minutes;
    std::string delim = config.getString("csv_delimiter", ",");
    if (delim != "," && delim != ";" && delim != "\t" && delim != "|") {
      throw firehub::sdk::ConfigError("config key 'csv_delimiter': must be one of , ; TAB |");
    }
    c->delimiter_ = delim[0];
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    if (in.content_type == "text/csv") {
      decodeCsv(in.data, sink);
    } else if (in.content_type == "application/x-ndjson") {
      decodeNdjson(in.data, sink);
    } else if (in.content_type == "application/json") {
      decodeJsonDocument(in.data, sink);
    } else {
      throw firehub::sdk::InputError("unsupported content type '" + std::string(in.content_type) +
                                     "': use text/csv, application/json or application/x-ndjson");
    }
  }

 private:
  void decodeCsv(std::string_view data, firehub::sdk::Sink& sink) {
    firehub::sdk::CsvReader reader(data, delimiter_);
    firehub::sdk::CsvRow row;
    std::string error;
    if (!reader.next(row, error)) throw firehub::sdk::InputError("CSV body is empty");
    std::map<std::string, size_t> column;
    for (size_t i = 0; i < row.fields.size(); ++i) {
      column[std::string(firehub::sdk::trim(row.fields[i]))] = i;
    }
    for (const char* required :
         {"station_id", "lon", "lat", "time", "temp_c", "rh_pct", "wind_kmh", "precip_mm"}) {
      if (!column.count(required)) {
        throw firehub::sdk::InputError(
            std::string("CSV header lacks column '") + required +
            "' (expected station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm)");
      }
    }
    auto cell = [&](const char* name) -> std::optional<std::string_view> {
      auto it = column.find(name);
      if (it == column.end() || it->second >= row.fields.size()) return std::nullopt;
      std::string_view v = firehub::sdk::trim(row.fields[it->second]);
      if (v.empty()) return std::nullopt;
      return v;
    };
    while (reader.next(row, error)) {
      std::string offset = "line " + std::to_string(row.line);
      if (!error.empty()) {
        sink.reject(Stage::kDecode, error, row.raw, offset);
        continue;
      }
      if (row.fields.size() != column.size()) {
        sink.reject(Stage::kDecode,
                    "row has " + std::to_string(row.fields.size()) + " fields, header has " +
                        std::to_string(column.size()),
                    row.raw, offset);
        continue;
      }
      RawObservation obs;
      if (auto v = cell("station_id")) obs.station_id = std::string(*v);
      if (auto v = cell("station_name")) obs.station_name = std::string(*v);
      if (auto v = cell("time")) obs.time = std::string(*v);
      auto number = [&](const char* name, std::optional<double>& out) {
        auto v = cell(name);
        if (!v) return;
        out = firehub::sdk::parseDouble(*v);
        if (!out && obs.bad_field.empty()) obs.bad_field = name;
      };
      number("lon", obs.lon);
      number("lat", obs.lat);
      number("temp_c", obs.temp_c);
      number("rh_pct", obs.rh_pct);
      number("wind_kmh", obs.wind_kmh);
      number("wind_dir_deg", obs.wind_dir_deg);
      number("precip_mm", obs.precip_mm);
      finish(obs, row.raw, offset, sink);
    }
  }

  void decodeNdjson(std::string_view data, firehub::sdk::Sink& sink) {
    for (const auto& line : firehub::sdk::splitLines(data)) {
      std::string offset = "line " + std::to_string(line.number);
      simdjson::padded_string padded(line.text);
      simdjson::dom::element e;
      if (auto err = parser_.parse(padded).get(e); err) {
        sink.reject(Stage::kDecode, std::string("invalid JSON: ") + simdjson::error_message(err),
                    line.text, offset);
        continue;
      }
      decodeObject(e, line.text, offset, sink);
    }
  }

  void decodeJsonDocument(std::string_view data, firehub::sdk::Sink& sink) {
    simdjson::padded_string padded(data);
    simdjson::dom::element doc;
    if (auto err = parser_.parse(padded).get(doc); err) {
      // Many senders label NDJSON as application/json: several objects, one per line.
      // Many senders label NDJSON as application/json: several objects, one per line. It is
      // NDJSON when the first line alone is a complete object.
      std::string_view t = firehub::sdk::trim(data);
      size_t nl = t.find('\n');
      if (!t.empty() && t.front() == '{' && nl != std::string_view::npos) {
        simdjson::padded_string first(t.substr(0, nl));
        simdjson::dom::element e;
        if (!parser_.parse(first).get(e) && e.is_object()) {
          decodeNdjson(data, sink);
          return;
        }
      }
      throw firehub::sdk::InputError(std::string("body is not valid JSON: ") +
                                     simdjson::error_message(err));
    }
    if (doc.is_object()) {
      decodeObject(doc, data, "item 0", sink);
      return;
    }
    simdjson::dom::array items;
    if (doc.get_array().get(items)) {
      throw firehub::sdk::InputError("JSON body must be an object or an array of objects");
    }
    size_t index = 0;
    for (simdjson::dom::element item : items) {
      std::string raw = simdjson::minify(item);
      decodeObject(item, raw, "item " + std::to_string(index++), sink);
    }
  }

  void decodeObject(simdjson::dom::element e, std::string_view raw, const std::string& offset,
                    firehub::sdk::Sink& sink) {
    simdjson::dom::object obj;
    if (e.get_object().get(obj)) {
      sink.reject(Stage::kDecode, "expected a JSON object", raw, offset);
      return;
    }
    RawObservation obs;
    for (auto field : obj) {
      std::string_view key = field.key;
      simdjson::dom::element v = field.value;
      auto number = [&](std::optional<double>& out) {
        if (v.is_null()) return;
        double d;
        if (v.get_double().get(d)) {
          if (obs.bad_field.empty()) obs.bad_field = std::string(key);
          return;
        }
        out = d;
      };
      auto text = [&](std::optional<std::string>& out, bool allow_integer) {
        if (v.is_null()) return;
        std::string_view s;
        int64_t i;
        if (!v.get_string().get(s)) {
          out = std::string(s);
        } else if (allow_integer && !v.get_int64().get(i)) {
          out = std::to_string(i);
        } else if (obs.bad_field.empty()) {
          obs.bad_field = std::string(key);
        }
      };
      if (key == "station_id") text(obs.station_id, true);
      else if (key == "station_name") text(obs.station_name, false);
      else if (key == "time") text(obs.time, false);
      else if (key == "lon") number(obs.lon);
      else if (key == "lat") number(obs.lat);
      else if (key == "temp_c") number(obs.temp_c);
      else if (key == "rh_pct") number(obs.rh_pct);
      else if (key == "wind_kmh") number(obs.wind_kmh);
      else if (key == "wind_dir_deg") number(obs.wind_dir_deg);
      else if (key == "precip_mm") number(obs.precip_mm);
      // Other keys are ignored: agencies add their own columns.
    }
    finish(obs, raw, offset, sink);
  }

  // Validates one observation and emits it as a record, or rejects it naming the field.
  void finish(const RawObservation& obs, std::string_view raw, const std::string& offset,
              firehub::sdk::Sink& sink) {
    if (!obs.bad_field.empty()) {
      sink.reject(Stage::kDecode, "field '" + obs.bad_field + "' is not a valid value", raw,
                  offset);
      return;
    }
    if (!obs.station_id || !validStationId(*obs.station_id)) {
      sink.reject(Stage::kValidate,
                  "field 'station_id' is missing or not 1-64 characters of A-Z a-z 0-9 _ - .", raw,
                  offset);
      return;
    }
    std::string reason;
    auto check = [&](const std::optional<double>& v, const Bounds& b, bool required) {
      if (!reason.empty()) return;
      if (!v) {
        if (required) reason = std::string("field '") + b.name + "' is missing";
        return;
      }
      if (*v < b.min || *v > b.max) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "field '%s' = %g is outside [%g, %g]", b.name, *v, b.min,
                      b.max);
        reason = buf;
      }
    };
    check(obs.lon, kLon, true);
    check(obs.lat, kLat, true);
    check(obs.temp_c, kTemp, true);
    check(obs.rh_pct, kRh, true);
    check(obs.wind_kmh, kWind, true);
    check(obs.wind_dir_deg, kWindDir, false);
    check(obs.precip_mm, kPrecip, true);
    std::optional<google::protobuf::Timestamp> when;
    if (reason.empty()) {
      if (!obs.time) {
        reason = "field 'time' is missing";
      } else if (!(when = firehub::sdk::parseIsoTime(*obs.time, offset_minutes_))) {
        reason = "field 'time' = '" + *obs.time + "' is not an ISO 8601 date-time";
      }
    }
    if (!reason.empty()) {
      sink.reject(Stage::kValidate, reason, raw, offset);
      return;
    }

    record_.Clear();
    record_.set_domain("weather");
    record_.set_entity_type("weather_station");
    record_.set_entity_id(*obs.station_id);
    *record_.mutable_observed_at() = *when;
    auto* point = record_.mutable_geometry()->mutable_point();
    point->set_lon(*obs.lon);
    point->set_lat(*obs.lat);
    record_.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
    record_.set_op(firehub::v1::OP_UPSERT);
    auto* prov = record_.mutable_provenance();
    prov->set_source_record_id(*obs.station_id + "@" +
                               google::protobuf::util::TimeUtil::ToString(*when));
    prov->set_source_offset(offset);
    auto* body = record_.mutable_weather_observation();
    body->set_station_id(*obs.station_id);
    if (obs.station_name) body->set_station_name(*obs.station_name);
    body->set_temperature_c(*obs.temp_c);
    body->set_relative_humidity_pct(*obs.rh_pct);
    body->set_wind_speed_kmh(*obs.wind_kmh);
    if (obs.wind_dir_deg) body->set_wind_direction_deg(*obs.wind_dir_deg);
    body->set_precipitation_mm(*obs.precip_mm);
    sink.emit(record_);
  }

  int offset_minutes_ = 8 * 60;
  char delimiter_ = ',';
  simdjson::dom::parser parser_;
  firehub::v1::Record record_;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(weather, firehub::connectors::WeatherConnector,
                          "firehub.connector.weather", "1.0.0", "weather",
                          "Weather station observations (CSV, JSON, NDJSON)", kConfigSchema)
