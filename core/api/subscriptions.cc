// Subscriptions: made, listed, and read as server-sent events.
#include "api/router.h"

namespace firehub::api {

void Router::subscribe(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  auto parsed = subs::parseSubscription(body.value(), who_.restricted);
  if (!parsed.isOk()) return sendError(resp, parsed.status());
  std::string topic = "firehub.v1." + parsed->domain;
  if (!who_.canOperate() && !ctx_.subscriptions->granted(who_.key_id, topic)) {
    return (void)forbid(resp, "no grant for topic " + topic + " (an admin or operator grants it)");
  }
  parsed->owner = who_.key_id;
  parsed->restricted = who_.restricted;
  Status deliverable = ctx_.subscriptions->checkDelivery(parsed.value());
  if (!deliverable.isOk()) return sendError(resp, deliverable);
  auto created = ctx_.subscriptions->create(parsed.value());
  if (!created.isOk()) return sendError(resp, created.status());
  audit_target_ = created->id;
  resp.set("Location", "/api/v1/subscriptions/" + created->id);
  send(resp, 201, subs::subscriptionJson(created.value()));
}

void Router::listSubscriptions(HTTPServerResponse& resp) {
  auto page = pageParams(param("limit"), param("cursor"), "subscriptions", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& s : ctx_.subscriptions->list()) {
    if (s.owner != who_.key_id && !who_.canOperate()) continue;
    items.emplace_back(s.id, subs::subscriptionJson(s));
  }
  std::sort(items.begin(), items.end());
  send(resp, 200, pageOfList("subscriptions", items, page.value()));
}

void Router::patchSubscription(HTTPServerRequest& req, HTTPServerResponse& resp,
                               const subs::Subscription& sub) {
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  audit_target_ = sub.id;
  Poco::JSON::Object::Ptr patch;
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(body.value());
    if (v.type() == typeid(Poco::JSON::Object::Ptr)) patch = v.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
  }
  if (!patch) {
    return sendError(resp, Status::invalidArgument(
                               R"(body must be a JSON object of the fields to change: "filter", )"
                               R"("delivery" (url, secret, max_attempts), "paused")"));
  }
  Poco::JSON::Parser parser;
  auto current =
      parser.parse(subs::subscriptionJson(sub, /*stored=*/true)).extract<Poco::JSON::Object::Ptr>();
  for (const auto& name : patch->getNames()) {
    if (name == "filter" || name == "paused") {
      current->set(name, patch->get(name));
    } else if (name == "delivery") {
      auto d = patch->getObject(name);
      auto base = current->getObject(name);
      if (!d || !base)
        return sendError(resp, Status::invalidArgument("delivery must be an object"));
      for (const auto& k : d->getNames()) base->set(k, d->get(k));
    } else {
      return sendError(
          resp, Status::invalidArgument("field '" + name +
                                        "' of a subscription does not change (filter, delivery and "
                                        "paused do; a new topic or start is a new subscription)"));
    }
  }
  auto parsed = subs::parseSubscription(toJson(*current), who_.restricted || sub.restricted);
  if (!parsed.isOk()) return sendError(resp, parsed.status());
  parsed->id = sub.id;
  parsed->owner = sub.owner;
  Status deliverable = ctx_.subscriptions->checkDelivery(parsed.value());
  if (!deliverable.isOk()) return sendError(resp, deliverable);
  auto changed = ctx_.subscriptions->update(parsed.value());
  if (!changed.isOk()) return sendError(resp, changed.status());
  send(resp, 200, subs::subscriptionJson(changed.value()));
}

// The subscription's records as server-sent events, read from the lake's log: each event's id
// is the record's log sequence, so a client reconnecting with Last-Event-ID misses nothing.
void Router::subscriptionEvents(HTTPServerRequest& req, HTTPServerResponse& resp,
                                const subs::Subscription& sub) {
  if (std::string why = ctx_.subscriptions->refusal(sub); !why.empty()) {
    return (void)forbid(resp, "subscription " + sub.id + " may not be delivered: " + why);
  }
  if (sub.paused) {
    return sendError(resp, Status::failedPrecondition("subscription " + sub.id +
                                                      " is paused (POST .../resume)"));
  }
  if (stream_.clients() >= maxStreams())
    return sendError(resp, Status::unavailable("too many stream clients; try again later"));
  stream_.addClient();
  struct Leave {
    DeltaStream& s;
    ~Leave() { s.removeClient(); }
  } leave{stream_};
  // From where the subscription began (its `from`), or on from the last event a client saw.
  uint64_t after = sub.start_after;
  std::string last = req.get("Last-Event-ID", "");
  if (!last.empty()) after = std::strtoull(last.c_str(), nullptr, 10);
  resp.setStatus(HTTPResponse::HTTP_OK);
  resp.setContentType("text/event-stream");
  resp.set("Cache-Control", "no-store");
  resp.setChunkedTransferEncoding(true);
  ctx_.metrics->countHttp(200);
  std::ostream& out = resp.send();
  out << "retry: 2000\n: subscription " << sub.id << "\n\n";
  out.flush();
  int idle_ms = 0;
  while (out.good() && !stream_.closed()) {
    // The subscription's grant and its reader's key are checked again on every turn: a
    // revoked key or grant closes the stream within a second.
    if (!ctx_.subscriptions->refusal(sub).empty() || !stillAuthorised()) break;
    std::vector<std::pair<uint64_t, firehub::v1::Record>> records;
    uint64_t scanned = after;
    Status st = ctx_.subscriptions->readMatching(sub, after, 500, records, scanned);
    if (!st.isOk()) break;
    for (const auto& [seq, r] : records) {
      auto copy = r;
      out << "id: " << seq << "\nevent: record\ndata: " << recordJson(copy) << "\n\n";
    }
    if (!records.empty()) {
      out.flush();
      idle_ms = 0;
    }
    if (scanned != after) {
      after = scanned;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    if ((idle_ms += 250) >= 15000) {
      out << ": keep-alive\n\n";
      out.flush();
      idle_ms = 0;
    }
  }
}

}  // namespace firehub::api
