// The duty officer's alert list: unresolved fire alarms and faults, open police incidents, CAP
// warnings received from the weather service and drafted by the hub, newest first, each with
// who acknowledged it; acknowledging (operators) is shared by every viewer and audited.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <algorithm>

#include "api/layer_parts.h"
#include "api/router.h"

namespace firehub::api {
namespace {

constexpr const char* kAckPrefix = "acks/";

struct Alert {
  std::string id;    // what an acknowledgement names: "rec:<record id>" or "cap:<identifier>"
  std::string kind;  // fire_alarm, fault, incident, cap_received, cap_drafted
  std::string title;
  std::string detail;
  int64_t at = 0;  // unix seconds
  double lon = 0, lat = 0;
  std::string level;     // warning level or CAP severity, when it has one
  std::string origin;    // the hub a record came from (tiers), when not this one
  std::string unplaced;  // why a received warning has no place (then no point)
};

int64_t seconds(const google::protobuf::Timestamp& t) { return t.seconds(); }

}  // namespace

// Long: one walk per kind of alert, a few lines each.
Reply alertList(const ApiContext& ctx, size_t limit) {
  std::vector<Alert> alerts;
  auto walk = [&](const std::string& index, const std::string& domain,
                  const std::function<void(firehub::v1::Record&)>& fn) {
    auto visit = [&](firehub::v1::Record& r, std::string_view) {
      fn(r);
      return true;
    };
    return ctx.lake->hasAreaIndex(index) ? ctx.lake->forEachIndexedInBBox(index, {}, visit)
                                         : ctx.lake->forEachLatestInBBox(domain, {}, visit);
  };
  Status s = walk("alarms", "alarm", [&](firehub::v1::Record& r) {
    if (!r.has_fire_alarm_event() || r.fire_alarm_event().resolved()) return;
    const auto& a = r.fire_alarm_event();
    if (!a.fire_alarm() && !a.fault()) return;
    auto at = markerPoint(r.geometry());
    if (!at) return;
    alerts.push_back({"rec:" + r.id(), a.fire_alarm() ? "fire_alarm" : "fault",
                      a.building_id().empty() ? a.device_address() : a.building_id(),
                      a.description(), seconds(r.observed_at()), at->first, at->second, ""});
  });
  if (!s.isOk()) return errorReply(s);
  s = walk("incidents", "police", [&](firehub::v1::Record& r) {
    if (!r.has_police_incident() ||
        r.police_incident().status() == firehub::v1::PoliceIncident::STATUS_CLOSED)
      return;
    const auto& p = r.police_incident();
    auto at = markerPoint(r.geometry());
    if (!at) return;
    alerts.push_back({"rec:" + r.id(), "incident",
                      firehub::v1::PoliceIncident::Type_Name(p.type()).substr(5), p.address(),
                      p.has_reported_at() ? seconds(p.reported_at()) : seconds(r.observed_at()),
                      at->first, at->second, ""});
  });
  if (!s.isOk()) return errorReply(s);
  const int64_t now = ctx.fusion ? ctx.fusion->now() : 0;
  // Received warnings, placed or not (an area given by codes the outlines do not hold).
  s = ctx.lake->scanLatest("weather", [&](const firehub::v1::Record& r) {
    if (!r.has_weather_warning()) return;
    const auto& w = r.weather_warning();
    if (w.has_expires() && w.expires().seconds() <= now) return;
    Alert a{"rec:" + r.id(),
            "cap_received",
            w.event(),
            w.headline(),
            seconds(r.observed_at()),
            0,
            0,
            firehub::v1::WeatherWarning::Severity_Name(w.severity()).substr(9),
            r.provenance().origin_hub()};
    if (auto bounds = lake::boundsOf(r.geometry())) {
      a.lon = (bounds->min_lon + bounds->max_lon) / 2;
      a.lat = (bounds->min_lat + bounds->max_lat) / 2;
    } else {
      a.unplaced = r.unplaced_reason().empty() ? "no area" : r.unplaced_reason();
    }
    alerts.push_back(std::move(a));
  });
  if (!s.isOk()) return errorReply(s);
  if (ctx.fusion) {
    for (const auto& d : ctx.fusion->activeWarnings()) {
      const S2LatLng c = S2CellId::FromToken(d.area()).ToLatLng();
      alerts.push_back({"cap:" + d.identifier(), "cap_drafted",
                        "level " + d.level() + " (" + d.severity() + ")",
                        std::to_string(d.cells_size()) + " cells", seconds(d.sent()),
                        c.lng().degrees(), c.lat().degrees(), d.level()});
    }
  }
  std::stable_sort(alerts.begin(), alerts.end(), [](const Alert& a, const Alert& b) {
    return a.at != b.at ? a.at > b.at : a.id < b.id;
  });
  const size_t total = alerts.size();
  if (alerts.size() > limit) alerts.resize(limit);
  Poco::JSON::Array items;
  for (const auto& a : alerts) {
    Poco::JSON::Object o;
    o.set("id", a.id);
    o.set("kind", a.kind);
    o.set("title", a.title);
    o.set("detail", a.detail);
    o.set("at", isoTime(a.at));
    if (a.unplaced.empty()) {
      Poco::JSON::Array point;
      point.add(a.lon);
      point.add(a.lat);
      o.set("point", point);
    } else {
      o.set("unplaced", a.unplaced);
    }
    if (!a.level.empty()) o.set("level", a.level);
    if (!a.origin.empty()) o.set("origin", a.origin);
    auto ack = ctx.lake->getMeta(kAckPrefix + a.id);
    if (ack.isOk() && ack.value()) {
      try {
        Poco::JSON::Parser parser;
        o.set("acknowledged", parser.parse(*ack.value()).extract<Poco::JSON::Object::Ptr>());
      } catch (const Poco::Exception&) {  // a damaged entry: shown as not acknowledged
      }
    }
    items.add(o);
  }
  Poco::JSON::Object out;
  out.set("alerts", items);
  out.set("total", total);
  std::ostringstream os;
  out.stringify(os);
  return {200, os.str()};
}

// POST /api/v1/alerts/{id}/ack: an operator (or admin) acknowledges an alert for everyone.
void Router::ackAlert(HTTPServerResponse& resp, const std::string& id) {
  audit_target_ = bounded(id, 128);
  if (!who_.canOperate()) return (void)forbid(resp, "alerts are acknowledged by operators");
  if (id.rfind("rec:", 0) != 0 && id.rfind("cap:", 0) != 0) {
    return sendError(
        resp, Status::invalidArgument("an alert id is rec:<record id> or cap:<identifier> (see GET "
                                      "/api/v1/alerts)"));
  }
  if (id.rfind("rec:", 0) == 0) {
    auto record = ctx_.lake->getRecord(id.substr(4));
    if (!record.isOk()) return sendError(resp, record.status());
    if (!record.value())
      return sendError(resp, Status::notFound("no record '" + id.substr(4) + "'"));
  }
  Poco::JSON::Object o;
  o.set("by", who_.key_id);
  o.set("at", isoMillis(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count()));
  const std::string text = toJson(o);
  Status s = ctx_.lake->putMeta(kAckPrefix + id, text);
  if (!s.isOk()) return sendError(resp, s);
  send(resp, 200, R"({"id":)" + jsonString(id) + R"(,"acknowledged":)" + text + "}");
}

}  // namespace firehub::api
