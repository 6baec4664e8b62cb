// firehub.connector.building: building records (GeoJSON FeatureCollection of Polygons,
// MultiPolygons or Points) and fire hazards found in them (CSV, or JSON items with hazard_id),
// placed at their building. See README.md.
#include <cmath>
#include <cstdio>

#include "config_schema.h"
#include "firehub/sdk/connector.h"
#include "firehub/sdk/items.h"

namespace firehub::connectors {
namespace {

using firehub::sdk::Stage;
using firehub::v1::Building;
using firehub::v1::BuildingHazard;

std::string checkRange(const std::optional<double>& v, const char* name, double min, double max,
                       bool whole) {
  if (!v) return "";
  if (*v < min || *v > max || (whole && *v != std::floor(*v))) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "field '%s' = %g must be a %s in [%g, %g]", name, *v,
                  whole ? "whole number" : "number", min, max);
    return buf;
  }
  return "";
}

class BuildingConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    auto c = std::make_unique<BuildingConnector>();
    c->offset_minutes_ = firehub::sdk::readFormatConfig(config, c->options_);
    c->options_.required_columns = {"hazard_id", "building_id", "type",
                                    "level",     "status",      "found_at"};
    return c;
  }

  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink& sink) override {
    firehub::sdk::forEachItem(in, options_, sink, [&](firehub::sdk::Item& item) {
      if (item.fields->text("hazard_id")) {
        hazard(item, sink);
      } else {
        building(item, sink);
      }
    });
  }

 private:
  void building(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    std::string reason;
    firehub::v1::Record r;
    Building::Occupancy occupancy;
    Building::CreditStatus credit;
    auto id = f.text("building_id");
    auto name = f.text("name");
    auto address = f.text("address");
    auto height = f.number("height_m");
    auto floors = f.number("floors");
    auto year = f.number("year_built");
    auto area = f.number("floor_area_m2");
    auto key_unit = f.boolean("key_unit");
    if (!id) reason = "field 'building_id' is missing";
    if (reason.empty())
      reason = firehub::sdk::parseEnumWord(f.text("occupancy"), "occupancy", "OCCUPANCY_", true,
                                           &occupancy);
    if (reason.empty())
      reason = firehub::sdk::parseEnumWord(f.text("credit_status"), "credit_status",
                                           "CREDIT_STATUS_", false, &credit);
    if (reason.empty()) reason = checkRange(height, "height_m", 0, 1000, false);
    if (reason.empty()) reason = checkRange(floors, "floors", 0, 200, true);
    if (reason.empty()) reason = checkRange(year, "year_built", 1000, 2100, true);
    if (reason.empty()) reason = checkRange(area, "floor_area_m2", 0, 1e7, false);
    if (reason.empty()) {
      if (item.geometry)
        *r.mutable_geometry() = *item.geometry;
      else
        reason = firehub::sdk::pointFromFields(f, *r.mutable_geometry());
    }
    auto updated = firehub::sdk::timeField(f, "updated_at", offset_minutes_, reason);
    if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
    r.set_domain("building");
    r.set_entity_type("building");
    r.set_entity_id(*id);
    *r.mutable_observed_at() = updated ? *updated : firehub::sdk::now();
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    r.mutable_provenance()->set_source_record_id(*id + "#" +
                                                 firehub::sdk::contentVersion(item.raw));
    r.mutable_provenance()->set_source_offset(item.offset);
    auto* b = r.mutable_building();
    b->set_building_id(*id);
    if (name) b->set_name(*name);
    if (address) b->set_address(*address);
    if (height) b->set_height_m(*height);
    if (floors) b->set_floors(static_cast<int32_t>(*floors));
    if (year) b->set_year_built(static_cast<int32_t>(*year));
    if (area) b->set_floor_area_m2(*area);
    b->set_occupancy(occupancy);
    b->set_key_unit(key_unit.value_or(false));
    b->set_credit_status(
        credit == Building::CREDIT_STATUS_UNSPECIFIED ? Building::CREDIT_STATUS_NORMAL : credit);
    sink.emit(r);
  }

  void hazard(firehub::sdk::Item& item, firehub::sdk::Sink& sink) {
    auto& f = *item.fields;
    std::string reason;
    BuildingHazard::Level level;
    BuildingHazard::Status status;
    auto id = f.text("hazard_id");
    auto building_id = f.text("building_id");
    auto type = f.text("type");
    if (!building_id) reason = "field 'building_id' is missing";
    if (reason.empty() && !type) reason = "field 'type' is missing";
    if (reason.empty())
      reason = firehub::sdk::parseEnumWord(f.text("level"), "level", "LEVEL_", true, &level);
    if (reason.empty())
      reason = firehub::sdk::parseEnumWord(f.text("status"), "status", "STATUS_", true, &status);
    auto found = firehub::sdk::timeField(f, "found_at", offset_minutes_, reason);
    auto rectified = firehub::sdk::timeField(f, "rectified_at", offset_minutes_, reason);
    if (reason.empty() && !found) reason = "field 'found_at' is missing";
    if (reason.empty() && status != BuildingHazard::STATUS_OPEN && !rectified) {
      reason = "field 'rectified_at' is required when status is rectified or verified";
    }
    if (firehub::sdk::rejectIfInvalid(item, reason, sink)) return;
    firehub::v1::Record r;
    r.set_domain("building");
    r.set_entity_type("building_hazard");
    r.set_entity_id(*id);
    *r.mutable_observed_at() = rectified ? *rectified : *found;
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    auto* at = r.mutable_located_by();  // placed at its building by the hub
    at->set_domain("building");
    at->set_entity_type("building");
    at->set_entity_id(*building_id);
    r.mutable_provenance()->set_source_record_id(*id + "#" +
                                                 firehub::sdk::contentVersion(item.raw));
    r.mutable_provenance()->set_source_offset(item.offset);
    auto* h = r.mutable_building_hazard();
    h->set_hazard_id(*id);
    h->set_building_id(*building_id);
    h->set_type(*type);
    h->set_level(level);
    h->set_status(status);
    *h->mutable_found_at() = *found;
    if (rectified) *h->mutable_rectified_at() = *rectified;
    sink.emit(r);
  }

  firehub::sdk::ItemOptions options_;
  int offset_minutes_ = 480;
};

}  // namespace
}  // namespace firehub::connectors

FIREHUB_DECLARE_CONNECTOR(building, firehub::connectors::BuildingConnector,
                          "firehub.connector.building", "1.0.0", "building",
                          "Buildings (GeoJSON) and their fire hazards (CSV)", kConfigSchema)
