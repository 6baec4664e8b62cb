// A small blocking HTTP client over Poco for the CLI (ingest, demo).
#pragma once

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <sstream>
#include <string>

namespace firehub::cli {

struct HttpReply {
  int status = 0;
  std::string body;
};

// Sends one request; throws Poco::Exception on connection errors.
inline HttpReply httpRequest(const std::string& base_url, const std::string& method,
                             const std::string& path, const std::string& content_type,
                             const std::string& body, const std::string& api_key = "") {
  Poco::URI uri(base_url);
  Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
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
  std::ostringstream os;
  Poco::StreamCopier::copyStream(in, os);
  reply.body = os.str();
  return reply;
}

}  // namespace firehub::cli
