// Cursors, pages of lists held in memory, times and path segments of the API.
#include "api/paging.h"

#include <google/protobuf/util/time_util.h>

#include "firehub/v1/time_text.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/Exception.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <sstream>

namespace firehub::api {

std::string encodeCursor(std::string_view list, std::string_view position) {
  std::ostringstream out;
  Poco::Base64Encoder enc(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  enc.rdbuf()->setLineLength(0);
  enc << list << '\n' << position;
  enc.close();
  return out.str();
}

namespace {

std::optional<std::string> decodeCursor(std::string_view list, const std::string& cursor) {
  if (cursor.empty() || cursor.size() > 4096) return std::nullopt;
  std::string text;
  try {
    std::istringstream in(cursor);
    Poco::Base64Decoder dec(in, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
    text.assign(std::istreambuf_iterator<char>(dec), std::istreambuf_iterator<char>());
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
  const size_t nl = text.find('\n');
  if (nl == std::string::npos || std::string_view(text).substr(0, nl) != list) return std::nullopt;
  return text.substr(nl + 1);
}

}  // namespace

Result<PageParams> pageParams(const std::optional<std::string>& limit_text,
                              const std::optional<std::string>& cursor_text, std::string_view list,
                              size_t default_limit, size_t max_limit) {
  PageParams out;
  out.limit = default_limit;
  if (limit_text) {
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(limit_text->c_str(), &end, 10);
    if (limit_text->empty() || *end != '\0' || errno != 0 || n < 1 ||
        static_cast<unsigned long long>(n) > max_limit) {
      return Status::invalidArgument("limit must be an integer in 1.." + std::to_string(max_limit));
    }
    out.limit = static_cast<size_t>(n);
  }
  if (cursor_text) {
    auto position = decodeCursor(list, *cursor_text);
    if (!position || position->empty()) {
      return Status::invalidArgument("cursor is not one this list gave (take it from 'next' of " +
                                     std::string(list) + ")");
    }
    out.after = std::move(*position);
  }
  return out;
}

std::string sortableNumber(uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

std::optional<uint64_t> numberOf(const std::string& position) {
  if (position.size() != 20 || !std::all_of(position.begin(), position.end(), ::isdigit))
    return std::nullopt;
  return std::strtoull(position.c_str(), nullptr, 10);
}

std::string pageOfList(std::string_view name,
                       const std::vector<std::pair<std::string, std::string>>& items,
                       const PageParams& page, std::string_view extra) {
  auto it =
      page.after.empty()
          ? items.begin()
          : std::upper_bound(items.begin(), items.end(), page.after,
                             [](const std::string& a, const auto& item) { return a < item.first; });
  std::string out = "{\"";
  out += name;
  out += "\":[";
  size_t n = 0;
  for (; it != items.end() && n < page.limit; ++it, ++n) {
    if (n) out += ',';
    out += it->second;
  }
  out += "],\"numberMatched\":" + std::to_string(items.size()) +
         ",\"numberReturned\":" + std::to_string(n);
  if (it != items.end() && n > 0) {
    out += ",\"next\":\"" + encodeCursor(name, std::prev(it)->first) + "\"";
  }
  out += extra;
  return out + "}";
}

Result<int64_t> timeParam(const std::optional<std::string>& text, const char* name,
                          int64_t absent) {
  if (!text) return absent;
  google::protobuf::Timestamp t;
  if (!google::protobuf::util::TimeUtil::FromString(*text, &t)) {
    return Status::invalidArgument("query parameter '" + std::string(name) +
                                   "' must be an RFC 3339 time such as 2026-12-07T08:00:00Z");
  }
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

std::string isoMillis(int64_t unix_ms) { return firehub::v1::rfc3339Millis(unix_ms); }

std::string pathSegment(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace firehub::api
