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
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "firehub/bus.h"
#include "redaction.h"
#include "firehub/v1/precision.h"
#include "firehub/classification.h"
#include "firehub/v1/time_text.h"

namespace firehub::bus {
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

// Doubles are written to 7 decimal places at most (1e-7 degree is about 1 cm; keptDouble()): the
// value rounded there, in the shortest text that reads back as that rounded value, so a computed
// 0.8 is "0.8", not "0.7999999999999999".
void appendDouble(std::string& out, double v) {
  if (std::isnan(v))
    out += "\"NaN\"";
  else if (std::isinf(v))
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  else
    appendNumber(out, firehub::v1::keptDouble(v));
}

// 64-bit integers are strings in protobuf's JSON mapping.
template <class T>
void appendQuoted(std::string& out, T v) {
  out.push_back('"');
  appendNumber(out, v);
  out.push_back('"');
}

void appendFloat(std::string& out, float v) {
  if (std::isfinite(v))
    appendNumber(out, v);
  else
    appendDouble(out, v);
}

// An enum value by name; a number the enum does not know as the number.
void appendEnum(std::string& out, const FieldDescriptor* f, int v) {
  const auto* value = f->enum_type()->FindValueByNumber(v);
  if (value)
    appendJsonString(out, value->name());
  else
    appendNumber(out, v);
}

void appendBase64(std::string& out, std::string_view in) {
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

// The redaction state of the record being written (redaction.h).
thread_local Redaction t_redaction;

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
      appendQuoted(out, rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      appendQuoted(out, rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      appendDouble(out, rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      appendFloat(out, rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      appendEnum(out, f, rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES)
        appendBase64(out, s);
      else
        appendJsonString(out, s);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (t_redaction.on) t_redaction.path.push_back(f->name());
      appendMessage(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      if (t_redaction.on) t_redaction.path.pop_back();
      break;
  }
}

// How a message type is written, worked out once per type and thread: each field's key text and
// what the writers ask of its descriptor, and the fields in order with each oneof as one step
// (its members are declared together, so the one that is set is written where they stand, and
// the others are not asked).
struct MessagePlan;
struct FieldPlan {
  const FieldDescriptor* field;
  std::string key;  // "name":
  FieldDescriptor::Type type;
  int wire_type;  // of one value (see wireTypeOf)
  bool repeated;
  bool presence;
  bool restricted;                              // the schema marks it restricted
  bool timestamp;                               // a google.protobuf.Timestamp
  const google::protobuf::Descriptor* message;  // of a message field
  mutable const MessagePlan* nested = nullptr;  // the message's plan, once looked up
};
struct MessagePlan {
  struct Step {
    int field;                 // index, -1 for a oneof
    std::vector<int> members;  // a oneof's fields, by index
    const google::protobuf::OneofDescriptor* oneof;
  };
  std::vector<FieldPlan> fields;  // by field index
  std::vector<Step> steps;
  std::vector<int> index_of;  // by field number: the field's index, -1 for none
  bool wire_ok = true;        // every field is in index_of (see appendWire)
};

// The wire type a single value of the field has (packed repeated scalars are also accepted).
int wireTypeOf(const FieldDescriptor* f) {
  switch (f->type()) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return 1;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return 5;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return 2;
    case FieldDescriptor::TYPE_GROUP:
      return -1;
    default:
      return 0;
  }
}

const MessagePlan& planOf(const google::protobuf::Descriptor* d) {
  // Plans stay in place while nested types add theirs (a message's plan is in use meanwhile).
  thread_local absl::flat_hash_map<const google::protobuf::Descriptor*,
                                   std::unique_ptr<MessagePlan>>
      plans;
  auto& slot = plans[d];
  if (slot) return *slot;
  slot = std::make_unique<MessagePlan>();
  MessagePlan& plan = *slot;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    FieldPlan field{f,
                    {},
                    f->type(),
                    wireTypeOf(f),
                    f->is_repeated(),
                    f->has_presence(),
                    isRestrictedField(f),
                    false,
                    f->message_type()};
    field.timestamp = field.message == google::protobuf::Timestamp::descriptor();
    appendJsonString(field.key, f->name());
    field.key.push_back(':');
    plan.fields.push_back(std::move(field));
    const auto* oneof = f->real_containing_oneof();
    if (!oneof) {
      plan.steps.push_back({i, {}, nullptr});
    } else if (oneof->field(0) == f) {
      MessagePlan::Step step{-1, {}, oneof};
      for (int k = 0; k < oneof->field_count(); ++k)
        step.members.push_back(oneof->field(k)->index());
      plan.steps.push_back(std::move(step));
    }
    // Numbers from 1024 and messages of more than 64 fields stay out (they are parsed instead).
    if (f->number() < 1024 && i < 64) {
      if (plan.index_of.size() <= static_cast<size_t>(f->number()))
        plan.index_of.resize(f->number() + 1, -1);
      plan.index_of[f->number()] = i;
    } else {
      plan.wire_ok = false;
    }
  }
  return plan;
}

// The plan of a message field's type, looked up once per field.
const MessagePlan& nestedPlan(const FieldPlan& f) {
  if (!f.nested) f.nested = &planOf(f.message);
  return *f.nested;
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
    const FieldDescriptor* f = step.field >= 0 ? plan.fields[step.field].field : nullptr;
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
    if (t_redaction.on && plan.fields[f->index()].restricted) {
      t_redaction.note(f->name());
      continue;
    }
    if (!first) out.push_back(',');
    first = false;
    out += plan.fields[f->index()].key;
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

// One field occurrence in the bytes: a varint or fixed value, or a length-delimited span.
struct Occurrence {
  int index;  // the field's index in its message
  int wire_type;
  uint64_t value;    // varint and fixed
  const char* data;  // length-delimited
  size_t size;
};

bool readVarint(const char*& p, const char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70 && p < end; shift += 7) {
    const auto b = static_cast<uint8_t>(*p++);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

uint64_t readFixed(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Long: the protobuf wire format walked in one loop (the hot path of every Kafka message); a call
// per wire type cost measurably.
bool appendWire(std::string& out, const MessagePlan& plan, std::string_view bytes, bool redact,
                WireRecordFacts* facts = nullptr);

// One scalar value (varint or fixed bits) of field f, as appendValue writes it.
void appendScalar(std::string& out, const FieldPlan& f, uint64_t v) {
  switch (f.type) {
    case FieldDescriptor::TYPE_INT32:
      appendNumber(out, static_cast<int32_t>(v));
      break;
    case FieldDescriptor::TYPE_SINT32:
      appendNumber(out, static_cast<int32_t>((static_cast<uint32_t>(v) >> 1) ^
                                             -(static_cast<uint32_t>(v) & 1)));
      break;
    case FieldDescriptor::TYPE_SFIXED32:
      appendNumber(out, static_cast<int32_t>(static_cast<uint32_t>(v)));
      break;
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_FIXED32:
      appendNumber(out, static_cast<uint32_t>(v));
      break;
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SFIXED64:
      appendQuoted(out, static_cast<int64_t>(v));
      break;
    case FieldDescriptor::TYPE_SINT64:
      appendQuoted(out, static_cast<int64_t>((v >> 1) ^ -(v & 1)));
      break;
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED64:
      appendQuoted(out, v);
      break;
    case FieldDescriptor::TYPE_DOUBLE: {
      double x;
      std::memcpy(&x, &v, sizeof x);
      appendDouble(out, x);
      break;
    }
    case FieldDescriptor::TYPE_FLOAT: {
      float x;
      const auto bits = static_cast<uint32_t>(v);
      std::memcpy(&x, &bits, sizeof x);
      appendFloat(out, x);
      break;
    }
    case FieldDescriptor::TYPE_BOOL:
      out += v ? "true" : "false";
      break;
    case FieldDescriptor::TYPE_ENUM:
      appendEnum(out, f.field, static_cast<int32_t>(v));
      break;
    default:
      break;
  }
}

// A google.protobuf.Timestamp from its bytes.
bool appendWireTimestamp(std::string& out, std::string_view bytes) {
  google::protobuf::Timestamp t;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  bool seen[3] = {false, false, false};
  while (p < end) {
    uint64_t tag, v;
    if (!readVarint(p, end, tag) || (tag & 7) != 0 || !readVarint(p, end, v)) return false;
    const uint64_t number = tag >> 3;
    if (number != 1 && number != 2) return false;
    if (seen[number]) return false;
    seen[number] = true;
    if (number == 1)
      t.set_seconds(static_cast<int64_t>(v));
    else
      t.set_nanos(static_cast<int32_t>(v));
  }
  appendJsonTimestamp(out, t);
  return true;
}

// One element (or the one value) of field f from occurrence o.
bool appendOccurrence(std::string& out, const FieldPlan& f, const Occurrence& o, bool redact) {
  switch (f.type) {
    case FieldDescriptor::TYPE_STRING:
      appendJsonString(out, std::string_view(o.data, o.size));
      return true;
    case FieldDescriptor::TYPE_BYTES:
      appendBase64(out, std::string_view(o.data, o.size));
      return true;
    case FieldDescriptor::TYPE_MESSAGE:
      if (f.timestamp) return appendWireTimestamp(out, std::string_view(o.data, o.size));
      if (redact) t_redaction.path.push_back(f.field->name());
      {
        const bool ok = appendWire(out, nestedPlan(f), std::string_view(o.data, o.size), redact);
        if (redact) t_redaction.path.pop_back();
        return ok;
      }
    default:
      appendScalar(out, f, o.value);
      return true;
  }
}

// The default a plain scalar field is written with when it is absent (or redacted).
void appendDefault(std::string& out, const FieldPlan& f) {
  switch (f.type) {
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
      out += "\"\"";
      break;
    default:
      appendScalar(out, f, 0);
  }
}

bool appendWire(std::string& out, const MessagePlan& plan, std::string_view bytes, bool redact,
                WireRecordFacts* facts) {
  if (!plan.wire_ok) return false;
  // Occurrences of this message stay on one stack shared with nested messages, which push
  // theirs above and take them off again.
  thread_local std::vector<Occurrence> stack;
  const size_t base = stack.size();
  struct Unwind {
    size_t base;
    ~Unwind() { stack.resize(base); }
  } unwind{base};
  uint8_t count[64] = {};
  uint32_t first[64];
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  while (p < end) {
    uint64_t tag;
    if (!readVarint(p, end, tag)) return false;
    Occurrence o{-1, static_cast<int>(tag & 7), 0, nullptr, 0};
    switch (o.wire_type) {
      case 0:
        if (!readVarint(p, end, o.value)) return false;
        break;
      case 1:
        if (end - p < 8) return false;
        o.value = readFixed(p, 8);
        p += 8;
        break;
      case 5:
        if (end - p < 4) return false;
        o.value = readFixed(p, 4);
        p += 4;
        break;
      case 2: {
        uint64_t n;
        if (!readVarint(p, end, n) || n > static_cast<uint64_t>(end - p)) return false;
        o.data = p;
        o.size = n;
        p += n;
        break;
      }
      default:
        return false;  // groups
    }
    const uint64_t number = tag >> 3;
    if (number >= plan.index_of.size() || plan.index_of[number] < 0)
      continue;  // unknown: not printed
    o.index = plan.index_of[number];
    const FieldPlan& f = plan.fields[o.index];
    const bool packed = o.wire_type == 2 && f.repeated && f.wire_type != 2;
    if (o.wire_type != f.wire_type && !packed) return false;
    if (count[o.index] == 0)
      first[o.index] = static_cast<uint32_t>(stack.size());
    else if (!f.repeated)
      return false;  // protobuf would merge; its serialiser never writes this
    if (count[o.index] < 255) ++count[o.index];
    stack.push_back(o);
  }
  const size_t top = stack.size();
  if (facts) {  // a record's header fields, from its own occurrences
    static const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
    for (size_t k = base; k < top; ++k) {
      const Occurrence& o = stack[k];
      const FieldDescriptor* f = plan.fields[o.index].field;
      if (f->number() == firehub::v1::Record::kFeedIdFieldNumber)
        facts->feed_id = {o.data, o.size};
      else if (f->number() == firehub::v1::Record::kAgencyFieldNumber)
        facts->agency = {o.data, o.size};
      else if (f->number() == firehub::v1::Record::kClassificationFieldNumber)
        facts->classification = static_cast<int32_t>(o.value);
      else if (f->real_containing_oneof() == body)
        facts->body = f->message_type();
    }
  }
  out.push_back('{');
  bool any = false;
  for (const auto& step : plan.steps) {
    int i = step.field;
    if (step.oneof) {
      i = -1;
      for (int member : step.members) {
        if (count[member] == 0) continue;
        if (i >= 0) return false;  // protobuf keeps the last; its serialiser writes one
        i = member;
      }
      if (i < 0) continue;
    }
    const FieldPlan& f = plan.fields[i];
    if (redact && f.restricted) {  // left out, and named in the record's "redacted" list
      t_redaction.note(f.field->name());
      continue;
    }
    const bool absent = count[i] == 0;
    if (!f.repeated && f.presence && absent) continue;
    if (any) out.push_back(',');
    any = true;
    out += f.key;
    if (f.repeated) {
      out.push_back('[');
      bool first_element = true;
      for (size_t k = absent ? top : first[i]; k < top; ++k) {
        const Occurrence o = stack[k];  // a copy: nested messages push onto the stack
        if (o.index != i) continue;
        if (o.wire_type == 2 && f.wire_type != 2) {  // packed scalars
          const char* q = o.data;
          const char* q_end = q + o.size;
          while (q < q_end) {
            uint64_t v;
            if (f.wire_type == 0) {
              if (!readVarint(q, q_end, v)) return false;
            } else {
              const int width = f.wire_type == 1 ? 8 : 4;
              if (q_end - q < width) return false;
              v = readFixed(q, width);
              q += width;
            }
            if (!first_element) out.push_back(',');
            first_element = false;
            appendScalar(out, f, v);
          }
          continue;
        }
        if (!first_element) out.push_back(',');
        first_element = false;
        if (!appendOccurrence(out, f, o, redact)) return false;
      }
      out.push_back(']');
    } else if (absent) {
      appendDefault(out, f);
    } else if (const Occurrence o = stack[first[i]]; !appendOccurrence(out, f, o, redact)) {
      return false;
    }
  }
  out.push_back('}');
  return true;
}
}  // namespace

bool appendRecordJsonFromWire(std::string& out, std::string_view bytes, bool redact,
                              WireRecordFacts* facts) {
  const size_t start = out.size();
  if (facts) *facts = WireRecordFacts{};
  thread_local const MessagePlan& record_plan = planOf(firehub::v1::Record::descriptor());
  t_redaction.path.clear();
  t_redaction.removed.clear();
  if (appendWire(out, record_plan, bytes, redact, facts)) {
    if (redact) t_redaction.close(out);
    return true;
  }
  out.resize(start);
  if (facts) *facts = WireRecordFacts{};
  return false;
}

WireRecordFacts recordFacts(const firehub::v1::Record& record) {
  static const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  const auto* member = record.GetReflection()->GetOneofFieldDescriptor(record, body);
  return WireRecordFacts{record.feed_id(), record.agency(), record.classification(),
                         member ? member->message_type() : nullptr};
}

std::string recordToJson(const firehub::v1::Record& record) { return messageToJson(record); }

void appendRecordJson(std::string& out, const firehub::v1::Record& record, bool redact) {
  if (!redact) return appendMessage(out, record);
  t_redaction.on = true;
  t_redaction.path.clear();
  t_redaction.removed.clear();
  appendMessage(out, record);
  t_redaction.on = false;
  t_redaction.close(out);
}

std::string recordToJson(const firehub::v1::Record& record, bool redact) {
  std::string out;
  out.reserve(768);
  appendRecordJson(out, record, redact);
  return out;
}

std::string messageToJson(const google::protobuf::Message& message) {
  std::string out;
  out.reserve(768);
  appendMessage(out, message);
  return out;
}

void appendJson(std::string& out, const google::protobuf::Message& message) {
  appendMessage(out, message);
}

}  // namespace firehub::bus
