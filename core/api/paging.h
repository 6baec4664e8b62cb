// One way for every list of /api/v1 to page, and one way to write times: private to the api
// module.
//
// Paging: `?limit=` (1..the list's maximum) and `?cursor=` (the `next` of the page before, opaque
// to clients: base64url of the list's name and a position in it, so a cursor of another list is
// refused). A page carries `numberReturned`, `next` (absent on the last page) and
// `numberMatched` where counting is cheap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firehub/status.h"

namespace firehub::api {

struct PageParams {
  size_t limit = 0;
  std::string after;  // the position the page starts past; empty: from the start
};

// Reads ?limit= and ?cursor= for the list `list`.
Result<PageParams> pageParams(const std::optional<std::string>& limit_text,
                              const std::optional<std::string>& cursor_text, std::string_view list,
                              size_t default_limit, size_t max_limit);

// The opaque cursor of `position` in `list`.
std::string encodeCursor(std::string_view list, std::string_view position);

// A position as text that sorts as the number (for cursors over sequences and offsets).
std::string sortableNumber(uint64_t n);
// The number of a sortableNumber() position; nullopt when it is not one.
std::optional<uint64_t> numberOf(const std::string& position);

// A page of a list held in memory: `items` are (key, JSON) sorted by key; those past
// `page.after`, at most `page.limit`. Writes {"<name>":[...],"numberMatched":N,
// "numberReturned":n[,"next":"<cursor>"]<extra>}; `extra` holds further members, each led by a
// comma.
std::string pageOfList(std::string_view name,
                       const std::vector<std::pair<std::string, std::string>>& items,
                       const PageParams& page, std::string_view extra = "");

// A query parameter holding an RFC 3339 time, as µs since the epoch; `absent` when it is not
// given, InvalidArgument naming `name` when it is not such a time.
Result<int64_t> timeParam(const std::optional<std::string>& text, const char* name, int64_t absent);

// RFC 3339 in UTC with milliseconds ("2026-12-07T00:06:24.352Z"): every time the API writes.
std::string isoMillis(int64_t unix_ms);

// A record id as one path segment: percent-encoded (':' '#' '/' '%' '?' and space, and every
// byte outside printable ASCII), as /api/v1/records/{id} links carry it.
std::string pathSegment(std::string_view text);

}  // namespace firehub::api
