// Authentication and the HTTP plumbing of every request (bodies read whole or refused, answers,
// errors, probes); the route table is routes.cc.
#include "api/router.h"

namespace firehub::api {

std::string jsonString(const std::string& s) {
  std::ostringstream os;
  Poco::JSON::Stringifier::formatString(s, os);
  return os.str();
}

// Whether a feed's connector config names a listen address (a TCP listener of the hub's).
bool configHasListen(const std::string& config_json) {
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(config_json);
    return v.type() == typeid(Poco::JSON::Object::Ptr) &&
           v.extract<Poco::JSON::Object::Ptr>()->has("listen");
  } catch (const Poco::Exception&) {
    return false;
  }
}

std::string toJson(const Poco::JSON::Object& obj) {
  std::ostringstream os;
  obj.stringify(os);
  return os.str();
}

// The request target's path segments, each percent-decoded exactly once: an encoded '/' stays
// inside its segment (record ids may hold one) and "%252f" stays "%2f". Poco::URI decodes the
// whole path when it parses a URI, so the segments are taken from the raw target instead.
Result<std::vector<std::string>> pathSegments(const std::string& target) {
  std::string_view raw = target;
  if (auto scheme = raw.find("://"); scheme != std::string_view::npos && scheme < raw.find('/')) {
    raw.remove_prefix(scheme + 3);  // absolute-form: drop the authority
    auto slash = raw.find('/');
    raw = slash == std::string_view::npos ? std::string_view() : raw.substr(slash);
  }
  raw = raw.substr(0, raw.find_first_of("?#"));
  std::vector<std::string> parts;
  size_t at = 0;
  while (at <= raw.size()) {
    size_t end = raw.find('/', at);
    if (end == std::string_view::npos) end = raw.size();
    if (end > at) {
      std::string decoded;
      try {
        Poco::URI::decode(std::string(raw.substr(at, end - at)), decoded);
      } catch (const Poco::Exception&) {
        return Status::invalidArgument("the path has a broken percent-encoding");
      }
      parts.push_back(std::move(decoded));
    }
    at = end + 1;
  }
  return parts;
}

// Text from a request as it goes into the audit log: at most `max` bytes.
std::string bounded(const std::string& text, size_t max) {
  return text.size() <= max
             ? text
             : text.substr(0, max) + "...(" + std::to_string(text.size()) + " bytes)";
}

void Router::handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) {
  const std::string& method = req.getMethod();
  bool write = method != "GET" && method != "HEAD";
  try {
    const std::string path = req.getURI().substr(0, req.getURI().find('?'));
    if (!write && (path == "/healthz" || path == "/readyz")) {
      // Probes answer without a key (load balancers, systemd, orchestrators); the readiness
      // details only to a reader on this machine or a key.
      if (path == "/healthz") return send(resp, 200, R"({"status":"ok"})");
      const bool detailed =
          localReader(req) || (req.has("Authorization") && authenticate(req, resp));
      if (!resp.sent()) ready(resp, detailed);
      return;
    }
    // The one-map's own files hold no data: a browser that must sign in first gets them (and its
    // sign-in page) without a key. Everything else needs one.
    const auto first = path.substr(0, path.find('/', 1));
    if (!write && first != "/api" && first != "/ogc" && first != "/tiles" && first != "/metrics") {
      auto segments = pathSegments(req.getURI());
      if (!segments.isOk()) return sendError(resp, segments.status());
      return staticFile(resp, segments.value());
    }
    if (path == "/api/v1/session" && method == "POST") {
      signIn(req, resp);  // before any key: it is how a browser gets one
    } else if (authenticate(req, resp)) {
      route(req, resp);
    }
  } catch (const Poco::IOException& e) {
    // A client that hangs up while its response is written (a browser moving on, a load tool
    // stopping) is not the hub's fault: a note, not an error.
    if (resp.sent()) {
      FIREHUB_LOG(kInfo, "api",
                  req.getMethod() << " " << req.getURI()
                                  << ": the client left before the whole response was sent ("
                                  << e.displayText() << ")");
    } else {
      FIREHUB_LOG(kError, "api", req.getMethod() << " " << req.getURI() << ": " << e.displayText());
      try {
        sendError(resp, Status::internal(e.displayText()));
      } catch (const Poco::Exception&) {  // the connection is gone
      }
    }
  } catch (const std::exception& e) {
    FIREHUB_LOG(kError, "api", req.getMethod() << " " << req.getURI() << ": " << e.what());
    if (!resp.sent()) sendError(resp, Status::internal(e.what()));
  }
  if (write && ctx_.audit) {  // every write, allowed or not, goes to the audit log
    const std::string path = req.getURI().substr(0, req.getURI().find('?'));
    uint64_t suppressed = 0;
    const bool unauthenticated = who_.anonymous || who_.key_id.empty();
    if (!unauthenticated || audit_gate_.admit(suppressed)) {
      if (suppressed > 0) {
        (void)ctx_.audit->append(
            "anonymous", "viewer", "(rate limit)",
            std::to_string(suppressed) + " unauthenticated writes not recorded one by one", 429);
      }
      Status s =
          ctx_.audit->append(unauthenticated ? "anonymous" : who_.key_id, auth::roleName(who_.role),
                             bounded(method, 16) + " " + bounded(path, 256),
                             bounded(audit_target_, 128), static_cast<int>(resp.getStatus()));
      if (!s.isOk()) FIREHUB_LOG(kError, "api", "audit append failed: " << s.toString());
    }
  }
}

// Sets who_ from the bearer key, or from the anonymous loopback rule. Answers 401 and returns
// false when the request may not go on.
bool Router::authenticate(HTTPServerRequest& req, HTTPServerResponse& resp) {
  if (!ctx_.keys) {  // authentication off
    who_.role = auth::Role::kAdmin;
    who_.restricted = true;
    who_.key_id = "auth-off";
    return true;
  }
  std::string header = req.get("Authorization", "");
  if (!header.empty()) {
    if (header.compare(0, 7, "Bearer ") != 0) {
      return unauthorized(resp, "Authorization must be 'Bearer <API key>'");
    }
    auto principal = ctx_.keys->authenticate(header.substr(7));
    if (!principal.isOk()) return unauthorized(resp, principal.status().message());
    who_ = principal.value();
    return true;
  }
  const std::string& method = req.getMethod();
  bool read = method == "GET" || method == "HEAD";
  // The one-map's sign-in session: its cookie, and for a write also its CSRF token (a page of
  // another site can make the browser send the cookie, never this header). A stale cookie counts
  // as none.
  if (const std::string cookie = sessionCookie(req); !cookie.empty()) {
    auto principal = ctx_.keys->authenticate(cookie);
    if (principal.isOk()) {
      if (!read && req.get("X-CSRF-Token", "") != csrfOf(cookie)) {
        who_ = principal.value();
        return forbid(resp,
                      "a write with the sign-in cookie needs its X-CSRF-Token header "
                      "(GET /api/v1/session gives it)");
      }
      who_ = principal.value();
      return true;
    }
  }
  if (read && !ctx_.anonymous_loopback.empty() && localReader(req)) {
    auto role = auth::parseRole(ctx_.anonymous_loopback);
    who_.role = role.isOk() ? role.value() : auth::Role::kViewer;
    who_.anonymous = true;
    who_.restricted = false;  // anonymous readers never see restricted fields
    return true;
  }
  who_.anonymous = true;
  return unauthorized(resp, read ? "this request needs an API key (Authorization: Bearer <key>)"
                                 : "writes need an API key (Authorization: Bearer <key>)");
}

// For long answers (streams): whether the key that opened the request is still valid.
bool Router::stillAuthorised() const {
  if (!ctx_.keys || who_.anonymous || who_.key_id.empty()) return true;
  return ctx_.keys->principal(who_.key_id).isOk();
}

// Whether the request comes from a reader on this machine: the client (the peer, or the address
// a trusted proxy forwards for) is a loopback address, nothing else forwarded it, and it asked
// for this machine by a loopback name (a page of another site whose name resolves to 127.0.0.1
// does not count: DNS rebinding).
bool Router::localReader(const HTTPServerRequest& req) const {
  Poco::Net::IPAddress client = req.clientAddress().host();
  const bool forwarded = req.has("X-Forwarded-For") || req.has("Forwarded") || req.has("X-Real-IP");
  bool trusted_proxy = false;
  for (const auto& n : options_.trusted_proxies) trusted_proxy |= n.contains(client);
  if (trusted_proxy) {
    std::string chain = req.get("X-Forwarded-For", "");
    std::string last =
        chain.substr(chain.rfind(',') == std::string::npos ? 0 : chain.rfind(',') + 1);
    Poco::trimInPlace(last);
    Poco::Net::IPAddress forwarded_for;
    if (last.empty() || !Poco::Net::IPAddress::tryParse(last, forwarded_for)) return false;
    client = forwarded_for;
  } else if (forwarded) {
    return false;
  }
  if (!client.isLoopback()) return false;
  std::string host = req.getHost();
  if (!host.empty() && host[0] == '[') {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  Poco::Net::IPAddress named;
  return host == "localhost" || (Poco::Net::IPAddress::tryParse(host, named) && named.isLoopback());
}

bool Router::unauthorized(HTTPServerResponse& resp, const std::string& why) {
  resp.set("WWW-Authenticate", "Bearer realm=\"firehub\"");
  sendError(resp, Status(StatusCode::kUnauthenticated, why));
  return false;
}

bool Router::forbid(HTTPServerResponse& resp, const std::string& why) {
  sendError(resp, Status(StatusCode::kPermissionDenied, who_.describe() + ": " + why));
  return false;
}

bool Router::notModified(HTTPServerRequest& req, HTTPServerResponse& resp,
                         const std::string& etag) {
  if (req.get("If-None-Match", "") != etag) return false;
  resp.setStatus(HTTPResponse::HTTP_NOT_MODIFIED);
  resp.set("ETag", etag);
  resp.setContentLength(0);
  resp.send();
  ctx_.metrics->countHttp(304);
  return true;
}

void Router::send(HTTPServerResponse& resp, int status, const std::string& body,
                  const std::string& type) {
  resp.setStatus(static_cast<HTTPResponse::HTTPStatus>(status));
  resp.setContentType(type);
  resp.setContentLength(static_cast<std::streamsize>(body.size()));
  resp.set("Cache-Control", "no-store");
  if (truncated_ || !resp_keep_alive_) resp.setKeepAlive(false);
  if (tls()) resp.set("Strict-Transport-Security", "max-age=31536000");
  resp.send() << body;
  ctx_.metrics->countHttp(status);
}

// Sends `body` after the status and headers set on `resp`. Poco's response streams pass the
// body through a 4 KiB buffer, one send() each; a large body (a layer view is megabytes) goes
// to the socket in as few calls as the kernel takes, once the headers are flushed.
void Router::sendBody(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& body) {
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
  if (!impl || body.size() < (64u << 10) || req.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD) {
    resp.sendBuffer(body.data(), body.size());
    return;
  }
  resp.setContentLength64(static_cast<Poco::Int64>(body.size()));
  std::ostream& out = resp.send();
  out.flush();  // the status line and headers
  if (!out) throw Poco::Net::NetException("connection lost while sending the headers");
  Poco::Net::StreamSocket& socket = impl->socket();
  const char* at = body.data();
  size_t left = body.size();
  while (left > 0) {
    int sent = socket.sendBytes(at, static_cast<int>(std::min<size_t>(left, 1u << 30)));
    if (sent <= 0) throw Poco::Net::NetException("connection closed while sending the body");
    at += sent;
    left -= static_cast<size_t>(sent);
  }
}

void Router::sendError(HTTPServerResponse& resp, const Status& s) {
  send(resp, httpStatus(s),
       R"({"error":)" + jsonString(statusCodeName(s.code())) + R"(,"detail":)" +
           jsonString(s.message()) + "}");
}

// Reads and drops what is left of a refused body (up to a bound), so the client can read the
// error instead of seeing its upload reset. Past the bound the connection is closed.
void Router::discardBody(HTTPServerRequest& req, HTTPServerResponse& resp) {
  constexpr size_t kDrainLimit = 64u << 20;
  auto& in = req.stream();
  char buf[65536];
  size_t drained = 0;
  while (in && drained < kDrainLimit) {
    in.read(buf, sizeof buf);
    drained += static_cast<size_t>(in.gcount());
  }
  if (in) resp.setKeepAlive(false);
}

// Reads the whole body within the size limit. A body that ends before its Content-Length, or
// a chunked body that ends before its last (zero) chunk, is refused: a client that hung up
// half way must not have half its data stored and acknowledged.
Result<std::string> Router::readBody(HTTPServerRequest& req) {
  if (req.hasContentLength() &&
      req.getContentLength64() > static_cast<int64_t>(options_.max_body_bytes)) {
    return Status(StatusCode::kPayloadTooLarge,
                  "body of " + std::to_string(req.getContentLength64()) +
                      " bytes exceeds the limit of " + std::to_string(options_.max_body_bytes) +
                      " (http.max_body_bytes); split it into smaller pushes");
  }
  if (req.getChunkedTransferEncoding()) return readChunkedBody(req);
  std::string body;
  auto& in = req.stream();
  char buf[65536];
  while (in) {
    in.read(buf, sizeof buf);
    body.append(buf, static_cast<size_t>(in.gcount()));
    if (body.size() > options_.max_body_bytes) {
      return Status(StatusCode::kPayloadTooLarge, "body exceeds the limit of " +
                                                      std::to_string(options_.max_body_bytes) +
                                                      " bytes (http.max_body_bytes)");
    }
  }
  if (req.hasContentLength() && static_cast<int64_t>(body.size()) != req.getContentLength64()) {
    truncated_ = true;
    return Status::invalidArgument("the body ended after " + std::to_string(body.size()) +
                                   " of the " + std::to_string(req.getContentLength64()) +
                                   " bytes its Content-Length announced; nothing was stored");
  }
  return body;
}

// A chunked body, decoded here rather than by Poco's chunked stream, which reads a connection
// closed in the middle of a chunk (or before the last chunk) as a clean end. The connection
// is closed after the answer: bytes read past the body are not handed back to Poco.
Result<std::string> Router::readChunkedBody(HTTPServerRequest& req) {
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
  if (!impl) return Status::invalidArgument("chunked bodies are not supported here");
  resp_keep_alive_ = false;
  Poco::Buffer<char> pending(0);
  impl->session().drainBuffer(pending);
  std::string in(pending.begin(), pending.size());
  size_t at = 0;
  Poco::Net::StreamSocket& socket = impl->socket();
  auto more = [&]() -> bool {  // reads what the client sends next; false at its end
    char buf[65536];
    int n = 0;
    try {
      n = socket.receiveBytes(buf, sizeof buf);
    } catch (const Poco::Exception&) {
      return false;
    }
    if (n <= 0) return false;
    in.erase(0, at);
    at = 0;
    in.append(buf, static_cast<size_t>(n));
    return true;
  };
  auto line = [&](std::string& out) -> bool {
    for (;;) {
      auto nl = in.find('\n', at);
      if (nl != std::string::npos) {
        out.assign(in, at, nl - at);
        if (!out.empty() && out.back() == '\r') out.pop_back();
        at = nl + 1;
        return true;
      }
      if (in.size() - at > 4096 || !more()) return false;
    }
  };
  auto fail = [this] {
    truncated_ = true;
    return Status::invalidArgument(
        "the chunked body ended before its last chunk (or a chunk is malformed); nothing was "
        "stored");
  };
  std::string body, size_line;
  for (;;) {
    if (!line(size_line)) return fail();
    std::string hex = size_line.substr(0, size_line.find(';'));
    hex.erase(hex.find_last_not_of(" \t") + 1);
    if (hex.empty() || hex.size() > 8 ||
        hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return fail();
    }
    size_t chunk = std::stoul(hex, nullptr, 16);
    if (chunk == 0) break;
    if (body.size() + chunk > options_.max_body_bytes) {
      return Status(StatusCode::kPayloadTooLarge, "body exceeds the limit of " +
                                                      std::to_string(options_.max_body_bytes) +
                                                      " bytes (http.max_body_bytes)");
    }
    while (in.size() - at < chunk + 2) {
      if (!more()) return fail();
    }
    body.append(in, at, chunk);
    at += chunk;
    if (in.compare(at, 2, "\r\n") != 0) return fail();
    at += 2;
  }
  std::string trailer;
  do {
    if (!line(trailer)) return fail();
  } while (!trailer.empty());
  return body;
}

// The bytes of the bounded caches and buffers, and the whole process's resident memory, for
// an operator asking where the memory went.
void Router::setMemoryGauges() {
  auto& m = *ctx_.metrics;
  const auto lake = ctx_.lake->memoryUse();
  m.setMemoryBytes("lake_memtables", static_cast<double>(lake.memtables));
  m.setMemoryBytes("lake_block_cache", static_cast<double>(lake.block_cache));
  m.setMemoryBytes("lake_table_readers", static_cast<double>(lake.table_readers));
  m.setMemoryBytes("lake_record_cache", static_cast<double>(lake.record_cache));
  m.setMemoryBytes("lake_latest_cache",
                   static_cast<double>(lake.latest_cache_entries * lake::kLatestCacheEntryBytes));
  const auto layers = layer_cache_.held();
  m.setMemoryBytes("layer_cache_responses", static_cast<double>(layers.responses));
  m.setMemoryBytes("layer_cache_features", static_cast<double>(layers.features));
  m.setMemoryBytes("layer_cache_polygons", static_cast<double>(layers.polygons));
  m.setMemoryBytes("layer_cache_spare_buffers", static_cast<double>(layers.spare));
  m.setMemoryBytes("tile_cache", static_cast<double>(tiles_.held().responses));
  m.setMemoryBytes("search_index", static_cast<double>(search_index_.bytes()));
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (statm >> pages >> resident) {
    m.setMemoryBytes("process_resident",
                     static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
}

void Router::ready(HTTPServerResponse& resp, bool detailed) {
  Poco::JSON::Object obj;
  obj.set("outbox_depth", static_cast<uint64_t>(ctx_.lake->outboxDepth()));
  bool kafka_ok = !ctx_.publisher || ctx_.publisher->healthy();
  obj.set("kafka", kafka_ok ? "ok" : "degraded");
  if (!kafka_ok && detailed) obj.set("detail", ctx_.publisher->lastError());
  // Stored state that did not load is not ready, whatever else works: a lost subscription or
  // feed must not pass for a healthy hub.
  auto failures = ctx_.load_failures ? ctx_.load_failures() : std::vector<std::string>();
  if (!failures.empty() && detailed) {
    Poco::JSON::Array list;
    for (const auto& f : failures) list.add(f);
    obj.set("not_loaded", list);
  } else if (!failures.empty()) {
    obj.set("not_loaded_count", static_cast<uint64_t>(failures.size()));
  }
  // A replica far behind the cluster would serve an old picture as if it were the whole.
  bool replica_ok = true;
  if (ctx_.replica) {
    const auto st = ctx_.replica->state();
    replica_ok = st.lag_seconds <= ctx_.cluster_max_lag_s && st.gap.empty();
    if (!st.gap.empty()) obj.set("replica_gap", st.gap);
    obj.set("replica_lag_records", st.lag_records);
    obj.set("replica_lag_seconds", st.lag_seconds);
    if (!replica_ok) obj.set("replica", "behind (cluster.max_lag_s)");
  }
  const bool ready = kafka_ok && failures.empty() && replica_ok;
  obj.set("status", ready               ? "ready"
                    : !failures.empty() ? "not_loaded"
                    : !replica_ok       ? "catching_up"
                                        : "degraded");
  send(resp, ready ? 200 : 503, toJson(obj));
}

void Router::kafka(HTTPServerResponse& resp) {
  Poco::JSON::Object obj;
  obj.set("bootstrap_servers", ctx_.kafka_bootstrap);
  obj.set("embedded", ctx_.kafka_embedded);
  if (ctx_.publisher) {
    obj.set("delivered", static_cast<uint64_t>(ctx_.publisher->delivered()));
    obj.set("delivery_failed", static_cast<uint64_t>(ctx_.publisher->failed()));
    obj.set("healthy", ctx_.publisher->healthy());
  }
  obj.set("outbox_depth", static_cast<uint64_t>(ctx_.lake->outboxDepth()));
  send(resp, 200, toJson(obj));
}

bool Router::awaitReplicated(uint64_t sequence) const {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.ack_timeout_ms);
  ctx_.publisher->notify();
  while (true) {
    auto first = ctx_.lake->firstOutboxSequence();
    if (!first || *first > sequence) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void Router::plugins(HTTPServerResponse& resp) {
  auto page = pageParams(param("limit"), param("cursor"), "plugins", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& info : ctx_.connectors->list()) {
    Poco::JSON::Object o;
    o.set("id", info.id);
    o.set("version", info.version);
    o.set("abi", info.abi);
    o.set("domain", info.domain);
    o.set("file", info.file);
    o.set("state", info.loaded ? "loaded" : "refused");
    if (!info.reason.empty()) o.set("reason", info.reason);
    items.emplace_back(info.id + "\n" + info.file, toJson(o));
  }
  std::sort(items.begin(), items.end());
  send(resp, 200,
       pageOfList("plugins", items, page.value(),
                  ",\"plugins_dir\":" + jsonString(ctx_.plugins_dir)));
}

void Router::openapi(HTTPServerResponse& resp) {
  send(resp, 200, std::string(openApiJson()), "application/vnd.oai.openapi+json;version=3.1");
}

void Router::reply(HTTPServerResponse& resp, const Reply& r) {
  send(resp, r.status, r.body, r.type);
}

Result<int64_t> Router::integerParam(const std::optional<std::string>& text, const char* name,
                                     int64_t min, int64_t max, int64_t fallback) {
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0 || n < min || n > max) {
    return Status::invalidArgument(std::string(name) + " must be an integer in " +
                                   std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<int64_t>(n);
}

}  // namespace firehub::api
