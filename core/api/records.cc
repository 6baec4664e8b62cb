// Records by id and the latest entities of a domain in an area.
#include "api/router.h"

namespace firehub::api {

void Router::record(HTTPServerResponse& resp, const std::string& id) {
  auto r = ctx_.lake->getRecord(id);
  if (!r.isOk()) return sendError(resp, r.status());
  if (!r.value()) return sendError(resp, Status::notFound("no record '" + id + "'"));
  send(resp, 200, recordJson(*r.value()));
}

std::string Router::recordJson(firehub::v1::Record& record) const {
  if (who_.restricted) return bus::recordToJson(record);
  redactRestricted(record);
  return bus::recordToJson(record, /*redact=*/true);
}

// The latest record of each entity of a domain (in an area), as GeoJSON, paged by a cursor
// (the position of the page's last entity in the area's walk). numberMatched is given on a first
// page when counting the area stays within api.area_count_budget.
void Router::entities(HTTPServerResponse& resp, const std::optional<std::string>& domain,
                      const std::optional<std::string>& bbox_text) {
  if (!domain || domain->empty()) {
    return sendError(resp, Status::invalidArgument("query parameter 'domain' is required"));
  }
  const auto& known = auth::schemaDomains();
  if (!std::binary_search(known.begin(), known.end(), *domain)) {
    return sendError(resp, Status::notFound("no domain '" + *domain +
                                            "' (domains: " + auth::schemaDomainList() + ")"));
  }
  // ?crs=gcj02 (or bd09): coordinates for a Chinese web map's base layer; WGS 84 by default.
  pipeline::Crs crs = pipeline::Crs::kWgs84;
  if (auto wanted = param("crs")) {
    auto parsed = pipeline::parseCrs(*wanted);
    if (!parsed || *parsed == pipeline::Crs::kCgcs2000)
      return sendError(resp, Status::invalidArgument(
                                 "query parameter 'crs' must be wgs84, gcj02 or bd09 (the bbox is "
                                 "always WGS 84)"));
    crs = *parsed;
  }
  lake::BBox bbox;
  if (bbox_text) {
    auto parsed = parseBBox(*bbox_text);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    bbox = parsed.value();
  }
  auto page = pageParams(param("limit"), param("cursor"), "entities/" + *domain, 100, 10000);
  if (!page.isOk()) return sendError(resp, page.status());
  auto found = latestPage(
      ctx_, {*domain, ""}, bbox, page->limit, 0, nullptr,
      [&](firehub::v1::Record& r) {
        return R"({"type":"Feature","id":)" + jsonString(r.entity_id()) + R"(,"geometry":)" +
               geometryJson(r.geometry(), crs) + R"(,"properties":)" + recordJson(r) +
               R"(,"links":[{"rel":"record","href":)" +
               jsonString("/api/v1/records/" + pathSegment(r.id())) + "}]}";
      },
      page->after);
  if (!found.isOk()) return sendError(resp, found.status());
  std::string out = R"({"type":"FeatureCollection")";
  if (page->after.empty() && found->counted_all)
    out += R"(,"numberMatched":)" + std::to_string(found->matched);
  out += R"(,"numberReturned":)" + std::to_string(found->features.size());
  if (!found->last_position.empty() &&
      (found->features.size() < found->matched || !found->counted_all)) {
    out += R"(,"next":)" + jsonString(encodeCursor("entities/" + *domain, found->last_position));
  }
  out += R"(,"features":[)";
  for (size_t i = 0; i < found->features.size(); ++i) {
    if (i) out += ',';
    out += found->features[i];
  }
  out += "]}";
  send(resp, 200, out, "application/geo+json");
}

}  // namespace firehub::api
