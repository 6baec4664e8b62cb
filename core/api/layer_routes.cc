// Layer reads (cached, with ETags), the live stream of risk deltas, and issuing warnings.
#include "api/router.h"
#include "firehub/tiers.h"

namespace firehub::api {

// POST /api/v1/warnings/{draft}/issue: an operator turns a machine draft into the Actual CAP
// message (audited like every write).
void Router::issueWarning(HTTPServerResponse& resp, const std::string& draft) {
  audit_target_ = draft;
  if (!who_.canOperate()) return (void)forbid(resp, "warnings are issued by operators");
  if (!ctx_.fusion) return sendError(resp, Status::unavailable("fusion is not running"));
  auto issued = ctx_.fusion->issueWarning(draft, who_.key_id);
  if (!issued.isOk()) return sendError(resp, issued.status());
  resp.set("Location", "/api/v1/warnings/" + issued->identifier());
  send(resp, 201,
       R"({"id":)" + jsonString(issued->identifier()) + R"(,"draft":)" + jsonString(draft) +
           R"(,"status":"Actual","issued_by":)" + jsonString(who_.key_id) + "}");
}

// The active warnings (?history=1: every warning kept), in the order they were sent.
void Router::warnings(HTTPServerResponse& resp) {
  auto page = pageParams(param("limit"), param("cursor"), "warnings", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  const std::string history = param("history").value_or("0");
  if (history != "0" && history != "1" && history != "true" && history != "false")
    return sendError(resp, Status::invalidArgument("history must be 1 or 0 (true or false)"));
  reply(resp, warningList(ctx_, history == "1" || history == "true", page.value()));
}

void Router::layer(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& name,
                   const std::optional<std::string>& bbox_text,
                   const std::optional<std::string>& limit_text,
                   const std::optional<std::string>& offset_text,
                   const std::optional<std::string>& properties_text,
                   const std::optional<std::string>& cursor_text) {
  lake::BBox bbox;
  if (bbox_text) {
    auto parsed = parseBBox(*bbox_text);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    bbox = parsed.value();
  }
  auto limit = integerParam(limit_text, "limit", 1, 100000, 10000);
  if (!limit.isOk()) return sendError(resp, limit.status());
  // A cursor (from `next`) is the place in the layer's order; `offset` jumps to a place.
  auto offset = integerParam(offset_text, "offset", 0, 100000000, 0);
  if (!offset.isOk()) return sendError(resp, offset.status());
  if (cursor_text) {
    auto page = pageParams(std::nullopt, cursor_text, "layers/" + name, 1, 1);
    auto at = page.isOk() ? numberOf(page->after) : std::nullopt;
    if (!at || offset_text) {
      return sendError(
          resp, Status::invalidArgument("cursor must be the 'next' of a page of layer '" + name +
                                        "' (and comes without offset)"));
    }
    offset = static_cast<int64_t>(*at);
  }
  if (name == tiers::kParentRiskLayer) {
    uint32_t properties = kAllCellProperties;
    if (properties_text) {
      auto parsed = parseCellProperties(*properties_text);
      if (!parsed.isOk()) return sendError(resp, parsed.status());
      properties = parsed.value();
    }
    return reply(resp, parentRiskFeatures(ctx_, bbox, static_cast<size_t>(limit.value()),
                                          static_cast<size_t>(offset.value()), properties));
  }
  if (!isCellLayer(name) || !ctx_.fusion) {
    if (properties_text) {
      return sendError(resp,
                       Status::invalidArgument("properties: only the cell layers (risk, response, "
                                               "water_coverage) select properties"));
    }
    return reply(resp, layerFeatures(ctx_, name, bbox, static_cast<size_t>(limit.value()),
                                     static_cast<size_t>(offset.value()), who_.restricted));
  }
  uint32_t properties = kAllCellProperties;
  if (properties_text) {
    auto parsed = parseCellProperties(*properties_text);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    properties = parsed.value();
  }
  // The cell layers are the same for every reader: rendered once per layer version and query,
  // revalidated with ETag / If-None-Match; for clients that accept gzip (browsers) compressed
  // once and kept beside the plain bytes.
  const uint64_t version = ctx_.fusion->layerVersion();
  const bool gzip = acceptsGzip(req.get("Accept-Encoding", ""));
  const std::string etag =
      "\"" + name + "-" + std::to_string(version) + (gzip ? "-gzip" : "") + "\"";
  resp.set("Vary", "Accept-Encoding");
  resp.set("Cache-Control", "no-cache");
  if (notModified(req, resp, etag)) return;
  const std::string key = name + "|" + bbox_text.value_or("") + "|" +
                          std::to_string(limit.value()) + "|" + std::to_string(offset.value()) +
                          "|" + std::to_string(properties);
  auto body = layer_cache_.get(key, version);
  if (!body) {
    Reply r = layerFeatures(ctx_, name, bbox, static_cast<size_t>(limit.value()),
                            static_cast<size_t>(offset.value()), who_.restricted, &layer_cache_,
                            properties);
    if (r.status != 200) return reply(resp, r);
    body = std::make_shared<const std::string>(std::move(r.body));
    layer_cache_.put(key, version, body);
  }
  if (gzip) {
    auto zipped = layer_cache_.get(key + "|gzip", version);
    if (!zipped) {
      zipped = std::make_shared<const std::string>(gzipped(*body));
      layer_cache_.put(key + "|gzip", version, zipped);
    }
    body = zipped;
    resp.set("Content-Encoding", "gzip");
  }
  resp.setStatus(HTTPResponse::HTTP_OK);
  resp.setContentType("application/geo+json");
  resp.setContentLength(static_cast<std::streamsize>(body->size()));
  resp.set("ETag", etag);
  sendBody(req, resp, *body);
  ctx_.metrics->countHttp(200);
}

// Server-sent events of risk deltas. Each event's id resumes the stream (Last-Event-ID); a
// `reset` event tells the client to reload the layer.
void Router::riskStream(HTTPServerRequest& req, HTTPServerResponse& resp) {
  if (!ctx_.fusion) return sendError(resp, Status::unavailable("fusion is not running"));
  // Over plain HTTP the stream leaves this thread: after the head its socket goes to the stream
  // hub, which writes every client's events from one thread.
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
  if (streams_ && impl) {
    if (streams_->clients() >= kMaxHubStreams) {
      return sendError(
          resp, Status::unavailable("too many stream clients (" + std::to_string(kMaxHubStreams) +
                                    "); try again later"));
    }
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 2000\n: firehub risk deltas\n\n";
    try {
      impl->socket().sendBytes(head.data(), static_cast<int>(head.size()));
    } catch (const Poco::Exception&) {
      return;  // the client went away
    }
    const int fd = ::dup(impl->socket().impl()->sockfd());
    if (fd < 0) return;
    streams_->add(fd, req.get("Last-Event-ID", ""), who_.anonymous ? "" : who_.key_id);
    markConnectionTaken();
    ctx_.metrics->countHttp(200);
    return;
  }
  const size_t kMaxClients = maxStreams();
  if (stream_.clients() >= kMaxClients) {
    return sendError(resp, Status::unavailable("too many stream clients (" +
                                               std::to_string(kMaxClients) + "); try again later"));
  }
  stream_.addClient();
  struct Leave {
    DeltaStream& s;
    ~Leave() { s.removeClient(); }
  } leave{stream_};
  resp.setStatus(HTTPResponse::HTTP_OK);
  resp.setContentType("text/event-stream");
  resp.set("Cache-Control", "no-store");
  resp.set("X-Accel-Buffering", "no");
  resp.setChunkedTransferEncoding(true);
  ctx_.metrics->countHttp(200);
  std::ostream& out = resp.send();
  std::string last = req.get("Last-Event-ID", "");
  out << "retry: 2000\n";
  out << ": firehub risk deltas\n\n";
  out.flush();
  std::string events;
  bool reset = false;
  int idle_ms = 0;
  while (out.good()) {
    if (!stillAuthorised()) break;                        // the reader's key was revoked
    if (!stream_.next(last, events, reset, 1000)) break;  // hub stopping
    if (reset) {
      out << "id: " << last << "\nevent: reset\ndata: {\"reload\":\"/api/v1/layers/risk\"}\n\n";
    } else if (!events.empty()) {
      out << events;
      idle_ms = 0;
    } else if ((idle_ms += 1000) >= 15000) {
      out << ": keep-alive\n\n";
      idle_ms = 0;
    } else {
      continue;
    }
    out.flush();
  }
}

}  // namespace firehub::api
