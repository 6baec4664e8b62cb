// RFC 3339 text of google.protobuf.Timestamp, shared by the hub and the plugins: written as the
// protobuf JSON mapping writes it, and read quickly in the shape agencies send.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <optional>
#include <string>
#include <string_view>

namespace firehub::v1 {

// Appends `t` in UTC with 0, 3, 6 or 9 fractional digits and a 'Z', the same text as protobuf's
// TimeUtil::ToString (which it falls back to outside the years 0001-9999).
void appendRfc3339(std::string& out, const google::protobuf::Timestamp& t);
std::string rfc3339(const google::protobuf::Timestamp& t);
// The same text cut to milliseconds (0 or 3 fractional digits): every time the API and the JSON
// topics write.
void appendRfc3339Millis(std::string& out, const google::protobuf::Timestamp& t);
std::string rfc3339Millis(int64_t unix_ms);

// Reads "YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]][Z|+HH:MM|-HH:MM]" (nothing before or after); a
// time without an offset is in `default_offset_minutes` east of UTC. Fractions finer than a
// microsecond are dropped. Nullopt when the text is not of exactly that shape or a field is out
// of its range (a general parser may still read it): it never reads a text differently from a
// general RFC 3339 parser.
std::optional<google::protobuf::Timestamp> parseRfc3339Common(std::string_view text,
                                                              int default_offset_minutes);

}  // namespace firehub::v1
