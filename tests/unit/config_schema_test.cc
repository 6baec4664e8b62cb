// Feed configs against connector schemas: unknown and mistyped keys are refused with the key and
// the rule; every shipped connector schema is one the checker understands.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "firehub/registry.h"

namespace firehub::registry {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kSchema = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
  "additionalProperties": false,
  "properties": {
    "utc_offset": {"type": "string", "pattern": "^(Z|[+-][0-9]{2}:[0-9]{2})$"},
    "csv_delimiter": {"type": "string", "enum": [",", ";"]},
    "batch": {"type": "integer", "minimum": 1, "maximum": 1000},
    "strict": {"type": "boolean"}
  }})";

void expectRefused(const std::string& config, const std::string& words) {
  Status s = validateConfig(kSchema, config);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << config;
  EXPECT_NE(s.message().find(words), std::string::npos) << s.message();
}

TEST(ConfigSchemaTest, AcceptsValidConfigs) {
  EXPECT_TRUE(validateConfig(kSchema, "").isOk());
  EXPECT_TRUE(validateConfig(kSchema, "{}").isOk());
  EXPECT_TRUE(
      validateConfig(kSchema,
                     R"({"utc_offset":"+08:00","csv_delimiter":";","batch":10,"strict":true})")
          .isOk());
}

TEST(ConfigSchemaTest, RefusesUnknownAndMistypedKeysNamingThem) {
  expectRefused(R"({"utc_ofset":"+08:00"})",
                "config.utc_ofset: is not a setting of this connector");
  expectRefused(R"({"batch":"10"})", "config.batch: must be integer, not string '10'");
  expectRefused(R"({"batch":2.5})", "config.batch: must be integer");
  expectRefused(R"({"strict":"yes"})", "config.strict: must be boolean");
  expectRefused(R"({"csv_delimiter":"|"})", "config.csv_delimiter: '|' is not one of ',', ';'");
  expectRefused(R"({"utc_offset":"8"})", "does not match");
  expectRefused(R"({"batch":0})", "below the minimum 1");
  expectRefused(R"([1,2])", "config: must be object");
  expectRefused(R"({"batch":)", "not valid JSON");
}

TEST(ConfigSchemaTest, EveryShippedConnectorSchemaIsUnderstood) {
  int schemas = 0;
  for (const auto& dir :
       std::filesystem::directory_iterator(std::string(FIREHUB_SOURCE_DIR) + "/connectors")) {
    std::string file = dir.path().string() + "/config.schema.json";
    if (!std::filesystem::exists(file)) continue;
    Status s = validateConfig(read(file), "{}");
    EXPECT_TRUE(s.isOk()) << file << ": " << s.toString();
    ++schemas;
  }
  EXPECT_GE(schemas, 7);
  Status s = validateConfig(R"({"type":"object","oneOf":[]})", "{}");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << "unknown keywords are never skipped";
}

}  // namespace
}  // namespace firehub::registry

namespace firehub::registry {
namespace {

// Found by fuzzing (fuzz_request): std::regex overflowed on huge repeat counts and
// back-reference numbers, and backtracked exponentially on nested quantifiers.
TEST(ConfigSchemaTest, PatternsRunInLinearTimeAndBadOnesRefuseTheSchema) {
  Status huge = validateConfig(
      R"({"type":"object","properties":{"k":{"type":"string","pattern":"^a{8888888888888888888}$"}}})",
      R"({"k":"a"})");
  EXPECT_EQ(huge.code(), StatusCode::kInvalidArgument) << huge.toString();  // read, not run into UB
  Status backref = validateConfig(
      R"({"type":"object","properties":{"k":{"type":"string","pattern":"(a)\\6666666666666666666"}}})",
      R"({"k":"a"})");
  EXPECT_EQ(backref.code(), StatusCode::kInvalidArgument) << backref.toString();
  Status broken = validateConfig(
      R"({"type":"object","properties":{"k":{"type":"string","pattern":"(unclosed"}}})",
      R"({"k":"a"})");
  EXPECT_EQ(broken.code(), StatusCode::kFailedPrecondition) << broken.toString();
  EXPECT_NE(broken.message().find("bad pattern"), std::string::npos);
  std::string schema =
      R"({"type":"object","properties":{"k":{"type":"string","pattern":"^(a+)+$"}}})";
  EXPECT_TRUE(validateConfig(schema, R"({"k":")" + std::string(5000, 'a') + R"("})").isOk());
  // The classic catastrophic-backtracking input: answered at once.
  Status redos = validateConfig(schema, R"({"k":")" + std::string(64, 'a') + R"(!"})");
  EXPECT_EQ(redos.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(redos.message().find("does not match"), std::string::npos) << redos.toString();
}

}  // namespace
}  // namespace firehub::registry
