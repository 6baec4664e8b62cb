// The API's router: one handler object per request (Router), dispatching by path to the
// handlers of each resource, whose definitions live in a file each (feeds.cc, keys_audit.cc,
// subscriptions.cc, records.cc, dead_letters.cc, static.cc, layer_routes.cc; router.cc holds
// authentication, the dispatch and the HTTP plumbing). Private to the api module.
#pragma once

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
#include "api/paging.h"
#include "api/front.h"
#include "api/search_index.h"
#include "api/tiles.h"
#include "firehub/api.h"
#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/net.h"
#include "firehub/v1/options.pb.h"

namespace firehub::api {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

std::string jsonString(const std::string& s);

// Whether a feed's connector config names a listen address (a TCP listener of the hub's).
bool configHasListen(const std::string& config_json);

std::string toJson(const Poco::JSON::Object& obj);

// The API's OpenAPI 3.1 description as JSON (docs/openapi.yaml, embedded at build time).
std::string_view openApiJson();

// The request target's path segments, each percent-decoded exactly once: an encoded '/' stays
// inside its segment (record ids may hold one) and "%252f" stays "%2f". Poco::URI decodes the
// whole path when it parses a URI, so the segments are taken from the raw target instead.
Result<std::vector<std::string>> pathSegments(const std::string& target);

// Text from a request as it goes into the audit log: at most `max` bytes.
std::string bounded(const std::string& text, size_t max);

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
  // A slot taken, given back when this goes.
  struct Held {
    PushShares* shares = nullptr;
    std::string feed, agency;
    Held() = default;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
      if (shares) shares->give(feed, agency);
    }
  };

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

// What every request's handler shares: the server's context, options and state.
struct Shared {
  const ApiContext& ctx;
  const ApiOptions& options;
  DeltaStream& stream;
  LayerCache& layer_cache;
  PushShares& push_shares;
  AuditGate& audit_gate;
  TileService& tiles;
  SearchIndex& search_index;
  StreamHub* streams;  // null under HTTPS: streams hold a thread each there
};

class Router : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Router(const Shared& s)
      : ctx_(s.ctx),
        options_(s.options),
        stream_(s.stream),
        layer_cache_(s.layer_cache),
        push_shares_(s.push_shares),
        audit_gate_(s.audit_gate),
        tiles_(s.tiles),
        search_index_(s.search_index),
        streams_(s.streams) {}

  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override;

 private:
  // Sets who_ from the bearer key, or from the anonymous loopback rule. Answers 401 and returns
  // false when the request may not go on.
  bool authenticate(HTTPServerRequest& req, HTTPServerResponse& resp);

  bool tls() const { return !options_.tls_cert.empty(); }
  // Event streams of the stream hub (plain HTTP) at most.
  static constexpr size_t kMaxHubStreams = 10000;
  // Event streams hold a thread each for their whole life (HTTPS, and subscriptions' events): at
  // most a quarter of the threads.
  size_t maxStreams() const { return static_cast<size_t>(std::max(options_.threads / 4, 1)); }

  // For long answers (streams): whether the key that opened the request is still valid.
  bool stillAuthorised() const;

  // Whether the request comes from a reader on this machine: the client (the peer, or the address
  // a trusted proxy forwards for) is a loopback address, nothing else forwarded it, and it asked
  // for this machine by a loopback name (a page of another site whose name resolves to 127.0.0.1
  // does not count: DNS rebinding).
  bool localReader(const HTTPServerRequest& req) const;

  bool unauthorized(HTTPServerResponse& resp, const std::string& why);

  // A push's body, read once a push share of `feed` and `agency` is held (given back with
  // `held`); nullopt when the answer (503 without a share, or the read's error) is sent.
  std::optional<std::string> sharedBody(HTTPServerRequest& req, HTTPServerResponse& resp,
                                        const std::string& feed, const std::string& agency,
                                        PushShares::Held& held);
  // Tiers (tier_routes.cc).
  // Whether the request comes from a child hub (tier.children) over its link; answers it when not.
  bool childHub(HTTPServerRequest& req, HTTPServerResponse& resp, std::string& name,
                std::string& level);
  void tierRecords(HTTPServerRequest& req, HTTPServerResponse& resp);
  void tierDown(HTTPServerRequest& req, HTTPServerResponse& resp);
  void tierRiskLayer(HTTPServerRequest& req, HTTPServerResponse& resp);
  firehub::v1::Record draftRecord(const firehub::v1::WarningDraft& d, int64_t bucket) const;
  void upstream(HTTPServerResponse& resp);
  void startBackup(HTTPServerRequest& req, HTTPServerResponse& resp);
  void backupState(HTTPServerResponse& resp);
  // History (history.cc).
  using TimedWalk = std::function<Status(int64_t from, int64_t to, std::string_view after,
                                         const lake::Lake::TimedFn& fn)>;
  void timedRecords(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& list,
                    const TimedWalk& walk);
  void entityHistory(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& domain,
                     const std::string& entity_id);
  void recordsByTime(HTTPServerRequest& req, HTTPServerResponse& resp);
  void riskLayerAt(HTTPServerResponse& resp, const std::string& at_text,
                   const std::optional<std::string>& bbox_text,
                   const std::optional<std::string>& limit_text);
  void riskCellAt(HTTPServerResponse& resp, const std::string& token, const std::string& at_text);
  void lakeState(HTTPServerResponse& resp);
  // PUT (operators) and GET /api/v1/fwi/stations/{station}/start (fwi_routes.cc).
  void fwiStart(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& station,
                bool put);
  void runRetention(HTTPServerResponse& resp);
  bool forbid(HTTPServerResponse& resp, const std::string& why);

  // When the request's If-None-Match is `etag`: answers 304 with it and returns true.
  bool notModified(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& etag);
  void send(HTTPServerResponse& resp, int status, const std::string& body,
            const std::string& type = "application/json");

  // Sends `body` after the status and headers set on `resp`. Poco's response streams pass the
  // body through a 4 KiB buffer, one send() each; a large body (a layer view is megabytes) goes
  // to the socket in as few calls as the kernel takes, once the headers are flushed.
  void sendBody(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& body);

  void sendError(HTTPServerResponse& resp, const Status& s);

  // Reads and drops what is left of a refused body (up to a bound), so the client can read the
  // error instead of seeing its upload reset. Past the bound the connection is closed.
  void discardBody(HTTPServerRequest& req, HTTPServerResponse& resp);

  // Reads the whole body within the size limit. A body that ends before its Content-Length, or
  // a chunked body that ends before its last (zero) chunk, is refused: a client that hung up
  // half way must not have half its data stored and acknowledged.
  Result<std::string> readBody(HTTPServerRequest& req);

  // A chunked body, decoded here rather than by Poco's chunked stream, which reads a connection
  // closed in the middle of a chunk (or before the last chunk) as a clean end. The connection
  // is closed after the answer: bytes read past the body are not handed back to Poco.
  Result<std::string> readChunkedBody(HTTPServerRequest& req);

  void route(HTTPServerRequest& req, HTTPServerResponse& resp);
  // A query parameter of the request (the first of its name).
  std::optional<std::string> param(const std::string& name) const;
  static std::string allowedMethods(const std::vector<std::string>& path);

  // The bytes of the bounded caches and buffers, and the whole process's resident memory, for
  // an operator asking where the memory went.
  void setMemoryGauges();

  void ready(HTTPServerResponse& resp, bool detailed);

  void kafka(HTTPServerResponse& resp);

  // This node's place in its cluster: its replica's progress and lag, per partition.
  void cluster(HTTPServerResponse& resp);
  // GET /api/v1/cluster/snapshot (admins): this node's lake as a zip (cluster_routes.cc).
  void clusterSnapshot(HTTPServerResponse& resp);

  // ingest.ack = replicated: waits until Kafka confirmed every outbox entry up to `sequence`;
  // false after the timeout.
  bool awaitReplicated(uint64_t sequence) const;

  void plugins(HTTPServerResponse& resp);

  Poco::JSON::Object feedJson(registry::Feed& feed);

  void createFeed(HTTPServerRequest& req, HTTPServerResponse& resp);

  static int64_t nowSeconds();

  void manageFeed(HTTPServerResponse& resp, const std::string& id, const std::string& action);

  // The shared directory: every topic and layer with its owner, schema, classification,
  // cadence, last update and record count.
  void catalog(HTTPServerResponse& resp);

  void addGrant(HTTPServerRequest& req, HTTPServerResponse& resp);

  void listGrants(HTTPServerResponse& resp);

  void subscribe(HTTPServerRequest& req, HTTPServerResponse& resp);

  void listSubscriptions(HTTPServerResponse& resp);

  // The subscription's records as server-sent events, read from the lake's log: each event's id
  // is the record's log sequence, so a client reconnecting with Last-Event-ID misses nothing.
  void subscriptionEvents(HTTPServerRequest& req, HTTPServerResponse& resp,
                          const subs::Subscription& sub);

  void listFeeds(HTTPServerResponse& resp);

  void showFeed(HTTPServerResponse& resp, const std::string& id);

  // PATCH /api/v1/feeds/{id}: a JSON merge patch (RFC 7396) of the feed's definition, checked as
  // a new registration is (the id and the agency do not change).
  void patchFeed(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id);

  // PATCH /api/v1/subscriptions/{id}: a merge patch of filter, delivery (url, max_attempts) and
  // paused, checked as a new subscription is.
  void patchSubscription(HTTPServerRequest& req, HTTPServerResponse& resp,
                         const subs::Subscription& sub);

  // The API's OpenAPI 3.1 description.
  void openapi(HTTPServerResponse& resp);

  void warnings(HTTPServerResponse& resp);

  void showKey(HTTPServerResponse& resp, const std::string& id);

  // A record as the reader may see it: restricted fields removed (and named in "redacted") for
  // a key without the restricted grant.
  std::string recordJson(firehub::v1::Record& record) const;

  void push(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id);

  void record(HTTPServerResponse& resp, const std::string& id);

  void entities(HTTPServerResponse& resp, const std::optional<std::string>& domain,
                const std::optional<std::string>& bbox_text);

  void reply(HTTPServerResponse& resp, const Reply& r);

  // POST /api/v1/warnings/{draft}/issue: an operator turns a machine draft into the Actual CAP
  // message (audited like every write).
  void issueWarning(HTTPServerResponse& resp, const std::string& draft);

  static Poco::JSON::Object keyJson(const auth::KeyInfo& k);

  void createKey(HTTPServerRequest& req, HTTPServerResponse& resp);
  void ackAlert(HTTPServerResponse& resp, const std::string& id);
  // Sign-in sessions (session.cc).
  static std::string sessionCookie(const HTTPServerRequest& req);
  static std::string csrfOf(const std::string& session_key);
  void setSessionCookie(HTTPServerResponse& resp, const std::string& value, int64_t max_age_s);
  void signIn(HTTPServerRequest& req, HTTPServerResponse& resp);
  void sessionInfo(HTTPServerRequest& req, HTTPServerResponse& resp);
  void signOut(HTTPServerRequest& req, HTTPServerResponse& resp);
  void createUser(HTTPServerRequest& req, HTTPServerResponse& resp);
  static Poco::JSON::Object userJson(const auth::UserInfo& u);
  void listUsers(HTTPServerResponse& resp);
  void deleteUser(HTTPServerResponse& resp, const std::string& name);

  // "domains": an array of domain names (at most one per domain of the schema).
  static Result<std::vector<std::string>> domainList(const Poco::JSON::Object& o);

  // PATCH /api/v1/keys/{id} {"domains": [...]}: the domains an agency key may write.
  void patchKey(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id);

  void listKeys(HTTPServerResponse& resp);

  void revokeKey(HTTPServerResponse& resp, const std::string& id);

  void auditLog(HTTPServerResponse& resp);

  void auditVerify(HTTPServerResponse& resp);

  static Result<std::string> readFile(const std::string& path);

  // The one-map's files. The segments arrive decoded once; a segment holding '/', '\\', NUL or
  // starting with '.' (hidden files, "..") is refused, and the file's canonical path must stay
  // under the canonical static_dir (a symlink out of it is refused too).
  void staticFile(HTTPServerResponse& resp, const std::vector<std::string>& parts);

  void outlines(HTTPServerResponse& resp);

  void layer(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& name,
             const std::optional<std::string>& bbox_text,
             const std::optional<std::string>& limit_text,
             const std::optional<std::string>& offset_text,
             const std::optional<std::string>& properties_text,
             const std::optional<std::string>& cursor_text);

  // Server-sent events of risk deltas. Each event's id resumes the stream (Last-Event-ID); a
  // `reset` event tells the client to reload the layer.
  void riskStream(HTTPServerRequest& req, HTTPServerResponse& resp);
  // /tiles/{layer}.json and /tiles/{layer}/{z}/{x}/{y}.mvt (segments after "tiles").
  void tileRequest(HTTPServerRequest& req, HTTPServerResponse& resp,
                   const std::vector<std::string>& p);
  // /ogc/collections/{id}/tiles[/WebMercatorQuad[/{tileMatrix}/{tileRow}/{tileCol}]]; `p` is
  // the path after /ogc. False when the path is not one of them.
  bool ogcTiles(HTTPServerRequest& req, HTTPServerResponse& resp,
                const std::vector<std::string>& p);
  void sendTile(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& layer,
                const tiles::TileId& tile);
  std::string baseUrl(HTTPServerRequest& req) const {
    return (tls() ? "https://" : "http://") + req.getHost();
  }

  static bool validUtf8(const std::string& text);

  // Whether a dead letter's bytes may hold restricted fields: flagged when it was made, or (older
  // dead letters) its connector's domain has such fields.
  bool restrictedBytes(const firehub::v1::DeadLetter& dl) const;

  Poco::JSON::Object deadLetterJson(uint64_t sequence, const firehub::v1::DeadLetter& dl,
                                    size_t max_raw) const;

  void deadLetters(HTTPServerResponse& resp, const std::optional<std::string>& feed);

  static Result<int64_t> integerParam(const std::optional<std::string>& text, const char* name,
                                      int64_t min, int64_t max, int64_t fallback);

  bool mayHandleDeadLetter(const firehub::v1::DeadLetter& dl);

  void deadLetter(HTTPServerResponse& resp, const std::string& id, bool get);

  // POST /api/v1/dlq/replay {"feed": F} or {"ids": [..]}: every named (or the feed's) dead letter
  // through the current connector again.
  void replayDeadLetters(HTTPServerRequest& req, HTTPServerResponse& resp);

  const ApiContext& ctx_;
  const ApiOptions& options_;
  DeltaStream& stream_;
  LayerCache& layer_cache_;
  PushShares& push_shares_;
  AuditGate& audit_gate_;
  TileService& tiles_;
  SearchIndex& search_index_;
  StreamHub* streams_;
  auth::Principal who_;
  std::vector<std::pair<std::string, std::string>> query_;
  std::string audit_target_;
  bool truncated_ = false;  // the request's body was cut short (nothing of it is stored)
  bool resp_keep_alive_ = true;
};

}  // namespace firehub::api
