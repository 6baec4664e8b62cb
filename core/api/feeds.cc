// Feeds: register, list, show, pause, resume, delete, the catalogue, and pushes.
#include "api/router.h"

namespace firehub::api {

Poco::JSON::Object Router::feedJson(registry::Feed& feed) {
  Poco::JSON::Object o = registry::feedSpecObject(feed.spec(), /*secrets=*/false);
  if (!who_.mayWriteFeed(feed.spec().agency)) o.remove("config");  // may hold credentials
  o.set("created_at", isoMillis(feed.spec().created_at * 1000));
  std::string stopped = feed.stoppedReason();
  std::string fault = feed.fault();
  int64_t since = feed.decodingSince().load();
  if (since > 0) {
    int64_t busy_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count() -
                      since;
    if (busy_ms > ctx_.pipeline->options().busy_timeout_ms) {
      fault = "connector blocked: decoding one body for " + std::to_string(busy_ms / 1000) + " s";
    }
  }
  o.set("state", !feed.connector()  ? "inactive"
                 : !fault.empty()   ? "failed"
                 : !stopped.empty() ? "stopped"
                 : feed.paused()    ? "paused"
                                    : "active");
  if (!fault.empty()) o.set("fault", fault);
  o.set("paused", feed.paused());
  if (stopped.empty()) {
    o.remove("stopped");
  } else {
    o.set("stopped", stopped);
  }
  o.set("stale", feed.stale(nowSeconds()));
  if (!feed.reason().empty()) o.set("reason", feed.reason());
  auto& c = feed.counters();
  Poco::JSON::Object counts;
  counts.set("accepted", static_cast<uint64_t>(c.accepted.load()));
  counts.set("rejected", static_cast<uint64_t>(c.rejected.load()));
  counts.set("duplicates", static_cast<uint64_t>(c.duplicates.load()));
  o.set("counts", counts);
  int64_t last = c.last_record_at.load();
  if (last > 0) o.set("last_record_at", isoMillis(last * 1000));
  std::string err = feed.lastError();
  if (!err.empty()) o.set("last_error", err);
  if (ctx_.listen_port) {
    if (auto port = ctx_.listen_port(feed.spec().id)) o.set("listen_port", static_cast<int>(*port));
  }
  if (!feed.spec().kafka.topics.empty()) {
    Poco::JSON::Object k;
    auto st = ctx_.kafka_source ? ctx_.kafka_source(feed.spec().id) : std::nullopt;
    k.set("running", st && st->running);
    k.set("error", !st ? std::string("Kafka source feeds run on single hubs, not in cluster mode")
                       : st->error);
    k.set("messages", st ? st->messages : uint64_t{0});
    k.set("dead_lettered", st ? st->dead_lettered : uint64_t{0});
    Poco::JSON::Array parts;
    for (const auto& p : st ? st->partitions : std::vector<transport::KafkaPartitionState>{}) {
      Poco::JSON::Object po;
      po.set("topic", p.topic);
      po.set("partition", p.partition);
      po.set("next_offset", p.next);
      po.set("high_watermark", p.high);
      po.set("lag", p.lag());
      parts.add(po);
    }
    k.set("partitions", parts);
    o.set("kafka_state", k);
  }
  const std::string single = "source feeds run on single hubs, not in cluster mode";
  if (!feed.spec().poll.url.empty()) {
    auto st = ctx_.poll_source ? ctx_.poll_source(feed.spec().id) : std::nullopt;
    Poco::JSON::Object p;
    p.set("running", st && st->running);
    p.set("error", st ? st->error : single);
    if (st) {
      p.set("failures", st->failures);
      if (st->last_status) p.set("last_status", st->last_status);
      if (st->last_poll_at) p.set("last_poll_at", isoMillis(st->last_poll_at));
      if (st->last_success_at) p.set("last_success_at", isoMillis(st->last_success_at));
      if (st->next_poll_at) p.set("next_poll_at", isoMillis(st->next_poll_at));
      p.set("pages", st->pages);
      p.set("not_modified", st->not_modified);
      p.set("dead_lettered", st->dead_lettered);
      p.set("next", st->next);
    }
    o.set("poll_state", p);
  }
  if (!feed.spec().mqtt.topics.empty()) {
    auto st = ctx_.mqtt_source ? ctx_.mqtt_source(feed.spec().id) : std::nullopt;
    Poco::JSON::Object m;
    m.set("running", st && st->running);
    m.set("connected", st && st->connected);
    m.set("error", st ? st->error : single);
    if (st) {
      m.set("messages", st->messages);
      m.set("dead_lettered", st->dead_lettered);
      if (st->last_message_at) m.set("last_message_at", isoMillis(st->last_message_at));
      if (st->connected_at) m.set("connected_at", isoMillis(st->connected_at));
    }
    o.set("mqtt_state", m);
  }
  return o;
}

void Router::createFeed(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) {
    discardBody(req, resp);
    return sendError(resp, body.status());
  }
  auto spec = registry::parseFeedSpec(body.value());
  if (!spec.isOk()) return sendError(resp, spec.status());
  audit_target_ = spec->id;
  if (!who_.mayWriteFeed(spec->agency)) {
    return (void)forbid(resp, "may not register feeds for agency '" + spec->agency + "'");
  }
  if (auto plugin = ctx_.connectors->find(spec->connector);
      plugin && !who_.mayWriteDomain(plugin->descriptor().domain)) {
    return (void)forbid(resp, "may not write domain '" + std::string(plugin->descriptor().domain) +
                                  "' (connector " + spec->connector +
                                  "); an admin adds domains to the key "
                                  "(PATCH /api/v1/keys/" +
                                  who_.key_id + " {\"domains\": [...]})");
  }
  // Server-side resources are the operators' to choose: a listen address or a drop folder.
  if (!who_.canOperate() && (!spec->file_drop.dir.empty() || configHasListen(spec->config_json))) {
    return (void)forbid(resp, "file drops and listen addresses are set by operators");
  }
  if (!who_.canOperate() && !spec->mqtt.ca_file.empty()) {
    return (void)forbid(resp, "mqtt.ca_file is a file on the hub: set by operators");
  }
  // A source the hub connects to: refused now when the outbound policy forbids its address.
  if (!spec->poll.url.empty()) {
    if (Status s = ctx_.outbound.checkUrl(spec->poll.url); !s.isOk())
      return sendError(resp, Status(s.code(), "poll.url: " + s.message()));
  }
  if (!spec->mqtt.topics.empty()) {
    auto address = ctx_.outbound.resolve(spec->mqtt.host, static_cast<uint16_t>(spec->mqtt.port));
    if (!address.isOk() && address.status().code() == StatusCode::kPermissionDenied)
      return sendError(resp,
                       Status(address.status().code(), "mqtt.host: " + address.status().message()));
  }
  if (auto existing = ctx_.feeds->get(spec->id);
      existing && !who_.mayWriteFeed(existing->spec().agency)) {
    return (void)forbid(
        resp, "feed '" + spec->id + "' belongs to agency '" + existing->spec().agency + "'");
  }
  bool existed = ctx_.feeds->get(spec->id) != nullptr;
  auto feed = ctx_.feeds->create(spec.value());
  if (!feed.isOk()) return sendError(resp, feed.status());
  resp.set("Location", "/api/v1/feeds/" + spec->id);
  send(resp, existed ? 200 : 201, toJson(feedJson(*feed.value())));
}

int64_t Router::nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Router::manageFeed(HTTPServerResponse& resp, const std::string& id,
                        const std::string& action) {
  auto feed = ctx_.feeds->get(id);
  if (!feed) return sendError(resp, Status::notFound("no feed '" + id + "'"));
  if (!who_.mayWriteFeed(feed->spec().agency)) {
    return (void)forbid(resp, "feed '" + id + "' belongs to agency '" + feed->spec().agency + "'");
  }
  Status s =
      action == "delete" ? ctx_.feeds->remove(id) : ctx_.feeds->setPaused(id, action == "pause");
  if (!s.isOk()) return sendError(resp, s);
  if (action == "delete") {
    return send(resp, 200, R"({"deleted":)" + jsonString(id) + R"(,"records":"kept in the lake"})");
  }
  send(resp, 200, toJson(feedJson(*feed)));
}

// The shared directory: every topic and layer with its owner, schema, classification,
// cadence, last update and record count.
// Long: one catalogue entry per topic and layer, written field by field in the order clients read
// them.
void Router::catalog(HTTPServerResponse& resp) {
  Poco::JSON::Array topics;
  std::map<std::string, std::vector<std::shared_ptr<registry::Feed>>> by_domain;
  for (const auto& f : ctx_.feeds->list()) {
    if (!f->connector()) continue;
    by_domain[f->connector()->plugin().descriptor().domain].push_back(f);
  }
  for (const auto& [domain, feeds] : by_domain) {
    const auto* plugin = &feeds.front()->connector()->plugin().descriptor();
    // The domain's body types, from the schema's (domain) option, and whether any of them has
    // fields classified restricted (then the domain also has a redacted .public topic).
    bool restricted = false;
    Poco::JSON::Array schemas;
    const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
    for (int i = 0; body && i < body->field_count(); ++i) {
      const auto* type = body->field(i)->message_type();
      if (!type || type->options().GetExtension(firehub::v1::domain) != domain) continue;
      schemas.add(type->full_name());
      restricted |= hasRestrictedFields(type);
    }
    for (bool open_view : {false, true}) {
      if (open_view && !restricted) continue;
      Poco::JSON::Object t;
      std::string topic = "firehub.v1." + domain + (open_view ? ".public" : "");
      t.set("topic", topic);
      t.set("kind", "topic");
      t.set("domain", domain);
      t.set("schema", "firehub.v1.Record");
      t.set("bodies", schemas);
      t.set("schema_version", "v1");
      t.set("classification",
            restricted && !open_view ? "contains restricted fields" : "public view");
      Poco::JSON::Array owners;
      uint64_t records = 0;
      int64_t last = 0, cadence = 0;
      std::set<std::string> agencies;
      for (const auto& f : feeds) {
        agencies.insert(f->spec().agency);
        records += f->counters().accepted.load();
        last = std::max<int64_t>(last, f->counters().last_record_at.load());
        if (f->spec().cadence_s > 0 && (cadence == 0 || f->spec().cadence_s < cadence))
          cadence = f->spec().cadence_s;
      }
      for (const auto& a : agencies) owners.add(a);
      t.set("owners", owners);
      Poco::JSON::Array feed_ids;
      for (const auto& f : feeds) feed_ids.add(f->spec().id);
      t.set("feeds", feed_ids);
      t.set("record_count", records);
      if (cadence > 0) t.set("cadence_s", cadence);
      if (last > 0) {
        google::protobuf::Timestamp ts;
        ts.set_seconds(last);
        t.set("last_update", google::protobuf::util::TimeUtil::ToString(ts));
      }
      t.set("connector", plugin->id);
      topics.add(t);
    }
  }
  Poco::JSON::Array layers;
  for (const auto& name : layerNames()) {
    Poco::JSON::Object l;
    l.set("layer", name);
    l.set("kind", "layer");
    l.set("owner", "fire-service (firehub fusion)");
    l.set("href", "/api/v1/layers/" + name);
    l.set("ogc", "/ogc/collections/" + name);
    if (name == "risk") {
      l.set("topic", fusion::kRiskTopic);
      l.set("schema", "firehub.v1.RiskCell");
      if (ctx_.fusion) l.set("record_count", static_cast<uint64_t>(ctx_.fusion->riskCellCount()));
    }
    l.set("classification", "public view");
    layers.add(l);
  }
  Poco::JSON::Object warnings;
  warnings.set("topic", fusion::kWarningsTopic);
  warnings.set("kind", "topic");
  warnings.set("schema", "urn:oasis:names:tc:emergency:cap:1.2");
  warnings.set("owner", "fire-service (firehub fusion)");
  warnings.set("classification", "public view");
  topics.add(warnings);
  Poco::JSON::Object o;
  o.set("topics", topics);
  o.set("layers", layers);
  send(resp, 200, toJson(o));
}

void Router::listFeeds(HTTPServerResponse& resp) {
  auto page = pageParams(param("limit"), param("cursor"), "feeds", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& f : ctx_.feeds->list()) items.emplace_back(f->spec().id, toJson(feedJson(*f)));
  std::sort(items.begin(), items.end());
  send(resp, 200, pageOfList("feeds", items, page.value()));
}

// Long: the merge, then every check a new registration gets, in the order createFeed makes them.
void Router::patchFeed(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id) {
  auto body = readBody(req);
  if (!body.isOk()) {
    discardBody(req, resp);
    return sendError(resp, body.status());
  }
  audit_target_ = id;
  auto feed = ctx_.feeds->get(id);
  if (!feed) return sendError(resp, Status::notFound("no feed '" + id + "'"));
  if (!who_.mayWriteFeed(feed->spec().agency)) {
    return (void)forbid(resp, "feed '" + id + "' belongs to agency '" + feed->spec().agency + "'");
  }
  Poco::JSON::Object::Ptr patch;
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(body.value());
    if (v.type() == typeid(Poco::JSON::Object::Ptr)) patch = v.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
  }
  if (!patch) {
    return sendError(resp, Status::invalidArgument(
                               "body must be a JSON object: the fields of the feed to change "
                               "(a JSON merge patch; null removes a field)"));
  }
  Poco::JSON::Object merged = registry::feedSpecObject(feed->spec());
  for (const auto& name : patch->getNames()) {
    if ((name == "id" || name == "agency") &&
        patch->get(name).toString() != merged.get(name).toString()) {
      return sendError(resp, Status::invalidArgument("field '" + name +
                                                     "' of a feed does not change (register a "
                                                     "new feed instead)"));
    }
    if (name == "created_at") continue;
    const auto& value = patch->get(name);
    if (value.isEmpty()) {
      merged.remove(name);
    } else if (name == "config" || name == "errors" || name == "file_drop") {
      // One level of merge for the nested objects, as RFC 7396 does.
      auto sub = patch->getObject(name);
      auto base = merged.getObject(name);
      if (!sub || !base) {
        merged.set(name, value);
      } else {
        for (const auto& k : sub->getNames()) {
          if (sub->get(k).isEmpty())
            base->remove(k);
          else
            base->set(k, sub->get(k));
        }
      }
    } else {
      merged.set(name, value);
    }
  }
  auto spec = registry::parseFeedSpec(toJson(merged));
  if (!spec.isOk()) return sendError(resp, spec.status());
  if (auto plugin = ctx_.connectors->find(spec->connector);
      plugin && !who_.mayWriteDomain(plugin->descriptor().domain)) {
    return (void)forbid(resp, "may not write domain '" + std::string(plugin->descriptor().domain) +
                                  "' (connector " + spec->connector + ")");
  }
  if (!who_.canOperate() &&
      (spec->file_drop != feed->spec().file_drop ||
       (configHasListen(spec->config_json) && spec->config_json != feed->spec().config_json))) {
    return (void)forbid(resp, "file drops and listen addresses are set by operators");
  }
  auto changed = ctx_.feeds->create(spec.value(), /*replace=*/true);
  if (!changed.isOk()) return sendError(resp, changed.status());
  if (changed.value()->paused() != spec->paused) {
    Status st = ctx_.feeds->setPaused(id, spec->paused);
    if (!st.isOk()) return sendError(resp, st);
  }
  send(resp, 200, toJson(feedJson(*changed.value())));
}

void Router::showFeed(HTTPServerResponse& resp, const std::string& id) {
  auto feed = ctx_.feeds->get(id);
  if (!feed) return sendError(resp, Status::notFound("no feed '" + id + "'"));
  send(resp, 200, toJson(feedJson(*feed)));
}

std::optional<std::string> Router::sharedBody(HTTPServerRequest& req, HTTPServerResponse& resp,
                                              const std::string& feed, const std::string& agency,
                                              PushShares::Held& held) {
  if (std::string busy = push_shares_.take(feed, agency); !busy.empty()) {
    discardBody(req, resp);
    resp.set("Retry-After", "1");
    sendError(resp, Status::unavailable(busy + "; retry shortly"));
    return std::nullopt;
  }
  held.shares = &push_shares_;
  held.feed = feed;
  held.agency = agency;
  auto body = readBody(req);
  if (!body.isOk()) {
    discardBody(req, resp);
    sendError(resp, body.status());
    return std::nullopt;
  }
  return std::move(body).value();
}

void Router::push(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id) {
  auto target = ctx_.feeds->get(id);
  if (!target) {
    discardBody(req, resp);
    return sendError(resp, Status::notFound("no feed '" + id + "'"));
  }
  if (!who_.mayWriteFeed(target->spec().agency)) {
    discardBody(req, resp);
    return (void)forbid(resp,
                        "feed '" + id + "' belongs to agency '" + target->spec().agency + "'");
  }
  if (auto* c = target->connector(); c && !who_.mayWriteDomain(c->plugin().descriptor().domain)) {
    discardBody(req, resp);
    return (void)forbid(
        resp, "may not write domain '" + std::string(c->plugin().descriptor().domain) + "'");
  }
  std::string type = pipeline::mediaType(req.getContentType());
  static const std::set<std::string> kAccepted = {"text/csv",
                                                  "application/json",
                                                  "application/x-ndjson",
                                                  "application/geo+json",
                                                  "application/fhir+json",
                                                  "application/xml",
                                                  "text/xml",
                                                  "application/cap+xml",
                                                  "application/atom+xml",
                                                  pipeline::kXlsxType};
  if (!kAccepted.count(type)) {
    discardBody(req, resp);
    return sendError(resp, Status(StatusCode::kUnsupportedMedia,
                                  "Content-Type '" + req.getContentType() +
                                      "' is not accepted; use text/csv, application/json, "
                                      "application/x-ndjson, an XML type (CAP) or a "
                                      "spreadsheet (.xlsx, " +
                                      pipeline::kXlsxType + ")"));
  }
  PushShares::Held held;
  auto body = sharedBody(req, resp, id, target->spec().agency, held);
  if (!body) return;
  pipeline::IngestRequest in;
  in.feed_id = id;
  in.body = *body;
  in.content_type = type;
  in.charset = pipeline::charsetOf(req.getContentType());
  auto summary = ctx_.pipeline->ingest(in);
  if (!summary.isOk()) return sendError(resp, summary.status());
  // ingest.ack = replicated: the 202 waits for Kafka's confirmation of what this push stored
  // (and of everything stored before it).
  if (ctx_.ack_replicated && summary->accepted > 0 && !awaitReplicated(ctx_.lake->lastSequence())) {
    resp.set("Retry-After", "1");
    return sendError(resp, Status::unavailable(
                               "stored on this hub but not confirmed by Kafka within " +
                               std::to_string(ctx_.ack_timeout_ms) +
                               " ms (ingest.ack = replicated): it still goes out; a retry of the "
                               "same body counts its records as duplicates"));
  }
  Poco::JSON::Object obj;
  obj.set("accepted", static_cast<uint64_t>(summary->accepted));
  obj.set("rejected", static_cast<uint64_t>(summary->rejected));
  obj.set("duplicates", static_cast<uint64_t>(summary->duplicates));
  obj.set("skipped", static_cast<uint64_t>(summary->skipped));
  if (!summary->skipped_kinds.empty()) {
    Poco::JSON::Object kinds;
    for (const auto& [kind, seen] : summary->skipped_kinds) {
      Poco::JSON::Object k;
      k.set("count", static_cast<uint64_t>(seen.first));
      k.set("reason", seen.second);
      kinds.set(kind, k);
    }
    obj.set("skipped_kinds", kinds);
  }
  if (!summary->unplaced.empty()) {
    Poco::JSON::Array unplaced;
    for (const auto& [at, why] : summary->unplaced) {
      Poco::JSON::Object u;
      u.set("at", at);
      u.set("reason", why);
      unplaced.add(u);
    }
    obj.set("unplaced", unplaced);
  }
  if (!summary->errors.empty()) {
    Poco::JSON::Array errors;
    for (const auto& e : summary->errors) errors.add(e);
    obj.set("errors", errors);
  }
  send(resp, 202, toJson(obj));
}

}  // namespace firehub::api
