// The plugin boundary with real shared libraries: handshake, refusal messages, exception safety,
// and the library's lifetime.
#include <gtest/gtest.h>
#include <link.h>

#include <filesystem>
#include <fstream>

#include "firehub/plugin.h"
#include "firehub/v1/record.pb.h"
#include "test_support.h"

extern "C" const fh_connector_descriptor* fh_connector_weather(void);

namespace firehub::plugin {
namespace {

using firehub::testing::pluginsDir;
using firehub::testing::TempDir;
using firehub::testing::testPluginsDir;

bool isMapped(const std::string& file_name) {
  struct Search {
    std::string name;
    bool found = false;
  } search{file_name};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        if (info->dlpi_name && std::string(info->dlpi_name).find(s->name) != std::string::npos) {
          s->found = true;
        }
        return 0;
      },
      &search);
  return search.found;
}

const std::string kCsv =
    "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n"
    "54342,123.43,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n";

TEST(PluginLoaderTest, LoadsTheWeatherPluginAndDecodes) {
  auto plugin = loadPlugin(pluginsDir() + "/firehub_connector_weather.so");
  ASSERT_TRUE(plugin.isOk()) << plugin.status().toString();
  EXPECT_EQ(plugin.value()->id(), "firehub.connector.weather");
  EXPECT_EQ(plugin.value()->descriptor().abi_major, static_cast<uint32_t>(FH_ABI_MAJOR));
  EXPECT_NE(std::string(plugin.value()->descriptor().config_schema).find("utc_offset"),
            std::string::npos);

  ConnectorRegistry registry;
  auto found = registry.scanDirectory(pluginsDir());
  ASSERT_TRUE(registry.has("firehub.connector.weather"));
  auto instance = registry.create("firehub.connector.weather", "{}");
  ASSERT_TRUE(instance.isOk()) << instance.status().toString();
  std::vector<firehub::v1::Record> records;
  DecodeSink sink;
  sink.on_record = [&](std::string_view bytes) {
    firehub::v1::Record r;
    ASSERT_TRUE(r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    records.push_back(r);
  };
  sink.on_reject = [&](const fh_rejection& r) { ADD_FAILURE() << r.reason; };
  ASSERT_TRUE(instance.value()->decode(kCsv, "text/csv", "wx", "met", sink).isOk());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].entity_id(), "54342");
  EXPECT_EQ(records[0].observed_at().seconds(), 1795305600);  // 2026-11-22T00:00:00Z
}

TEST(PluginLoaderTest, RefusesAnotherAbiMajorNamingFileAndBothVersions) {
  std::string file = testPluginsDir() + "/test_plugin_bad_abi.so";
  auto plugin = loadPlugin(file);
  ASSERT_FALSE(plugin.isOk());
  const std::string& m = plugin.status().message();
  EXPECT_NE(m.find(file), std::string::npos) << m;
  EXPECT_NE(m.find("plugin ABI " + std::to_string(FH_ABI_MAJOR + 1) + ".0"), std::string::npos)
      << m;
  EXPECT_NE(m.find("host ABI " + std::to_string(FH_ABI_MAJOR) + "." + std::to_string(FH_ABI_MINOR)),
            std::string::npos)
      << m;
}

TEST(PluginLoaderTest, RefusesALibraryWithoutDescriptor) {
  std::string file = testPluginsDir() + "/test_plugin_no_symbol.so";
  auto plugin = loadPlugin(file);
  ASSERT_FALSE(plugin.isOk());
  EXPECT_NE(plugin.status().message().find("firehub_connector_v1"), std::string::npos);
  EXPECT_NE(plugin.status().message().find(file), std::string::npos);
}

TEST(PluginLoaderTest, RefusesAFileThatIsNotALibrary) {
  TempDir dir;
  std::string file = dir.sub("garbage.so");
  std::ofstream(file) << "this is not an ELF file";
  auto plugin = loadPlugin(file);
  ASSERT_FALSE(plugin.isOk());
  EXPECT_NE(plugin.status().message().find("cannot be loaded"), std::string::npos);
  EXPECT_NE(plugin.status().message().find(file), std::string::npos);
}

TEST(PluginLoaderTest, ScanKeepsGoodPluginsAndReportsRefusedOnes) {
  TempDir dir;
  std::filesystem::copy_file(pluginsDir() + "/firehub_connector_weather.so", dir.sub("weather.so"));
  std::filesystem::copy_file(testPluginsDir() + "/test_plugin_bad_abi.so", dir.sub("bad_abi.so"));
  std::filesystem::copy_file(testPluginsDir() + "/test_plugin_no_symbol.so",
                             dir.sub("no_symbol.so"));
  std::ofstream(dir.sub("garbage.so")) << "nope";
  ConnectorRegistry registry;
  auto found = registry.scanDirectory(dir.path());
  ASSERT_EQ(found.size(), 4u);
  int loaded = 0;
  for (const auto& info : found) {
    if (info.loaded) {
      ++loaded;
      EXPECT_EQ(info.id, "firehub.connector.weather");
    } else {
      EXPECT_FALSE(info.reason.empty());
    }
  }
  EXPECT_EQ(loaded, 1);
  EXPECT_TRUE(registry.has("firehub.connector.weather"));
  EXPECT_FALSE(registry.has("firehub.connector.future"));
}

TEST(PluginLoaderTest, ExceptionsNeverCrossTheBoundary) {
  ConnectorRegistry registry;
  auto found = registry.scanDirectory(testPluginsDir());
  ASSERT_TRUE(registry.has("firehub.connector.throwing"));
  auto bad = registry.create("firehub.connector.throwing", R"({"throw_in_create": true})");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("boom in create"), std::string::npos);
  auto odd = registry.create("firehub.connector.throwing", R"({"throw_int": true})");
  ASSERT_FALSE(odd.isOk());
  EXPECT_NE(odd.status().message().find("unknown exception"), std::string::npos);

  auto instance = registry.create("firehub.connector.throwing", "{}");
  ASSERT_TRUE(instance.isOk());
  DecodeSink sink;
  sink.on_record = [](std::string_view) {};
  sink.on_reject = [](const fh_rejection&) {};
  Status s = instance.value()->decode("x", "text/csv", "f", "a", sink);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  // A fault of the connector, not of the input: the host marks the feed failed.
  EXPECT_NE(s.message().find("boom in decode"), std::string::npos);
  s = instance.value()->decode("int", "text/csv", "f", "a", sink);
  EXPECT_NE(s.message().find("unknown exception"), std::string::npos);
}

TEST(PluginLoaderTest, ConfigErrorsAreReportedWithTheKey) {
  ConnectorRegistry registry;
  registry.scanDirectory(pluginsDir());
  auto unknown = registry.create("firehub.connector.weather", R"({"utc_ofset": "+08:00"})");
  ASSERT_FALSE(unknown.isOk());
  EXPECT_NE(unknown.status().message().find("'utc_ofset' is not known"), std::string::npos);
  auto wrong_type = registry.create("firehub.connector.weather", R"({"utc_offset": 8})");
  ASSERT_FALSE(wrong_type.isOk());
  EXPECT_NE(wrong_type.status().message().find("'utc_offset': expected a string"),
            std::string::npos);
  auto not_json = registry.create("firehub.connector.weather", "{");
  ASSERT_FALSE(not_json.isOk());
  auto missing = registry.create("firehub.connector.nothing", "{}");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(PluginLoaderTest, LibraryStaysLoadedWhileAnInstanceLives) {
  TempDir dir;
  // A private copy so no other test holds the same file mapped.
  std::string file = dir.sub("lifetime_weather.so");
  std::filesystem::copy_file(pluginsDir() + "/firehub_connector_weather.so", file);
  std::unique_ptr<ConnectorInstance> instance;
  {
    ConnectorRegistry registry;
    registry.scanDirectory(dir.path());
    auto created = registry.create("firehub.connector.weather", "{}");
    ASSERT_TRUE(created.isOk());
    instance = std::move(created).value();
  }  // the registry (and its reference to the library) is gone
  EXPECT_TRUE(isMapped("lifetime_weather.so"));
  size_t n = 0;
  DecodeSink sink;
  sink.on_record = [&](std::string_view) { ++n; };
  sink.on_reject = [](const fh_rejection&) {};
  ASSERT_TRUE(instance->decode(kCsv, "text/csv", "wx", "met", sink).isOk());
  EXPECT_EQ(n, 1u);
  instance.reset();
  EXPECT_FALSE(isMapped("lifetime_weather.so"));
}

TEST(PluginLoaderTest, StaticRegistrationUsesTheSameHandshake) {
  ConnectorRegistry registry;
  ASSERT_TRUE(registry.registerStatic(fh_connector_weather()).isOk());
  EXPECT_TRUE(registry.has("firehub.connector.weather"));
  fh_connector_descriptor future = *fh_connector_weather();
  future.abi_major = FH_ABI_MAJOR + 1;
  Status s = registry.registerStatic(&future);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  fh_connector_descriptor newer_minor = *fh_connector_weather();
  newer_minor.abi_minor = FH_ABI_MINOR + 1;
  EXPECT_FALSE(checkDescriptor(&newer_minor, "x").isOk());
  fh_connector_descriptor truncated = *fh_connector_weather();
  truncated.struct_size = 12;
  EXPECT_FALSE(checkDescriptor(&truncated, "x").isOk());
  fh_connector_descriptor no_decode = *fh_connector_weather();
  no_decode.decode = nullptr;
  EXPECT_FALSE(checkDescriptor(&no_decode, "x").isOk());
}

}  // namespace
}  // namespace firehub::plugin
