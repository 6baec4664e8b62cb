#include "firehub/sdk/text.h"

#include <cmath>
#include <cstdlib>

#include <absl/time/time.h>

#include "firehub/v1/time_text.h"

namespace firehub::sdk {

CsvReader::CsvReader(std::string_view data, char delimiter) : data_(data), delimiter_(delimiter) {
  // Skip a UTF-8 byte order mark, which spreadsheet exports often carry.
  if (data_.size() >= 3 && data_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
}

bool CsvReader::next(CsvRow& row, std::string& error) {
  row.fields.clear();
  error.clear();
  // Skip blank lines.
  while (pos_ < data_.size() && (data_[pos_] == '\n' || data_[pos_] == '\r')) {
    if (data_[pos_] == '\n') ++line_;
    ++pos_;
  }
  if (pos_ >= data_.size()) return false;

  const size_t start = pos_;
  row.line = line_;
  std::string field;
  bool in_quotes = false;
  bool field_was_quoted = false;
  while (pos_ < data_.size()) {
    char c = data_[pos_];
    if (in_quotes) {
      if (c == '"') {
        if (pos_ + 1 < data_.size() && data_[pos_ + 1] == '"') {
          field.push_back('"');
          pos_ += 2;
          continue;
        }
        in_quotes = false;
        ++pos_;
        continue;
      }
      if (c == '\n') ++line_;
      field.push_back(c);
      ++pos_;
      continue;
    }
    if (c == '"' && field.empty() && !field_was_quoted) {
      in_quotes = true;
      field_was_quoted = true;
      ++pos_;
      continue;
    }
    if (c == delimiter_) {
      row.fields.push_back(std::move(field));
      field.clear();
      field_was_quoted = false;
      ++pos_;
      continue;
    }
    if (c == '\n' || c == '\r') break;
    field.push_back(c);
    ++pos_;
  }
  size_t end = pos_;
  if (pos_ < data_.size() && data_[pos_] == '\r') ++pos_;
  if (pos_ < data_.size() && data_[pos_] == '\n') {
    ++pos_;
    ++line_;
  }
  row.fields.push_back(std::move(field));
  row.raw = data_.substr(start, end - start);
  if (in_quotes) {
    // The quote never closed, so the rest of the body was read as one field. Only the row's own
    // line is bad: report it and go on with the next line, so the rows after it are not lost.
    error = "unterminated quoted field";
    size_t nl = data_.find('\n', start);
    size_t line_end = nl == std::string_view::npos ? data_.size() : nl;
    size_t raw_end = line_end > start && data_[line_end - 1] == '\r' ? line_end - 1 : line_end;
    row.raw = data_.substr(start, raw_end - start);
    row.fields.clear();
    pos_ = nl == std::string_view::npos ? data_.size() : nl + 1;
    line_ = row.line + (nl == std::string_view::npos ? 0 : 1);
  }
  return true;
}

std::vector<Line> splitLines(std::string_view data) {
  std::vector<Line> lines;
  size_t pos = 0;
  size_t number = 1;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t end = nl == std::string_view::npos ? data.size() : nl;
    std::string_view text = data.substr(pos, end - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (!trim(text).empty()) lines.push_back({text, number});
    ++number;
    pos = end + 1;
  }
  return lines;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r' ||
                           text.front() == '\n')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<double> parseDouble(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string copy(text);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int> parseUtcOffset(std::string_view text) {
  text = trim(text);
  if (text == "Z" || text == "z") return 0;
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return std::nullopt;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(text[1]) || !digit(text[2]) || !digit(text[4]) || !digit(text[5])) return std::nullopt;
  int h = (text[1] - '0') * 10 + (text[2] - '0');
  int m = (text[4] - '0') * 10 + (text[5] - '0');
  if (h > 14 || m > 59) return std::nullopt;
  int minutes = h * 60 + m;
  return text[0] == '-' ? -minutes : minutes;
}

std::optional<google::protobuf::Timestamp> parseIsoTimeGeneral(std::string s,
                                                               int default_offset_minutes) {
  if (s.size() > 10 && s[10] == ' ') s[10] = 'T';
  absl::Time t;
  std::string err;
  bool ok = absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", s, &t, &err) ||
            absl::ParseTime("%Y-%m-%dT%H:%M%Ez", s, &t, &err);
  if (!ok) {
    absl::TimeZone zone = absl::FixedTimeZone(default_offset_minutes * 60);
    ok = absl::ParseTime("%Y-%m-%dT%H:%M:%E*S", s, zone, &t, &err) ||
         absl::ParseTime("%Y-%m-%dT%H:%M", s, zone, &t, &err);
  }
  if (!ok) return std::nullopt;
  google::protobuf::Timestamp ts;
  int64_t micros = absl::ToUnixMicros(t);
  ts.set_seconds(micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000));
  ts.set_nanos(static_cast<int32_t>((micros - ts.seconds() * 1000000) * 1000));
  return ts;
}

std::optional<google::protobuf::Timestamp> parseIsoTime(std::string_view text,
                                                        int default_offset_minutes) {
  std::string_view s = trim(text);
  if (s.size() < 16 || s.size() > 40) return std::nullopt;
  if (auto common = firehub::v1::parseRfc3339Common(s, default_offset_minutes)) return common;
  return parseIsoTimeGeneral(std::string(s), default_offset_minutes);
}

}  // namespace firehub::sdk
