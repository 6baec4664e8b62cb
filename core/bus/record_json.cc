// The protobuf JSON mapping of a message, written straight into a string by walking the
// descriptors. Same output rules as protobuf's JsonPrintOptions{preserve_proto_field_names,
// always_print_primitive_fields}; written here because protobuf 3.21's converter builds an
// object tree per message and was the publisher's largest cost in profiles (see
// docs/benchmarks.md). record_json_test checks the two agree.
#include <absl/container/flat_hash_map.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "firehub/bus.h"
#include "firehub/v1/time_text.h"

namespace firehub::bus {
namespace {
bool plain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f; }
}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // characters that need no escaping are appended in runs
  while (run < s.size() && plain(static_cast<unsigned char>(s[run]))) ++run;
  out.append(s.data(), run);
  for (unsigned char c : s.substr(run)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

template <class T>
void appendNumber(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void appendDouble(std::string& out, double v) {
  if (std::isnan(v)) out += "\"NaN\"";
  else if (std::isinf(v)) out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  else appendNumber(out, v);
}

void appendBase64(std::string& out, const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out.push_back('"');
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back('=');
  }
  out.push_back('"');
}

void appendMessage(std::string& out, const Message& m);

}  // namespace

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protobuf's TimeUtil::ToString.
void appendJsonTimestamp(std::string& out, const google::protobuf::Timestamp& t) {
  out.push_back('"');
  firehub::v1::appendRfc3339(out, t);
  out.push_back('"');
}

namespace {

void appendValue(std::string& out, const Message& m, const Reflection* r, const FieldDescriptor* f,
                 int index) {
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      appendNumber(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      appendNumber(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out.push_back('"');
      appendNumber(out, rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      out.push_back('"');
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out.push_back('"');
      appendNumber(out, rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      out.push_back('"');
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      appendDouble(out, rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v = rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
      if (std::isfinite(v)) appendNumber(out, v);
      else appendDouble(out, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      int v = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      const auto* value = f->enum_type()->FindValueByNumber(v);
      if (value) appendJsonString(out, value->name());
      else appendNumber(out, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) appendBase64(out, s);
      else appendJsonString(out, s);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      appendMessage(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      break;
  }
}

// How a message type is written, worked out once per type and thread: each field's key text,
// and the fields in order with each oneof as one step (its members are declared together, so
// the one that is set is written where they stand, and the others are not asked).
struct MessagePlan {
  struct Step {
    const FieldDescriptor* field;  // null for a oneof
    const google::protobuf::OneofDescriptor* oneof;
  };
  std::vector<std::string> keys;  // by field index: "name":
  std::vector<Step> steps;
};

const MessagePlan& planOf(const google::protobuf::Descriptor* d) {
  // Plans stay in place while nested types add theirs (a message's plan is in use meanwhile).
  thread_local absl::flat_hash_map<const google::protobuf::Descriptor*, std::unique_ptr<MessagePlan>> plans;
  auto& slot = plans[d];
  if (slot) return *slot;
  slot = std::make_unique<MessagePlan>();
  MessagePlan& plan = *slot;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    std::string key;
    appendJsonString(key, f->name());
    key.push_back(':');
    plan.keys.push_back(std::move(key));
    const auto* oneof = f->real_containing_oneof();
    if (!oneof) plan.steps.push_back({f, nullptr});
    else if (oneof->field(0) == f) plan.steps.push_back({nullptr, oneof});
  }
  return plan;
}

void appendMessage(std::string& out, const Message& m) {
  const auto* d = m.GetDescriptor();
  if (d == google::protobuf::Timestamp::descriptor()) {
    appendJsonTimestamp(out, static_cast<const google::protobuf::Timestamp&>(m));
    return;
  }
  const Reflection* r = m.GetReflection();
  const MessagePlan& plan = planOf(d);
  out.push_back('{');
  bool first = true;
  for (const auto& step : plan.steps) {
    const FieldDescriptor* f = step.field;
    // Fields with presence (messages, oneof members, proto3 optional) only when set; plain
    // scalars always, with their default value.
    if (step.oneof) {
      f = r->GetOneofFieldDescriptor(m, step.oneof);
      if (!f) continue;
    } else if (f->is_repeated()) {
      // printed even when empty
    } else if (f->has_presence() && !r->HasField(m, f)) {
      continue;
    }
    if (!first) out.push_back(',');
    first = false;
    out += plan.keys[f->index()];
    if (f->is_repeated()) {
      out.push_back('[');
      int n = r->FieldSize(m, f);
      for (int k = 0; k < n; ++k) {
        if (k) out.push_back(',');
        appendValue(out, m, r, f, k);
      }
      out.push_back(']');
    } else {
      appendValue(out, m, r, f, -1);
    }
  }
  out.push_back('}');
}

}  // namespace

std::string recordToJson(const firehub::v1::Record& record) { return messageToJson(record); }

std::string messageToJson(const google::protobuf::Message& message) {
  std::string out;
  out.reserve(768);
  appendMessage(out, message);
  return out;
}

void appendJson(std::string& out, const google::protobuf::Message& message) { appendMessage(out, message); }

}  // namespace firehub::bus
