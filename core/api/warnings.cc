// CAP warnings: the list of active (or all) warnings, one as its CAP document.
#include "api/layer_parts.h"
#include "api/layers.h"

#include <Poco/DeflatingStream.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/String.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>

#include <algorithm>
#include <cmath>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string_view>

#include "firehub/bus.h"
#include "firehub/classification.h"

namespace firehub::api {

std::string warningJson(const firehub::v1::WarningDraft& d) {
  Poco::JSON::Object o;
  o.set("id", d.identifier());
  o.set("identifier", d.identifier());
  o.set("area", d.area());
  o.set("msg_type", d.msg_type());
  o.set("severity", d.severity());
  o.set("level", d.level());
  o.set("sent", isoTime(d.sent().seconds()));
  o.set("max_score", std::round(d.max_score() * 100) / 100);  // scores to 2 decimal places
  o.set("status", d.status().empty() ? "Draft" : d.status());
  if (!d.draft().empty()) {
    o.set("draft", d.draft());
    o.set("issued_by", d.issued_by());
  }
  Poco::JSON::Array cells;
  for (const auto& c : d.cells()) cells.add(c);
  o.set("cells", cells);
  Poco::JSON::Array refs;
  for (const auto& r : d.references()) refs.add(r);
  o.set("references", refs);
  o.set("cap", "/api/v1/warnings/" + d.identifier());
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

Reply warningList(const ApiContext& ctx, bool history, const PageParams& page) {
  if (!ctx.fusion) return error(503, "unavailable", "fusion is not running");
  std::vector<firehub::v1::WarningDraft> drafts;
  if (history) {
    auto all = ctx.fusion->warningHistory();
    if (!all.isOk()) return error(500, "internal", all.status().message());
    drafts = std::move(all).value();
  } else {
    drafts = ctx.fusion->activeWarnings();
  }
  // In the order they were sent (then by identifier).
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& d : drafts)
    items.emplace_back(
        sortableNumber(static_cast<uint64_t>(std::max<int64_t>(0, d.sent().seconds()))) +
            d.identifier(),
        warningJson(d));
  std::sort(items.begin(), items.end());
  return {200, pageOfList("warnings", items, page)};
}

Reply warningDocument(const ApiContext& ctx, const std::string& identifier) {
  auto stored = ctx.lake->getLayer("warnings/" + identifier);
  if (!stored.isOk()) return error(500, "internal", stored.status().message());
  firehub::v1::LayerEntry e;
  if (!stored.value() || !e.ParseFromString(*stored.value()) || !e.has_warning()) {
    return error(404, "not_found", "no warning '" + identifier + "'");
  }
  return {200, e.warning().cap_xml(), "application/cap+xml; charset=utf-8"};
}

}  // namespace firehub::api
