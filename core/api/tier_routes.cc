// Tiers over HTTP: a child hub's forwarded records (POST /api/v1/tiers/records) and this hub's
// own link upward (GET /api/v1/upstream).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <algorithm>
#include <ctime>

#include "api/paging.h"
#include "api/router.h"
#include "firehub/classification.h"
#include "firehub/tiers.h"

namespace firehub::api {
namespace {

int levelIndex(const std::string& level) {
  const auto& l = tiers::levels();
  auto it = std::find(l.begin(), l.end(), level);
  return it == l.end() ? -1 : static_cast<int>(it - l.begin());
}

}  // namespace

bool Router::childHub(HTTPServerRequest& req, HTTPServerResponse& resp, std::string& name,
                      std::string& level) {
  const auto& children = ctx_.tier_children;
  if (children.empty()) {
    discardBody(req, resp);
    sendError(resp, Status::notFound("this hub takes no child hubs (tier.children)"));
    return false;
  }
  // A child comes with the agency key this hub issued to it: its agency is the child's name,
  // and its domains are what the agreement lets the child send.
  if (who_.role != auth::Role::kAgency ||
      std::find(children.begin(), children.end(), who_.agency) == children.end()) {
    discardBody(req, resp);
    return forbid(resp, "a tier link needs the agency key of a child hub named in tier.children");
  }
  name = req.get("X-Firehub-Tier-Name", "");
  level = req.get("X-Firehub-Tier-Level", "");
  if (name != who_.agency) {
    discardBody(req, resp);
    return forbid(resp, "the key is child hub '" + who_.agency + "''s, not '" + name + "''s");
  }
  if (levelIndex(level) < 0 || levelIndex(level) >= levelIndex(ctx_.tier_level)) {
    discardBody(req, resp);
    sendError(resp,
              Status::invalidArgument("X-Firehub-Tier-Level '" + level + "': a child of this " +
                                      ctx_.tier_level + " hub is of a lower level (county, city)"));
    return false;
  }
  return true;
}

void Router::tierRecords(HTTPServerRequest& req, HTTPServerResponse& resp) {
  std::string name, level;
  if (!childHub(req, resp, name, level)) return;
  if (pipeline::mediaType(req.getContentType()) != pipeline::kForwardedType) {
    discardBody(req, resp);
    return sendError(resp, Status(StatusCode::kUnsupportedMedia,
                                  "Content-Type must be " + std::string(pipeline::kForwardedType)));
  }
  PushShares::Held held;
  auto body = sharedBody(req, resp, "tier:" + name, name, held);
  if (!body) return;
  pipeline::ForwardRequest in;
  in.from_hub = name;
  in.from_level = level;
  in.here = ctx_.tier_name;
  in.domains = who_.domains;
  in.body = *body;
  auto summary = ctx_.pipeline->ingestForwarded(in);
  if (!summary.isOk()) return sendError(resp, summary.status());
  Poco::JSON::Object obj;
  obj.set("accepted", static_cast<uint64_t>(summary->accepted));
  obj.set("duplicates", static_cast<uint64_t>(summary->duplicates));
  obj.set("rejected", static_cast<uint64_t>(summary->rejected));
  obj.set("looped", static_cast<uint64_t>(summary->looped));
  if (!summary->errors.empty()) {
    Poco::JSON::Array errors;
    for (const auto& e : summary->errors) errors.add(e);
    obj.set("errors", errors);
  }
  send(resp, 202, toJson(obj));
}

// What goes down to a child: the CAP warnings this hub drafted (still warning) and those it
// received (not expired, and not from that child), as size-delimited records with their origin.
// A drafted warning's copy expires within 10 minutes unless it is sent again: a warning that
// ended here leaves the child's map by then.
void Router::tierDown(HTTPServerRequest& req, HTTPServerResponse& resp) {
  std::string name, level;
  if (!childHub(req, resp, name, level)) return;
  const int64_t now_s = ctx_.fusion ? ctx_.fusion->now() : std::time(nullptr);
  std::string body;
  {
    google::protobuf::io::StringOutputStream raw(&body);
    google::protobuf::io::CodedOutputStream out(&raw);
    auto write = [&](const firehub::v1::Record& r) {
      out.WriteVarint32(static_cast<uint32_t>(r.ByteSizeLong()));
      r.SerializeWithCachedSizes(&out);
    };
    if (ctx_.fusion) {
      const int64_t bucket = now_s / 300;
      for (const auto& d : ctx_.fusion->activeWarnings()) write(draftRecord(d, bucket));
    }
    Status s = ctx_.lake->forEachLatestInBBox(
        "weather", {}, [&](firehub::v1::Record& r, std::string_view) {
          if (!r.has_weather_warning()) return true;
          const auto& w = r.weather_warning();
          const auto& hops = r.provenance().hops();
          if ((w.has_expires() && w.expires().seconds() <= now_s) ||
              r.provenance().origin_hub() == name ||
              std::find(hops.begin(), hops.end(), name) != hops.end())
            return true;
          redactRestricted(r);
          pipeline::nameForOrigin(r, ctx_.tier_name, ctx_.tier_level);
          write(r);
          return true;
        });
    if (!s.isOk()) return sendError(resp, s);
  }
  send(resp, 200, body, pipeline::kForwardedType);
}

// GET /api/v1/tiers/layers/risk?bbox=: this hub's risk cells (as tiers::cellForChild gives them)
// whose centre lies in bbox, size-delimited, for a child's parent_risk layer; revalidated with
// ETag / If-None-Match (the layer's version, this process's start and the bbox).
void Router::tierRiskLayer(HTTPServerRequest& req, HTTPServerResponse& resp) {
  std::string name, level;
  if (!childHub(req, resp, name, level)) return;
  if (!ctx_.fusion) return sendError(resp, Status::unavailable("fusion is not running: no risk"));
  const auto bbox_text = param("bbox");
  lake::BBox bbox;
  if (bbox_text) {
    auto parsed = parseBBox(*bbox_text);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    bbox = parsed.value();
  }
  static const std::string boot = std::to_string(std::time(nullptr));
  const std::string etag = "\"risk-" + boot + "-" + std::to_string(ctx_.fusion->layerVersion()) +
                           "-" + bbox_text.value_or("") + "\"";
  if (notModified(req, resp, etag)) return;
  std::string body;
  size_t matched = 0;
  {
    google::protobuf::io::StringOutputStream raw(&body);
    google::protobuf::io::CodedOutputStream out(&raw);
    ctx_.fusion->forEachRiskCell(
        bbox, 0, tiers::kMaxParentCells,
        [&](const firehub::v1::RiskCell& c, uint64_t, uint64_t) {
          const auto down = tiers::cellForChild(c);
          out.WriteVarint32(static_cast<uint32_t>(down.ByteSizeLong()));
          down.SerializeWithCachedSizes(&out);
        },
        &matched);
  }
  if (matched > tiers::kMaxParentCells) {
    return sendError(resp, Status(StatusCode::kPayloadTooLarge,
                                  std::to_string(matched) + " risk cells in the bbox, more than " +
                                      std::to_string(tiers::kMaxParentCells) +
                                      " go down: give the child a smaller upstream.area"));
  }
  resp.set("ETag", etag);
  send(resp, 200, body, "application/vnd.firehub.riskcells+protobuf");
}

// A drafted warning as a CAP warning record of this hub's, its copy valid for 10 minutes.
firehub::v1::Record Router::draftRecord(const firehub::v1::WarningDraft& d, int64_t bucket) const {
  firehub::v1::Record r;
  const std::string& here = ctx_.tier_name;
  r.set_id(here + "/warning:" + d.identifier() + "@" + std::to_string(bucket));
  r.set_feed_id(here + "/warnings");
  r.set_agency(here);
  r.set_domain("weather");
  r.set_entity_type("cap_warning");
  r.set_entity_id(here + "/" + d.area());
  *r.mutable_observed_at() = d.sent();
  r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
  r.set_op(firehub::v1::OP_UPSERT);
  auto* prov = r.mutable_provenance();
  prov->set_connector_id("firehub.fusion");
  prov->set_source_record_id(d.identifier());
  prov->set_origin_hub(here);
  prov->set_origin_level(ctx_.tier_level);
  using W = firehub::v1::WeatherWarning;
  auto* w = r.mutable_weather_warning();
  w->set_identifier(d.identifier());
  w->set_sender(here);
  *w->mutable_sent() = d.sent();
  w->set_msg_type(d.msg_type() == "Update"   ? W::MSG_TYPE_UPDATE
                  : d.msg_type() == "Cancel" ? W::MSG_TYPE_CANCEL
                                             : W::MSG_TYPE_ALERT);
  w->set_status(d.status() == "Actual" ? W::STATUS_ACTUAL : W::STATUS_DRAFT);
  w->set_event("火灾风险预警 fire risk warning");
  w->set_urgency(W::URGENCY_EXPECTED);
  w->set_severity(d.severity() == "Extreme"    ? W::SEVERITY_EXTREME
                  : d.severity() == "Severe"   ? W::SEVERITY_SEVERE
                  : d.severity() == "Moderate" ? W::SEVERITY_MODERATE
                                               : W::SEVERITY_MINOR);
  w->set_certainty(W::CERTAINTY_LIKELY);
  w->mutable_expires()->set_seconds((bucket + 2) * 300);
  w->set_headline(here + ": level " + d.level() + " fire risk, " + std::to_string(d.cells_size()) +
                  " cells");
  w->set_area_desc(d.area());
  for (const auto& ref : d.references()) w->add_references(ref);
  auto* polygons = r.mutable_geometry()->mutable_multi_polygon();
  for (const auto& token : d.cells()) {
    const S2Cell cell{S2CellId::FromToken(token)};
    auto* ring = polygons->add_polygons()->add_rings();
    for (int i = 0; i <= 4; ++i) {
      const S2LatLng v(cell.GetVertex(i % 4));
      auto* p = ring->add_points();
      p->set_lon(v.lng().degrees());
      p->set_lat(v.lat().degrees());
    }
  }
  return r;
}

void Router::upstream(HTTPServerResponse& resp) {
  Poco::JSON::Object obj;
  obj.set("tier", ctx_.tier_name);
  obj.set("level", ctx_.tier_level);
  Poco::JSON::Array children;
  for (const auto& c : ctx_.tier_children) children.add(c);
  obj.set("children", children);
  if (!ctx_.upstream) {
    obj.set("configured", false);
    return send(resp, 200, toJson(obj));
  }
  const auto s = ctx_.upstream->status();
  obj.set("configured", true);
  obj.set("url", s.url);
  obj.set("cursor", s.cursor);
  obj.set("last_sequence", s.last_sequence);
  obj.set("backlog", s.backlog);
  obj.set("lag_s", s.lag_s);
  obj.set("sent", s.sent);
  obj.set("skipped", s.skipped);
  obj.set("last_success", s.last_success_ms ? isoMillis(s.last_success_ms) : std::string());
  obj.set("last_attempt", s.last_attempt_ms ? isoMillis(s.last_attempt_ms) : std::string());
  obj.set("last_error", s.last_error);
  obj.set("failures", s.failures);
  obj.set("down_stored", s.down_stored);
  obj.set("down_last_success",
          s.down_last_success_ms ? isoMillis(s.down_last_success_ms) : std::string());
  obj.set("down_error", s.down_error);
  Poco::JSON::Array layers;
  if (ctx_.upstream->bringsDown("risk")) {
    Poco::JSON::Object risk;
    risk.set("layer", "risk");
    risk.set("served_as", tiers::kParentRiskLayer);
    risk.set("cells", static_cast<uint64_t>(s.layer_cells));
    risk.set("last_read", s.layer_read_ms ? isoMillis(s.layer_read_ms) : std::string());
    risk.set("error", s.layer_error);
    layers.add(risk);
  }
  obj.set("layers", layers);
  send(resp, 200, toJson(obj));
}

}  // namespace firehub::api
