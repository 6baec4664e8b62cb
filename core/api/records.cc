// Records by id and the latest entities of a domain in an area.
#include "api/router.h"

namespace firehub::api {

void Router::record(HTTPServerResponse& resp, const std::string& id) {
  auto r = ctx_.lake->getRecord(id);
  if (!r.isOk()) return sendError(resp, r.status());
  if (!r.value()) return sendError(resp, Status::notFound("no record '" + id + "'"));
  if (!who_.restricted) redactRestricted(*r.value());
  send(resp, 200, bus::recordToJson(*r.value()));
}

void Router::entities(HTTPServerResponse& resp, const std::optional<std::string>& domain,
                      const std::optional<std::string>& bbox_text,
                      const std::optional<std::string>& limit_text) {
  if (!domain || domain->empty()) {
    return sendError(resp, Status::invalidArgument("query parameter 'domain' is required"));
  }
  const auto& known = auth::schemaDomains();
  if (!std::binary_search(known.begin(), known.end(), *domain)) {
    return sendError(resp, Status::notFound("no domain '" + *domain +
                                            "' (domains: " + auth::schemaDomainList() + ")"));
  }
  lake::BBox bbox;
  if (bbox_text) {
    auto parsed = parseBBox(*bbox_text);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    bbox = parsed.value();
  }
  auto limit = integerParam(limit_text, "limit", 1, 10000, 1000);
  if (!limit.isOk()) return sendError(resp, limit.status());
  auto found = ctx_.lake->latestInBBox(*domain, bbox, static_cast<size_t>(limit.value()));
  if (!found.isOk()) return sendError(resp, found.status());
  std::string out = R"({"type":"FeatureCollection","numberReturned":)" +
                    std::to_string(found->size()) + R"(,"features":[)";
  bool first = true;
  for (auto& r : found.value()) {
    if (!who_.restricted) redactRestricted(r);
    if (!first) out += ',';
    first = false;
    out += R"({"type":"Feature","id":)" + jsonString(r.entity_id()) + R"(,"geometry":)" +
           geometryJson(r.geometry()) + R"(,"properties":)" + bus::recordToJson(r) + "}";
  }
  out += "]}";
  send(resp, 200, out, "application/geo+json");
}

}  // namespace firehub::api
