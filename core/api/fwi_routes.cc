// A weather station's season start codes (operators): PUT and GET
// /api/v1/fwi/stations/{station}/start.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cmath>
#include <ctime>

#include "api/paging.h"
#include "api/router.h"
#include "firehub/fwi.h"

namespace firehub::api {
namespace {

std::string startJson(const std::string& station, const fusion::FwiStart& s) {
  Poco::JSON::Object o;
  o.set("station", station);
  o.set("ffmc", s.codes.ffmc);
  o.set("dmc", s.codes.dmc);
  o.set("dc", s.codes.dc);
  char day[40];
  std::snprintf(day, sizeof day, "%04ld-%02ld-%02ld", s.from_day / 10000, s.from_day / 100 % 100,
                s.from_day % 100);
  o.set("from", std::string(day));
  o.set("applied", s.applied);
  o.set("set_at", isoMillis(s.set_at * 1000));
  o.set("set_by", s.set_by);
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

// A member that must be a finite number in [low, high].
Result<double> numberIn(const Poco::JSON::Object& o, const std::string& name, double low,
                        double high, std::optional<double> absent = std::nullopt) {
  if (!o.has(name) || o.get(name).isEmpty()) {
    if (absent) return *absent;
    return Status::invalidArgument("field '" + name + "' is required");
  }
  const auto& v = o.get(name);
  double d = 0;
  try {
    if (!v.isNumeric()) throw Poco::Exception("not a number");
    d = v.convert<double>();
  } catch (const Poco::Exception&) {
    return Status::invalidArgument("field '" + name + "' must be a number");
  }
  if (!std::isfinite(d) || d < low || d > high) {
    return Status::invalidArgument("field '" + name + "' must be a number in " +
                                   std::to_string(low) + ".." + std::to_string(high));
  }
  return d;
}

}  // namespace

void Router::fwiStart(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& station,
                      bool put) {
  if (!ctx_.fusion) return sendError(resp, Status::unavailable("fusion is not running"));
  if (!put) {
    auto stored = ctx_.fusion->fwiStart(station);
    if (!stored.isOk()) return sendError(resp, stored.status());
    if (!stored.value())
      return sendError(resp, Status::notFound("no start codes for station '" + station + "'"));
    return send(resp, 200, startJson(station, *stored.value()));
  }
  auto body = readBody(req);
  if (!body.isOk()) {
    discardBody(req, resp);
    return sendError(resp, body.status());
  }
  if (!who_.canOperate()) return (void)forbid(resp, "start codes are set by operators");
  audit_target_ = bounded(station, 64);
  fusion::FwiStart start;
  try {
    auto o = Poco::JSON::Parser().parse(body.value()).extract<Poco::JSON::Object::Ptr>();
    auto ffmc = numberIn(*o, "ffmc", 0, 101, 85.0);
    auto dmc = numberIn(*o, "dmc", 0, 1000, 6.0);
    if (!ffmc.isOk()) return sendError(resp, ffmc.status());
    if (!dmc.isOk()) return sendError(resp, dmc.status());
    start.codes.ffmc = ffmc.value();
    start.codes.dmc = dmc.value();
    if (o->has("overwinter")) {
      if (o->has("dc"))
        return sendError(resp, Status::invalidArgument("give 'dc' or 'overwinter', not both"));
      auto w = o->getObject("overwinter");
      if (!w) return sendError(resp, Status::invalidArgument("'overwinter' must be an object"));
      auto fall = numberIn(*w, "fall_dc", 0, 2000);
      auto prec = numberIn(*w, "winter_prec_mm", 0, 5000);
      auto a = numberIn(*w, "a", 0.5, 1.0, 0.75);
      auto b = numberIn(*w, "b", 0.5, 1.0, 0.75);
      for (const auto* r : {&fall, &prec, &a, &b})
        if (!r->isOk()) return sendError(resp, r->status());
      start.codes.dc =
          fusion::overwinterDroughtCode(fall.value(), prec.value(), a.value(), b.value());
    } else {
      auto dc = numberIn(*o, "dc", 0, 2000, 15.0);
      if (!dc.isOk()) return sendError(resp, dc.status());
      start.codes.dc = dc.value();
    }
    if (!o->has("from") || !o->get("from").isString())
      return sendError(resp, Status::invalidArgument(
                                 "field 'from' is required: the season's first day, YYYY-MM-DD"));
    const std::string from = o->getValue<std::string>("from");
    int y = 0, m = 0, d = 0;
    char tail = 0;
    if (std::sscanf(from.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || y < 1900 ||
        y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) {
      return sendError(resp, Status::invalidArgument("field 'from' must be a date, YYYY-MM-DD"));
    }
    start.from_day = y * 10000L + m * 100L + d;
  } catch (const Poco::Exception& e) {
    return sendError(resp,
                     Status::invalidArgument("body must be a JSON object: " + e.displayText()));
  }
  start.set_at = static_cast<int64_t>(std::time(nullptr));
  start.set_by = who_.key_id;
  if (Status s = ctx_.fusion->setFwiStart(station, start); !s.isOk()) return sendError(resp, s);
  send(resp, 200, startJson(station, start));
}

}  // namespace firehub::api
