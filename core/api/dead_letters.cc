// Dead letters: listed, shown, discarded and replayed.
#include "api/router.h"
#include "firehub/v1/time_text.h"

namespace firehub::api {

bool Router::validUtf8(const std::string& text) {
  return pipeline::invalidUtf8At(text) == std::string_view::npos;
}

// Whether a dead letter's bytes may hold restricted fields: flagged when it was made, or (older
// dead letters) its connector's domain has such fields.
bool Router::restrictedBytes(const firehub::v1::DeadLetter& dl) const {
  if (dl.restricted()) return true;
  auto plugin = ctx_.connectors->find(dl.connector_id());
  return plugin && domainHasRestrictedFields(plugin->descriptor().domain);
}

Poco::JSON::Object Router::deadLetterJson(uint64_t sequence, const firehub::v1::DeadLetter& dl,
                                          size_t max_raw) const {
  Poco::JSON::Object o;
  o.set("id", sequence);
  o.set("feed_id", dl.feed_id());
  o.set("agency", dl.agency());
  o.set("connector", dl.connector_id() + "@" + dl.connector_version());
  o.set("stage", dl.stage());
  o.set("reason", dl.reason());
  o.set("source_offset", dl.source_offset());
  o.set("content_type", dl.content_type());
  o.set("at", firehub::v1::rfc3339Millis(
                  google::protobuf::util::TimeUtil::TimestampToMilliseconds(dl.at())));
  o.set("raw_bytes", static_cast<uint64_t>(dl.raw().size()));
  if (!who_.restricted && restrictedBytes(dl)) {
    o.set("raw_withheld",
          "the bytes may hold fields classified restricted; a key with the restricted grant "
          "reads them");
    return o;
  }
  // Raw bytes as text when they are UTF-8, else base64 (both cut at max_raw bytes).
  std::string raw = dl.raw().substr(0, max_raw);
  if (validUtf8(raw)) {
    o.set("raw", raw);
  } else {
    std::ostringstream b64;
    Poco::Base64Encoder enc(b64, Poco::BASE64_NO_PADDING);
    enc.rdbuf()->setLineLength(0);
    enc << raw;
    enc.close();
    o.set("raw_base64", b64.str());
  }
  if (!dl.replay_prefix().empty()) o.set("replay_prefix", dl.replay_prefix().substr(0, 4096));
  return o;
}

// Dead letters, oldest first (of one feed with ?feed=). numberMatched is given for the whole list
// (a kept count); a feed's share would take a walk of every dead letter, so ?feed= has none.
void Router::deadLetters(HTTPServerResponse& resp, const std::optional<std::string>& feed) {
  auto page = pageParams(param("limit"), param("cursor"), "dlq", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  uint64_t from = 0;
  if (!page->after.empty()) {
    auto n = numberOf(page->after);
    if (!n)
      return sendError(resp, Status::invalidArgument("cursor is not one of the dead letters"));
    from = *n + 1;
  }
  std::vector<lake::DeadLetterEntry> entries;
  Status s = ctx_.lake->listDeadLetters(from, page->limit + 1, feed.value_or(""), entries);
  if (!s.isOk()) return sendError(resp, s);
  const size_t shown = std::min(entries.size(), page->limit);
  Poco::JSON::Array arr;
  for (size_t i = 0; i < shown; ++i) {
    // A feed id may have belonged to another agency before (deleted, registered again): each
    // dead letter is shown only to those who may handle its own agency's.
    if (mayHandleDeadLetter(entries[i].letter))
      arr.add(deadLetterJson(entries[i].sequence, entries[i].letter, 4096));
  }
  Poco::JSON::Object obj;
  obj.set("dead_letters", arr);
  if (!feed) obj.set("numberMatched", static_cast<uint64_t>(ctx_.lake->deadLetterCount()));
  obj.set("numberReturned", static_cast<uint64_t>(arr.size()));
  if (entries.size() > shown) {
    obj.set("next", encodeCursor("dlq", sortableNumber(entries[shown - 1].sequence)));
  }
  send(resp, 200, toJson(obj));
}

bool Router::mayHandleDeadLetter(const firehub::v1::DeadLetter& dl) {
  return who_.canOperate() || who_.mayWriteFeed(dl.agency());
}

void Router::deadLetter(HTTPServerResponse& resp, const std::string& id, bool get) {
  auto seq = integerParam(id, "dead letter id", 1, INT64_MAX, 0);
  if (!seq.isOk()) return sendError(resp, seq.status());
  auto letter = ctx_.lake->getDeadLetter(static_cast<uint64_t>(seq.value()));
  if (!letter.isOk()) return sendError(resp, letter.status());
  if (!letter.value() || !mayHandleDeadLetter(*letter.value())) {
    // Not revealing whether another agency's dead letter exists.
    if (letter.value() && !who_.canOperate() && who_.role != auth::Role::kAgency) {
      return (void)forbid(resp,
                          "dead letters hold raw agency data: operators, or the feed's agency");
    }
    return sendError(resp, Status::notFound("no dead letter " + id));
  }
  audit_target_ = "dlq/" + id;
  if (get) return send(resp, 200, toJson(deadLetterJson(seq.value(), *letter.value(), SIZE_MAX)));
  auto removed = ctx_.lake->deleteDeadLetters({static_cast<uint64_t>(seq.value())});
  if (!removed.isOk()) return sendError(resp, removed.status());
  send(resp, 200, R"({"discarded":true})");
}

// POST /api/v1/dlq/replay {"feed": F} or {"ids": [..]}: every named (or the feed's) dead letter
// through the current connector again.
void Router::replayDeadLetters(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) {
    discardBody(req, resp);
    return sendError(resp, body.status());
  }
  Poco::JSON::Object::Ptr obj;
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(body.value().empty() ? "{}" : body.value());
    if (v.type() == typeid(Poco::JSON::Object::Ptr)) obj = v.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
  }
  if (!obj || (obj->has("feed") == obj->has("ids"))) {
    return sendError(
        resp, Status::invalidArgument(
                  R"(body must be {"feed": "<feed id>"} or {"ids": [<dead letter id>, ...]})"));
  }
  std::vector<uint64_t> ids;
  if (obj->has("feed")) {
    std::string feed = obj->getValue<std::string>("feed");
    audit_target_ = "dlq/feed/" + feed;
    std::vector<lake::DeadLetterEntry> entries;
    Status s = ctx_.lake->listDeadLetters(0, 10000, feed, entries);
    if (!s.isOk()) return sendError(resp, s);
    for (const auto& e : entries) {
      if (!mayHandleDeadLetter(e.letter)) {
        return (void)forbid(resp,
                            "feed '" + feed + "' belongs to agency '" + e.letter.agency() + "'");
      }
      ids.push_back(e.sequence);
    }
  } else {
    auto arr = obj->getArray("ids");
    if (!arr || arr->size() == 0 || arr->size() > 10000) {
      return sendError(
          resp, Status::invalidArgument("'ids' must be an array of 1..10000 dead letter ids"));
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      auto v = arr->get(i);
      if (!v.isInteger() || v.convert<int64_t>() < 1) {
        return sendError(resp, Status::invalidArgument("'ids' must hold positive integers"));
      }
      uint64_t seq = v.convert<uint64_t>();
      auto letter = ctx_.lake->getDeadLetter(seq);
      if (!letter.isOk()) return sendError(resp, letter.status());
      if (letter.value() && !mayHandleDeadLetter(*letter.value())) {
        return (void)forbid(resp, "dead letter " + std::to_string(seq) + " belongs to agency '" +
                                      letter.value()->agency() + "'");
      }
      ids.push_back(seq);
    }
    audit_target_ = "dlq/" + std::to_string(ids.front()) + (ids.size() > 1 ? "..." : "");
  }
  auto results = ctx_.pipeline->replay(ids);
  if (!results.isOk()) return sendError(resp, results.status());
  Poco::JSON::Array arr;
  size_t resolved = 0;
  for (const auto& r : results.value()) {
    Poco::JSON::Object o;
    o.set("id", r.sequence);
    if (!r.feed_id.empty()) o.set("feed_id", r.feed_id);
    o.set("resolved", r.resolved);
    if (r.resolved) {
      o.set("accepted", static_cast<uint64_t>(r.accepted));
      o.set("duplicates", static_cast<uint64_t>(r.duplicates));
      ++resolved;
    } else {
      o.set("reason", r.reason);
    }
    arr.add(o);
  }
  Poco::JSON::Object out;
  out.set("replayed", static_cast<uint64_t>(results->size()));
  out.set("resolved", static_cast<uint64_t>(resolved));
  out.set("remaining", static_cast<uint64_t>(results->size() - resolved));
  out.set("results", arr);
  send(resp, 200, toJson(out));
}

}  // namespace firehub::api
