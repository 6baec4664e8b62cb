#include <sys/resource.h>

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

#include "api/entity_follower.h"
#include "api/http_server.h"
#include "api/router.h"
#include "api/layers.h"
#include "firehub/api.h"
#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/net.h"
#include "firehub/v1/options.pb.h"

namespace firehub::api {
namespace {

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
    case StatusCode::kMethodNotAllowed:
      return 405;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
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
      // A wall of screens reconnects at once: a deep accept queue (the kernel caps it at
      // net.core.somaxconn).
      net::listenExclusive(socket, address, 4096);  // a taken port is a start-up error
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
    tiles_ = std::make_unique<TileService>(context_, options_.tile_cache_mb << 20);
    search_index_ = std::make_unique<SearchIndex>(context_);
    follower_ = std::make_unique<EntityFollower>(context_.lake, context_.fusion);
    tiles_->start(*follower_);
    search_index_->start(*follower_);
    follower_->start();
    if (context_.fusion) {
      auto* stream = stream_.get();
      // The map's stream is live: a delta goes out as soon as fusion computed it.
      listener_ = context_.fusion->addListener(
          [stream](const fusion::FusionDelta& d) { stream->publish(d); },
          /*live=*/true);
    }
    if (scheme_ == "https") {
      pool_ = std::make_unique<Poco::ThreadPool>(2, std::max(options_.threads, 2));
      server_ = std::make_unique<LimitedHttpServer>(
          new Factory({context_, options_, *stream_, *layer_cache_, *push_shares_, *audit_gate_,
                       *tiles_, *search_index_, nullptr}),
          *pool_, socket, params, options_.max_connections_per_client);
      server_->start();
    } else {
      // Every connection is a descriptor: the open-files limit goes up to what they may take.
      rlimit files{};
      if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
        const rlim_t want = std::min<rlim_t>(files.rlim_max, options_.max_connections + 4096);
        if (files.rlim_cur < want) {
          files.rlim_cur = want;
          setrlimit(RLIMIT_NOFILE, &files);
        }
        if (files.rlim_cur < options_.max_connections) {
          FIREHUB_LOG(kWarning, "api",
                      "the open-files limit (" << files.rlim_cur
                                               << ") is below http.max_connections ("
                                               << options_.max_connections << ")");
        }
      }
      streams_ = std::make_unique<StreamHub>(context_, *stream_);
      streams_->start();
      EventFront::Limits limits;
      limits.threads = options_.threads;
      limits.max_connections = options_.max_connections;
      limits.max_per_client = options_.max_connections_per_client;
      limits.header_timeout_s = options_.header_timeout_s;
      limits.keep_alive_s = options_.keep_alive_s;
      limits.timeout_s = options_.timeout_s;
      front_ = std::make_unique<EventFront>(
          socket,
          new Factory({context_, options_, *stream_, *layer_cache_, *push_shares_, *audit_gate_,
                       *tiles_, *search_index_, streams_.get()}),
          params, limits);
      front_->start();
    }
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
  if (follower_) follower_->stop();
  if (tiles_) tiles_->stop();
  if (stream_) stream_->close();  // ends open event streams
  if (front_) {
    front_->stop();  // waits for the requests being answered (each within its time limits)
    front_.reset();
  }
  if (streams_) {
    streams_->stop();
    streams_.reset();
  }
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
