// Text bodies read in the charset they declare (or their feed's encoding) and handed to the
// connectors as UTF-8; dead letters turned back into the bytes that were sent. Conversion is
// glibc's iconv; GBK and GB2312 are read as GB18030, which contains both.
#include <simdjson.h>
#include <Poco/Net/MessageHeader.h>
#include <Poco/Net/NameValueCollection.h>
#include <Poco/UTF8Encoding.h>
#include <errno.h>
#include <iconv.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <set>

#include "firehub/pipeline.h"

namespace firehub::pipeline {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

bool isText(const std::string& content_type) {
  static const std::set<std::string> kText = {
      "application/json", "application/x-ndjson", "application/geo+json", "application/fhir+json",
      "application/xml",  "application/cap+xml",  "application/atom+xml"};
  return content_type.rfind("text/", 0) == 0 || kText.count(content_type) > 0;
}

bool isXml(const std::string& content_type) {
  return content_type.size() >= 3 && content_type.compare(content_type.size() - 3, 3, "xml") == 0;
}

// Where the encoding name of an XML declaration (<?xml ... encoding="X"?>) lies: {start, size};
// size 0 when there is none.
std::pair<size_t, size_t> xmlDeclaredEncoding(std::string_view body) {
  size_t at = 0;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") at = 3;
  if (body.substr(at, 5) != "<?xml") return {0, 0};
  const size_t end = body.find("?>", at);
  if (end == std::string_view::npos) return {0, 0};
  const std::string_view decl = body.substr(at, end - at);
  const size_t key = decl.find("encoding");
  if (key == std::string_view::npos) return {0, 0};
  size_t q = decl.find_first_of("\"'", key);
  if (q == std::string_view::npos) return {0, 0};
  const size_t close = decl.find(decl[q], q + 1);
  if (close == std::string_view::npos) return {0, 0};
  return {at + q + 1, close - q - 1};
}

// Whether a body that is not UTF-8 reads as a whole legacy-encoded text: valid GB18030, with
// more places that are not UTF-8 than UTF-8 characters beyond ASCII (a GBK file, not a UTF-8
// one with a few stray bytes).
bool looksGb18030(std::string_view body) {
  size_t bad = 0, good = 0;
  for (size_t i = 0; i < body.size();) {
    const size_t at = invalidUtf8At(body.substr(i));
    if (at == std::string_view::npos) break;
    for (size_t k = i; k < i + at; ++k)
      good += (static_cast<unsigned char>(body[k]) & 0xC0) == 0xC0;
    ++bad;
    i += at + 1;
  }
  return bad > good && convertCharset(body, "gb18030", "UTF-8").isOk();
}

struct IconvCloser {
  void operator()(void* cd) const { iconv_close(static_cast<iconv_t>(cd)); }
};

}  // namespace

std::string canonicalCharset(const std::string& name) {
  const std::string n = lower(name);
  if (n == "utf-8" || n == "utf8" || n == "us-ascii" || n == "ascii") return "utf-8";
  if (n == "gbk" || n == "gb2312" || n == "gb18030" || n == "x-gbk" || n == "cp936" ||
      n == "euc-cn" || n == "csgb2312" || n == "windows-936")
    return "gb18030";
  if (n.empty() || n.size() > 40 ||
      n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.:") != std::string::npos)
    return "";
  iconv_t cd = iconv_open("UTF-8", n.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return "";
  iconv_close(cd);
  return n;
}

size_t invalidUtf8At(std::string_view s) {
  // Nearly every body is valid: simdjson's SIMD check says so at a fraction of the loop's cost
  // (the same rules), and the loop finds the place only when it is not.
  if (simdjson::validate_utf8(s.data(), s.size())) return std::string_view::npos;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    const int len = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    // Poco's check (Unicode's ConvertUTF): no overlong forms, surrogates or code points past
    // U+10FFFF.
    if (len == 0 || i + static_cast<size_t>(len) > n ||
        (len > 1 && !Poco::UTF8Encoding::isLegal(p + i, len)))
      return i;
    i += static_cast<size_t>(len);
  }
  return std::string_view::npos;
}

Result<std::string> convertCharset(std::string_view in, const std::string& from,
                                   const std::string& to) {
  iconv_t raw = iconv_open(to.c_str(), from.c_str());
  if (raw == reinterpret_cast<iconv_t>(-1))
    return Status::invalidArgument("charset '" + from + "' is not known");
  std::unique_ptr<void, IconvCloser> cd(raw);
  std::string out;
  out.resize(in.size() * 2 + 16);
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  size_t done = 0;
  while (true) {
    char* dst = out.data() + done;
    size_t dst_left = out.size() - done;
    const size_t r = iconv(raw, src_left ? &src : nullptr, &src_left, &dst, &dst_left);
    done = out.size() - dst_left;
    if (r != static_cast<size_t>(-1)) {
      if (src_left == 0) break;
      continue;
    }
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
      continue;
    }
    const size_t at = in.size() - src_left;
    if (errno == EINVAL) {
      return Status::invalidArgument("the body is not valid " + upper(from) +
                                     ": it ends inside a character");
    }
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(in[at]));
    return Status::invalidArgument("the body is not valid " + upper(from) + ": byte " +
                                   std::to_string(at) + " (" + byte + ") starts no character");
  }
  out.resize(done);
  return out;
}

Status textAsUtf8(std::string_view body, const std::string& content_type,
                  const std::string& declared, const std::string& encoding, std::string& out,
                  std::string& charset, std::string* note) {
  out.clear();
  charset = "utf-8";
  if (!isText(content_type)) return Status::ok();
  std::string from;
  std::string why;  // where the charset came from, for the errors
  if (!declared.empty()) {
    from = canonicalCharset(declared);
    if (from.empty())
      return Status::invalidArgument("charset '" + declared + "' of the Content-Type is not known");
    why = "as its Content-Type declares";
  } else if (auto [at, size] =
                 isXml(content_type) ? xmlDeclaredEncoding(body) : std::pair<size_t, size_t>{0, 0};
             size > 0) {
    const std::string named(body.substr(at, size));
    from = canonicalCharset(named);
    if (from.empty())
      return Status::invalidArgument("encoding '" + named +
                                     "' of the XML declaration is not known");
    why = "as its XML declaration says";
  } else if (encoding == "gb18030") {
    from = "gb18030";
    why = "the feed's encoding";
  } else if (encoding == "auto") {
    from = invalidUtf8At(body) == std::string_view::npos ? "utf-8" : "gb18030";
    why = "not UTF-8, so read as GB18030 (the feed's encoding is auto)";
  } else {
    from = "utf-8";
  }
  if (from == "utf-8") {
    const size_t bad = invalidUtf8At(body);
    if (bad == std::string_view::npos) return Status::ok();
    if (why.empty() && !looksGb18030(body)) {
      // Stray bytes in a UTF-8 body (nothing declared it): the connector refuses the rows that
      // hold them, one by one, and the answer says why.
      if (note) {
        *note = "the body is not valid UTF-8 (byte " + std::to_string(bad) +
                "): rows with such bytes are refused; declare the charset of a body in another";
      }
      return Status::ok();
    }
    return Status::invalidArgument(
        "the body is not valid UTF-8 (byte " + std::to_string(bad) + ")" +
        (why.empty() ? ": declare its charset (e.g. Content-Type: " + content_type +
                           "; charset=GB18030) or set the feed's encoding (gb18030 or auto)"
                     : " " + why));
  }
  auto converted = convertCharset(body, from, "UTF-8");
  if (!converted.isOk()) {
    return Status::invalidArgument(converted.status().message() + " (" + why + ")");
  }
  out = std::move(converted).value();
  charset = from;
  if (isXml(content_type)) {  // the connector reads UTF-8: the declaration says so now
    auto [at, size] = xmlDeclaredEncoding(out);
    if (size > 0) out.replace(at, size, "UTF-8");
  }
  return Status::ok();
}

std::string textInCharset(std::string_view utf8, const std::string& charset) {
  if (charset.empty() || charset == "utf-8") return std::string(utf8);
  auto back = convertCharset(utf8, "UTF-8", charset);
  return back.isOk() ? std::move(back).value() : std::string(utf8);
}

std::string mediaType(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  t.erase(0, t.find_first_not_of(" \t"));
  t.erase(t.find_last_not_of(" \t") + 1);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "application/ndjson" || t == "application/jsonl" || t == "application/jsonlines" ||
      t == "application/x-jsonlines") {
    return "application/x-ndjson";
  }
  return t;
}

std::string charsetOf(const std::string& content_type) {
  std::string media;
  Poco::Net::NameValueCollection params;
  Poco::Net::MessageHeader::splitParameters(content_type, media, params);
  std::string charset = params.get("charset", "");  // names are matched without case
  std::transform(charset.begin(), charset.end(), charset.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return charset;
}

}  // namespace firehub::pipeline
