#include "firehub/sdk/items.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace firehub::sdk {

std::optional<std::string_view> CsvFields::cell(const char* name) const {
  auto it = columns_.find(name);
  if (it == columns_.end() || it->second >= row_.fields.size()) return std::nullopt;
  std::string_view v = trim(row_.fields[it->second]);
  if (v.empty()) return std::nullopt;
  return v;
}

std::optional<std::string> CsvFields::text(const char* name) {
  auto v = cell(name);
  if (!v) return std::nullopt;
  // Records carry UTF-8 only (protobuf strings); a cut or mis-encoded value is a bad field.
  if (!simdjson::validate_utf8(v->data(), v->size())) {
    markBad(name);
    return std::nullopt;
  }
  return std::string(*v);
}

std::optional<double> CsvFields::number(const char* name) {
  auto v = cell(name);
  if (!v) return std::nullopt;
  auto d = parseDouble(*v);
  if (!d) markBad(name);
  return d;
}

std::optional<bool> CsvFields::boolean(const char* name) {
  auto v = cell(name);
  if (!v) return std::nullopt;
  std::string s(*v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "1" || s == "yes" || s == "y") return true;
  if (s == "false" || s == "0" || s == "no" || s == "n") return false;
  markBad(name);
  return std::nullopt;
}

std::optional<std::string> JsonFields::text(const char* name) {
  simdjson::dom::element v;
  if (object_[name].get(v) || v.is_null()) return std::nullopt;
  std::string_view s;
  int64_t i;
  if (!v.get_string().get(s))
    return s.empty() ? std::nullopt : std::optional<std::string>(std::string(s));
  if (!v.get_int64().get(i)) return std::to_string(i);
  markBad(name);
  return std::nullopt;
}

std::optional<double> JsonFields::number(const char* name) {
  simdjson::dom::element v;
  if (object_[name].get(v) || v.is_null()) return std::nullopt;
  double d;
  if (!v.get_double().get(d)) return d;
  std::string_view s;
  if (!v.get_string().get(s)) {
    if (trim(s).empty()) return std::nullopt;
    if (auto parsed = parseDouble(s)) return parsed;
  }
  markBad(name);
  return std::nullopt;
}

std::optional<bool> JsonFields::boolean(const char* name) {
  simdjson::dom::element v;
  if (object_[name].get(v) || v.is_null()) return std::nullopt;
  bool b;
  if (!v.get_bool().get(b)) return b;
  std::string_view s;
  if (!v.get_string().get(s)) {
    if (s == "true" || s == "1" || s == "yes") return true;
    if (s == "false" || s == "0" || s == "no") return false;
  }
  int64_t i;
  if (!v.get_int64().get(i) && (i == 0 || i == 1)) return i == 1;
  markBad(name);
  return std::nullopt;
}

namespace {

std::string readPosition(simdjson::dom::element e, firehub::v1::Point& p) {
  simdjson::dom::array a;
  if (e.get_array().get(a) || a.size() < 2) return "a position must be [lon, lat]";
  double lon, lat;
  if (a.at(0).get_double().get(lon) || a.at(1).get_double().get(lat)) {
    return "a position must hold numbers";
  }
  if (!std::isfinite(lon) || !std::isfinite(lat) || lon < -180 || lon > 180 || lat < -90 ||
      lat > 90) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "position [%g, %g] is outside lon -180..180, lat -90..90", lon,
                  lat);
    return buf;
  }
  p.set_lon(lon);
  p.set_lat(lat);
  return "";
}

std::string readPolygon(simdjson::dom::element e, firehub::v1::Polygon& poly) {
  simdjson::dom::array rings;
  if (e.get_array().get(rings) || rings.size() == 0) return "a polygon must be an array of rings";
  for (simdjson::dom::element ring : rings) {
    simdjson::dom::array points;
    if (ring.get_array().get(points) || points.size() < 4) {
      return "a polygon ring needs at least 4 positions (closed)";
    }
    auto* r = poly.add_rings();
    for (simdjson::dom::element p : points) {
      std::string err = readPosition(p, *r->add_points());
      if (!err.empty()) return err;
    }
    const auto& first = r->points(0);
    const auto& last = r->points(r->points_size() - 1);
    if (first.lon() != last.lon() || first.lat() != last.lat())
      return "a polygon ring must be closed";
  }
  return "";
}

}  // namespace

std::string readGeoJsonGeometry(simdjson::dom::element g, firehub::v1::Geometry& out) {
  std::string_view type;
  simdjson::dom::element coords;
  if (g.is_null()) return "feature has no geometry";
  if (g["type"].get_string().get(type) || g["coordinates"].get(coords)) {
    return "geometry needs 'type' and 'coordinates'";
  }
  if (type == "Point") return readPosition(coords, *out.mutable_point());
  if (type == "Polygon") return readPolygon(coords, *out.mutable_polygon());
  if (type == "MultiPolygon") {
    simdjson::dom::array polys;
    if (coords.get_array().get(polys) || polys.size() == 0) return "a MultiPolygon needs polygons";
    for (simdjson::dom::element p : polys) {
      std::string err = readPolygon(p, *out.mutable_multi_polygon()->add_polygons());
      if (!err.empty()) return err;
    }
    return "";
  }
  return "geometry type '" + std::string(type) + "' is not Point, Polygon or MultiPolygon";
}

std::string pointFromFields(Fields& fields, firehub::v1::Geometry& out) {
  auto lon = fields.number("lon");
  auto lat = fields.number("lat");
  if (!lon) return "field 'lon' is missing or not a number";
  if (!lat) return "field 'lat' is missing or not a number";
  char buf[96];
  if (*lon < -180 || *lon > 180) {
    std::snprintf(buf, sizeof buf, "field 'lon' = %g is outside [-180, 180]", *lon);
    return buf;
  }
  if (*lat < -90 || *lat > 90) {
    std::snprintf(buf, sizeof buf, "field 'lat' = %g is outside [-90, 90]", *lat);
    return buf;
  }
  out.mutable_point()->set_lon(*lon);
  out.mutable_point()->set_lat(*lat);
  return "";
}

namespace {

void forEachCsv(std::string_view data, const ItemOptions& options, Sink& sink,
                const std::function<void(Item&)>& fn) {
  CsvReader reader(data, options.csv_delimiter);
  CsvRow row;
  std::string error;
  if (!reader.next(row, error)) throw InputError("CSV body is empty");
  std::map<std::string, size_t> columns;
  const size_t header_fields = row.fields.size();
  for (size_t i = 0; i < header_fields; ++i) columns[std::string(trim(row.fields[i]))] = i;
  for (const auto& required : options.required_columns) {
    if (!columns.count(required)) {
      std::string expected;
      for (const auto& c : options.required_columns) expected += (expected.empty() ? "" : ",") + c;
      throw InputError("CSV header lacks column '" + required + "' (required: " + expected + ")");
    }
  }
  while (reader.next(row, error)) {
    std::string offset = "line " + std::to_string(row.line);
    if (!error.empty()) {
      sink.reject(Stage::kDecode, error, row.raw, offset);
      continue;
    }
    if (row.fields.size() != header_fields) {
      sink.reject(Stage::kDecode,
                  "row has " + std::to_string(row.fields.size()) + " fields, header has " +
                      std::to_string(header_fields),
                  row.raw, offset);
      continue;
    }
    CsvFields fields(columns, row);
    Item item;
    item.fields = &fields;
    item.raw = row.raw;
    item.offset = offset;
    sink.source(row.raw);
    fn(item);
  }
}

// One JSON value: a GeoJSON Feature, or a plain object.
void visitObject(simdjson::dom::element e, std::string_view raw, const std::string& offset,
                 Sink& sink, const std::function<void(Item&)>& fn) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) {
    sink.reject(Stage::kDecode, "expected a JSON object", raw, offset);
    return;
  }
  std::string_view type;
  Item item;
  item.raw = raw;
  item.offset = offset;
  sink.source(raw);
  if (!obj["type"].get_string().get(type) && type == "Feature") {
    simdjson::dom::object props;
    simdjson::dom::element geometry;
    if (obj["properties"].get_object().get(props)) {
      sink.reject(Stage::kDecode, "feature has no 'properties' object", raw, offset);
      return;
    }
    firehub::v1::Geometry g;
    if (!obj["geometry"].get(geometry)) {
      std::string err = readGeoJsonGeometry(geometry, g);
      if (!err.empty()) {
        sink.reject(Stage::kValidate, "geometry: " + err, raw, offset);
        return;
      }
      item.geometry = std::move(g);
    }
    JsonFields fields(props);
    item.fields = &fields;
    fn(item);
    return;
  }
  JsonFields fields(obj);
  item.fields = &fields;
  fn(item);
}

void forEachNdjson(std::string_view data, Sink& sink, const std::function<void(Item&)>& fn) {
  simdjson::dom::parser parser;
  for (const auto& line : splitLines(data)) {
    std::string offset = "line " + std::to_string(line.number);
    simdjson::padded_string padded(line.text);
    simdjson::dom::element e;
    if (auto err = parser.parse(padded).get(e); err) {
      sink.reject(Stage::kDecode, std::string("invalid JSON: ") + simdjson::error_message(err),
                  line.text, offset);
      continue;
    }
    visitObject(e, line.text, offset, sink, fn);
  }
}

}  // namespace

void forEachItem(const Input& input, const ItemOptions& options, Sink& sink,
                 const std::function<void(Item&)>& fn) {
  if (input.content_type == "text/csv") {
    if (!options.accept_csv) throw InputError("CSV is not accepted by this connector; send JSON");
    forEachCsv(input.data, options, sink, fn);
    return;
  }
  if (input.content_type == "application/x-ndjson") {
    forEachNdjson(input.data, sink, fn);
    return;
  }
  if (input.content_type != "application/json" && input.content_type != "application/geo+json") {
    throw InputError("unsupported content type '" + std::string(input.content_type) + "': use " +
                     (options.accept_csv ? "text/csv, " : "") +
                     "application/json or application/x-ndjson");
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(input.data);
  simdjson::dom::element doc;
  if (auto err = parser.parse(padded).get(doc); err) {
    // NDJSON sent as application/json: the first line alone is a complete object.
    std::string_view t = trim(input.data);
    size_t nl = t.find('\n');
    if (!t.empty() && t.front() == '{' && nl != std::string_view::npos) {
      simdjson::dom::parser first_parser;
      simdjson::padded_string first(t.substr(0, nl));
      simdjson::dom::element e;
      if (!first_parser.parse(first).get(e) && e.is_object()) {
        forEachNdjson(input.data, sink, fn);
        return;
      }
    }
    throw InputError(std::string("body is not valid JSON: ") + simdjson::error_message(err));
  }
  std::string_view type;
  simdjson::dom::array items;
  bool collection =
      doc.is_object() && !doc["type"].get_string().get(type) && type == "FeatureCollection";
  if (collection) {
    if (doc["features"].get_array().get(items)) {
      throw InputError("FeatureCollection has no 'features' array");
    }
    size_t index = 0;
    for (simdjson::dom::element f : items) {
      std::string raw = simdjson::minify(f);
      visitObject(f, raw, "feature " + std::to_string(index++), sink, fn);
    }
    return;
  }
  if (doc.is_object()) {
    visitObject(doc, input.data, "item 0", sink, fn);
    return;
  }
  if (doc.get_array().get(items)) {
    throw InputError("JSON body must be an object, an array of objects or a FeatureCollection");
  }
  size_t index = 0;
  for (simdjson::dom::element item : items) {
    std::string raw = simdjson::minify(item);
    visitObject(item, raw, "item " + std::to_string(index++), sink, fn);
  }
}

bool rejectIfInvalid(Item& item, const std::string& reason, Sink& sink) {
  if (!item.fields->badField().empty()) {
    sink.reject(Stage::kDecode, "field '" + item.fields->badField() + "' is not a valid value",
                item.raw, item.offset);
    return true;
  }
  if (!reason.empty()) {
    sink.reject(Stage::kValidate, reason, item.raw, item.offset);
    return true;
  }
  return false;
}

int readFormatConfig(Config& config, ItemOptions& options) {
  std::string delim = config.getString("csv_delimiter", ",");
  if (delim != "," && delim != ";" && delim != "\t" && delim != "|") {
    throw ConfigError("config key 'csv_delimiter': must be one of , ; TAB |");
  }
  options.csv_delimiter = delim[0];
  std::string offset = config.getString("utc_offset", "+08:00");
  auto minutes = parseUtcOffset(offset);
  if (!minutes) throw ConfigError("config key 'utc_offset': '" + offset + "' is not Z or ±hh:mm");
  return *minutes;
}

std::string contentVersion(std::string_view raw) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : raw) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

google::protobuf::Timestamp now() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  google::protobuf::Timestamp t;
  t.set_seconds(us / 1000000);
  t.set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
  return t;
}

std::optional<google::protobuf::Timestamp> timeField(Fields& fields, const char* name,
                                                     int offset_minutes, std::string& error) {
  auto text = fields.text(name);
  if (!text) return std::nullopt;
  auto t = parseIsoTime(*text, offset_minutes);
  if (!t && error.empty()) {
    error = std::string("field '") + name + "' = '" + *text + "' is not an ISO 8601 date-time";
  }
  return t;
}

}  // namespace firehub::sdk
