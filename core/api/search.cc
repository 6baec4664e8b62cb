// Search for the map: a record by its id, or places by name, address or id (buildings and units,
// hydrants, stations, hospitals), each with where it lies. Names are matched as given (case
// folded for Latin letters) in the search index of the places' public text.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/String.h>

#include <algorithm>
#include <sstream>

#include "api/layer_parts.h"
#include "api/layers.h"
#include "api/search_index.h"
#include "firehub/classification.h"

namespace firehub::api {
namespace {

std::string addressOf(const firehub::v1::Record& r) {
  if (r.has_building()) return r.building().address();
  return "";
}

}  // namespace

Reply search(const ApiContext& ctx, const SearchIndex& index, const std::string& query,
             size_t limit, bool restricted) {
  const std::string trimmed = Poco::trim(query);
  if (trimmed.size() < 2)
    return error(400, "invalid_argument", "q: at least 2 characters to search for");
  if (trimmed.size() > 200) return error(400, "invalid_argument", "q: at most 200 characters");
  if (std::any_of(trimmed.begin(), trimmed.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    return error(400, "invalid_argument", "q: no control characters");
  const std::string q = Poco::toLower(trimmed);
  Poco::JSON::Array results;
  auto add = [&](firehub::v1::Record& r, const std::string& matched) {
    auto at = markerPoint(r.geometry());
    if (!at) return;
    if (!restricted) redactRestricted(r);
    Poco::JSON::Object o;
    o.set("record_id", r.id());
    o.set("domain", r.domain());
    o.set("entity_type", r.entity_type());
    o.set("entity_id", r.entity_id());
    o.set("label", recordLabel(r));
    o.set("address", addressOf(r));
    o.set("matched", matched);
    Poco::JSON::Array point;
    point.add(at->first);
    point.add(at->second);
    o.set("point", point);
    results.add(o);
  };
  // A record id, exactly.
  if (auto record = ctx.lake->getRecord(trimmed); record.isOk() && record.value()) {
    add(*record.value(), "record_id");
  }
  bool complete = true;
  for (const auto& hit : index.find(q, limit - std::min(limit, results.size()), complete)) {
    auto latest = ctx.lake->latest(hit.entity_key);
    if (!latest.isOk()) return errorReply(latest.status());
    if (latest.value()) add(*latest.value(), hit.matched);
  }
  Poco::JSON::Object out;
  out.set("query", query);
  out.set("results", results);
  out.set("complete", complete);
  std::ostringstream os;
  out.stringify(os);
  return {200, os.str()};
}

}  // namespace firehub::api
