// Helpers every text-format connector needs: an RFC 4180 CSV reader that keeps line numbers and
// the raw bytes of each row (for dead letters), NDJSON line splitting, and ISO 8601 time parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/timestamp.pb.h>

namespace firehub::sdk {

struct CsvRow {
  std::vector<std::string> fields;
  std::string_view raw;  // the row's bytes in the input, without the line break
  size_t line = 0;       // 1-based line number where the row starts
};

// Reads CSV rows one by one. Quoted fields may contain the delimiter, doubled quotes and line
// breaks. A row with an unterminated quote is returned with `error` set.
class CsvReader {
 public:
  CsvReader(std::string_view data, char delimiter = ',');
  // Returns false at end of input.
  bool next(CsvRow& row, std::string& error);

 private:
  std::string_view data_;
  char delimiter_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

struct Line {
  std::string_view text;  // without the line break (and without a trailing '\r')
  size_t number = 0;      // 1-based
};

// Splits text into lines; blank lines are skipped.
std::vector<Line> splitLines(std::string_view data);

// Parses an ISO 8601 / RFC 3339 date-time ("2026-11-22T08:00:00+08:00", "...Z", fractional
// seconds allowed, 'T' or ' ' between date and time). A value without an offset is read in
// `default_offset_minutes` (east of UTC). Returns nullopt when the text is not such a time.
std::optional<google::protobuf::Timestamp> parseIsoTime(std::string_view text,
                                                        int default_offset_minutes);
// The general reader parseIsoTime falls back to for shapes other than the common one (absl's
// parser; the text as given, no trimming or length check).
std::optional<google::protobuf::Timestamp> parseIsoTimeGeneral(std::string text,
                                                               int default_offset_minutes);

// Parses "+08:00", "-05:30", "Z" into minutes east of UTC.
std::optional<int> parseUtcOffset(std::string_view text);

// Parses a decimal number; rejects trailing garbage, empty text, NaN and infinities.
std::optional<double> parseDouble(std::string_view text);

// Trims ASCII whitespace on both sides.
std::string_view trim(std::string_view text);

}  // namespace firehub::sdk
