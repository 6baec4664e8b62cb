#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Base64Encoder.h>
#include <Poco/String.h>
#include <Poco/TextIterator.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>
#include <Poco/UTF8Encoding.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "api/http_server.h"
#include "api/layers.h"
#include "firehub/api.h"
#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/net.h"
#include "firehub/v1/options.pb.h"

namespace firehub::api {
namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

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

}  // namespace

// Pushes in the hub per feed and per agency, to refuse (503, Retry-After) past their shares
// instead of letting one agency's flood hold every thread.
class PushShares {
 public:
  PushShares(size_t per_feed, size_t per_agency) : per_feed_(per_feed), per_agency_(per_agency) {}
  // Takes a slot for the feed and its agency; "" when taken, else why not.
  std::string take(const std::string& feed, const std::string& agency) {
    std::lock_guard<std::mutex> lock(mu_);
    if (per_feed_ > 0 && feeds_[feed] >= per_feed_) {
      return "feed '" + feed + "' has " + std::to_string(per_feed_) +
             " pushes in progress (http.pushes_per_feed)";
    }
    if (per_agency_ > 0 && agencies_[agency] >= per_agency_) {
      return "agency '" + agency + "' has " + std::to_string(per_agency_) +
             " pushes in progress (http.pushes_per_agency)";
    }
    ++feeds_[feed];
    ++agencies_[agency];
    return "";
  }
  void give(const std::string& feed, const std::string& agency) {
    std::lock_guard<std::mutex> lock(mu_);
    if (--feeds_[feed] == 0) feeds_.erase(feed);
    if (--agencies_[agency] == 0) agencies_.erase(agency);
  }

 private:
  size_t per_feed_, per_agency_;
  std::mutex mu_;
  std::map<std::string, size_t> feeds_, agencies_;
};

// What unauthenticated writes may add to the audit log: each entry bounded in size, and at most
// kPerMinute entries a minute; past that they are counted and the count is written as one entry
// when the next minute begins (a key-less flood cannot fill the disk through the audit log).
class AuditGate {
 public:
  static constexpr int kPerMinute = 120;
  // Whether an unauthenticated entry may be written now; `suppressed` gets how many were left
  // out before it (to be recorded first).
  bool admit(uint64_t& suppressed) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t minute = std::chrono::duration_cast<std::chrono::minutes>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    if (minute != minute_) {
      minute_ = minute;
      used_ = 0;
    }
    if (used_ >= kPerMinute) {
      ++suppressed_;
      return false;
    }
    ++used_;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  int64_t minute_ = 0;
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

namespace {

// What every request's handler shares: the server's context, options and state.
struct Shared {
  const ApiContext& ctx;
  const ApiOptions& options;
  DeltaStream& stream;
  LayerCache& layer_cache;
  PushShares& push_shares;
  AuditGate& audit_gate;
};

// Text from a request as it goes into the audit log: at most `max` bytes.
std::string bounded(const std::string& text, size_t max) {
  return text.size() <= max
             ? text
             : text.substr(0, max) + "...(" + std::to_string(text.size()) + " bytes)";
}

class Router : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Router(const Shared& s)
      : ctx_(s.ctx),
        options_(s.options),
        stream_(s.stream),
        layer_cache_(s.layer_cache),
        push_shares_(s.push_shares),
        audit_gate_(s.audit_gate) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
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
      if (authenticate(req, resp)) route(req, resp);
    } catch (const Poco::IOException& e) {
      // A client that hangs up while its response is written (a browser moving on, a load tool
      // stopping) is not the hub's fault: a note, not an error.
      if (resp.sent()) {
        FIREHUB_LOG(kInfo, "api",
                    req.getMethod() << " " << req.getURI()
                                    << ": the client left before the whole response was sent ("
                                    << e.displayText() << ")");
      } else {
        FIREHUB_LOG(kError, "api",
                    req.getMethod() << " " << req.getURI() << ": " << e.displayText());
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
        Status s = ctx_.audit->append(
            unauthenticated ? "anonymous" : who_.key_id, auth::roleName(who_.role),
            bounded(method, 16) + " " + bounded(path, 256), bounded(audit_target_, 128),
            static_cast<int>(resp.getStatus()));
        if (!s.isOk()) FIREHUB_LOG(kError, "api", "audit append failed: " << s.toString());
      }
    }
  }

 private:
  // Sets who_ from the bearer key, or from the anonymous loopback rule. Answers 401 and returns
  // false when the request may not go on.
  bool authenticate(HTTPServerRequest& req, HTTPServerResponse& resp) {
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

  bool tls() const { return !options_.tls_cert.empty(); }
  // Event streams hold a thread each for their whole life: at most a quarter of the threads.
  size_t maxStreams() const { return static_cast<size_t>(std::max(options_.threads / 4, 1)); }

  // For long answers (streams): whether the key that opened the request is still valid.
  bool stillAuthorised() const {
    if (!ctx_.keys || who_.anonymous || who_.key_id.empty()) return true;
    return ctx_.keys->principal(who_.key_id).isOk();
  }

  // Whether the request comes from a reader on this machine: the client (the peer, or the address
  // a trusted proxy forwards for) is a loopback address, nothing else forwarded it, and it asked
  // for this machine by a loopback name (a page of another site whose name resolves to 127.0.0.1
  // does not count: DNS rebinding).
  bool localReader(const HTTPServerRequest& req) const {
    Poco::Net::IPAddress client = req.clientAddress().host();
    const bool forwarded =
        req.has("X-Forwarded-For") || req.has("Forwarded") || req.has("X-Real-IP");
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
    return host == "localhost" ||
           (Poco::Net::IPAddress::tryParse(host, named) && named.isLoopback());
  }

  bool unauthorized(HTTPServerResponse& resp, const std::string& why) {
    resp.set("WWW-Authenticate", "Bearer realm=\"firehub\"");
    sendError(resp, Status(StatusCode::kUnauthenticated, why));
    return false;
  }

  bool forbid(HTTPServerResponse& resp, const std::string& why) {
    sendError(resp, Status(StatusCode::kPermissionDenied, who_.describe() + ": " + why));
    return false;
  }

  void send(HTTPServerResponse& resp, int status, const std::string& body,
            const std::string& type = "application/json") {
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
  void sendBody(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& body) {
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    if (!impl || body.size() < (64u << 10) ||
        req.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD) {
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

  void sendError(HTTPServerResponse& resp, const Status& s) {
    send(resp, httpStatus(s),
         R"({"error":)" + jsonString(statusCodeName(s.code())) + R"(,"detail":)" +
             jsonString(s.message()) + "}");
  }

  // Reads and drops what is left of a refused body (up to a bound), so the client can read the
  // error instead of seeing its upload reset. Past the bound the connection is closed.
  void discardBody(HTTPServerRequest& req, HTTPServerResponse& resp) {
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
  Result<std::string> readBody(HTTPServerRequest& req) {
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
  Result<std::string> readChunkedBody(HTTPServerRequest& req) {
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

  void route(HTTPServerRequest& req, HTTPServerResponse& resp) {
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
    auto params = uri.getQueryParameters();
    auto param = [&](const std::string& name) -> std::optional<std::string> {
      for (const auto& [k, v] : params) {
        if (k == name) return v;
      }
      return std::nullopt;
    };
    const bool get = method == "GET" || method == "HEAD";
    const bool post = method == "POST";

    if (p.size() == 1 && p[0] == "metrics" && get) {
      ctx_.metrics->setOutboxDepth(static_cast<double>(ctx_.lake->outboxDepth()));
      if (ctx_.load_failures)
        ctx_.metrics->setLoadFailures(static_cast<double>(ctx_.load_failures().size()));
      setMemoryGauges();
      return send(resp, 200, ctx_.metrics->serialize(), "text/plain; version=0.0.4");
    }
    if (get && (p.empty() || (p[0] != "api" && p[0] != "ogc"))) return staticFile(resp, p);
    if (!p.empty() && p[0] == "ogc") {
      if (!get)
        return sendError(resp,
                         Status::invalidArgument("OGC API - Features is read-only: " + method));
      std::map<std::string, std::string> query(params.begin(), params.end());
      std::vector<std::string> rest(p.begin() + 1, p.end());
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
      if (p.size() == 2 && method == "DELETE") return revokeKey(resp, p[1]);
      if (p.size() == 2 && method == "PATCH") return patchKey(req, resp, p[1]);
    }
    if (what == "audit" && get) {
      if (!who_.canAdminister()) return (void)forbid(resp, "the audit log is for admins");
      if (p.size() == 1) return auditLog(resp, param("from"));
      if (p.size() == 2 && p[1] == "verify") return auditVerify(resp);
    }
    if (what == "kafka" && p.size() == 1 && get) return kafka(resp);
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
      if (p.size() == 3 && p[2] == "events" && get) return subscriptionEvents(req, resp, *sub);
    }
    if (what == "records" && p.size() == 2 && get) return record(resp, p[1]);
    if (what == "entities" && p.size() == 1 && get) {
      return entities(resp, param("domain"), param("bbox"), param("limit"));
    }
    if (what == "dlq") {
      if (p.size() == 1 && get) {
        auto feed = param("feed");
        auto owner = feed ? ctx_.feeds->get(*feed) : nullptr;
        if (!who_.canOperate() && !(owner && who_.mayWriteFeed(owner->spec().agency))) {
          return (void)forbid(
              resp,
              "dead letters hold raw agency data: operators, or the agency with ?feed=<its feed>");
        }
        return deadLetters(resp, feed, param("limit"), param("from"));
      }
      if (p.size() == 2 && p[1] == "replay" && method == "POST")
        return replayDeadLetters(req, resp);
      if (p.size() == 2 && (get || method == "DELETE")) return deadLetter(resp, p[1], get);
    }
    if (what == "layers" && get) {
      if (p.size() == 1) return reply(resp, layerList(ctx_));
      if (p.size() == 3 && p[1] == "risk" && p[2] == "stream") return riskStream(req, resp);
      if (p.size() == 4 && p[1] == "risk" && p[2] == "cells")
        return reply(resp, riskCellExplanation(ctx_, p[3]));
      if (p.size() == 2)
        return layer(req, resp, p[1], param("bbox"), param("limit"), param("offset"),
                     param("properties"));
    }
    if (what == "outlines" && p.size() == 1 && get) return outlines(resp);
    if (what == "warnings" && get) {
      if (p.size() == 1)
        return reply(resp, warningList(ctx_, param("history").value_or("") == "1"));
      if (p.size() == 2) return reply(resp, warningDocument(ctx_, p[1]));
    }
    if (what == "warnings" && post && p.size() == 3 && p[2] == "issue")
      return issueWarning(resp, p[1]);
    bool known = what == "kafka" || what == "plugins" || what == "feeds" || what == "records" ||
                 what == "entities" || what == "dlq" || what == "layers" || what == "warnings" ||
                 what == "outlines" || what == "keys" || what == "audit" || what == "catalog" ||
                 what == "grants" || what == "subscriptions";
    if (known) {
      return sendError(resp, Status(StatusCode::kInvalidArgument,
                                    "method " + method + " is not allowed on " + uri.getPath()));
    }
    sendError(resp, Status::notFound("no route for " + uri.getPath()));
  }

  // The bytes of the bounded caches and buffers, and the whole process's resident memory, for
  // an operator asking where the memory went.
  void setMemoryGauges() {
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
    std::ifstream statm("/proc/self/statm");
    size_t pages = 0, resident = 0;
    if (statm >> pages >> resident) {
      m.setMemoryBytes("process_resident",
                       static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    }
  }

  void ready(HTTPServerResponse& resp, bool detailed) {
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
    const bool ready = kafka_ok && failures.empty();
    obj.set("status", ready ? "ready" : failures.empty() ? "degraded" : "not_loaded");
    send(resp, ready ? 200 : 503, toJson(obj));
  }

  void kafka(HTTPServerResponse& resp) {
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

  void plugins(HTTPServerResponse& resp) {
    Poco::JSON::Array arr;
    for (const auto& info : ctx_.connectors->list()) {
      Poco::JSON::Object o;
      o.set("id", info.id);
      o.set("version", info.version);
      o.set("abi", info.abi);
      o.set("domain", info.domain);
      o.set("file", info.file);
      o.set("state", info.loaded ? "loaded" : "refused");
      if (!info.reason.empty()) o.set("reason", info.reason);
      arr.add(o);
    }
    Poco::JSON::Object obj;
    obj.set("plugins_dir", ctx_.plugins_dir);
    obj.set("plugins", arr);
    send(resp, 200, toJson(obj));
  }

  Poco::JSON::Object feedJson(registry::Feed& feed) {
    Poco::JSON::Object o = registry::feedSpecObject(feed.spec());
    if (!who_.mayWriteFeed(feed.spec().agency)) o.remove("config");  // may hold credentials
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
    if (last > 0) {
      google::protobuf::Timestamp ts;
      ts.set_seconds(last);
      o.set("last_record_at", google::protobuf::util::TimeUtil::ToString(ts));
    }
    std::string err = feed.lastError();
    if (!err.empty()) o.set("last_error", err);
    if (ctx_.listen_port) {
      if (auto port = ctx_.listen_port(feed.spec().id))
        o.set("listen_port", static_cast<int>(*port));
    }
    return o;
  }

  void createFeed(HTTPServerRequest& req, HTTPServerResponse& resp) {
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
      return (void)forbid(resp, "may not write domain '" +
                                    std::string(plugin->descriptor().domain) + "' (connector " +
                                    spec->connector +
                                    "); an admin adds domains to the key "
                                    "(PATCH /api/v1/keys/" +
                                    who_.key_id + " {\"domains\": [...]})");
    }
    // Server-side resources are the operators' to choose: a listen address or a drop folder.
    if (!who_.canOperate() &&
        (!spec->file_drop.dir.empty() || configHasListen(spec->config_json))) {
      return (void)forbid(resp, "file drops and listen addresses are set by operators");
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

  static int64_t nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void manageFeed(HTTPServerResponse& resp, const std::string& id, const std::string& action) {
    auto feed = ctx_.feeds->get(id);
    if (!feed) return sendError(resp, Status::notFound("no feed '" + id + "'"));
    if (!who_.mayWriteFeed(feed->spec().agency)) {
      return (void)forbid(resp,
                          "feed '" + id + "' belongs to agency '" + feed->spec().agency + "'");
    }
    Status s =
        action == "delete" ? ctx_.feeds->remove(id) : ctx_.feeds->setPaused(id, action == "pause");
    if (!s.isOk()) return sendError(resp, s);
    if (action == "delete") {
      return send(resp, 200,
                  R"({"deleted":)" + jsonString(id) + R"(,"records":"kept in the lake"})");
    }
    send(resp, 200, toJson(feedJson(*feed)));
  }

  // The shared directory: every topic and layer with its owner, schema, classification,
  // cadence, last update and record count.
  void catalog(HTTPServerResponse& resp) {
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

  void addGrant(HTTPServerRequest& req, HTTPServerResponse& resp) {
    auto body = readBody(req);
    if (!body.isOk()) return sendError(resp, body.status());
    std::string key_id, topic;
    try {
      Poco::JSON::Parser parser;
      auto o = parser.parse(body.value()).extract<Poco::JSON::Object::Ptr>();
      key_id = o->optValue<std::string>("key_id", "");
      topic = o->optValue<std::string>("topic", "");
    } catch (const Poco::Exception& e) {
      return sendError(resp,
                       Status::invalidArgument("body must be {\"key_id\": ..., \"topic\": ...}"));
    }
    if (key_id.empty() || topic.rfind("firehub.v1.", 0) != 0) {
      return sendError(
          resp, Status::invalidArgument("'key_id' and a 'topic' firehub.v1.<domain> are required"));
    }
    audit_target_ = key_id + " " + topic;
    Status st = ctx_.subscriptions->grant(key_id, topic);
    if (!st.isOk()) return sendError(resp, st);
    send(resp, 201,
         R"({"key_id":)" + jsonString(key_id) + R"(,"topic":)" + jsonString(topic) + "}");
  }

  void listGrants(HTTPServerResponse& resp) {
    auto grants = ctx_.subscriptions->grants();
    if (!grants.isOk()) return sendError(resp, grants.status());
    Poco::JSON::Array arr;
    for (const auto& [key, topic] : grants.value()) {
      Poco::JSON::Object o;
      o.set("key_id", key);
      o.set("topic", topic);
      arr.add(o);
    }
    Poco::JSON::Object o;
    o.set("grants", arr);
    send(resp, 200, toJson(o));
  }

  void subscribe(HTTPServerRequest& req, HTTPServerResponse& resp) {
    auto body = readBody(req);
    if (!body.isOk()) return sendError(resp, body.status());
    auto parsed = subs::parseSubscription(body.value(), who_.restricted);
    if (!parsed.isOk()) return sendError(resp, parsed.status());
    std::string topic = "firehub.v1." + parsed->domain;
    if (!who_.canOperate() && !ctx_.subscriptions->granted(who_.key_id, topic)) {
      return (void)forbid(resp,
                          "no grant for topic " + topic + " (an admin or operator grants it)");
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

  void listSubscriptions(HTTPServerResponse& resp) {
    std::string out = R"({"subscriptions":[)";
    bool first = true;
    for (const auto& s : ctx_.subscriptions->list()) {
      if (s.owner != who_.key_id && !who_.canOperate()) continue;
      if (!first) out += ',';
      first = false;
      out += subs::subscriptionJson(s);
    }
    send(resp, 200, out + "]}");
  }

  // The subscription's records as server-sent events, read from the lake's log: each event's id
  // is the record's log sequence, so a client reconnecting with Last-Event-ID misses nothing.
  void subscriptionEvents(HTTPServerRequest& req, HTTPServerResponse& resp,
                          const subs::Subscription& sub) {
    if (std::string why = ctx_.subscriptions->refusal(sub); !why.empty()) {
      return (void)forbid(resp, "subscription " + sub.id + " may not be delivered: " + why);
    }
    if (stream_.clients() >= maxStreams())
      return sendError(resp, Status::unavailable("too many stream clients; try again later"));
    stream_.addClient();
    struct Leave {
      DeltaStream& s;
      ~Leave() { s.removeClient(); }
    } leave{stream_};
    uint64_t after = ctx_.subscriptions->logHead();
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
        out << "id: " << seq << "\nevent: record\ndata: " << bus::recordToJson(r) << "\n\n";
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

  void listFeeds(HTTPServerResponse& resp) {
    Poco::JSON::Array arr;
    for (const auto& f : ctx_.feeds->list()) arr.add(feedJson(*f));
    Poco::JSON::Object obj;
    obj.set("feeds", arr);
    send(resp, 200, toJson(obj));
  }

  void showFeed(HTTPServerResponse& resp, const std::string& id) {
    auto feed = ctx_.feeds->get(id);
    if (!feed) return sendError(resp, Status::notFound("no feed '" + id + "'"));
    send(resp, 200, toJson(feedJson(*feed)));
  }

  void push(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id) {
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
    std::string type = mediaType(req.getContentType());
    static const std::set<std::string> kAccepted = {"text/csv",
                                                    "application/json",
                                                    "application/x-ndjson",
                                                    "application/geo+json",
                                                    "application/fhir+json",
                                                    "application/xml",
                                                    "text/xml",
                                                    "application/cap+xml",
                                                    "application/atom+xml"};
    if (!kAccepted.count(type)) {
      discardBody(req, resp);
      return sendError(resp, Status(StatusCode::kUnsupportedMedia,
                                    "Content-Type '" + req.getContentType() +
                                        "' is not accepted; use text/csv, application/json, "
                                        "application/x-ndjson or an XML type (CAP)"));
    }
    const std::string& agency = target->spec().agency;
    if (std::string busy = push_shares_.take(id, agency); !busy.empty()) {
      discardBody(req, resp);
      resp.set("Retry-After", "1");
      return sendError(resp, Status::unavailable(busy + "; retry shortly"));
    }
    struct Give {
      PushShares& shares;
      const std::string &feed, &agency;
      ~Give() { shares.give(feed, agency); }
    } give{push_shares_, id, agency};
    auto body = readBody(req);
    if (!body.isOk()) {
      discardBody(req, resp);
      return sendError(resp, body.status());
    }
    pipeline::IngestRequest in;
    in.feed_id = id;
    in.body = body.value();
    in.content_type = type;
    auto summary = ctx_.pipeline->ingest(in);
    if (!summary.isOk()) return sendError(resp, summary.status());
    Poco::JSON::Object obj;
    obj.set("accepted", static_cast<uint64_t>(summary->accepted));
    obj.set("rejected", static_cast<uint64_t>(summary->rejected));
    obj.set("duplicates", static_cast<uint64_t>(summary->duplicates));
    if (!summary->errors.empty()) {
      Poco::JSON::Array errors;
      for (const auto& e : summary->errors) errors.add(e);
      obj.set("errors", errors);
    }
    send(resp, 202, toJson(obj));
  }

  void record(HTTPServerResponse& resp, const std::string& id) {
    auto r = ctx_.lake->getRecord(id);
    if (!r.isOk()) return sendError(resp, r.status());
    if (!r.value()) return sendError(resp, Status::notFound("no record '" + id + "'"));
    if (!who_.restricted) redactRestricted(*r.value());
    send(resp, 200, bus::recordToJson(*r.value()));
  }

  void entities(HTTPServerResponse& resp, const std::optional<std::string>& domain,
                const std::optional<std::string>& bbox_text,
                const std::optional<std::string>& limit_text) {
    if (!domain || domain->empty()) {
      return sendError(resp, Status::invalidArgument("query parameter 'domain' is required"));
    }
    lake::BBox bbox;
    if (bbox_text) {
      auto parsed = parseBBox(*bbox_text);
      if (!parsed.isOk()) return sendError(resp, parsed.status());
      bbox = parsed.value();
    }
    auto limit = integerParam(limit_text, "limit", 1, 10000, 1000);
    if (!limit.isOk()) return sendError(resp, limit.status());
    auto found = ctx_.lake->latestInBBox(*domain, bbox, static_cast<size_t>(limit.value()));
    if (!found.isOk()) return sendError(resp, found.status());
    std::string out = R"({"type":"FeatureCollection","numberReturned":)" +
                      std::to_string(found->size()) + R"(,"features":[)";
    bool first = true;
    for (auto& r : found.value()) {
      if (!who_.restricted) redactRestricted(r);
      if (!first) out += ',';
      first = false;
      out += R"({"type":"Feature","id":)" + jsonString(r.entity_id()) + R"(,"geometry":)" +
             geometryJson(r.geometry()) + R"(,"properties":)" + bus::recordToJson(r) + "}";
    }
    out += "]}";
    send(resp, 200, out, "application/geo+json");
  }

  void reply(HTTPServerResponse& resp, const Reply& r) { send(resp, r.status, r.body, r.type); }

  // POST /api/v1/warnings/{draft}/issue: an operator turns a machine draft into the Actual CAP
  // message (audited like every write).
  void issueWarning(HTTPServerResponse& resp, const std::string& draft) {
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

  static Poco::JSON::Object keyJson(const auth::KeyInfo& k) {
    Poco::JSON::Object o;
    o.set("id", k.id);
    o.set("role", auth::roleName(k.role));
    if (!k.agency.empty()) o.set("agency", k.agency);
    if (k.role == auth::Role::kAgency) {
      Poco::JSON::Array domains;
      for (const auto& d : k.domains) domains.add(d);
      o.set("domains", domains);
    }
    o.set("restricted", k.restricted);
    if (!k.note.empty()) o.set("note", k.note);
    o.set("created_at_ms", k.created_at);
    o.set("created_by", k.created_by);
    o.set("revoked", k.revoked);
    return o;
  }

  void createKey(HTTPServerRequest& req, HTTPServerResponse& resp) {
    auto body = readBody(req);
    if (!body.isOk()) return sendError(resp, body.status());
    std::string role_name, agency, note;
    bool restricted = false;
    std::vector<std::string> domains;
    try {
      Poco::JSON::Parser parser;
      auto o = parser.parse(body.value()).extract<Poco::JSON::Object::Ptr>();
      role_name = o->optValue<std::string>("role", "");
      agency = o->optValue<std::string>("agency", "");
      note = o->optValue<std::string>("note", "");
      restricted = o->optValue<bool>("restricted", false);
      auto listed = domainList(*o);
      if (!listed.isOk()) return sendError(resp, listed.status());
      domains = listed.value();
    } catch (const Poco::Exception& e) {
      return sendError(
          resp, Status::invalidArgument("body must be JSON {\"role\": ..., \"agency\": ...}: " +
                                        e.displayText()));
    }
    auto role = auth::parseRole(role_name);
    if (!role.isOk()) return sendError(resp, role.status());
    auto created = ctx_.keys->create(role.value(), agency, restricted, note, who_.key_id, domains);
    if (!created.isOk()) return sendError(resp, created.status());
    audit_target_ = created->first.id;
    Poco::JSON::Object o = keyJson(created->first);
    o.set("key", created->second);  // shown once; only its hash is kept
    send(resp, 201, toJson(o));
  }

  // "domains": an array of domain names (at most one per domain of the schema).
  static Result<std::vector<std::string>> domainList(const Poco::JSON::Object& o) {
    std::vector<std::string> out;
    if (!o.has("domains")) return out;
    auto arr = o.getArray("domains");
    if (!arr || arr->size() > 64)
      return Status::invalidArgument("'domains' must be an array of domain names");
    for (size_t i = 0; i < arr->size(); ++i) {
      auto v = arr->get(static_cast<unsigned>(i));
      if (!v.isString())
        return Status::invalidArgument("'domains' must be an array of domain names");
      out.push_back(v.convert<std::string>());
    }
    return out;
  }

  // PATCH /api/v1/keys/{id} {"domains": [...]}: the domains an agency key may write.
  void patchKey(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id) {
    auto body = readBody(req);
    if (!body.isOk()) return sendError(resp, body.status());
    Poco::JSON::Object::Ptr o;
    try {
      Poco::JSON::Parser parser;
      auto v = parser.parse(body.value());
      if (v.type() == typeid(Poco::JSON::Object::Ptr)) o = v.extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception&) {
    }
    std::vector<std::string> names;
    if (o) o->getNames(names);
    if (!o || names != std::vector<std::string>{"domains"}) {
      return sendError(resp,
                       Status::invalidArgument(R"(body must be {"domains": ["water", ...]})"));
    }
    auto domains = domainList(*o);
    if (!domains.isOk()) return sendError(resp, domains.status());
    audit_target_ = id + " domains";
    auto changed = ctx_.keys->setDomains(id, domains.value());
    if (!changed.isOk()) return sendError(resp, changed.status());
    send(resp, 200, toJson(keyJson(changed.value())));
  }

  void listKeys(HTTPServerResponse& resp) {
    auto keys = ctx_.keys->list();
    if (!keys.isOk()) return sendError(resp, keys.status());
    Poco::JSON::Array arr;
    for (const auto& k : keys.value()) arr.add(keyJson(k));
    Poco::JSON::Object o;
    o.set("keys", arr);
    send(resp, 200, toJson(o));
  }

  void revokeKey(HTTPServerResponse& resp, const std::string& id) {
    Status s = ctx_.keys->revoke(id);
    if (!s.isOk()) return sendError(resp, s);
    send(resp, 200, R"({"revoked":)" + jsonString(id) + "}");
  }

  void auditLog(HTTPServerResponse& resp, const std::optional<std::string>& from) {
    if (!ctx_.audit) return sendError(resp, Status::unavailable("no audit log"));
    auto entries = ctx_.audit->list(from ? std::strtoull(from->c_str(), nullptr, 10) : 1, 1000);
    if (!entries.isOk()) return sendError(resp, entries.status());
    std::string out = R"({"entries":[)";
    for (size_t i = 0; i < entries->size(); ++i) {
      if (i) out += ',';
      out += auth::auditEntryJson(entries.value()[i]);
    }
    send(resp, 200, out + "]}");
  }

  void auditVerify(HTTPServerResponse& resp) {
    if (!ctx_.audit) return sendError(resp, Status::unavailable("no audit log"));
    auto broken = ctx_.audit->verify();
    if (!broken.isOk()) return sendError(resp, broken.status());
    Poco::JSON::Object o;
    o.set("intact", !broken.value().has_value());
    if (broken.value()) o.set("first_broken_link", *broken.value());
    send(resp, 200, toJson(o));
  }

  static Result<std::string> readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::notFound("cannot read " + path);
    std::ostringstream body;
    body << in.rdbuf();
    return body.str();
  }

  // The one-map's files. The segments arrive decoded once; a segment holding '/', '\\', NUL or
  // starting with '.' (hidden files, "..") is refused, and the file's canonical path must stay
  // under the canonical static_dir (a symlink out of it is refused too).
  void staticFile(HTTPServerResponse& resp, const std::vector<std::string>& parts) {
    if (options_.static_dir.empty())
      return sendError(resp, Status::notFound("the one-map is not installed (http.static_dir)"));
    std::string rel;
    for (const auto& part : parts) {
      if (part.empty() || part[0] == '.' ||
          part.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
        return sendError(resp, Status::notFound("no such file"));
      }
      rel += "/" + part;
    }
    if (rel.empty()) rel = "/index.html";
    static const std::map<std::string, std::string> kTypes = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".geojson", "application/geo+json"},
        {".map", "application/json"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"}};
    auto dot = rel.rfind('.');
    auto type = dot == std::string::npos ? kTypes.end() : kTypes.find(rel.substr(dot));
    if (type == kTypes.end()) return sendError(resp, Status::notFound("no file " + rel));
    std::error_code ec;
    const auto root = std::filesystem::canonical(options_.static_dir, ec);
    if (ec)
      return sendError(resp, Status::notFound("the one-map is not installed (http.static_dir)"));
    const auto file = std::filesystem::weakly_canonical(root / rel.substr(1), ec);
    auto [r, f] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
    if (ec || r != root.end() || !std::filesystem::is_regular_file(file, ec)) {
      return sendError(resp, Status::notFound("no file " + rel));
    }
    auto body = readFile(file.string());
    if (!body.isOk()) return sendError(resp, Status::notFound("no file " + rel));
    send(resp, 200, body.value(), type->second);
  }

  void outlines(HTTPServerResponse& resp) {
    if (options_.outlines_file.empty()) {
      return sendError(resp, Status::notFound("no outlines configured (map.outlines)"));
    }
    auto body = readFile(options_.outlines_file);
    if (!body.isOk()) return sendError(resp, body.status());
    send(resp, 200, body.value(), "application/geo+json");
  }

  void layer(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& name,
             const std::optional<std::string>& bbox_text,
             const std::optional<std::string>& limit_text,
             const std::optional<std::string>& offset_text,
             const std::optional<std::string>& properties_text) {
    lake::BBox bbox;
    if (bbox_text) {
      auto parsed = parseBBox(*bbox_text);
      if (!parsed.isOk()) return sendError(resp, parsed.status());
      bbox = parsed.value();
    }
    auto limit = integerParam(limit_text, "limit", 1, 100000, 10000);
    if (!limit.isOk()) return sendError(resp, limit.status());
    auto offset = integerParam(offset_text, "offset", 0, 100000000, 0);
    if (!offset.isOk()) return sendError(resp, offset.status());
    if (!isCellLayer(name) || !ctx_.fusion) {
      if (properties_text) {
        return sendError(
            resp, Status::invalidArgument("properties: only the cell layers (risk, response, "
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
    if (req.get("If-None-Match", "") == etag) {
      resp.setStatus(HTTPResponse::HTTP_NOT_MODIFIED);
      resp.set("ETag", etag);
      resp.set("Cache-Control", "no-cache");
      resp.setContentLength(0);
      resp.send();
      ctx_.metrics->countHttp(304);
      return;
    }
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
    resp.set("Cache-Control", "no-cache");
    sendBody(req, resp, *body);
    ctx_.metrics->countHttp(200);
  }

  // Server-sent events of risk deltas. Each event's id resumes the stream (Last-Event-ID); a
  // `reset` event tells the client to reload the layer.
  void riskStream(HTTPServerRequest& req, HTTPServerResponse& resp) {
    const size_t kMaxClients = maxStreams();
    if (!ctx_.fusion) return sendError(resp, Status::unavailable("fusion is not running"));
    if (stream_.clients() >= kMaxClients) {
      return sendError(
          resp, Status::unavailable("too many stream clients (" + std::to_string(kMaxClients) +
                                    "); try again later"));
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

  static bool validUtf8(const std::string& text) {
    Poco::UTF8Encoding utf8;
    Poco::TextIterator it(text, utf8), end(text);
    for (; it != end; ++it) {
      if (*it < 0) return false;
    }
    return true;
  }

  // Whether a dead letter's bytes may hold restricted fields: flagged when it was made, or (older
  // dead letters) its connector's domain has such fields.
  bool restrictedBytes(const firehub::v1::DeadLetter& dl) const {
    if (dl.restricted()) return true;
    auto plugin = ctx_.connectors->find(dl.connector_id());
    return plugin && domainHasRestrictedFields(plugin->descriptor().domain);
  }

  Poco::JSON::Object deadLetterJson(uint64_t sequence, const firehub::v1::DeadLetter& dl,
                                    size_t max_raw) const {
    Poco::JSON::Object o;
    o.set("sequence", sequence);
    o.set("feed_id", dl.feed_id());
    o.set("agency", dl.agency());
    o.set("connector", dl.connector_id() + "@" + dl.connector_version());
    o.set("stage", dl.stage());
    o.set("reason", dl.reason());
    o.set("source_offset", dl.source_offset());
    o.set("content_type", dl.content_type());
    o.set("at", google::protobuf::util::TimeUtil::ToString(dl.at()));
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

  void deadLetters(HTTPServerResponse& resp, const std::optional<std::string>& feed,
                   const std::optional<std::string>& limit_text,
                   const std::optional<std::string>& from_text) {
    auto limit = integerParam(limit_text, "limit", 1, 1000, 100);
    if (!limit.isOk()) return sendError(resp, limit.status());
    auto from = integerParam(from_text, "from", 0, INT64_MAX, 0);
    if (!from.isOk()) return sendError(resp, from.status());
    std::vector<lake::DeadLetterEntry> entries;
    Status s =
        ctx_.lake->listDeadLetters(static_cast<uint64_t>(from.value()),
                                   static_cast<size_t>(limit.value()), feed.value_or(""), entries);
    if (!s.isOk()) return sendError(resp, s);
    Poco::JSON::Array arr;
    for (const auto& e : entries) {
      // A feed id may have belonged to another agency before (deleted, registered again): each
      // dead letter is shown only to those who may handle its own agency's.
      if (mayHandleDeadLetter(e.letter)) arr.add(deadLetterJson(e.sequence, e.letter, 4096));
    }
    Poco::JSON::Object obj;
    obj.set("total", static_cast<uint64_t>(ctx_.lake->deadLetterCount()));
    obj.set("dead_letters", arr);
    if (entries.size() == static_cast<size_t>(limit.value())) {
      obj.set("next_from", static_cast<uint64_t>(entries.back().sequence + 1));
    }
    send(resp, 200, toJson(obj));
  }

  static Result<int64_t> integerParam(const std::optional<std::string>& text, const char* name,
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

  bool mayHandleDeadLetter(const firehub::v1::DeadLetter& dl) {
    return who_.canOperate() || who_.mayWriteFeed(dl.agency());
  }

  void deadLetter(HTTPServerResponse& resp, const std::string& id, bool get) {
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
  void replayDeadLetters(HTTPServerRequest& req, HTTPServerResponse& resp) {
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

  const ApiContext& ctx_;
  const ApiOptions& options_;
  DeltaStream& stream_;
  LayerCache& layer_cache_;
  PushShares& push_shares_;
  AuditGate& audit_gate_;
  auth::Principal who_;
  std::string audit_target_;
  bool truncated_ = false;       // the request's body was cut short (nothing of it is stored)
  bool resp_keep_alive_ = true;  // false: close the connection after the answer
};

class Factory : public StoppableHandlerFactory {
 public:
  explicit Factory(Shared shared) : shared_(shared) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
    return new Router(shared_);
  }

 private:
  Shared shared_;
};

}  // namespace

int httpStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kPayloadTooLarge:
      return 413;
    case StatusCode::kUnsupportedMedia:
      return 415;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
}

std::string mediaType(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  t.erase(0, t.find_first_not_of(" \t"));
  t.erase(t.find_last_not_of(" \t") + 1);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "application/ndjson" || t == "application/jsonl" || t == "application/jsonlines" ||
      t == "application/x-jsonlines") {
    return "application/x-ndjson";
  }
  return t;
}

ApiServer::ApiServer(ApiContext context, ApiOptions options)
    : context_(std::move(context)), options_(std::move(options)) {}

ApiServer::~ApiServer() { stop(); }

Status ApiServer::start() {
  try {
    Poco::Net::SocketAddress address(options_.listen);
    Poco::Net::ServerSocket socket;
    if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
      if (options_.tls_cert.empty() || options_.tls_key.empty()) {
        return Status::invalidArgument("HTTPS needs both http.tls.cert and http.tls.key");
      }
      static std::once_flag ssl_once;
      std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
      Poco::Net::Context::Params params;
      params.privateKeyFile = options_.tls_key;
      params.certificateFile = options_.tls_cert;
      params.verificationMode = Poco::Net::Context::VERIFY_NONE;
      params.loadDefaultCAs = false;
      // TLS 1.2 only with forward-secret (ECDHE) AEAD suites; TLS 1.3's suites all are.
      params.cipherList = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1:!SHA256:!SHA384";
      params.ecdhCurve = "prime256v1";
      Poco::Net::Context::Ptr tls =
          new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
      tls->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                            Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
      tls->preferServerCiphers();
      Poco::Net::SecureServerSocket secure(tls);
      net::listenExclusive(secure, address, 128);
      socket = secure;
      scheme_ = "https";
    } else {
      net::listenExclusive(socket, address, 128);  // a taken port is a start-up error
    }
    host_ = address.host().toString();
    port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(options_.threads);
    params->setMaxQueued(1024);
    params->setKeepAlive(true);
    params->setTimeout(Poco::Timespan(options_.timeout_s, 0));
    params->setKeepAliveTimeout(Poco::Timespan(options_.keep_alive_s, 0));
    params->setMaxKeepAliveRequests(1000);
    push_shares_ =
        std::make_unique<PushShares>(options_.pushes_per_feed, options_.pushes_per_agency);
    audit_gate_ = std::make_unique<AuditGate>();
    stream_ = std::make_unique<DeltaStream>();
    layer_cache_ = std::make_unique<LayerCache>(
        LayerCache::Limits{options_.layer_cache_mb << 20, options_.feature_cache_mb << 20,
                           options_.polygon_cache_mb << 20, options_.spare_buffer_mb << 20});
    if (context_.fusion) {
      auto* stream = stream_.get();
      // The map's stream is live: a delta goes out as soon as fusion computed it.
      listener_ = context_.fusion->addListener(
          [stream](const fusion::FusionDelta& d) { stream->publish(d); },
          /*live=*/true);
    }
    pool_ = std::make_unique<Poco::ThreadPool>(2, std::max(options_.threads, 2));
    server_ = std::make_unique<LimitedHttpServer>(
        new Factory({context_, options_, *stream_, *layer_cache_, *push_shares_, *audit_gate_}),
        *pool_, socket, params, options_.max_connections_per_client);
    server_->start();
  } catch (const Poco::Net::SSLException& e) {
    return Status::invalidArgument("HTTPS: " + e.displayText() + " (http.tls.cert " +
                                   options_.tls_cert + ", http.tls.key " + options_.tls_key + ")");
  } catch (const Poco::Exception& e) {
    return Status::unavailable("cannot listen on " + options_.listen + ": " + e.displayText());
  }
  FIREHUB_LOG(kInfo, "api", "listening on " << scheme_ << "://" << host_ << ":" << port_);
  return Status::ok();
}

void ApiServer::stop() {
  if (listener_ && context_.fusion) context_.fusion->removeListener(listener_);
  listener_ = 0;
  if (stream_) stream_->close();  // ends open event streams
  if (server_) {
    server_->stopAll(true);
    // Poco's stop does not wait for handlers already running (an event stream sleeping between
    // polls, a long push); they use this server's context, so wait for them (bounded).
    for (int i = 0;
         i < 1000 && (server_->currentThreads() > 0 || (stream_ && stream_->clients() > 0)); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (server_->currentThreads() > 0) {
      FIREHUB_LOG(kWarning, "api",
                  server_->currentThreads() << " request handler(s) still running at shutdown");
    }
    server_.reset();
    pool_->joinAll();
    pool_.reset();
  }
}

}  // namespace firehub::api
