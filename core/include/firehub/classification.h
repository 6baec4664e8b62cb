// Field classification, read from the schema's options (firehub.v1.field_classification), so
// redaction follows the schema rather than hand-kept lists.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "firehub/v1/record.pb.h"

namespace firehub {

// Whether the schema marks this field restricted.
bool isRestrictedField(const google::protobuf::FieldDescriptor* field);
// Whether a message type has a restricted field, directly or in a nested message. Cached.
bool hasRestrictedFields(const google::protobuf::Descriptor* type);
// Whether any body type of `domain` (the schema's (domain) option) has restricted fields.
bool domainHasRestrictedFields(const std::string& domain);
// Whether the record's body type has restricted fields (its domain then also has a .public topic).
bool bodyHasRestrictedFields(const firehub::v1::Record& record);
// Clears every restricted field, recursively. Returns how many set fields were cleared.
int redactRestricted(google::protobuf::Message& message);

}  // namespace firehub
