// Cluster mode: a node's lake made anew from a peer's snapshot.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <Poco/Zip/Decompress.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include "firehub/api.h"
#include "firehub/hub.h"
#include "firehub/log.h"

namespace firehub {

Result<RebuildReport> rebuildLakeFromPeer(const std::string& peer_url, const std::string& api_key,
                                          const std::string& data_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(data_dir);
  const fs::path lake = dir / "lake";
  const fs::path incoming = dir / "lake.incoming";
  const fs::path zip = dir / "lake.snapshot.zip";
  RebuildReport report;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::unavailable("cannot make " + data_dir + ": " + ec.message());
  fs::remove_all(incoming, ec);
  try {
    // The snapshot, to a file first: a broken transfer leaves the present lake as it is.
    Poco::URI uri(peer_url);
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (uri.getScheme() == "https")
      session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort());
    else if (uri.getScheme() == "http")
      session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    else
      return Status::invalidArgument("--from must be an http:// or https:// address of a node");
    session->setTimeout(Poco::Timespan(600, 0));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/api/v1/cluster/snapshot",
                               Poco::Net::HTTPMessage::HTTP_1_1);
    if (!api_key.empty()) req.set("Authorization", "Bearer " + api_key);
    session->sendRequest(req);
    Poco::Net::HTTPResponse resp;
    std::istream& in = session->receiveResponse(resp);
    if (resp.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
      std::string body;
      Poco::StreamCopier::copyToString(in, body);
      return Status::unavailable("the peer answered " + std::to_string(resp.getStatus()) + ": " +
                                 body.substr(0, 500));
    }
    {
      std::ofstream out(zip, std::ios::binary | std::ios::trunc);
      report.bytes = Poco::StreamCopier::copyStream64(in, out);
      out.flush();
      if (!out) return Status::unavailable("cannot write " + zip.string());
    }
    std::ifstream file(zip, std::ios::binary);
    Poco::Zip::Decompress unzip(file, Poco::Path(incoming.string() + "/"));
    unzip.decompressAllFiles();
    report.files = unzip.mapping().size();
  } catch (const Poco::Exception& e) {
    fs::remove_all(incoming, ec);
    return Status::unavailable("snapshot from " + peer_url + ": " + e.displayText());
  }
  fs::remove(zip, ec);
  // The copy opens as a lake; what the peer had not sent to Kafka yet is the peer's to send.
  {
    lake::LakeOptions options;
    options.path = incoming.string();
    options.area_indexes = api::pointLayerIndexes();  // as the hub opens it: nothing rebuilt
    auto opened = lake::Lake::open(options);
    if (!opened.isOk()) {
      fs::remove_all(incoming, ec);
      return Status(opened.status().code(),
                    "the snapshot does not open as a lake: " + opened.status().message());
    }
    report.dropped_deliveries = (*opened)->outboxDepth();
    FIREHUB_RETURN_IF_ERROR((*opened)->clearOutbox());
  }
  // The lake it replaces stays beside it, for a look, until an operator removes it.
  if (fs::exists(lake)) {
    const auto stamp = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    report.replaced = (dir / ("lake.replaced-" + std::to_string(stamp))).string();
    fs::rename(lake, report.replaced, ec);
    if (ec) return Status::unavailable("cannot move the present lake aside: " + ec.message());
  }
  fs::rename(incoming, lake, ec);
  if (ec) return Status::unavailable("cannot put the new lake in place: " + ec.message());
  FIREHUB_LOG(kInfo, "cluster",
              "lake rebuilt from " << peer_url << ": " << report.files << " files, " << report.bytes
                                   << " bytes");
  return report;
}

}  // namespace firehub
