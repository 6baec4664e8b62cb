#include "firehub/v1/time_text.h"

#include <google/protobuf/util/time_util.h>

#include <cstdint>

namespace firehub::v1 {
namespace {

constexpr int64_t kMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms).
int64_t daysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civilFromDays(int64_t days, int64_t& y, int64_t& m, int64_t& d) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2);
}

void appendDigits(std::string& out, int64_t value, int width) {
  char buf[16];
  for (int i = width - 1; i >= 0; --i, value /= 10) buf[i] = static_cast<char>('0' + value % 10);
  out.append(buf, static_cast<size_t>(width));
}

int daysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Reads `width` digits at text[pos]; false if any is not a digit or the text is too short.
bool digits(std::string_view text, size_t pos, int width, int64_t& value) {
  if (pos + static_cast<size_t>(width) > text.size()) return false;
  value = 0;
  for (int i = 0; i < width; ++i) {
    const char c = text[pos + static_cast<size_t>(i)];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return true;
}

}  // namespace

void appendRfc3339(std::string& out, const google::protobuf::Timestamp& t) {
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    out += google::protobuf::util::TimeUtil::ToString(t);
    return;
  }
  int64_t days = t.seconds() / 86400, rem = t.seconds() % 86400;
  if (rem < 0) rem += 86400, --days;
  int64_t y = 0, m = 0, d = 0;
  civilFromDays(days, y, m, d);
  appendDigits(out, y, 4);
  out.push_back('-');
  appendDigits(out, m, 2);
  out.push_back('-');
  appendDigits(out, d, 2);
  out.push_back('T');
  appendDigits(out, rem / 3600, 2);
  out.push_back(':');
  appendDigits(out, rem / 60 % 60, 2);
  out.push_back(':');
  appendDigits(out, rem % 60, 2);
  const int32_t nanos = t.nanos();
  if (nanos != 0) {
    out.push_back('.');
    if (nanos % 1000000 == 0)
      appendDigits(out, nanos / 1000000, 3);
    else if (nanos % 1000 == 0)
      appendDigits(out, nanos / 1000, 6);
    else
      appendDigits(out, nanos, 9);
  }
  out.push_back('Z');
}

std::string rfc3339(const google::protobuf::Timestamp& t) {
  std::string out;
  appendRfc3339(out, t);
  return out;
}

void appendRfc3339Millis(std::string& out, const google::protobuf::Timestamp& t) {
  google::protobuf::Timestamp ms = t;
  if (ms.nanos() > 0 && ms.nanos() <= 999999999) ms.set_nanos(ms.nanos() / 1000000 * 1000000);
  appendRfc3339(out, ms);
}

std::string rfc3339Millis(int64_t unix_ms) {
  google::protobuf::Timestamp t;
  int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  t.set_seconds(secs);
  t.set_nanos(static_cast<int32_t>((unix_ms - secs * 1000) * 1000000));
  std::string out;
  appendRfc3339(out, t);
  return out;
}

std::optional<google::protobuf::Timestamp> parseRfc3339Common(std::string_view s,
                                                              int default_offset_minutes) {
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 16 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != ' ') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi)) {
    return std::nullopt;
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59) {
    return std::nullopt;
  }
  size_t pos = 16;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == ':') {
    if (!digits(s, pos + 1, 2, sec) || sec > 59) return std::nullopt;  // leap seconds: elsewhere
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      size_t start = ++pos;
      int64_t scale = 100000;
      for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, scale /= 10) {
        micros += (s[pos] - '0') * scale;
      }
      if (pos == start) return std::nullopt;
    }
  }
  int offset_minutes = default_offset_minutes;
  if (pos < s.size()) {
    if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
      offset_minutes = 0;
    } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
      int64_t oh = 0, om = 0;
      if (!digits(s, pos + 1, 2, oh) || !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
        return std::nullopt;
      offset_minutes = static_cast<int>(oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  google::protobuf::Timestamp ts;
  ts.set_seconds(daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                 int64_t{offset_minutes} * 60);
  ts.set_nanos(static_cast<int32_t>(micros * 1000));
  return ts;
}

}  // namespace firehub::v1
