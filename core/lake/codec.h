// Byte layouts of the lake's internal values. Private to the lake module.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace firehub::lake::codec {

// Big-endian so that RocksDB's bytewise order is numeric order.
inline void appendBigEndian64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}

inline uint64_t readBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// latest CF value: observed_at (µs, biased to sort unsigned), S2 leaf cell id, then either the
// record id, or a 0 byte, the area indexes holding the entity (u32 BE, bit i: LakeOptions::
// area_indexes[i]) and the record id. Record ids never start with a 0 byte (they start with the
// feed id), so pointers of entities in no index keep the shorter form older lakes wrote.
struct LatestPointer {
  int64_t observed_micros = 0;
  uint64_t leaf_cell = 0;
  uint32_t indexed = 0;
  std::string record_id;
};

inline std::string encodeLatest(const LatestPointer& p) {
  std::string out;
  appendBigEndian64(out, static_cast<uint64_t>(p.observed_micros) ^ (1ull << 63));
  appendBigEndian64(out, p.leaf_cell);
  if (p.indexed != 0) {
    out.push_back('\0');
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>(p.indexed >> shift));
  }
  out += p.record_id;
  return out;
}

inline bool decodeLatest(std::string_view in, LatestPointer& p) {
  if (in.size() < 16) return false;
  p.observed_micros = static_cast<int64_t>(readBigEndian64(in.data()) ^ (1ull << 63));
  p.leaf_cell = readBigEndian64(in.data() + 8);
  in.remove_prefix(16);
  p.indexed = 0;
  if (!in.empty() && in[0] == '\0') {
    if (in.size() < 5) return false;
    for (int i = 1; i <= 4; ++i) p.indexed = (p.indexed << 8) | static_cast<uint8_t>(in[i]);
    in.remove_prefix(5);
  }
  p.record_id.assign(in.data(), in.size());
  return true;
}

// outbox CF value: u16 topic length, topic, u16 key length, key, record id.
inline void appendLengthPrefixed(std::string& out, std::string_view s) {
  uint16_t n = static_cast<uint16_t>(s.size());
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(s.data(), n);
}

// Takes a length-prefixed piece off the front of `in` (a view into it).
inline bool readLengthPrefixedView(std::string_view& in, std::string_view& out) {
  if (in.size() < 2) return false;
  size_t n = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
  if (in.size() < 2 + n) return false;
  out = in.substr(2, n);
  in.remove_prefix(2 + n);
  return true;
}

inline bool readLengthPrefixed(std::string_view& in, std::string& out) {
  std::string_view piece;
  if (!readLengthPrefixedView(in, piece)) return false;
  out.assign(piece);
  return true;
}

inline std::string encodeOutbox(std::string_view topic, std::string_view key,
                                std::string_view record_id) {
  std::string out;
  appendLengthPrefixed(out, topic.substr(0, 0xffff));
  appendLengthPrefixed(out, key.substr(0, 0xffff));
  out.append(record_id);
  return out;
}

inline bool decodeOutbox(std::string_view in, std::string& topic, std::string& key,
                         std::string& record_id) {
  if (!readLengthPrefixed(in, topic) || !readLengthPrefixed(in, key)) return false;
  record_id.assign(in);
  return true;
}

// log CF value of a record: a 0 byte (record ids never start with one: older entries are the
// bare id), the number of topics (u8), each topic length-prefixed, the key length-prefixed,
// the record id. The record's deliveries are these topics, in order, at the entry's sequence
// and the ones after it.
inline constexpr size_t kMaxLogTopics = 16;  // commit() refuses more

inline void appendLog(std::string& out, const std::vector<std::string>& topics,
                      std::string_view key, std::string_view record_id) {
  out.push_back('\0');
  const size_t n = std::min(topics.size(), kMaxLogTopics);
  out.push_back(static_cast<char>(n));
  for (size_t i = 0; i < n; ++i)
    appendLengthPrefixed(out, std::string_view(topics[i]).substr(0, 0xffff));
  appendLengthPrefixed(out, key.substr(0, 0xffff));
  out.append(record_id);
}

// A log value taken apart; views into it.
struct LogEntry {
  std::string_view topics[kMaxLogTopics];
  size_t topic_count = 0;
  std::string_view key;
  std::string_view record_id;
};

inline bool decodeLog(std::string_view in, LogEntry& e) {
  e.topic_count = 0;
  e.key = {};
  if (in.empty() || in[0] != '\0') {  // an older entry: the bare id, no deliveries
    e.record_id = in;
    return true;
  }
  if (in.size() < 2) return false;
  const size_t n = static_cast<uint8_t>(in[1]);
  in.remove_prefix(2);
  for (size_t i = 0; i < n; ++i) {
    if (!readLengthPrefixedView(in, e.topics[i])) return false;
  }
  e.topic_count = n;
  if (!readLengthPrefixedView(in, e.key)) return false;
  e.record_id = in;
  return true;
}

// History keys (the history column family; lake.h has the layout).
inline uint64_t biasedMicros(int64_t micros) {
  return static_cast<uint64_t>(micros) ^ (1ull << 63);
}
inline int64_t unbiasedMicros(uint64_t v) { return static_cast<int64_t>(v ^ (1ull << 63)); }

inline std::string entityHistoryPrefix(std::string_view domain, std::string_view entity_id) {
  std::string k("e");
  appendLengthPrefixed(k, domain.substr(0, 0xffff));
  appendLengthPrefixed(k, entity_id.substr(0, 0xffff));
  return k;
}
inline std::string entityHistoryKey(std::string_view domain, std::string_view entity_id,
                                    std::string_view entity_type, int64_t observed,
                                    std::string_view record_id) {
  std::string k = entityHistoryPrefix(domain, entity_id);
  appendLengthPrefixed(k, entity_type.substr(0, 0xffff));
  appendBigEndian64(k, biasedMicros(observed));
  k.append(record_id);
  return k;
}
inline std::string domainTimePrefix(std::string_view domain) {
  std::string k("t");
  appendLengthPrefixed(k, domain.substr(0, 0xffff));
  return k;
}
inline std::string domainTimeKey(std::string_view domain, int64_t observed,
                                 std::string_view record_id) {
  std::string k = domainTimePrefix(domain);
  appendBigEndian64(k, biasedMicros(observed));
  k.append(record_id);
  return k;
}
// A layer version's key: at/<layer>/ cell (BE) ~micros (BE), newest first.
inline std::string layerVersionPrefix(std::string_view layer) {
  return "at/" + std::string(layer) + "/";
}
inline std::string layerVersionKey(std::string_view layer, uint64_t cell, int64_t at_micros) {
  std::string k = layerVersionPrefix(layer);
  appendBigEndian64(k, cell);
  appendBigEndian64(k, ~biasedMicros(at_micros));
  return k;
}

// How many sequence numbers a log entry takes: one per delivery, at least one.
inline uint64_t logSpan(const LogEntry& e) { return e.topic_count > 0 ? e.topic_count : 1; }

}  // namespace firehub::lake::codec
