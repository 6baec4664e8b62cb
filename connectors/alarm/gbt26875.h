// GB/T 26875.3-2011 frames: parsing a byte stream into frames, and building replies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace firehub::connectors::gbt26875 {

constexpr size_t kHeaderSize = 27;     // "@@" .. command byte
constexpr size_t kMaxDataSize = 8192;  // larger declared lengths are treated as garbage
constexpr uint8_t kCmdControl = 1;
constexpr uint8_t kCmdSendData = 2;
constexpr uint8_t kCmdConfirm = 3;
constexpr uint8_t kCmdRequest = 4;
constexpr uint8_t kCmdAnswer = 5;
constexpr uint8_t kCmdDeny = 6;

struct Frame {
  uint16_t serial = 0;
  uint8_t version_major = 0, version_minor = 0;
  uint8_t time[6] = {};  // s, min, h, day, month, year-2000
  std::string source;    // 6 bytes
  std::string destination;
  uint8_t command = 0;
  std::string_view data;  // application data
  std::string_view raw;   // the whole frame
};

// What the scanner found at one place of the stream.
struct Piece {
  enum class Kind { kFrame, kGarbage, kBadFrame } kind;
  Frame frame;             // kFrame, and kBadFrame when the header was readable
  bool header_ok = false;  // kBadFrame: serial/addresses usable for a deny reply
  std::string reason;      // kGarbage / kBadFrame
  std::string_view raw;
};

// Splits `stream` into frames and garbage. Stops before an incomplete frame; `consumed` says how
// many bytes were used (the rest must be offered again with more bytes).
std::vector<Piece> scan(std::string_view stream, size_t& consumed);

// A reply to `frame` (confirm, deny, or an answer with `data`): same serial and version,
// addresses swapped.
std::string reply(const Frame& frame, uint8_t command, const uint8_t time[6],
                  std::string_view data = {});

// Builds a complete frame (used by replies, tests and the demo's device simulator).
std::string build(uint16_t serial, uint8_t version_major, uint8_t version_minor,
                  const uint8_t time[6], std::string_view source, std::string_view destination,
                  uint8_t command, std::string_view data);

std::string hex(std::string_view bytes);

}  // namespace firehub::connectors::gbt26875
