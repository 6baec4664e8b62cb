// Search for the map: a record by its id, or places by name or address (buildings and units,
// hydrants, stations, hospitals), each with where it lies. Names are matched as given (case
// folded for Latin letters) in the latest records of those domains, walked in the lake's
// order until enough are found or kScanBudget records were looked at.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/String.h>

#include <algorithm>
#include <sstream>

#include "api/layer_parts.h"
#include "api/layers.h"
#include "firehub/classification.h"

namespace firehub::api {
namespace {

constexpr size_t kScanBudget = 2000000;

std::string folded(std::string s) { return Poco::toLower(s); }

std::string addressOf(const firehub::v1::Record& r) {
  if (r.has_building()) return r.building().address();
  return "";
}

}  // namespace

Reply search(const ApiContext& ctx, const std::string& query, size_t limit, bool restricted) {
  const std::string q = folded(Poco::trim(query));
  if (q.size() < 2) return error(400, "invalid_argument", "q: at least 2 characters to search for");
  if (q.size() > 200) return error(400, "invalid_argument", "q: at most 200 characters");
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
  if (auto record = ctx.lake->getRecord(Poco::trim(query)); record.isOk() && record.value()) {
    add(*record.value(), "record_id");
  }
  size_t looked = 0;
  bool cut = false;
  for (const char* domain : {"building", "station", "health", "water"}) {
    if (results.size() >= limit) break;
    Status s =
        ctx.lake->forEachLatestInBBox(domain, {}, [&](firehub::v1::Record& r, std::string_view) {
          if (++looked > kScanBudget) {
            cut = true;
            return false;
          }
          const std::string label = folded(recordLabel(r)), address = folded(addressOf(r));
          std::string matched;
          if (label.find(q) != std::string::npos) {
            matched = "name";
          } else if (!address.empty() && address.find(q) != std::string::npos) {
            matched = "address";
          } else if (folded(r.entity_id()) == q) {
            matched = "entity_id";
          } else {
            return true;
          }
          add(r, matched);
          return results.size() < limit;
        });
    if (!s.isOk()) return errorReply(s);
    if (cut) break;
  }
  Poco::JSON::Object out;
  out.set("query", query);
  out.set("results", results);
  out.set("complete", !cut && results.size() < limit);
  std::ostringstream os;
  out.stringify(os);
  return {200, os.str()};
}

}  // namespace firehub::api
