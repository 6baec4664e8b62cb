// A small blocking HTTP client over Poco for the CLI (ingest, demo). HTTPS hubs are checked
// against the system's CAs, or the PEM file named by FIREHUB_CA_FILE (a hub with its own CA).
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>

namespace firehub::cli {

struct HttpReply {
  int status = 0;
  std::string body;
  std::string next_cursor;  // X-Next-Cursor: the next page of a paged list, if any
};

// A session to the URL's host: HTTPS with certificate and host name checks for https URLs.
inline std::unique_ptr<Poco::Net::HTTPClientSession> sessionFor(const Poco::URI& uri) {
  if (uri.getScheme() != "https")
    return std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  const char* ca = std::getenv("FIREHUB_CA_FILE");
  const bool own_ca = ca && *ca;
  Poco::Net::Context::Ptr context =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", own_ca ? ca : "",
                             Poco::Net::Context::VERIFY_STRICT, 9, !own_ca);
  return std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), context);
}

// Sends one request; throws Poco::Exception on connection errors (and refused certificates).
inline HttpReply httpRequest(const std::string& base_url, const std::string& method,
                             const std::string& path, const std::string& content_type,
                             const std::string& body, const std::string& api_key = "") {
  Poco::URI uri(base_url);
  auto owned = sessionFor(uri);
  Poco::Net::HTTPClientSession& session = *owned;
  session.setTimeout(Poco::Timespan(120, 0));
  Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!content_type.empty()) req.setContentType(content_type);
  if (!api_key.empty()) req.set("Authorization", "Bearer " + api_key);
  req.setContentLength(static_cast<std::streamsize>(body.size()));
  session.sendRequest(req) << body;
  Poco::Net::HTTPResponse resp;
  std::istream& in = session.receiveResponse(resp);
  HttpReply reply;
  reply.status = resp.getStatus();
  reply.next_cursor = resp.get("X-Next-Cursor", "");
  std::ostringstream os;
  Poco::StreamCopier::copyStream(in, os);
  reply.body = os.str();
  return reply;
}

}  // namespace firehub::cli
