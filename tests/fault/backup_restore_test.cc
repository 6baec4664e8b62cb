// A backup of a running hub under steady pushes (`firehub backup`, RocksDB's BackupEngine),
// restored into a new data dir (`firehub restore`) and started there: every push acknowledged
// before the backup began is in it, the feed and its key with it. A second backup into the same
// folder is incremental; `firehub backup verify` finds a corrupted file, and a restore refuses it.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "processes.h"

namespace firehub::testing {
namespace {

std::string observations(int push) {
  std::string csv = "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";
  for (int k = 0; k < 20; ++k) {
    char line[160];
    std::snprintf(line, sizeof line,
                  "P%04d-%02d,%.4f,%.4f,2026-12-07T08:00:00+08:00,3,40,12,270,0\n", push, k,
                  123.0 + (push % 50) * 0.004, 41.5 + k * 0.004);
    csv += line;
  }
  return csv;
}

TEST(BackupRestoreTest, ABackupUnderLoadHoldsEveryAcknowledgedPush) {
  TempDir dir;
  const std::string backups = dir.sub("backups");
  std::filesystem::create_directories(backups);
  std::ofstream(dir.sub("hub.conf")) << "backup.root = " << backups << "\n";
  HubProcess hub(dir.sub("hub"), pluginsDir(), dir.sub("hub.log"), dir.sub("hub.conf"));
  ASSERT_TRUE(hub.start()) << hub.log();
  ASSERT_EQ(hub.post("/api/v1/feeds",
                     R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})",
                     "application/json")
                .status,
            201);
  std::mutex mu;
  int acknowledged = 0;  // pushes 0..acknowledged-1 got their 202
  std::atomic<bool> stop{false};
  std::thread pusher([&] {
    for (int i = 0; i < 5000 && !stop; ++i) {
      auto r = hub.post("/api/v1/feeds/wx/records", observations(i), "text/csv");
      if (r.status != 202) break;
      std::lock_guard<std::mutex> lock(mu);
      acknowledged = i + 1;
    }
  });
  struct Join {
    std::thread& t;
    std::atomic<bool>& stop;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{pusher, stop};
  ASSERT_TRUE(waitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return acknowledged >= 40;
  }));
  int before = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    before = acknowledged;
  }
  const std::string cli =
      firehubBinary() + " backup --data-dir " + dir.sub("hub") + " --to nightly";
  auto first = run(cli + " 2>&1");
  ASSERT_EQ(first.first, 0) << first.second << hub.log();
  EXPECT_NE(first.second.find("backup 1 in <backup.root>/nightly"), std::string::npos)
      << first.second;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto second = run(cli + " 2>&1");
  ASSERT_EQ(second.first, 0) << second.second;
  EXPECT_NE(second.second.find("backup 2 in"), std::string::npos) << second.second;
  stop = true;
  pusher.join();
  std::cout << "backup: " << before << " pushes acknowledged before it began\n"
            << first.second << second.second << std::endl;
  ASSERT_EQ(hub.stop(), 0);

  auto verified = run(firehubBinary() + " backup verify " + backups + "/nightly 2>&1");
  EXPECT_EQ(verified.first, 0) << verified.second;
  EXPECT_NE(verified.second.find("intact"), std::string::npos) << verified.second;
  auto listed = run(firehubBinary() + " backup list " + backups + "/nightly 2>&1");
  EXPECT_NE(listed.second.find("\n2  "), std::string::npos) << listed.second;

  // Restore the first backup into a new data dir and start a hub there.
  const std::string restored = dir.sub("restored");
  auto put = run(firehubBinary() + " restore --from " + backups + "/nightly --id 1 --data-dir " +
                 restored + " 2>&1");
  ASSERT_EQ(put.first, 0) << put.second;
  auto again = run(firehubBinary() + " restore --from " + backups + "/nightly --data-dir " +
                   restored + " 2>&1");
  EXPECT_NE(again.first, 0) << "a restore never overwrites a lake";
  std::filesystem::copy_file(dir.sub("hub") + "/admin.key", restored + "/admin.key");
  HubProcess back(restored, pluginsDir(), dir.sub("restored.log"));
  ASSERT_TRUE(back.start()) << back.log();
  std::set<std::string> stations;
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    auto r = back.get("/api/v1/entities?domain=weather&limit=10000" +
                      (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    auto o = parseObject(r.body);
    auto features = o->getArray("features");
    for (size_t i = 0; i < features->size(); ++i)
      stations.insert(features->getObject(static_cast<unsigned>(i))->getValue<std::string>("id"));
    if (!o->has("next")) break;
    cursor = o->getValue<std::string>("next");
  }
  int missing = 0;
  for (int i = 0; i < before; ++i) {
    for (int k = 0; k < 20; ++k) {
      char id[16];
      std::snprintf(id, sizeof id, "P%04d-%02d", i, k);
      missing += stations.count(id) ? 0 : 1;
    }
  }
  EXPECT_EQ(missing, 0) << "of " << before * 20 << " acknowledged before the backup began";
  EXPECT_EQ(back.get("/api/v1/feeds/wx").status, 200) << "the feed came with the lake";
  EXPECT_EQ(back.get("/readyz").status, 200) << back.get("/readyz").body;
  back.stop();

  // Corrupted table files: verify names one, restore refuses the backup.
  int corrupted = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(backups + "/nightly")) {
    if (!e.is_regular_file() || e.path().extension() != ".sst" || e.file_size() <= 1024) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(512);
    f.put('\x5a');
    f.put('\xa5');
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0);
  auto bad = run(firehubBinary() + " backup verify " + backups + "/nightly --id 1 2>&1");
  EXPECT_NE(bad.first, 0) << bad.second;
  EXPECT_NE(bad.second.find(".sst"), std::string::npos) << "names the file: " << bad.second;
  auto refused = run(firehubBinary() + " restore --from " + backups +
                     "/nightly --id 1 --data-dir " + dir.sub("restored2") + " 2>&1");
  EXPECT_NE(refused.first, 0) << refused.second;
}

}  // namespace
}  // namespace firehub::testing
