// Feed definitions: parsed and checked, written back the same; file-drop folders resolved under
// the operator's root and never the data dir; counters stored and read back.
#include <gtest/gtest.h>

#include <filesystem>

#include "firehub/registry.h"
#include "test_support.h"

namespace firehub::registry {
namespace {

TEST(FeedSpecTest, DefinitionsAreCheckedAndWrittenBackTheSame) {
  auto spec = parseFeedSpec(
      R"({"id":"wx-1","agency":"met","connector":"firehub.connector.weather","config":{"utc_offset":"+08:00"},)"
      R"("cadence_s":600,"errors":{"tolerance":"none","retries":2},"file_drop":{"dir":"met"}})");
  ASSERT_TRUE(spec.isOk()) << spec.status().toString();
  EXPECT_EQ(spec->errors.tolerance, ErrorPolicy::Tolerance::kNone);
  EXPECT_EQ(spec->file_drop.dir, "met");
  auto again = parseFeedSpec(feedSpecToJson(spec.value()));
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(feedSpecToJson(again.value()), feedSpecToJson(spec.value()));
  for (
      const std::string& bad :
      {R"({"id":"Bad Id","agency":"met","connector":"c"})", R"({"id":"a","agency":"met"})",
       R"({"id":"a","agency":"met","connector":"c","colour":1})",
       R"({"id":"a","agency":"met","connector":"c","errors":{"retries":99}})",
       R"({"id":"a","agency":"met","connector":"c","errors":{"backoff_ms":100,"max_backoff_ms":10}})",
       R"({"id":"a","agency":"met","connector":"c","file_drop":{"dir":""}})", "[1,2]",
       "not json"}) {
    EXPECT_FALSE(parseFeedSpec(bad).isOk()) << bad;
  }
}

TEST(FileDropPolicyTest, FoldersLieUnderTheRootAndNeverAtTheDataDir) {
  firehub::testing::TempDir dir;
  const std::string root = dir.sub("drops"), data = dir.sub("data");
  std::filesystem::create_directories(root);
  std::filesystem::create_directories(data);
  const FileDropPolicy policy{root, data};
  const std::string canonical_root = std::filesystem::canonical(root).string();
  EXPECT_EQ(resolveFileDropDir("met", policy).value(), canonical_root + "/met");
  EXPECT_EQ(resolveFileDropDir(root + "/met/in", policy).value(), canonical_root + "/met/in");
  EXPECT_FALSE(resolveFileDropDir("../data", policy).isOk());
  EXPECT_FALSE(resolveFileDropDir(root, policy).isOk()) << "the root itself is no feed's folder";
  EXPECT_FALSE(resolveFileDropDir("/etc", policy).isOk());
  EXPECT_FALSE(resolveFileDropDir("met", FileDropPolicy{"", data}).isOk())
      << "no root, no file drops";
  // A root that holds the data dir: the data dir and what lies in it or above it are refused.
  const FileDropPolicy wide{dir.path(), data};
  EXPECT_FALSE(resolveFileDropDir("data", wide).isOk());
  EXPECT_FALSE(resolveFileDropDir("data/lake", wide).isOk());
  EXPECT_TRUE(resolveFileDropDir("drops/met", wide).isOk());
  // A symlink in the root that leads to the data dir is followed before the check.
  std::filesystem::create_symlink(data, root + "/sneaky");
  EXPECT_FALSE(resolveFileDropDir("sneaky", FileDropPolicy{root, data}).isOk());
}

TEST(FeedStatsTest, CountersReadBackAsStored) {
  FeedStats s{12, 3, 4, 1733500000};
  FeedStats back;
  ASSERT_TRUE(decodeFeedStats(encodeFeedStats(s), back));
  EXPECT_EQ(back.accepted, 12u);
  EXPECT_EQ(back.rejected, 3u);
  EXPECT_EQ(back.duplicates, 4u);
  EXPECT_EQ(back.last_record_at, 1733500000);
  EXPECT_FALSE(decodeFeedStats("x", back));
}

}  // namespace
}  // namespace firehub::registry
