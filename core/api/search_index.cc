#include "api/search_index.h"

#include <Poco/String.h>

#include <algorithm>
#include <cstring>

#include "api/layer_parts.h"
#include "firehub/classification.h"
#include "firehub/log.h"

namespace firehub::api {
namespace {

constexpr char kField = '\x1d';  // between label, address and entity id
constexpr char kKey = '\x1e';    // before the entity key
constexpr char kDead = '\x1f';   // a dropped entry's bytes

std::string_view keyAt(const std::string& arena, uint64_t offset) {
  const char* begin = arena.data() + offset;
  const char* end = arena.data() + arena.size();
  const char* mark = static_cast<const char*>(std::memchr(begin, kKey, end - begin));
  if (!mark) return {};
  const char* stop = static_cast<const char*>(std::memchr(mark, '\n', end - mark));
  return {mark + 1, static_cast<size_t>((stop ? stop : end) - mark - 1)};
}

// Control characters cannot be searched for, so a text keeps none (they would split an entry).
std::string cleaned(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return Poco::toLower(s);
}

}  // namespace

size_t SearchIndex::KeyHash::operator()(uint64_t offset) const {
  return (*this)(keyAt(*arena, offset));
}
size_t SearchIndex::KeyHash::operator()(std::string_view key) const {
  return absl::Hash<std::string_view>{}(key);
}
bool SearchIndex::KeyEq::operator()(uint64_t a, uint64_t b) const {
  return a == b || keyAt(*arena, a) == keyAt(*arena, b);
}
bool SearchIndex::KeyEq::operator()(uint64_t a, std::string_view b) const {
  return keyAt(*arena, a) == b;
}

const std::vector<std::string>& SearchIndex::domains() {
  static const std::vector<std::string> d = {"building", "station", "health", "water"};
  return d;
}

SearchIndex::SearchIndex(const ApiContext& ctx) : ctx_(ctx) {}

SearchIndex::~SearchIndex() = default;

void SearchIndex::start(EntityFollower& follower) {
  if (!ctx_.lake) return;
  follower_ = &follower;
  follower.add(
      {[](const std::string& domain) {
         const auto& d = domains();
         return std::find(d.begin(), d.end(), domain) != d.end();
       },
       [this] { load(); },
       [this](const std::string& key, const firehub::v1::Record* latest) { apply(key, latest); }});
}

void SearchIndex::load() {
  for (const auto& domain : domains()) {
    Status s = ctx_.lake->forEachLatestInBBox(
        domain, lake::BBox{}, [&](firehub::v1::Record& r, std::string_view) {
          if (r.op() != firehub::v1::OP_RETRACT) {
            redactRestricted(r);
            put(lake::entityKey(r), recordLabel(r), r.has_building() ? r.building().address() : "",
                r.entity_id());
          }
          return !follower_->stopping();
        });
    if (!s.isOk())
      FIREHUB_LOG(kWarning, "api", "search index of " << domain << ": " << s.message());
  }
  loaded_ = true;
  FIREHUB_LOG(kInfo, "api",
              "search index: " << entries() << " places, " << (bytes() >> 10) << " KiB");
}

void SearchIndex::apply(const std::string& key, const firehub::v1::Record* latest) {
  if (!latest) return erase(key);
  if (bodyHasRestrictedFields(*latest)) {  // only the public view is indexed
    firehub::v1::Record r = *latest;
    redactRestricted(r);
    return put(key, recordLabel(r), r.has_building() ? r.building().address() : "", r.entity_id());
  }
  put(key, recordLabel(*latest), latest->has_building() ? latest->building().address() : "",
      latest->entity_id());
}

void SearchIndex::put(const std::string& entity_key, const std::string& label,
                      const std::string& address, const std::string& entity_id) {
  std::string entry = cleaned(label);
  entry += kField;
  entry += cleaned(address);
  entry += kField;
  entry += cleaned(entity_id);
  entry += kKey;
  entry += entity_key;
  entry += '\n';
  std::unique_lock<std::shared_mutex> lock(data_mu_);
  if (auto it = at_.find(std::string_view(entity_key)); it != at_.end()) {
    const uint64_t offset = *it;
    const size_t size = arena_.find('\n', offset) - offset + 1;
    if (arena_.compare(offset, size, entry) == 0) return;  // unchanged
    dropLocked(entity_key);
  }
  const uint64_t offset = arena_.size();
  arena_ += entry;
  at_.insert(offset);
  if (dead_bytes_ > (1u << 20) && dead_bytes_ > arena_.size() / 2) compactLocked();
}

void SearchIndex::erase(const std::string& entity_key) {
  std::unique_lock<std::shared_mutex> lock(data_mu_);
  dropLocked(entity_key);
}

void SearchIndex::dropLocked(std::string_view key) {
  auto it = at_.find(key);
  if (it == at_.end()) return;
  const uint64_t offset = *it;
  at_.erase(it);
  const size_t size = arena_.find('\n', offset) - offset;  // keeps the '\n'
  std::memset(arena_.data() + offset, kDead, size);
  dead_bytes_ += size + 1;
}

void SearchIndex::compactLocked() {
  std::string next;
  next.reserve(arena_.size() - dead_bytes_);
  size_t at = 0;
  while (at < arena_.size()) {
    const size_t end = arena_.find('\n', at);
    if (arena_[at] != kDead) next.append(arena_, at, end - at + 1);
    at = end + 1;
  }
  arena_.swap(next);
  dead_bytes_ = 0;
  at_.clear();
  for (at = 0; at < arena_.size(); at = arena_.find('\n', at) + 1) at_.insert(at);
}

std::vector<SearchIndex::Hit> SearchIndex::find(std::string_view folded, size_t limit,
                                                bool& complete) const {
  // Whole-field matches first, then those at a field's start, then the rest; each in the
  // arena's order. The scan ends early once `limit` whole-field matches are found.
  std::vector<Hit> ranked[3];
  size_t matches = 0;
  complete = loaded_.load();
  if (folded.empty() || limit == 0) return {};
  {
    std::shared_lock<std::shared_mutex> lock(data_mu_);
    const char* base = arena_.data();
    const char* end = base + arena_.size();
    const char* from = base;
    while (from < end && ranked[0].size() < limit) {
      const void* found = memmem(from, end - from, folded.data(), folded.size());
      if (!found) break;
      const char* hit = static_cast<const char*>(found);
      const char* line = hit;
      while (line > base && line[-1] != '\n') --line;
      const char* stop = static_cast<const char*>(std::memchr(hit, '\n', end - hit));
      const char* key = static_cast<const char*>(std::memchr(line, kKey, stop - line));
      from = stop + 1;
      if (!key || hit + folded.size() > key) continue;  // in the key, not the text
      int field = 0;
      const char* field_start = line;
      for (const char* c = line; c < hit; ++c) {
        if (*c == kField) {
          ++field;
          field_start = c + 1;
        }
      }
      const char* after = hit + folded.size();
      const int rank = hit != field_start ? 2 : (after == key || *after == kField) ? 0 : 1;
      ++matches;
      size_t better = 0;
      for (int r = 0; r < rank; ++r) better += ranked[r].size();
      if (better + ranked[rank].size() >= limit) continue;
      ranked[rank].push_back({std::string(key + 1, stop), field == 0   ? "name"
                                                          : field == 1 ? "address"
                                                                       : "entity_id"});
    }
    if (ranked[0].size() >= limit && from < end) complete = false;  // stopped early
  }
  if (matches > limit) complete = false;
  std::vector<Hit> hits;
  for (auto& r : ranked) {
    for (auto& h : r) {
      if (hits.size() < limit) hits.push_back(std::move(h));
    }
  }
  return hits;
}

size_t SearchIndex::bytes() const {
  std::shared_lock<std::shared_mutex> lock(data_mu_);
  return arena_.capacity() + at_.capacity() * (sizeof(uint64_t) + 1);
}

size_t SearchIndex::entries() const {
  std::shared_lock<std::shared_mutex> lock(data_mu_);
  return at_.size();
}

}  // namespace firehub::api
