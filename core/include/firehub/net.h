// The hub's own network rules, in one place for every module that opens a socket:
//  - listening sockets are exclusive (no SO_REUSEPORT): a second hub on a taken port fails to
//    start instead of splitting the traffic with the first;
//  - outbound connections a request asked for (webhooks, later upstreams and pulls) reach only
//    addresses the operator allows: loopback, private, link-local, metadata and other special
//    ranges are refused after DNS resolution, on every connection, unless allow-listed
//    (outbound.allow); the connection goes to the address that was checked, and HTTPS checks the
//    peer's certificate against the system CAs or outbound.ca_file.
// @remark Thread-safe: an OutboundPolicy is immutable once made.
#pragma once

#include <Poco/Net/IPAddress.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "firehub/status.h"

namespace firehub::net {

// Binds `socket` to `address` with SO_REUSEADDR (a restart may bind while old connections are
// in TIME_WAIT) but without SO_REUSEPORT, and listens. Throws Poco::Net::NetException (address
// in use) like Poco's own constructor does.
void listenExclusive(Poco::Net::ServerSocket& socket, const Poco::Net::SocketAddress& address,
                     int backlog);

// An IPv4 or IPv6 network, e.g. 10.0.0.0/8 or fd00::/8.
struct Network {
  Poco::Net::IPAddress address;
  unsigned prefix = 0;
  bool contains(const Poco::Net::IPAddress& ip) const;
};
// Parses "a.b.c.d/n", "v6::/n" or a single address (a /32 or /128).
Result<Network> parseNetwork(const std::string& text);

struct OutboundOptions {
  // Networks that may be reached although they are special (outbound.allow, comma-separated
  // CIDRs). Default: none.
  std::vector<Network> allow;
  // PEM file of the CAs that HTTPS peers are checked against (outbound.ca_file); empty: the
  // system's CAs. Default: empty.
  std::string ca_file;
};

// Parses outbound.allow's text ("127.0.0.1/32, 10.1.0.0/16").
Result<std::vector<Network>> parseAllowList(const std::string& text);

// Whether `url` is an http:// or https:// URL with a host and without credentials (no DNS).
Status checkUrlShape(const std::string& url);

class OutboundPolicy {
 public:
  OutboundPolicy() = default;
  explicit OutboundPolicy(OutboundOptions options) : options_(std::move(options)) {}

  // Why `ip` may not be reached (e.g. "127.0.0.1 is a loopback address"), "" when it may.
  std::string refusal(const Poco::Net::IPAddress& ip) const;
  // Resolves `host` now and returns the first of its addresses that may be reached; a
  // PermissionDenied naming the host and the refused address when none may, Unavailable when
  // the name does not resolve.
  Result<Poco::Net::SocketAddress> resolve(const std::string& host, uint16_t port) const;
  // Checks a URL's scheme (http or https) and host as far as they can be checked without
  // connecting (at registration); the address is checked again on every connection.
  Status checkUrl(const std::string& url) const;
  const OutboundOptions& options() const { return options_; }

 private:
  OutboundOptions options_;
};

struct OutboundResponse {
  int status = 0;
  std::string body;           // at most the first 64 KiB (post), or max_body (request)
  bool cut = false;           // the answer was longer than that
  std::string etag;           // the answer's ETag header, if any
  std::string last_modified;  // its Last-Modified
  std::string content_type;   // its Content-Type, parameters and all
  std::string link;           // its Link header (RFC 8288), pages of a collection
};

// POSTs `body` to `url` under `policy`: resolved and checked now, connected to the checked
// address (the Host header and the TLS name stay the URL's host), HTTPS with certificate checks.
// Errors (refused address, connection, TLS, timeout) come back as a Status saying which.
Result<OutboundResponse> post(const OutboundPolicy& policy, const std::string& url,
                              const std::map<std::string, std::string>& headers,
                              const std::string& content_type, const std::string& body,
                              int timeout_s);
// The same for any method; the answer's body is read up to `max_body` bytes (a longer one is
// cut there: compare with the Content-Length the caller expects).
Result<OutboundResponse> request(const OutboundPolicy& policy, const std::string& method,
                                 const std::string& url,
                                 const std::map<std::string, std::string>& headers,
                                 const std::string& content_type, const std::string& body,
                                 int timeout_s, size_t max_body);

}  // namespace firehub::net
