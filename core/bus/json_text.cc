// JSON text pieces the renderers share: strings escaped as JSON wants them, timestamps in
// RFC 3339.
// The protobuf JSON mapping of a message, written straight into a string by walking the
// descriptors. Same output rules as protobuf's JsonPrintOptions{preserve_proto_field_names,
// always_print_primitive_fields}; written here because protobuf 3.21's converter builds an
// object tree per message and was the publisher's largest cost in profiles (see
// docs/benchmarks.md). record_json_test checks the two agree.
#include <absl/container/flat_hash_map.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "firehub/bus.h"
#include "firehub/classification.h"
#include "firehub/v1/time_text.h"

namespace firehub::bus {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool plain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f; }

// Whether any of the 8 bytes of x needs escaping (a control character, '"', '\\' or DEL),
// tested on all eight at once.
bool anyToEscape(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  auto zeroByte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (x - kOnes * 0x20) & ~x & kHigh;
  return (below_space | zeroByte(x ^ (kOnes * '"')) | zeroByte(x ^ (kOnes * '\\')) |
          zeroByte(x ^ (kOnes * 0x7f))) != 0;
}
}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // characters that need no escaping are appended in runs
  for (uint64_t word; run + 8 <= s.size(); run += 8) {
    std::memcpy(&word, s.data() + run, 8);
    if (anyToEscape(word)) break;
  }
  while (run < s.size() && plain(static_cast<unsigned char>(s[run]))) ++run;
  out.append(s.data(), run);
  for (unsigned char c : s.substr(run)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// RFC 3339 in UTC with 0 or 3 fractional digits: times are written to the millisecond.
void appendJsonTimestamp(std::string& out, const google::protobuf::Timestamp& t) {
  out.push_back('"');
  firehub::v1::appendRfc3339Millis(out, t);
  out.push_back('"');
}

}  // namespace firehub::bus
