// `firehub --version`.
#include <Poco/Environment.h>
#include <google/protobuf/stubs/common.h>
#include <librdkafka/rdkafka.h>
#include <rocksdb/version.h>

#include <sstream>

#include "version_info.h"

namespace firehub::cli {

std::string versionText() {
  std::ostringstream out;
  const unsigned poco = Poco::Environment::libraryVersion();
  out << "firehub " << kFirehubVersion << " (commit " << kFirehubCommit << ", " << kFirehubBuildType
      << ")\n"
      << "librdkafka " << rd_kafka_version_str() << "\n"
      << "RocksDB " << rocksdb::GetRocksVersionAsString() << "\n"
      << "protobuf " << google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION) << "\n"
      << "Poco " << (poco >> 24) << "." << ((poco >> 16) & 0xff) << "." << ((poco >> 8) & 0xff);
  return out.str();
}

}  // namespace firehub::cli
