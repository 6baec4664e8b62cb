// Guards the v1 evolution rule: a field that shipped keeps its number and type forever.
// schemas/firehub/v1/schema.lock lists every field of every firehub.v1 message as
// "<message> <field> <number> <type> <label>". The test fails when a listed field is gone,
// renumbered or retyped, or when a listed number is reused. New fields are allowed: the test
// prints their lines, to be appended to the lock file in the same change.
// FIREHUB_SCHEMA_LOCK_WRITE=1 rewrites the file from the current schema (for new fields only).
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "firehub/v1/dead_letter.pb.h"
#include "firehub/v1/layer.pb.h"
#include "firehub/v1/record.pb.h"

namespace firehub {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const std::string kLockFile = std::string(FIREHUB_SOURCE_DIR) + "/schemas/firehub/v1/schema.lock";

void collect(const Descriptor* d, std::map<std::string, std::string>& out) {
  if (d->full_name().rfind("firehub.v1.", 0) != 0) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    std::string type = f->type_name();
    if (f->message_type()) type = f->message_type()->full_name();
    if (f->enum_type()) type = f->enum_type()->full_name();
    std::string label =
        f->is_repeated() ? "repeated" : (f->has_optional_keyword() ? "optional" : "singular");
    out[d->full_name() + " " + f->name()] = std::to_string(f->number()) + " " + type + " " + label;
  }
  for (int i = 0; i < d->nested_type_count(); ++i) collect(d->nested_type(i), out);
}

std::map<std::string, std::string> currentSchema() {
  std::map<std::string, std::string> fields;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::set<const google::protobuf::FileDescriptor*> seen;
  std::vector<const google::protobuf::FileDescriptor*> todo = {
      firehub::v1::Record::descriptor()->file(), firehub::v1::DeadLetter::descriptor()->file(),
      firehub::v1::LayerEntry::descriptor()->file()};
  while (!todo.empty()) {
    const auto* file = todo.back();
    todo.pop_back();
    if (!seen.insert(file).second || file->package() != "firehub.v1") continue;
    for (int i = 0; i < file->message_type_count(); ++i) collect(file->message_type(i), fields);
    for (int i = 0; i < file->dependency_count(); ++i) todo.push_back(file->dependency(i));
  }
  (void)pool;
  return fields;
}

TEST(SchemaLockTest, ShippedFieldsKeepTheirNumberAndType) {
  auto current = currentSchema();
  if (std::getenv("FIREHUB_SCHEMA_LOCK_WRITE")) {
    std::ofstream out(kLockFile);
    out << "# firehub.v1 fields: <message> <field> <number> <type> <label>. Append only.\n";
    for (const auto& [k, v] : current) out << k << " " << v << "\n";
    GTEST_SKIP() << "rewrote " << kLockFile;
  }
  std::ifstream in(kLockFile);
  ASSERT_TRUE(in) << "missing " << kLockFile;
  std::map<std::string, std::string> locked;
  std::map<std::string, std::string> number_owner;  // "<message> <number>" -> field
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string message, field, number, type, label;
    fields >> message >> field >> number >> type >> label;
    locked[message + " " + field] = number + " " + type + " " + label;
    number_owner[message + " " + number] = field;
  }
  ASSERT_FALSE(locked.empty());
  for (const auto& [key, value] : locked) {
    auto it = current.find(key);
    ASSERT_NE(it, current.end()) << key << " was removed; v1 fields stay (mark them deprecated, "
                                 << "or reserve the number in a v2)";
    EXPECT_EQ(it->second, value) << key << " changed number, type or label";
  }
  std::string added;
  for (const auto& [key, value] : current) {
    if (locked.count(key)) continue;
    std::string message = key.substr(0, key.find(' '));
    std::string number = value.substr(0, value.find(' '));
    auto owner = number_owner.find(message + " " + number);
    EXPECT_EQ(owner, number_owner.end())
        << key << " reuses number " << number << " of " << message << "." << owner->second;
    added += key + " " + value + "\n";
  }
  if (!added.empty()) {
    ADD_FAILURE() << "new fields are not in schemas/firehub/v1/schema.lock yet; append:\n" << added;
  }
}

}  // namespace
}  // namespace firehub
