// firehub.connector.health: HL7 FHIR R4 JSON from the health commission — Location resources
// (hospitals, elderly-care homes) and Observations of available beds that reference them.
// See README.md for the codes accepted.
#include <simdjson.h>

#include <cmath>
#include <map>

#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;
using firehub::v1::HealthFacility;

// FHIR path problems: "<path>: <what>".
struct Invalid {
  std::string path;
  std::string what;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// HL7 v3 RoleCode service delivery location types we recognise.
HealthFacility::Kind kindOf(const std::string& code) {
  static const std::map<std::string, HealthFacility::Kind> kinds = {
      {"HOSP", HealthFacility::KIND_HOSPITAL},
      {"GACH", HealthFacility::KIND_HOSPITAL},
      {"ER", HealthFacility::KIND_HOSPITAL},
      {"BURN", HealthFacility::KIND_HOSPITAL},
      {"ICU", HealthFacility::KIND_HOSPITAL},
      {"NURS", HealthFacility::KIND_ELDERLY_CARE},
      {"CHR", HealthFacility::KIND_ELDERLY_CARE},
      {"OF", HealthFacility::KIND_CLINIC},
      {"HOSPITAL", HealthFacility::KIND_HOSPITAL},
      {"ELDERLY_CARE", HealthFacility::KIND_ELDERLY_CARE},
      {"CLINIC", HealthFacility::KIND_CLINIC}};
  auto it = kinds.find(code);
  return it == kinds.end() ? HealthFacility::KIND_UNSPECIFIED : it->second;
}

class HealthConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<HealthConnector>();
    std::string offset = config.getString("utc_offset", "+08:00");
    auto minutes = firehub::sdk::parseUtcOffset(offset);
    if (!minutes)
      throw firehub::sdk::ConfigError("config key 'utc_offset': '" + offset +
                                      "' is not Z or ±hh:mm");
    c->offset_minutes_ = *minutes;
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    if (in.content_type != "application/json" && in.content_type != "application/fhir+json") {
      throw firehub::sdk::InputError("unsupported content type '" + std::string(in.content_type) +
                                     "': send FHIR R4 JSON as application/json");
    }
    simdjson::padded_string padded(in.data);
    simdjson::dom::element doc;
    if (auto err = parser_.parse(padded).get(doc); err) {
      throw firehub::sdk::InputError(std::string("body is not valid JSON: ") +
                                     simdjson::error_message(err));
    }
    std::string_view type;
    if (doc["resourceType"].get_string().get(type)) {
      throw firehub::sdk::InputError("not a FHIR resource: no 'resourceType'");
    }
    struct Entry {
      simdjson::dom::element resource;
      std::string path;
    };
    std::vector<Entry> entries;
    if (type == "Bundle") {
      simdjson::dom::array list;
      // A Bundle without entries has nothing to read (a default dom::array must not be iterated).
      bool has_entries = !doc["entry"].get_array().get(list);
      size_t i = 0;
      if (has_entries)
        for (simdjson::dom::element e : list) {
          std::string path = "Bundle.entry[" + std::to_string(i++) + "].resource";
          simdjson::dom::element resource;
          if (e["resource"].get(resource)) {
            sink.reject(Stage::kDecode, path + ": missing", simdjson::minify(e), path);
            continue;
          }
          entries.push_back({resource, path});
        }
    } else {
      entries.push_back({doc, std::string(type)});
    }
    // Locations first, so bed observations in the same bundle find their facility.
    std::map<std::string, int> skipped;
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& e : entries) {
        std::string_view rt;
        if (e.resource["resourceType"].get_string().get(rt)) {
          if (pass == 0)
            sink.reject(Stage::kDecode, e.path + ".resourceType: missing",
                        simdjson::minify(e.resource), e.path);
          continue;
        }
        if (rt == "Location" && pass == 0)
          location(e.resource, e.path, sink);
        else if (rt == "Observation" && pass == 1)
          observation(e.resource, e.path, sink);
        else if (rt != "Location" && rt != "Observation" && pass == 0) {
          skipped[std::string(rt)]++;
          sink.skip(std::string(rt),
                    "this connector maps FHIR Location (facilities) and "
                    "Observation (bed counts) only");
        }
      }
    }
    if (!skipped.empty()) {
      std::string list;
      int total = 0;
      for (const auto& [t, n] : skipped) {
        list += (list.empty() ? "" : ", ") + t + " x" + std::to_string(n);
        total += n;
      }
      sink.log(1, "skipped " + std::to_string(total) + " FHIR resource(s) of other types: " + list);
    }
  }

 private:
  std::optional<google::protobuf::Timestamp> fhirTime(std::string_view text) {
    // FHIR dateTime/instant; a date alone means its start.
    std::string t(text);
    if (t.size() == 10) t += "T00:00:00";
    return firehub::sdk::parseIsoTime(t, offset_minutes_);
  }

  void location(simdjson::dom::element res, const std::string& path, firehub::sdk::Sink& sink) {
    std::string raw = simdjson::minify(res);
    sink.source(raw);
    auto fail = [&](const std::string& where, const std::string& what) {
      sink.reject(Stage::kValidate, path + "." + where + ": " + what, raw, path);
    };
    std::string_view id, name, status;
    if (res["id"].get_string().get(id) || id.empty()) return fail("id", "missing");
    double lon = 0, lat = 0;
    simdjson::dom::element position;
    firehub::v1::Record r;
    const bool positioned = !res["position"].get(position);
    if (positioned) {
      if (position["longitude"].get_double().get(lon))
        return fail("position.longitude", "missing or not a number");
      if (position["latitude"].get_double().get(lat))
        return fail("position.latitude", "missing or not a number");
      if (!std::isfinite(lon) || lon < -180 || lon > 180)
        return fail("position.longitude", "outside -180..180");
      if (!std::isfinite(lat) || lat < -90 || lat > 90)
        return fail("position.latitude", "outside -90..90");
    } else {
      // No position: the hub places it from its address (district, then city) by its district
      // outlines, or keeps it unplaced with the reason.
      auto* hint = r.mutable_place_hint();
      for (const char* part : {"district", "city", "state"}) {
        std::string_view v;
        if (!res["address"][part].get_string().get(v) && !v.empty())
          hint->add_names(std::string(v));
      }
      if (hint->names_size() == 0)
        return fail("position", "missing, and no address (district, city) to place it by");
    }
    auto* b = r.mutable_health_facility();
    b->set_facility_id(std::string(id));
    if (!res["name"].get_string().get(name)) b->set_name(std::string(name));
    // Location.type: CodeableConcept[]; the first recognised code decides the kind.
    simdjson::dom::array types;
    if (!res["type"].get_array().get(types)) {
      for (simdjson::dom::element t : types) {
        simdjson::dom::array codings;
        if (t["coding"].get_array().get(codings)) continue;
        for (simdjson::dom::element c : codings) {
          std::string_view code;
          if (c["code"].get_string().get(code)) continue;
          b->add_type_codes(std::string(code));
          std::string upper(code);
          for (auto& ch : upper)
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          if (b->kind() == HealthFacility::KIND_UNSPECIFIED) b->set_kind(kindOf(upper));
        }
      }
    }
    if (b->kind() == HealthFacility::KIND_UNSPECIFIED) b->set_kind(HealthFacility::KIND_OTHER);
    // Location.status active|suspended|inactive; operationalStatus (v2-0116) C/K/I refine it.
    HealthFacility::OperationalStatus op = HealthFacility::OPERATIONAL_STATUS_OPEN;
    if (!res["status"].get_string().get(status)) {
      if (status == "suspended" || status == "inactive")
        op = HealthFacility::OPERATIONAL_STATUS_CLOSED;
      else if (status != "active")
        return fail("status", "'" + std::string(status) + "' is not active, suspended or inactive");
    }
    std::string_view opcode;
    if (!res["operationalStatus"]["code"].get_string().get(opcode)) {
      if (opcode == "C")
        op = HealthFacility::OPERATIONAL_STATUS_CLOSED;
      else if (opcode == "K")
        op = HealthFacility::OPERATIONAL_STATUS_CONTAMINATED;
      else if (opcode == "I")
        op = HealthFacility::OPERATIONAL_STATUS_ISOLATED;
    }
    b->set_operational_status(op);
    std::string_view description;
    if (!res["description"].get_string().get(description)) b->set_notes(std::string(description));
    std::string_view updated;
    std::optional<google::protobuf::Timestamp> when;
    if (!res["meta"]["lastUpdated"].get_string().get(updated)) {
      when = fhirTime(updated);
      if (!when) return fail("meta.lastUpdated", "not a FHIR instant");
    }
    r.set_domain("health");
    r.set_entity_type("health_facility");
    r.set_entity_id(std::string(id));
    *r.mutable_observed_at() = when ? *when : firehub::sdk::now();
    if (positioned) {
      r.mutable_geometry()->mutable_point()->set_lon(lon);
      r.mutable_geometry()->mutable_point()->set_lat(lat);
    }
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    r.mutable_provenance()->set_source_record_id("Location/" + std::string(id) + "#" +
                                                 firehub::sdk::contentVersion(raw));
    r.mutable_provenance()->set_source_offset(path);
    sink.emit(r);
  }

  void observation(simdjson::dom::element res, const std::string& path, firehub::sdk::Sink& sink) {
    std::string raw = simdjson::minify(res);
    sink.source(raw);
    auto fail = [&](const std::string& where, const std::string& what) {
      sink.reject(Stage::kValidate, path + "." + where + ": " + what, raw, path);
    };
    std::string_view id, reference, effective, code;
    if (res["id"].get_string().get(id) || id.empty()) return fail("id", "missing");
    // Which beds: code.coding[].code or code.text, one of emergency, burn, icu.
    simdjson::dom::array codings;
    std::string bed;
    if (!res["code"]["coding"].get_array().get(codings)) {
      for (simdjson::dom::element c : codings) {
        if (!c["code"].get_string().get(code)) {
          std::string l = lower(code);
          if (l == "emergency" || l == "burn" || l == "icu") bed = l;
        }
      }
    }
    if (bed.empty() && !res["code"]["text"].get_string().get(code)) {
      std::string l = lower(code);
      if (l == "emergency" || l == "burn" || l == "icu") bed = l;
    }
    if (bed.empty()) return fail("code", "not a bed-availability code (emergency, burn or icu)");
    std::string target;
    for (const char* field : {"subject", "focus"}) {
      simdjson::dom::element ref;
      if (res[field].get(ref)) continue;
      if (ref.is_array() && ref.at(0).get(ref)) continue;  // focus is a list
      if (!ref["reference"].get_string().get(reference)) {
        target = std::string(reference);
        break;
      }
    }
    if (target.rfind("Location/", 0) != 0 || target.size() == 9) {
      return fail("subject.reference", "must reference a Location (Location/<id>)");
    }
    double value;
    if (res["valueQuantity"]["value"].get_double().get(value))
      return fail("valueQuantity.value", "missing or not a number");
    if (value < 0 || value > 100000 || value != static_cast<int>(value)) {
      return fail("valueQuantity.value", "must be a whole number of beds >= 0");
    }
    std::optional<google::protobuf::Timestamp> when;
    if (!res["effectiveDateTime"].get_string().get(effective))
      when = fhirTime(effective);
    else if (!res["issued"].get_string().get(effective))
      when = fhirTime(effective);
    if (!when) return fail("effectiveDateTime", "missing or not a FHIR dateTime");
    std::string facility = target.substr(9);
    firehub::v1::Record r;
    r.set_domain("health");
    r.set_entity_type("health_facility");
    r.set_entity_id(facility);
    *r.mutable_observed_at() = *when;
    r.set_op(firehub::v1::OP_PATCH);  // merged into the facility's latest state by the hub
    r.mutable_provenance()->set_source_record_id("Observation/" + std::string(id) + "#" +
                                                 firehub::sdk::contentVersion(raw));
    r.mutable_provenance()->set_source_offset(path);
    auto* b = r.mutable_health_facility();
    b->set_facility_id(facility);
    int beds = static_cast<int>(value);
    if (bed == "emergency")
      b->set_beds_emergency_available(beds);
    else if (bed == "burn")
      b->set_beds_burn_available(beds);
    else
      b->set_beds_icu_available(beds);
    *b->mutable_beds_at() = *when;
    sink.emit(r);
  }

  int offset_minutes_ = 480;
  simdjson::dom::parser parser_;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(health, firehub::connectors::HealthConnector, "firehub.connector.health",
                          "1.0.0", "health",
                          "HL7 FHIR R4 Locations (hospitals, care homes) and bed Observations",
                          kConfigSchema)
