// Byte layouts of the lake's internal values. Private to the lake module.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

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

// latest CF value: observed_at (µs, biased to sort unsigned), S2 leaf cell id, record id.
struct LatestPointer {
  int64_t observed_micros = 0;
  uint64_t leaf_cell = 0;
  std::string record_id;
};

inline std::string encodeLatest(const LatestPointer& p) {
  std::string out;
  appendBigEndian64(out, static_cast<uint64_t>(p.observed_micros) ^ (1ull << 63));
  appendBigEndian64(out, p.leaf_cell);
  out += p.record_id;
  return out;
}

inline bool decodeLatest(std::string_view in, LatestPointer& p) {
  if (in.size() < 16) return false;
  p.observed_micros = static_cast<int64_t>(readBigEndian64(in.data()) ^ (1ull << 63));
  p.leaf_cell = readBigEndian64(in.data() + 8);
  p.record_id.assign(in.data() + 16, in.size() - 16);
  return true;
}

// outbox CF value: u16 topic length, topic, u16 key length, key, record id.
inline void appendLengthPrefixed(std::string& out, std::string_view s) {
  uint16_t n = static_cast<uint16_t>(s.size());
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(s.data(), n);
}

inline bool readLengthPrefixed(std::string_view& in, std::string& out) {
  if (in.size() < 2) return false;
  size_t n = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
  if (in.size() < 2 + n) return false;
  out.assign(in.data() + 2, n);
  in.remove_prefix(2 + n);
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

}  // namespace firehub::lake::codec
