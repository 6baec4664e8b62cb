#include "gbt26875.h"

namespace firehub::connectors::gbt26875 {

std::string hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

namespace {

uint8_t checksum(std::string_view bytes) {
  unsigned sum = 0;
  for (unsigned char c : bytes) sum += c;
  return static_cast<uint8_t>(sum & 0xff);
}

void readHeader(std::string_view f, Frame& frame) {
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(f[i]); };
  frame.serial = static_cast<uint16_t>(u8(2) | (u8(3) << 8));
  frame.version_major = u8(4);
  frame.version_minor = u8(5);
  for (int i = 0; i < 6; ++i) frame.time[i] = u8(6 + i);
  frame.source.assign(f.substr(12, 6));
  frame.destination.assign(f.substr(18, 6));
  frame.command = u8(26);
}

}  // namespace

// Size of a complete frame (declared length fits, ends with "##") starting at `at`, or 0.
size_t completeFrameAt(std::string_view d, size_t at) {
  if (d.size() - at < kHeaderSize) return 0;
  size_t n = static_cast<uint8_t>(d[at + 24]) | (static_cast<uint8_t>(d[at + 25]) << 8);
  size_t total = kHeaderSize + n + 3;
  if (n > kMaxDataSize || d.size() - at < total) return 0;
  return d[at + total - 2] == '#' && d[at + total - 1] == '#' ? total : 0;
}

std::vector<Piece> scan(std::string_view d, size_t& consumed) {
  std::vector<Piece> out;
  size_t pos = 0;           // where to look for the next "@@"
  size_t garbage_from = 0;  // start of bytes not yet accounted for
  consumed = 0;
  auto flushGarbage = [&](size_t to) {
    if (to > garbage_from) {
      out.push_back({Piece::Kind::kGarbage,
                     {},
                     false,
                     "bytes outside any frame",
                     d.substr(garbage_from, to - garbage_from)});
    }
    garbage_from = to;
    consumed = to;
  };
  while (pos < d.size()) {
    size_t start = d.find("@@", pos);
    if (start == std::string_view::npos) {
      // Keep a trailing '@': it may start the next frame.
      flushGarbage(d.back() == '@' ? d.size() - 1 : d.size());
      return out;
    }
    size_t total = completeFrameAt(d, start);
    if (total == 0) {
      size_t n =
          d.size() - start >= kHeaderSize
              ? (static_cast<uint8_t>(d[start + 24]) | (static_cast<uint8_t>(d[start + 25]) << 8))
              : 0;
      bool may_grow = d.size() - start < kHeaderSize ||
                      (n <= kMaxDataSize && d.size() - start < kHeaderSize + n + 3);
      // An incomplete candidate waits for more bytes, unless a complete frame follows it: then
      // it was noise (a device waits for our reply, so waiting would stall the stream).
      bool later_frame = false;
      for (size_t next = d.find("@@", start + 1); next != std::string_view::npos;
           next = d.find("@@", next + 1)) {
        if (completeFrameAt(d, next)) {
          later_frame = true;
          break;
        }
      }
      if (may_grow && !later_frame) {
        flushGarbage(start);
        return out;
      }
      pos = start + 1;  // not a frame here; "@@@" may hide the real start one byte later
      continue;
    }
    flushGarbage(start);
    std::string_view f = d.substr(start, total);
    size_t n = total - kHeaderSize - 3;
    Piece piece{Piece::Kind::kFrame, {}, true, "", f};
    readHeader(f, piece.frame);
    piece.frame.data = f.substr(kHeaderSize, n);
    piece.frame.raw = f;
    uint8_t expected = checksum(f.substr(2, kHeaderSize - 2 + n));
    if (static_cast<uint8_t>(f[kHeaderSize + n]) != expected) {
      piece.kind = Piece::Kind::kBadFrame;
      piece.reason = "checksum mismatch";
    }
    out.push_back(std::move(piece));
    pos = start + total;
    garbage_from = pos;
    consumed = pos;
  }
  return out;
}

std::string build(uint16_t serial, uint8_t version_major, uint8_t version_minor,
                  const uint8_t time[6], std::string_view source, std::string_view destination,
                  uint8_t command, std::string_view data) {
  std::string f = "@@";
  f.push_back(static_cast<char>(serial & 0xff));
  f.push_back(static_cast<char>(serial >> 8));
  f.push_back(static_cast<char>(version_major));
  f.push_back(static_cast<char>(version_minor));
  for (int i = 0; i < 6; ++i) f.push_back(static_cast<char>(time[i]));
  f.append(source.substr(0, 6));
  f.append(6 - std::min<size_t>(6, source.size()), '\0');
  f.append(destination.substr(0, 6));
  f.append(6 - std::min<size_t>(6, destination.size()), '\0');
  f.push_back(static_cast<char>(data.size() & 0xff));
  f.push_back(static_cast<char>(data.size() >> 8));
  f.push_back(static_cast<char>(command));
  f.append(data);
  f.push_back(static_cast<char>(checksum(std::string_view(f).substr(2))));
  f += "##";
  return f;
}

std::string reply(const Frame& frame, uint8_t command, const uint8_t time[6],
                  std::string_view data) {
  return build(frame.serial, frame.version_major, frame.version_minor, time, frame.destination,
               frame.source, command, data);
}

}  // namespace firehub::connectors::gbt26875
