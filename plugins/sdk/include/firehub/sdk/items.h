// Reading agency bodies item by item, whatever the container: CSV rows, GeoJSON features, JSON
// array elements, single JSON objects or NDJSON lines. A connector maps each item's named fields
// onto its record; the SDK handles the container, line numbers, raw bytes and per-item decode
// errors (which it rejects into the dead-letter queue itself).
#pragma once

#include <simdjson.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/generated_enum_reflection.h>

#include "firehub/sdk/connector.h"
#include "firehub/sdk/text.h"
#include "firehub/v1/geometry.pb.h"

namespace firehub::sdk {

// The named values of one item. Absent, empty and null values read as nullopt. A value that is
// present but not of the asked kind also reads as nullopt and is remembered in badField().
class Fields {
 public:
  virtual ~Fields() = default;
  virtual std::optional<std::string> text(const char* name) = 0;
  virtual std::optional<double> number(const char* name) = 0;
  virtual std::optional<bool> boolean(const char* name) = 0;
  const std::string& badField() const { return bad_field_; }

 protected:
  void markBad(const char* name) {
    if (bad_field_.empty()) bad_field_ = name;
  }

 private:
  std::string bad_field_;
};

class CsvFields final : public Fields {
 public:
  CsvFields(const std::map<std::string, size_t>& columns, const CsvRow& row)
      : columns_(columns), row_(row) {}
  std::optional<std::string> text(const char* name) override;
  std::optional<double> number(const char* name) override;
  std::optional<bool> boolean(const char* name) override;

 private:
  std::optional<std::string_view> cell(const char* name) const;
  const std::map<std::string, size_t>& columns_;
  const CsvRow& row_;
};

class JsonFields final : public Fields {
 public:
  explicit JsonFields(simdjson::dom::object object) : object_(object) {}
  std::optional<std::string> text(const char* name) override;  // integers read as text too
  std::optional<double> number(const char* name) override;     // numeric strings too
  std::optional<bool> boolean(const char* name) override;

 private:
  simdjson::dom::object object_;
};

struct Item {
  Fields* fields = nullptr;
  // The GeoJSON feature's geometry, when the item is a feature with one.
  std::optional<firehub::v1::Geometry> geometry;
  std::string_view raw;  // for dead letters
  std::string offset;    // "line 7", "feature 3", "item 2"
};

struct ItemOptions {
  char csv_delimiter = ',';
  // CSV bodies must have these header columns (else the body is refused as a whole).
  std::vector<std::string> required_columns;
  bool accept_csv = true;
};

// Calls `fn` for every item of the body. Throws InputError when the body as a whole cannot be
// read (wrong content type, JSON that does not parse, CSV without the required header).
void forEachItem(const Input& input, const ItemOptions& options, Sink& sink,
                 const std::function<void(Item&)>& fn);

// Reads a GeoJSON geometry (Point, Polygon, MultiPolygon). Returns a reason on failure.
std::string readGeoJsonGeometry(simdjson::dom::element geometry, firehub::v1::Geometry& out);

// Builds a point geometry from lon/lat fields. Returns a reason naming the field on failure.
std::string pointFromFields(Fields& fields, firehub::v1::Geometry& out);

// Maps "hydrant" to WaterSource::KIND_HYDRANT for prefix "KIND_": the enum's value names are the
// accepted words. Empty text maps to the enum's 0 value only when `required` is false.
template <class E>
std::string parseEnumWord(const std::optional<std::string>& text, const char* field,
                          const char* prefix, bool required, E* out) {
  const auto* d = google::protobuf::GetEnumDescriptor<E>();
  auto allowed = [&] {
    std::string list;
    for (int i = 0; i < d->value_count(); ++i) {
      const std::string& n = d->value(i)->name();
      if (d->value(i)->number() == 0) continue;
      std::string word = n.substr(std::string(prefix).size());
      for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      list += (list.empty() ? "" : ", ") + word;
    }
    return list;
  };
  if (!text || text->empty()) {
    if (!required) {
      *out = static_cast<E>(0);
      return "";
    }
    return std::string("field '") + field + "' is missing (one of " + allowed() + ")";
  }
  std::string name = prefix;
  for (char c : *text)
    name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  const auto* v = d->FindValueByName(name);
  if (!v || v->number() == 0) {
    return std::string("field '") + field + "' = '" + *text + "' is not one of " + allowed();
  }
  *out = static_cast<E>(v->number());
  return "";
}

// Rejects the item when one of its fields had the wrong kind of value (stage decode, naming the
// field) or when `reason` is set (stage validate). Returns whether it rejected.
bool rejectIfInvalid(Item& item, const std::string& reason, Sink& sink);

// Reads the config keys every text connector shares: `csv_delimiter` (, ; TAB |; default ",")
// into options.csv_delimiter and `utc_offset` (Z or ±hh:mm; default "+08:00") into minutes east
// of UTC. Throws ConfigError naming the key.
int readFormatConfig(Config& config, ItemOptions& options);

// A short, stable version tag of an item's content (FNV-1a 64, hex). Registries that carry no
// timestamp use "<id>#<version>" as source record id: the same content pushed again is a
// duplicate, changed content is a new version of the entity.
std::string contentVersion(std::string_view raw);

// The current time, for registry items that carry no time of their own.
google::protobuf::Timestamp now();

// Reads an optional time field: nullopt when absent, a reason in `error` when unparseable.
std::optional<google::protobuf::Timestamp> timeField(Fields& fields, const char* name,
                                                     int offset_minutes, std::string& error);

}  // namespace firehub::sdk
