// The route table: which handler answers which method and path under /api/v1, /ogc and the
// one-map, and the methods a known path allows.
#include "api/router.h"

namespace firehub::api {

// Long: the dispatch table of every /api/v1 route, one line or two each; the handlers are
// elsewhere.
void Router::route(HTTPServerRequest& req, HTTPServerResponse& resp) {
  Poco::URI uri;
  auto segments = pathSegments(req.getURI());
  try {
    uri = Poco::URI(req.getURI());
  } catch (const Poco::Exception& e) {
    segments = Status::invalidArgument("the request target is not a URI: " + e.displayText());
  }
  if (!segments.isOk()) return sendError(resp, segments.status());
  const std::string& method = req.getMethod();
  std::vector<std::string> p = std::move(segments).value();
  query_ = uri.getQueryParameters();
  const auto& params = query_;
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";

  if (p.size() == 1 && p[0] == "metrics" && get) {
    ctx_.metrics->setOutboxDepth(static_cast<double>(ctx_.lake->outboxDepth()));
    if (ctx_.load_failures)
      ctx_.metrics->setLoadFailures(static_cast<double>(ctx_.load_failures().size()));
    setMemoryGauges();
    if (ctx_.upkeep) (void)ctx_.upkeep->measure();
    if (ctx_.replica) {
      const auto st = ctx_.replica->state();
      ctx_.metrics->setReplicaLag(static_cast<double>(st.lag_records), st.lag_seconds);
    }
    if (ctx_.duties) {
      for (const auto& d : ctx_.duties->state())
        ctx_.metrics->setDutyHeld(cluster::dutyName(d.duty), d.current);
    }
    return send(resp, 200, ctx_.metrics->serialize(), "text/plain; version=0.0.4");
  }
  if (get && !p.empty() && p[0] == "tiles")
    return tileRequest(req, resp, std::vector<std::string>(p.begin() + 1, p.end()));
  if (get && (p.empty() || (p[0] != "api" && p[0] != "ogc"))) return staticFile(resp, p);
  if (!p.empty() && p[0] == "ogc") {
    if (!get) {
      resp.set("Allow", "GET, HEAD");
      return sendError(resp,
                       Status::methodNotAllowed("OGC API - Features is read-only: " + method));
    }
    std::map<std::string, std::string> query(params.begin(), params.end());
    std::vector<std::string> rest(p.begin() + 1, p.end());
    if (ogcTiles(req, resp, rest)) return;
    return reply(resp,
                 ogcRequest(ctx_, rest, query, (tls() ? "https://" : "http://") + req.getHost(),
                            who_.restricted));
  }
  if (p.size() < 2 || p[0] != "api" || p[1] != "v1") {
    return sendError(resp, Status::notFound("no route for " + uri.getPath()));
  }
  p.erase(p.begin(), p.begin() + 2);
  if (p.empty()) return sendError(resp, Status::notFound("no route for " + uri.getPath()));

  const std::string& what = p[0];
  if (p.size() > 1) audit_target_ = p[1];
  if (what == "keys") {
    if (!who_.canAdminister()) return (void)forbid(resp, "keys are managed by admins");
    if (p.size() == 1 && post) return createKey(req, resp);
    if (p.size() == 1 && get) return listKeys(resp);
    if (p.size() == 2 && get) return showKey(resp, p[1]);
    if (p.size() == 2 && method == "DELETE") return revokeKey(resp, p[1]);
    if (p.size() == 2 && method == "PATCH") return patchKey(req, resp, p[1]);
  }
  if (what == "audit" && get) {
    if (!who_.canAdminister()) return (void)forbid(resp, "the audit log is for admins");
    if (p.size() == 1) return auditLog(resp);
    if (p.size() == 2 && p[1] == "verify") return auditVerify(resp);
  }
  if (what == "openapi.json" && p.size() == 1 && get) return openapi(resp);
  if (what == "nearby" && p.size() == 1 && get) {
    auto number = [&](const char* name, double fallback) -> std::optional<double> {
      auto v = param(name);
      if (!v) return fallback;
      try {
        size_t used = 0;
        const double d = std::stod(*v, &used);
        if (used != v->size()) return std::nullopt;
        return d;
      } catch (const std::exception&) {
        return std::nullopt;
      }
    };
    auto lon = number("lon", NAN), lat = number("lat", NAN), radius = number("radius_m", 1000);
    if (!lon || !lat || !radius) {
      return sendError(resp, Status::invalidArgument("lon, lat and radius_m must be numbers"));
    }
    return reply(resp, nearby(ctx_, *lon, *lat, *radius));
  }
  if (what == "map" && p.size() == 1 && get) {
    Poco::JSON::Object o;
    o.set("basemap", options_.basemap);
    o.set("basemap_kind", options_.basemap.empty()                            ? ""
                          : options_.basemap.find("{z}") != std::string::npos ? "raster"
                                                                              : "style");
    o.set("basemap_attribution", options_.basemap_attribution);
    o.set("initial_view", options_.initial_view);
    return send(resp, 200, toJson(o));
  }
  if (what == "search" && p.size() == 1 && get) {
    auto limit = integerParam(param("limit"), "limit", 1, 100, 20);
    if (!limit.isOk()) return sendError(resp, limit.status());
    return reply(resp, search(ctx_, search_index_, param("q").value_or(""),
                              static_cast<size_t>(limit.value()), who_.restricted));
  }
  if (what == "stats" && p.size() == 2 && p[1] == "districts" && get)
    return reply(resp, districtStats(ctx_, options_.outlines_file));
  if (what == "alerts" && p.size() == 1 && get) {
    auto limit = integerParam(param("limit"), "limit", 1, 1000, 200);
    if (!limit.isOk()) return sendError(resp, limit.status());
    return reply(resp, alertList(ctx_, static_cast<size_t>(limit.value())));
  }
  if (what == "alerts" && p.size() == 3 && p[2] == "ack" && post) return ackAlert(resp, p[1]);
  if (what == "session" && p.size() == 1 && get) return sessionInfo(req, resp);
  if (what == "session" && p.size() == 1 && method == "DELETE") return signOut(req, resp);
  if (what == "users" && ctx_.users) {
    if (!who_.canAdminister()) return (void)forbid(resp, "users are managed by admins");
    if (p.size() == 1 && post) return createUser(req, resp);
    if (p.size() == 1 && get) return listUsers(resp);
    if (p.size() == 2 && method == "DELETE") return deleteUser(resp, p[1]);
  }
  if (what == "kafka" && p.size() == 1 && get) return kafka(resp);
  if (what == "upstream" && p.size() == 1 && get) return upstream(resp);
  if (what == "backups" && p.size() == 1 && get) return backupState(resp);
  if (what == "backups" && p.size() == 1 && post) return startBackup(req, resp);
  if (what == "tiers" && p.size() == 2 && p[1] == "records" && post) return tierRecords(req, resp);
  if (what == "tiers" && p.size() == 2 && p[1] == "down" && get) return tierDown(req, resp);
  if (what == "tiers" && p.size() == 3 && p[1] == "layers" && p[2] == "risk" && get)
    return tierRiskLayer(req, resp);
  if (what == "cluster" && p.size() == 1 && get) return cluster(resp);
  if (what == "cluster" && p.size() == 2 && p[1] == "snapshot" && get) {
    if (!who_.canAdminister()) return (void)forbid(resp, "a lake snapshot is for admins");
    return clusterSnapshot(resp);
  }
  if (what == "plugins" && p.size() == 1 && get) return plugins(resp);
  if (what == "plugins" && p.size() == 2 && p[1] == "rescan" && post) {
    if (!who_.canOperate()) return (void)forbid(resp, "operators add plugins");
    if (ctx_.rescan_plugins) ctx_.rescan_plugins();
    return plugins(resp);
  }
  if (what == "feeds") {
    if (p.size() == 1 && post) return createFeed(req, resp);
    if (p.size() == 1 && get) return listFeeds(resp);
    if (p.size() == 2 && get) return showFeed(resp, p[1]);
    if (p.size() == 2 && method == "PATCH") return patchFeed(req, resp, p[1]);
    if (p.size() == 3 && p[2] == "records" && post) return push(req, resp, p[1]);
    if ((p.size() == 3 && post && (p[2] == "pause" || p[2] == "resume")) ||
        (p.size() == 2 && method == "DELETE")) {
      return manageFeed(resp, p[1], p.size() == 2 ? "delete" : p[2]);
    }
  }
  if (what == "catalog" && p.size() == 1 && get) return catalog(resp);
  if (what == "grants" && ctx_.subscriptions) {
    if (!who_.canOperate()) return (void)forbid(resp, "grants are given by admins and operators");
    if (p.size() == 1 && post) return addGrant(req, resp);
    if (p.size() == 1 && get) return listGrants(resp);
    if (p.size() == 3 && method == "DELETE") {
      Status st = ctx_.subscriptions->revokeGrant(p[1], p[2]);
      return st.isOk() ? send(resp, 200, R"({"revoked":true})") : sendError(resp, st);
    }
  }
  if (what == "subscriptions" && ctx_.subscriptions) {
    if (who_.anonymous) return (void)unauthorized(resp, "subscriptions need an API key");
    if (p.size() == 1 && post) return subscribe(req, resp);
    if (p.size() == 1 && get) return listSubscriptions(resp);
    auto sub = p.size() >= 2 ? ctx_.subscriptions->get(p[1]) : std::nullopt;
    if (p.size() >= 2 && (!sub || (sub->owner != who_.key_id && !who_.canOperate()))) {
      return sendError(resp, Status::notFound("no subscription '" + p[1] + "'"));
    }
    if (p.size() == 2 && get) return send(resp, 200, subs::subscriptionJson(*sub));
    if (p.size() == 2 && method == "DELETE") {
      Status st = ctx_.subscriptions->remove(p[1]);
      return st.isOk() ? send(resp, 200, R"({"deleted":true})") : sendError(resp, st);
    }
    if (p.size() == 2 && method == "PATCH") return patchSubscription(req, resp, *sub);
    if (p.size() == 3 && post && (p[2] == "pause" || p[2] == "resume")) {
      auto changed = ctx_.subscriptions->setPaused(sub->id, p[2] == "pause");
      if (!changed.isOk()) return sendError(resp, changed.status());
      return send(resp, 200, subs::subscriptionJson(changed.value()));
    }
    if (p.size() == 3 && p[2] == "events" && get) return subscriptionEvents(req, resp, *sub);
  }
  if (what == "records" && p.size() == 2 && get) return record(resp, p[1]);
  if (what == "records" && p.size() == 1 && get) return recordsByTime(req, resp);
  if (what == "entities" && p.size() == 1 && get) {
    return entities(resp, param("domain"), param("bbox"));
  }
  if (what == "entities" && p.size() == 4 && p[3] == "history" && get)
    return entityHistory(req, resp, p[1], p[2]);
  if (what == "lake" && p.size() == 1 && get) return lakeState(resp);
  if (what == "fwi" && p.size() == 4 && p[1] == "stations" && p[3] == "start" &&
      (get || method == "PUT"))
    return fwiStart(req, resp, p[2], method == "PUT");
  if (what == "lake" && p.size() == 2 && p[1] == "retention" && post) return runRetention(resp);
  if (what == "dlq") {
    if (p.size() == 1 && get) {
      auto feed = param("feed");
      auto owner = feed ? ctx_.feeds->get(*feed) : nullptr;
      if (!who_.canOperate() && !(owner && who_.mayWriteFeed(owner->spec().agency))) {
        return (void)forbid(
            resp,
            "dead letters hold raw agency data: operators, or the agency with ?feed=<its feed>");
      }
      return deadLetters(resp, feed);
    }
    if (p.size() == 2 && p[1] == "replay" && method == "POST") return replayDeadLetters(req, resp);
    if (p.size() == 2 && (get || method == "DELETE")) return deadLetter(resp, p[1], get);
  }
  if (what == "layers" && get) {
    if (p.size() == 1) return reply(resp, layerList(ctx_));
    if (p.size() == 3 && p[1] == "risk" && p[2] == "stream") return riskStream(req, resp);
    if (p.size() == 4 && p[1] == "risk" && p[2] == "cells") {
      if (auto at = param("at")) return riskCellAt(resp, p[3], *at);
      return reply(resp, riskCellExplanation(ctx_, p[3]));
    }
    if (p.size() == 2 && p[1] == "risk") {
      if (auto at = param("at")) return riskLayerAt(resp, *at, param("bbox"), param("limit"));
    }
    if (p.size() == 2 && param("at"))
      return sendError(resp, Status::invalidArgument("only the risk layer is kept in time (at=)"));
    if (p.size() == 2)
      return layer(req, resp, p[1], param("bbox"), param("limit"), param("offset"),
                   param("properties"), param("cursor"));
  }
  if (what == "outlines" && p.size() == 1 && get) return outlines(resp);
  if (what == "warnings" && get) {
    if (p.size() == 1) return warnings(resp);
    if (p.size() == 2) return reply(resp, warningDocument(ctx_, p[1]));
  }
  if (what == "warnings" && post && p.size() == 3 && p[2] == "issue")
    return issueWarning(resp, p[1]);
  if (std::string allow = allowedMethods(p); !allow.empty()) {
    resp.set("Allow", allow);
    return sendError(resp, Status::methodNotAllowed("method " + method + " is not allowed on " +
                                                    uri.getPath() + " (allowed: " + allow + ")"));
  }
  sendError(resp, Status::notFound("no route for " + uri.getPath()));
}

// The methods a path under /api/v1 answers (its segments after /api/v1), as an Allow header;
// "" when no route has that shape. Kept beside route(), whose conditions it mirrors.
std::optional<std::string> Router::param(const std::string& name) const {
  for (const auto& [k, v] : query_) {
    if (k == name) return v;
  }
  return std::nullopt;
}

std::string Router::allowedMethods(const std::vector<std::string>& p) {
  const std::string& what = p[0];
  const size_t n = p.size();
  auto is = [&](size_t i, const char* s) { return n > i && p[i] == s; };
  std::vector<const char*> m;
  if (what == "keys") {
    if (n == 1) m = {"GET", "POST"};
    if (n == 2) m = {"GET", "PATCH", "DELETE"};
  } else if (what == "search" || what == "map" || what == "nearby") {
    if (n == 1) m = {"GET"};
  } else if (what == "stats") {
    if (n == 2 && is(1, "districts")) m = {"GET"};
  } else if (what == "alerts") {
    if (n == 1) m = {"GET"};
    if (n == 3 && is(2, "ack")) m = {"POST"};
  } else if (what == "session") {
    if (n == 1) m = {"GET", "POST", "DELETE"};
  } else if (what == "users") {
    if (n == 1) m = {"GET", "POST"};
    if (n == 2) m = {"DELETE"};
  } else if (what == "backups") {
    if (n == 1) m = {"GET", "POST"};
  } else if (what == "audit") {
    if (n == 1 || (n == 2 && is(1, "verify"))) m = {"GET"};
  } else if (what == "tiers") {
    if (n == 2 && is(1, "records")) m = {"POST"};
    if (n == 2 && is(1, "down")) m = {"GET"};
    if (n == 3 && is(1, "layers") && is(2, "risk")) m = {"GET"};
  } else if (what == "openapi.json" || what == "kafka" || what == "cluster" || what == "catalog" ||
             what == "outlines" || what == "entities" || what == "upstream") {
    if (n == 1 || (n == 2 && is(0, "cluster") && is(1, "snapshot"))) m = {"GET"};
    if (n == 4 && is(0, "entities") && is(3, "history")) m = {"GET"};
  } else if (what == "plugins") {
    if (n == 1) m = {"GET"};
    if (n == 2 && is(1, "rescan")) m = {"POST"};
  } else if (what == "feeds") {
    if (n == 1) m = {"GET", "POST"};
    if (n == 2) m = {"GET", "PATCH", "DELETE"};
    if (n == 3 && (is(2, "records") || is(2, "pause") || is(2, "resume"))) m = {"POST"};
  } else if (what == "grants") {
    if (n == 1) m = {"GET", "POST"};
    if (n == 3) m = {"DELETE"};
  } else if (what == "subscriptions") {
    if (n == 1) m = {"GET", "POST"};
    if (n == 2) m = {"GET", "PATCH", "DELETE"};
    if (n == 3 && is(2, "events")) m = {"GET"};
    if (n == 3 && (is(2, "pause") || is(2, "resume"))) m = {"POST"};
  } else if (what == "records") {
    if (n <= 2) m = {"GET"};
  } else if (what == "fwi") {
    if (n == 4 && is(1, "stations") && is(3, "start")) m = {"GET", "PUT"};
  } else if (what == "lake") {
    if (n == 1) m = {"GET"};
    if (n == 2 && is(1, "retention")) m = {"POST"};
  } else if (what == "dlq") {
    if (n == 1) m = {"GET"};
    if (n == 2)
      m = is(1, "replay") ? std::vector<const char*>{"POST"}
                          : std::vector<const char*>{"GET", "DELETE"};
  } else if (what == "layers") {
    m = {"GET"};
  } else if (what == "warnings") {
    if (n <= 2) m = {"GET"};
    if (n == 3 && is(2, "issue")) m = {"POST"};
  }
  std::string allow;
  for (const char* method : m) {
    allow += (allow.empty() ? "" : ", ") + std::string(method);
    if (std::string(method) == "GET") allow += ", HEAD";
  }
  return allow;
}

}  // namespace firehub::api
