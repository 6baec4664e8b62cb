// The connector conformance suite: runs against every connector plugin built into
// <build>/plugins (or the files listed in FIREHUB_TESTKIT_PLUGINS, colon-separated).
//
// For each plugin: the handshake fields; create() with empty, invalid and unknown-key configs
// answers without crashing; every fixture decodes into records that meet the envelope contract
// (fixtures named *.invalid.* must yield rejections with reasons instead); random and truncated
// input yields errors or rejections, never a crash; load/create/destroy/unload 100 times cleanly.
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <link.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "firehub/pipeline.h"
#include "firehub/plugin.h"
#include "firehub/v1/record.pb.h"

namespace firehub::testkit {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> pluginFiles() {
  std::vector<std::string> files;
  if (const char* env = std::getenv("FIREHUB_TESTKIT_PLUGINS")) {
    std::stringstream in(env);
    std::string f;
    while (std::getline(in, f, ':')) {
      if (!f.empty()) files.push_back(f);
    }
    return files;
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(std::string(FIREHUB_BUILD_DIR) + "/plugins", ec)) {
    if (e.path().extension() == ".so") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// connectors/<name>/tests/fixtures or plugins/<name>/tests/fixtures for firehub_connector_<name>.so
fs::path fixtureDir(const std::string& plugin_file) {
  std::string stem = fs::path(plugin_file).stem().string();
  std::string name = stem.substr(stem.find("firehub_connector_") == 0 ? 18 : 0);
  for (const char* root : {"connectors", "plugins"}) {
    fs::path dir = fs::path(FIREHUB_SOURCE_DIR) / root / name / "tests" / "fixtures";
    if (fs::is_directory(dir)) return dir;
  }
  return {};
}

std::string contentTypeOf(const fs::path& file) {
  auto ext = file.extension().string();
  if (ext == ".csv") return "text/csv";
  if (ext == ".ndjson" || ext == ".jsonl") return "application/x-ndjson";
  if (ext == ".json" || ext == ".geojson") return "application/json";
  if (ext == ".xml") return "application/xml";
  if (ext == ".gbt26875") return "application/x-gbt26875";
  return "application/octet-stream";
}

std::string readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool isMapped(const std::string& path) {
  std::pair<std::string, bool> search{fs::path(path).filename().string(), false};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* s = static_cast<std::pair<std::string, bool>*>(data);
        if (info->dlpi_name && std::string(info->dlpi_name).find(s->first) != std::string::npos) {
          s->second = true;
        }
        return 0;
      },
      &search);
  return search.second;
}

struct Outcome {
  std::vector<firehub::v1::Record> records;
  std::vector<std::string> problems;    // envelope violations
  std::vector<std::string> rejections;  // reasons
  Status status;
};

Outcome decode(plugin::ConnectorInstance& c, std::string_view data, const std::string& type) {
  Outcome out;
  const std::string domain = c.plugin().descriptor().domain;
  plugin::DecodeSink sink;
  sink.on_record = [&](std::string_view bytes) {
    firehub::v1::Record r;
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      out.problems.push_back("emitted bytes are not a firehub.v1.Record");
      return;
    }
    std::string problem = pipeline::checkEmitted(r, domain);
    if (!problem.empty()) out.problems.push_back(problem);
    out.records.push_back(std::move(r));
  };
  sink.on_reject = [&](const fh_rejection& rej) {
    out.rejections.push_back(rej.reason ? rej.reason : "");
  };
  out.status = c.decode(data, type, "testkit", "testkit", sink);
  return out;
}

class ConnectorConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto loaded = plugin::loadPlugin(GetParam());
    ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
    plugin_ = loaded.value();
    ASSERT_TRUE(registry_.scanDirectory(fs::path(GetParam()).parent_path().string()).size() > 0);
  }
  std::unique_ptr<plugin::ConnectorInstance> instance(const std::string& config = "{}") {
    auto created = registry_.create(plugin_->id(), config);
    EXPECT_TRUE(created.isOk()) << created.status().toString();
    return created.isOk() ? std::move(created).value() : nullptr;
  }
  std::shared_ptr<plugin::LoadedPlugin> plugin_;
  plugin::ConnectorRegistry registry_;
};

TEST_P(ConnectorConformance, HandshakeFields) {
  const auto& d = plugin_->descriptor();
  EXPECT_EQ(d.abi_major, static_cast<uint32_t>(FH_ABI_MAJOR));
  EXPECT_LE(d.abi_minor, static_cast<uint32_t>(FH_ABI_MINOR));
  EXPECT_EQ(std::string(d.id).rfind("firehub.connector.", 0), 0u) << d.id;
  EXPECT_FALSE(std::string(d.version).empty());
  EXPECT_FALSE(std::string(d.domain).empty());
  ASSERT_NE(d.config_schema, nullptr);
  Poco::JSON::Parser parser;
  EXPECT_NO_THROW(parser.parse(d.config_schema)) << "config_schema is not JSON";
}

TEST_P(ConnectorConformance, CreateAnswersEveryConfigWithoutCrashing) {
  for (const char* config : {"{}", "", "{", "[]", "null", R"({"no_such_key_anywhere": 1})"}) {
    auto created = registry_.create(plugin_->id(), config);
    if (std::string(config) == "{" || std::string(config) == "[]" ||
        std::string(config) == R"({"no_such_key_anywhere": 1})") {
      EXPECT_FALSE(created.isOk()) << "config " << config << " should be rejected";
      if (!created.isOk()) {
        EXPECT_FALSE(created.status().message().empty());
      }
    }
  }
}

TEST_P(ConnectorConformance, FixturesDecodeIntoValidRecords) {
  fs::path dir = fixtureDir(GetParam());
  ASSERT_FALSE(dir.empty()) << "no tests/fixtures folder for " << GetParam();
  auto c = instance();
  ASSERT_TRUE(c);
  int fixtures = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++fixtures;
    std::string name = e.path().filename().string();
    auto out = decode(*c, readAll(e.path()), contentTypeOf(e.path()));
    bool invalid = name.find(".invalid.") != std::string::npos;
    ASSERT_TRUE(out.status.isOk()) << name << ": " << out.status.toString();
    EXPECT_TRUE(out.problems.empty()) << name << ": " << out.problems.front();
    if (invalid) {
      EXPECT_FALSE(out.rejections.empty()) << name << " should yield rejections";
      for (const auto& reason : out.rejections) EXPECT_FALSE(reason.empty());
    } else {
      EXPECT_FALSE(out.records.empty()) << name << " yielded no records";
      EXPECT_TRUE(out.rejections.empty()) << name << ": " << out.rejections.front();
    }
  }
  EXPECT_GT(fixtures, 0);
}

TEST_P(ConnectorConformance, RandomAndTruncatedInputNeverCrashes) {
  auto c = instance();
  ASSERT_TRUE(c);
  std::mt19937 rng(26875);
  std::vector<std::string> types = {"text/csv", "application/json", "application/x-ndjson",
                                    "application/octet-stream"};
  for (int i = 0; i < 200; ++i) {
    std::string junk(rng() % 512, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    auto out = decode(*c, junk, types[i % types.size()]);
    EXPECT_TRUE(out.problems.empty());
  }
  fs::path dir = fixtureDir(GetParam());
  if (dir.empty()) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string text = readAll(e.path());
    for (int i = 0; i < 50 && !text.empty(); ++i) {
      std::string cut = text.substr(0, rng() % text.size());
      if (i % 2 && !cut.empty()) cut[rng() % cut.size()] = static_cast<char>(rng());
      auto out = decode(*c, cut, contentTypeOf(e.path()));
      EXPECT_TRUE(out.problems.empty()) << e.path() << " cut at " << cut.size() << ": "
                                        << (out.problems.empty() ? "" : out.problems[0]);
    }
  }
}

TEST_P(ConnectorConformance, LoadAndUnloadOneHundredTimes) {
  fs::path copy = fs::temp_directory_path() / ("testkit-" + std::to_string(getpid()) + "-" +
                                               fs::path(GetParam()).filename().string());
  fs::copy_file(GetParam(), copy, fs::copy_options::overwrite_existing);
  for (int i = 0; i < 100; ++i) {
    auto loaded = plugin::loadPlugin(copy.string());
    ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
    void* handle = nullptr;
    char err[256] = {0};
    ASSERT_EQ(loaded.value()->descriptor().create("{}", 2, &handle, err, sizeof err), FH_OK) << err;
    plugin::ConnectorInstance holder(loaded.value(), handle);
  }
  EXPECT_FALSE(isMapped(copy.string())) << "library still mapped after the last instance";
  fs::remove(copy);
}

std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (auto& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Plugins, ConnectorConformance, ::testing::ValuesIn(pluginFiles()),
                         testName);

}  // namespace
}  // namespace firehub::testkit
