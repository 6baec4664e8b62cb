// Tiers over HTTP: a child hub's forwarded records (POST /api/v1/tiers/records) and this hub's
// own link upward (GET /api/v1/upstream).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>

#include "api/paging.h"
#include "api/router.h"
#include "firehub/tiers.h"

namespace firehub::api {
namespace {

int levelIndex(const std::string& level) {
  const auto& l = tiers::levels();
  auto it = std::find(l.begin(), l.end(), level);
  return it == l.end() ? -1 : static_cast<int>(it - l.begin());
}

}  // namespace

void Router::tierRecords(HTTPServerRequest& req, HTTPServerResponse& resp) {
  const auto& children = ctx_.tier_children;
  if (children.empty()) {
    discardBody(req, resp);
    return sendError(resp, Status::notFound("this hub takes no child hubs (tier.children)"));
  }
  // A child forwards with the agency key this hub issued to it: its agency is the child's name,
  // and its domains are what the agreement lets the child send.
  if (who_.role != auth::Role::kAgency ||
      std::find(children.begin(), children.end(), who_.agency) == children.end()) {
    discardBody(req, resp);
    return (void)forbid(resp,
                        "forwarding needs the agency key of a child hub named in "
                        "tier.children");
  }
  const std::string name = req.get("X-Firehub-Tier-Name", "");
  const std::string level = req.get("X-Firehub-Tier-Level", "");
  if (name != who_.agency) {
    discardBody(req, resp);
    return (void)forbid(resp, "the key is child hub '" + who_.agency + "''s, not '" + name + "''s");
  }
  if (levelIndex(level) < 0 || levelIndex(level) >= levelIndex(ctx_.tier_level)) {
    discardBody(req, resp);
    return sendError(
        resp, Status::invalidArgument("X-Firehub-Tier-Level '" + level + "': a child of this " +
                                      ctx_.tier_level + " hub is of a lower level (county, city)"));
  }
  if (mediaType(req.getContentType()) != pipeline::kForwardedType) {
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
  send(resp, 200, toJson(obj));
}

}  // namespace firehub::api
