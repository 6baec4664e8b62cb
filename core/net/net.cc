#include "firehub/net.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/DNS.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/URI.h>

#include <cstring>
#include <memory>
#include <istream>
#include <mutex>
#include <sstream>

namespace firehub::net {
namespace {

using Poco::Net::IPAddress;

struct Special {
  const char* network;
  const char* what;
};

// Ranges a request may not make the hub connect to (RFC 6890 special-purpose, plus the cloud
// metadata address inside link-local).
constexpr Special kSpecial[] = {
    {"169.254.169.254/32", "the cloud metadata address"},
    {"0.0.0.0/8", "a 'this network' address"},
    {"10.0.0.0/8", "a private address"},
    {"100.64.0.0/10", "a shared (carrier-grade NAT) address"},
    {"127.0.0.0/8", "a loopback address"},
    {"169.254.0.0/16", "a link-local address"},
    {"172.16.0.0/12", "a private address"},
    {"192.0.0.0/24", "an IETF protocol address"},
    {"192.168.0.0/16", "a private address"},
    {"198.18.0.0/15", "a benchmarking address"},
    {"224.0.0.0/4", "a multicast address"},
    {"240.0.0.0/4", "a reserved address"},
    {"::1/128", "a loopback address"},
    {"fc00::/7", "a private (unique local) address"},
    {"fe80::/10", "a link-local address"},
    {"ff00::/8", "a multicast address"},
};

const std::vector<std::pair<Network, std::string>>& specialNetworks() {
  static const std::vector<std::pair<Network, std::string>> networks = [] {
    std::vector<std::pair<Network, std::string>> out;
    for (const auto& s : kSpecial) out.emplace_back(parseNetwork(s.network).value(), s.what);
    // "::" (Poco's parser does not take it): the IPv6 wildcard.
    out.emplace_back(Network{IPAddress(IPAddress::IPv6), 128}, "the unspecified address");
    return out;
  }();
  return networks;
}

// The IPv4 address inside an IPv4-mapped or IPv4-compatible IPv6 address, else the address.
IPAddress unmapped(const IPAddress& ip) {
  if (ip.family() != IPAddress::IPv6 || !(ip.isIPv4Mapped() || ip.isIPv4Compatible())) return ip;
  const auto* bytes = static_cast<const unsigned char*>(ip.addr());
  if (ip.isIPv4Compatible() && (ip.isWildcard() || ip.isLoopback())) return ip;
  return IPAddress(bytes + 12, 4);
}

Poco::Net::Context::Ptr clientContext(const std::string& ca_file) {
  static std::mutex mu;
  static std::map<std::string, Poco::Net::Context::Ptr> contexts;
  std::lock_guard<std::mutex> lock(mu);
  auto& ctx = contexts[ca_file];
  if (!ctx) {
    static std::once_flag once;
    std::call_once(once, [] {
      Poco::Net::initializeSSL();
      // A certificate that fails its checks is refused, never asked about.
      Poco::Net::SSLManager::instance().initializeClient(
          nullptr, new Poco::Net::RejectCertificateHandler(false), nullptr);
    });
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
    params.caLocation = ca_file;
    params.loadDefaultCAs = ca_file.empty();
    params.cipherList = "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES";
    ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    ctx->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                          Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
  }
  return ctx;
}

}  // namespace

void listenExclusive(Poco::Net::ServerSocket& socket, const Poco::Net::SocketAddress& address,
                     int backlog) {
  socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
  socket.listen(backlog);
}

bool Network::contains(const IPAddress& ip) const {
  IPAddress probe = unmapped(ip);
  if (probe.family() != address.family()) return false;
  IPAddress mask(prefix, address.family());
  return (probe & mask) == (address & mask);
}

Result<Network> parseNetwork(const std::string& text) {
  std::string t = text;
  t.erase(0, t.find_first_not_of(" \t"));
  t.erase(t.find_last_not_of(" \t") + 1);
  auto slash = t.find('/');
  IPAddress ip;
  if (!IPAddress::tryParse(t.substr(0, slash), ip)) {
    return Status::invalidArgument("'" + text + "' is not an IP address or network (a.b.c.d/n)");
  }
  unsigned max = ip.family() == IPAddress::IPv4 ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string::npos) {
    std::string n = t.substr(slash + 1);
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(n) > max) {
      return Status::invalidArgument("'" + text + "': the prefix length must be 0.." +
                                     std::to_string(max));
    }
    prefix = static_cast<unsigned>(std::stoul(n));
  }
  return Network{ip, prefix};
}

Result<std::vector<Network>> parseAllowList(const std::string& text) {
  std::vector<Network> out;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.find_first_not_of(" \t") == std::string::npos) continue;
    auto n = parseNetwork(item);
    if (!n.isOk()) return n.status();
    out.push_back(n.value());
  }
  return out;
}

std::string OutboundPolicy::refusal(const IPAddress& ip) const {
  for (const auto& n : options_.allow) {
    if (n.contains(ip)) return "";
  }
  for (const auto& [network, what] : specialNetworks()) {
    if (network.contains(ip)) {
      return ip.toString() + " is " + what + " (an admin may allow it with outbound.allow)";
    }
  }
  return "";
}

Result<Poco::Net::SocketAddress> OutboundPolicy::resolve(const std::string& host,
                                                         uint16_t port) const {
  std::vector<IPAddress> addresses;
  IPAddress literal;
  if (IPAddress::tryParse(host, literal)) {
    addresses.push_back(literal);
  } else {
    try {
      addresses = Poco::Net::DNS::hostByName(host).addresses();
    } catch (const Poco::Exception& e) {
      return Status::unavailable("cannot resolve " + host + ": " + e.displayText());
    }
  }
  std::string why;
  for (const auto& ip : addresses) {
    std::string refused = refusal(ip);
    if (refused.empty()) return Poco::Net::SocketAddress(ip, port);
    if (why.empty()) why = refused;
  }
  if (why.empty()) return Status::unavailable(host + " has no address");
  return Status::permissionDenied("may not connect to " + host + ": " + why);
}

Status checkUrlShape(const std::string& url) {
  Poco::URI uri;
  try {
    uri = Poco::URI(url);
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("'" + url + "' is not a URL: " + e.displayText());
  }
  if ((uri.getScheme() != "http" && uri.getScheme() != "https") || uri.getHost().empty()) {
    return Status::invalidArgument("the URL must be http:// or https:// with a host");
  }
  if (!uri.getUserInfo().empty()) {
    return Status::invalidArgument("the URL may not carry credentials (user:password@)");
  }
  return Status::ok();
}

Status OutboundPolicy::checkUrl(const std::string& url) const {
  FIREHUB_RETURN_IF_ERROR(checkUrlShape(url));
  const Poco::URI uri(url);
  auto address = resolve(uri.getHost(), uri.getPort());
  if (!address.isOk() && address.status().code() == StatusCode::kPermissionDenied) {
    return address.status();
  }
  return Status::ok();  // a name that does not resolve yet is retried at delivery
}

Result<OutboundResponse> post(const OutboundPolicy& policy, const std::string& url,
                              const std::map<std::string, std::string>& headers,
                              const std::string& content_type, const std::string& body,
                              int timeout_s) {
  return request(policy, "POST", url, headers, content_type, body, timeout_s, 64u << 10);
}

Result<OutboundResponse> request(const OutboundPolicy& policy, const std::string& method,
                                 const std::string& url,
                                 const std::map<std::string, std::string>& headers,
                                 const std::string& content_type, const std::string& body,
                                 int timeout_s, size_t max_body) {
  Poco::URI uri;
  try {
    uri = Poco::URI(url);
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("not a URL: " + e.displayText());
  }
  const bool tls = uri.getScheme() == "https";
  if (!tls && uri.getScheme() != "http") return Status::invalidArgument("not an http(s) URL");
  auto address = policy.resolve(uri.getHost(), uri.getPort());
  if (!address.isOk()) return address.status();
  try {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    const Poco::Timespan timeout(timeout_s, 0);
    if (tls) {
      // The session takes the socket before it connects (Poco's HTTPS session refuses one that
      // is connected already); it then connects to the checked address, the TLS name (SNI and
      // the certificate check) staying the URL's host.
      Poco::Net::SecureStreamSocket socket(clientContext(policy.options().ca_file));
      socket.setPeerHostName(uri.getHost());
      session = std::make_unique<Poco::Net::HTTPSClientSession>(socket);
      socket.connect(address.value(), timeout);
      socket.setReceiveTimeout(timeout);
      socket.setSendTimeout(timeout);
    } else {
      session = std::make_unique<Poco::Net::HTTPClientSession>(address.value());
    }
    session->setTimeout(timeout);
    Poco::Net::HTTPRequest req(method, uri.getPathAndQuery().empty() ? "/" : uri.getPathAndQuery(),
                               Poco::Net::HTTPMessage::HTTP_1_1);
    req.setHost(uri.getHost(), uri.getPort());
    if (!content_type.empty()) req.setContentType(content_type);
    if (method != "GET" || !body.empty())
      req.setContentLength(static_cast<std::streamsize>(body.size()));
    for (const auto& [k, v] : headers) req.set(k, v);
    session->sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session->receiveResponse(resp);
    OutboundResponse out;
    out.status = static_cast<int>(resp.getStatus());
    out.etag = resp.get("ETag", "");
    out.last_modified = resp.get("Last-Modified", "");
    out.content_type = resp.get("Content-Type", "");
    out.link = resp.get("Link", "");
    char buf[4096];
    while (in && out.body.size() < max_body) {
      in.read(buf, sizeof buf);
      out.body.append(buf, static_cast<size_t>(in.gcount()));
    }
    out.cut = static_cast<bool>(in) && in.peek() != std::char_traits<char>::eof();
    return out;
  } catch (const Poco::Net::SSLException& e) {
    return Status::unavailable("TLS with " + uri.getHost() + ": " + e.displayText());
  } catch (const Poco::Exception& e) {
    return Status::unavailable(e.displayText());
  }
}

}  // namespace firehub::net
