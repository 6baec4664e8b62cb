// History and the lake's life: an entity's versions and a domain's (or feed's) records by time
// as JSON, NDJSON, CSV or GeoJSON; the risk layer and a cell's explanation as they were at a
// moment; the lake's size and retention (GET /api/v1/lake, POST /api/v1/lake/retention).
#include <s2/s2cell_id.h>

#include <cmath>
#include <limits>

#include "api/layers.h"
#include "api/paging.h"
#include "api/router.h"
#include "firehub/api.h"

namespace firehub::api {
namespace {

constexpr int64_t kNoLowerBound = std::numeric_limits<int64_t>::min() / 2;
constexpr int64_t kNoUpperBound = std::numeric_limits<int64_t>::max() / 2;

// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string isoMicros(int64_t micros) {
  return isoMillis(micros >= 0 ? micros / 1000 : -((-micros + 999) / 1000));
}

}  // namespace

// ?format=json (default) | ndjson | csv | geojson. A page: at most `limit` records past the
// cursor; the next page's cursor is in `next` (JSON, GeoJSON) and, for every format, in a Link
// header (rel="next") and X-Next-Cursor.
void Router::timedRecords(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& list,
                          const TimedWalk& walk) {
  (void)req;
  const std::string format = param("format").value_or("json");
  if (format != "json" && format != "ndjson" && format != "csv" && format != "geojson") {
    return sendError(resp, Status::invalidArgument(
                               "query parameter 'format' must be json, ndjson, csv or geojson"));
  }
  auto from = timeParam(param("from"), "from", kNoLowerBound);
  if (!from.isOk()) return sendError(resp, from.status());
  auto to = timeParam(param("to"), "to", kNoUpperBound);
  if (!to.isOk()) return sendError(resp, to.status());
  if (to.value() <= from.value())
    return sendError(resp, Status::invalidArgument("'to' must be after 'from'"));
  auto page = pageParams(param("limit"), param("cursor"), list, 100, 10000);
  if (!page.isOk()) return sendError(resp, page.status());
  std::string body;
  size_t returned = 0;
  std::string last_position;
  bool more = false;
  if (format == "csv") {
    body =
        "id,domain,entity_type,entity_id,observed_at,received_at,feed_id,agency,op,lon,lat,"
        "record\r\n";
  }
  Status walked = walk(
      from.value(), to.value(), page->after,
      [&](const lake::TimedRecord& at, firehub::v1::Record& r) {
        if (returned == page->limit) {
          more = true;
          return false;
        }
        last_position.assign(at.position);
        const std::string json = recordJson(r);
        if (format == "json") {
          body += (returned ? "," : "") + json;
        } else if (format == "ndjson") {
          body += json + "\n";
        } else if (format == "geojson") {
          body += returned ? "," : "";
          body += R"({"type":"Feature","id":)" + jsonString(r.id()) + R"(,"geometry":)" +
                  geometryJson(r.geometry()) + R"(,"properties":)" + json + "}";
        } else {
          auto p = lake::representativePoint(r.geometry());
          body += csvField(r.id()) + "," + csvField(r.domain()) + "," + csvField(r.entity_type()) +
                  "," + csvField(r.entity_id()) + "," + isoMicros(at.observed_micros) + "," +
                  isoMillis(r.received_at().seconds() * 1000 + r.received_at().nanos() / 1000000) +
                  "," + csvField(r.feed_id()) + "," + csvField(r.agency()) + "," +
                  firehub::v1::Op_Name(r.op()) + "," +
                  (p ? std::to_string(p->lon) + "," + std::to_string(p->lat) : std::string(",")) +
                  "," + csvField(json) + "\r\n";
        }
        ++returned;
        return true;
      });
  if (!walked.isOk()) return sendError(resp, walked);
  const std::string next = more ? encodeCursor(list, last_position) : std::string();
  if (!next.empty()) {
    std::string link = "<" + req.getURI();
    // The same query with the cursor of the next page.
    const size_t q = link.find('?');
    std::string query = q == std::string::npos ? "" : link.substr(q + 1);
    link = link.substr(0, q);
    std::string kept;
    for (size_t start = 0; start <= query.size();) {
      size_t end = query.find('&', start);
      if (end == std::string::npos) end = query.size();
      std::string part = query.substr(start, end - start);
      if (!part.empty() && part.rfind("cursor=", 0) != 0) kept += part + "&";
      start = end + 1;
    }
    resp.set("Link", link + "?" + kept + "cursor=" + next + ">; rel=\"next\"");
    resp.set("X-Next-Cursor", next);
  }
  if (format == "json" || format == "geojson") {
    std::string out =
        format == "json" ? R"({"records":[)" : R"({"type":"FeatureCollection","features":[)";
    out += body;
    out += R"(],"numberReturned":)" + std::to_string(returned);
    if (!next.empty()) out += R"(,"next":)" + jsonString(next);
    return send(resp, 200, out + "}",
                format == "json" ? "application/json" : "application/geo+json");
  }
  send(resp, 200, body, format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
}

// GET /api/v1/entities/{domain}/{entity_id}/history[?type=]
void Router::entityHistory(HTTPServerRequest& req, HTTPServerResponse& resp,
                           const std::string& domain, const std::string& entity_id) {
  const auto& known = auth::schemaDomains();
  if (!std::binary_search(known.begin(), known.end(), domain)) {
    return sendError(resp, Status::notFound("no domain '" + domain +
                                            "' (domains: " + auth::schemaDomainList() + ")"));
  }
  const std::string type = param("type").value_or("");
  timedRecords(
      req, resp, "history/" + domain + "/" + type + "/" + entity_id,
      [&](int64_t from, int64_t to, std::string_view after, const lake::Lake::TimedFn& fn) {
        return ctx_.lake->entityHistory(domain, type, entity_id, from, to, after, fn);
      });
}

// GET /api/v1/records?domain=&feed=&from=&to=
void Router::recordsByTime(HTTPServerRequest& req, HTTPServerResponse& resp) {
  const auto domain = param("domain");
  if (!domain || domain->empty())
    return sendError(resp, Status::invalidArgument("query parameter 'domain' is required"));
  const auto& known = auth::schemaDomains();
  if (!std::binary_search(known.begin(), known.end(), *domain)) {
    return sendError(resp, Status::notFound("no domain '" + *domain +
                                            "' (domains: " + auth::schemaDomainList() + ")"));
  }
  const std::string feed = param("feed").value_or("");
  if (!feed.empty() && !ctx_.feeds->get(feed))
    return sendError(resp, Status::notFound("no feed '" + feed + "'"));
  timedRecords(
      req, resp, "records/" + *domain + "/" + feed,
      [&](int64_t from, int64_t to, std::string_view after, const lake::Lake::TimedFn& fn) {
        return ctx_.lake->recordsInTime(*domain, feed, from, to, after, fn);
      });
}

// GET /api/v1/layers/risk?at=T: the risk layer as it was at T (from its stored versions).
void Router::riskLayerAt(HTTPServerResponse& resp, const std::string& at_text,
                         const std::optional<std::string>& bbox_text,
                         const std::optional<std::string>& limit_text) {
  auto at = timeParam(at_text, "at", 0);
  if (!at.isOk()) return sendError(resp, at.status());
  if (!ctx_.fusion) return sendError(resp, Status::unavailable("fusion is not running"));
  lake::BBox bbox;
  if (bbox_text) {
    auto parsed = parseBBox(*bbox_text);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    bbox = parsed.value();
  }
  auto limit = integerParam(limit_text, "limit", 1, 100000, 10000);
  if (!limit.isOk()) return sendError(resp, limit.status());
  std::string features;
  size_t n = 0;
  bool more = false;
  firehub::v1::LayerEntry e;
  Status walked = ctx_.lake->layerAt(
      "risk", ctx_.fusion->cellLevel(), bbox, at.value(), [&](uint64_t, const std::string& entry) {
        if (!e.ParseFromString(entry) || !e.has_risk_cell()) return true;
        if (n == static_cast<size_t>(limit.value())) {
          more = true;
          return false;
        }
        features += (n++ ? "," : "") + riskCellFeature(e.risk_cell());
        return true;
      });
  if (!walked.isOk()) return sendError(resp, walked);
  std::string out =
      R"({"type":"FeatureCollection","layer":"risk","at":)" + jsonString(isoMicros(at.value()));
  out += more ? R"(,"more":true)" : R"(,"numberMatched":)" + std::to_string(n);
  out += R"(,"numberReturned":)" + std::to_string(n) + R"(,"features":[)" + features + "]}";
  send(resp, 200, out, "application/geo+json");
}

// GET /api/v1/layers/risk/cells/{token}?at=T: a cell and its explanation as they were at T.
void Router::riskCellAt(HTTPServerResponse& resp, const std::string& token,
                        const std::string& at_text) {
  auto at = timeParam(at_text, "at", 0);
  if (!at.isOk()) return sendError(resp, at.status());
  const S2CellId id = S2CellId::FromToken(token);
  if (!id.is_valid())
    return sendError(resp, Status::invalidArgument("'" + token + "' is not an S2 cell token"));
  auto entry = ctx_.lake->layerCellAt("risk", id.id(), at.value());
  if (!entry.isOk()) return sendError(resp, entry.status());
  firehub::v1::LayerEntry e;
  if (!entry.value() || !e.ParseFromString(*entry.value()) || !e.has_risk_cell()) {
    return sendError(resp, Status::notFound("cell " + token + " was not in the risk layer at " +
                                            isoMicros(at.value())));
  }
  send(resp, 200, bus::messageToJson(e.risk_cell()));
}

// GET /api/v1/lake (operators): the lake's size, the disk budget and retention.
void Router::lakeState(HTTPServerResponse& resp) {
  if (!who_.canOperate()) return (void)forbid(resp, "the lake's state is for operators");
  if (!ctx_.upkeep) return sendError(resp, Status::unavailable("no lake upkeep"));
  send(resp, 200, ctx_.upkeep->stateJson());
}

// POST /api/v1/lake/retention (admins): a retention pass now.
void Router::runRetention(HTTPServerResponse& resp) {
  if (!who_.canAdminister()) return (void)forbid(resp, "retention is run by admins");
  if (!ctx_.upkeep) return sendError(resp, Status::unavailable("no lake upkeep"));
  auto done = ctx_.upkeep->runOnce(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
  if (!done.isOk()) return sendError(resp, done.status());
  send(resp, 200, ctx_.upkeep->stateJson());
}

}  // namespace firehub::api
