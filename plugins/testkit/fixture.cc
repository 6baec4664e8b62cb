#include <fstream>
#include <sstream>

#include "firehub/testkit/decode.h"

namespace firehub::testkit {

std::string fixture(const std::string& connector, const std::string& file) {
  std::ifstream in(
      std::string(FIREHUB_SOURCE_DIR) + "/connectors/" + connector + "/tests/fixtures/" + file,
      std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace firehub::testkit
