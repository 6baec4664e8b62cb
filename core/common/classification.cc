#include "firehub/classification.h"

#include <map>

#include "firehub/v1/options.pb.h"

namespace firehub {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

bool scan(const Descriptor* d, std::map<const Descriptor*, bool>& seen) {
  if (auto it = seen.find(d); it != seen.end()) return it->second;
  seen[d] = false;  // breaks cycles
  bool found = false;
  for (int i = 0; i < d->field_count() && !found; ++i) {
    const FieldDescriptor* f = d->field(i);
    found = isRestrictedField(f) || (f->message_type() && scan(f->message_type(), seen));
  }
  seen[d] = found;
  return found;
}

}  // namespace

bool isRestrictedField(const FieldDescriptor* f) {
  return f->options().GetExtension(firehub::v1::field_classification) ==
         firehub::v1::CLASSIFICATION_RESTRICTED;
}

bool hasRestrictedFields(const Descriptor* type) {
  // Per thread, so no lock (every record's push asks for its body type; descriptors never change).
  thread_local std::map<const Descriptor*, bool> known;
  return scan(type, known);
}

bool domainHasRestrictedFields(const std::string& domain) {
  static const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  for (int i = 0; body && i < body->field_count(); ++i) {
    const auto* type = body->field(i)->message_type();
    if (type && type->options().GetExtension(firehub::v1::domain) == domain &&
        hasRestrictedFields(type))
      return true;
  }
  return false;
}

bool bodyHasRestrictedFields(const firehub::v1::Record& record) {
  static const auto* oneof = firehub::v1::Record::descriptor()->FindOneofByName("body");
  const auto* field = record.GetReflection()->GetOneofFieldDescriptor(record, oneof);
  return field && hasRestrictedFields(field->message_type());
}

int redactRestricted(google::protobuf::Message& m) {
  const auto* d = m.GetDescriptor();
  if (!hasRestrictedFields(d)) return 0;
  const auto* r = m.GetReflection();
  int cleared = 0;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (isRestrictedField(f)) {
      // HasField is true for a proto3 scalar without presence when it is not the default.
      if (f->is_repeated() ? r->FieldSize(m, f) > 0 : r->HasField(m, f)) ++cleared;
      r->ClearField(&m, f);
      continue;
    }
    if (!f->message_type() || !hasRestrictedFields(f->message_type())) continue;
    if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(m, f); ++k)
        cleared += redactRestricted(*r->MutableRepeatedMessage(&m, f, k));
    } else if (r->HasField(m, f)) {
      cleared += redactRestricted(*r->MutableMessage(&m, f));
    }
  }
  return cleared;
}

}  // namespace firehub
