// The lake's history index, layer versions and retention, on a clock the test sets.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include "firehub/auth.h"
#include "firehub/lake.h"
#include "test_support.h"

namespace firehub::lake {
namespace {

using firehub::testing::TempDir;
constexpr int64_t kSecond = 1000000;

StoreItem reading(const std::string& station, int64_t seconds, const std::string& feed = "wx") {
  StoreItem item;
  auto& r = item.record();
  r.set_id(feed + ":" + station + "@" + std::to_string(seconds));
  r.set_feed_id(feed);
  r.set_agency("met");
  r.set_domain("weather");
  r.set_entity_type("weather_station");
  r.set_entity_id(station);
  r.mutable_observed_at()->set_seconds(seconds);
  r.mutable_geometry()->mutable_point()->set_lon(123.4);
  r.mutable_geometry()->mutable_point()->set_lat(41.8);
  r.mutable_weather_observation()->set_station_id(station);
  item.topics = {"firehub.v1.weather"};
  return item;
}

std::unique_ptr<Lake> openLake(const std::string& path) {
  LakeOptions o;
  o.path = path;
  auto lake = Lake::open(o);
  EXPECT_TRUE(lake.isOk()) << lake.status().toString();
  return lake.isOk() ? std::move(lake).value() : nullptr;
}

// What the publisher does once Kafka confirmed everything so far.
void deliverAll(Lake& lake) {
  auto first = lake.firstOutboxSequence();
  if (!first) return;
  ASSERT_TRUE(lake.deleteOutboxBelow(*first, lake.lastSequence() + 1, lake.outboxDepth()).isOk());
}

std::vector<std::string> history(const Lake& lake, const std::string& station, int64_t from,
                                 int64_t to, size_t limit = 100, std::string* position = nullptr,
                                 const std::string& after = "") {
  std::vector<std::string> ids;
  Status s = lake.entityHistory("weather", "", station, from, to, after,
                                [&](const TimedRecord& at, firehub::v1::Record& r) {
                                  if (ids.size() == limit) return false;
                                  EXPECT_EQ(at.record_id, r.id());
                                  ids.push_back(r.id());
                                  if (position) position->assign(at.position);
                                  return true;
                                });
  EXPECT_TRUE(s.isOk()) << s.toString();
  return ids;
}

// The lake's RocksDB opened directly, `fn` given its history column family (to leave it as an
// older firehub or a crash would).
void withHistoryFamily(const std::string& path,
                       const std::function<void(rocksdb::DB&, rocksdb::ColumnFamilyHandle*)>& fn) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name :
       {"default", "records", "latest", "geo", "log", "outbox", "dlq", "meta", "layers", "history"})
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles, &db).ok());
  fn(*db, handles[9]);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  delete db;
}

TEST(LakeHistoryTest, AnEntitysVersionsInATimeRangeOldestFirstAndPaged) {
  TempDir dir;
  auto lake = openLake(dir.path());
  // Out of order, and another station between them.
  ASSERT_TRUE(
      lake->commit({reading("A1", 300), reading("A1", 100), reading("B1", 200)}, {}).isOk());
  ASSERT_TRUE(lake->commit({reading("A1", 400), reading("A1", 200)}, {}).isOk());
  EXPECT_EQ(history(*lake, "A1", 0, 1000 * kSecond),
            (std::vector<std::string>{"wx:A1@100", "wx:A1@200", "wx:A1@300", "wx:A1@400"}));
  EXPECT_EQ(history(*lake, "A1", 150 * kSecond, 400 * kSecond),
            (std::vector<std::string>{"wx:A1@200", "wx:A1@300"}))
      << "from is inclusive, to exclusive";
  std::string position;
  EXPECT_EQ(history(*lake, "A1", 0, 1000 * kSecond, 3, &position),
            (std::vector<std::string>{"wx:A1@100", "wx:A1@200", "wx:A1@300"}));
  EXPECT_EQ(history(*lake, "A1", 0, 1000 * kSecond, 3, nullptr, position),
            (std::vector<std::string>{"wx:A1@400"}))
      << "a page resumes past the last one given";
  EXPECT_TRUE(history(*lake, "A9", 0, 1000 * kSecond).empty());
}

TEST(LakeHistoryTest, ADomainsRecordsInTimeOfOneFeedOrAll) {
  TempDir dir;
  auto lake = openLake(dir.path());
  ASSERT_TRUE(lake->commit({reading("A1", 100, "wx"), reading("B1", 150, "wx2"),
                            reading("A1", 200, "wx"), reading("B1", 250, "wx2")},
                           {})
                  .isOk());
  auto walk = [&](const std::string& feed, int64_t from, int64_t to) {
    std::vector<std::string> ids;
    Status s = lake->recordsInTime("weather", feed, from, to, {},
                                   [&](const TimedRecord&, firehub::v1::Record& r) {
                                     ids.push_back(r.id());
                                     return true;
                                   });
    EXPECT_TRUE(s.isOk()) << s.toString();
    return ids;
  };
  EXPECT_EQ(walk("", 0, 1000 * kSecond),
            (std::vector<std::string>{"wx:A1@100", "wx2:B1@150", "wx:A1@200", "wx2:B1@250"}));
  EXPECT_EQ(walk("wx2", 0, 1000 * kSecond), (std::vector<std::string>{"wx2:B1@150", "wx2:B1@250"}));
  EXPECT_EQ(walk("", 120 * kSecond, 220 * kSecond),
            (std::vector<std::string>{"wx2:B1@150", "wx:A1@200"}));
}

TEST(LakeHistoryTest, RetentionRemovesOldHistoryButNotLatestStatesOrPendingDeliveries) {
  TempDir dir;
  auto lake = openLake(dir.path());
  ASSERT_TRUE(
      lake->commit({reading("A1", 100), reading("A1", 200), reading("B1", 100)}, {}).isOk());
  deliverAll(*lake);
  // C1's records are not delivered yet (the broker is away).
  ASSERT_TRUE(lake->commit({reading("C1", 100), reading("C1", 150)}, {}).isOk());
  ASSERT_TRUE(lake->commit({reading("A1", 1000)}, {}).isOk());

  Retention rules;
  rules.domains = {{"weather", 500 * kSecond}};
  auto done = lake->expire(rules, 1100 * kSecond);  // the cutoff: 600 s
  ASSERT_TRUE(done.isOk()) << done.status().toString();
  EXPECT_EQ(done->records, 2u) << "A1@100 and A1@200";
  EXPECT_EQ(done->kept_latest, 1u) << "B1@100: B1's latest state";
  EXPECT_EQ(done->kept_needed, 2u) << "C1's records wait for Kafka";
  EXPECT_FALSE(lake->getRecord("wx:A1@100")->has_value());
  EXPECT_FALSE(lake->getRecord("wx:A1@200")->has_value());
  EXPECT_TRUE(lake->getRecord("wx:B1@100")->has_value());
  EXPECT_EQ(history(*lake, "A1", 0, 2000 * kSecond), (std::vector<std::string>{"wx:A1@1000"}));
  EXPECT_EQ(*lake->latestId("weather/weather_station/A1").value(), "wx:A1@1000");
  std::vector<std::pair<uint64_t, std::string>> log;
  ASSERT_TRUE(lake->readLog(0, 100, log).isOk());
  for (const auto& [seq, id] : log) {
    EXPECT_NE(id, "wx:A1@100") << "its log entry went with it";
    EXPECT_NE(id, "wx:A1@200");
  }
  std::vector<OutboxEntry> pending;
  ASSERT_TRUE(lake->readOutbox(0, 100, pending).isOk());
  EXPECT_EQ(pending.size(), 3u) << "C1's two deliveries and A1@1000's";

  // A reader of the log that has not got past C1 holds it too, once Kafka has it.
  deliverAll(*lake);
  uint64_t reader_at = 0;
  lake->holdLog("reader", [&] { return reader_at; });
  done = lake->expire(rules, 1100 * kSecond);
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->records, 0u);
  reader_at = lake->lastSequence() + 1;
  done = lake->expire(rules, 1100 * kSecond);
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->records, 1u) << "C1@100 goes; C1@150 is C1's latest";
  lake->holdLog("reader", nullptr);

  // Pushed again, a removed record is stored again (it is new to the lake).
  auto again = lake->commit({reading("A1", 100)}, {});
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->stored, 1u);
  EXPECT_EQ(*lake->latestId("weather/weather_station/A1").value(), "wx:A1@1000");
}

// A record a subscription's Kafka delivery still names (an outbox entry made after its own
// deliveries were done) stays until that delivery is done.
TEST(LakeHistoryTest, RetentionKeepsARecordAPendingSubscriptionDeliveryNames) {
  TempDir dir;
  auto lake = openLake(dir.path());
  ASSERT_TRUE(lake->commit({reading("A1", 100), reading("A1", 1000)}, {}).isOk());
  deliverAll(*lake);
  DerivedBatch sub;
  sub.deliveries.push_back({"firehub.v1.sub.s1", "A1", "", "wx:A1@100"});
  ASSERT_TRUE(lake->commitDerived(sub).isOk());
  Retention rules;
  rules.domains = {{"weather", 500 * kSecond}};
  auto done = lake->expire(rules, 1100 * kSecond);
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->records, 0u);
  EXPECT_EQ(done->kept_needed, 1u);
  EXPECT_TRUE(lake->getRecord("wx:A1@100")->has_value());
  deliverAll(*lake);
  done = lake->expire(rules, 1100 * kSecond);
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->records, 1u);
}

TEST(LakeHistoryTest, RetentionOfDeadLettersWaitsForTheirDelivery) {
  TempDir dir;
  auto lake = openLake(dir.path());
  auto letter = [](int64_t seconds) {
    firehub::v1::DeadLetter dl;
    dl.set_feed_id("wx");
    dl.set_stage("decode");
    dl.set_reason("bad line");
    dl.mutable_at()->set_seconds(seconds);
    return dl;
  };
  ASSERT_TRUE(lake->commit({}, {letter(100), letter(200), letter(900)}).isOk());
  Retention rules;
  rules.dead_letters_micros = 500 * kSecond;
  auto done = lake->expire(rules, 1000 * kSecond);
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->dead_letters, 0u) << "not on Kafka yet";
  deliverAll(*lake);
  done = lake->expire(rules, 1000 * kSecond);
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->dead_letters, 2u);
  EXPECT_EQ(lake->deadLetterCount(), 1u);
}

TEST(LakeHistoryTest, ALayerCellAsItWasAtAMomentAndItsOldVersionsRetired) {
  TempDir dir;
  auto lake = openLake(dir.path());
  const uint64_t cell = S2CellId(S2LatLng::FromDegrees(41.8, 123.4)).parent(15).id();
  const uint64_t other = S2CellId(S2LatLng::FromDegrees(41.9, 123.5)).parent(15).id();
  auto write = [&](uint64_t c, int64_t seconds, const std::string& entry) {
    DerivedBatch b;
    b.versions.push_back({"risk", c, seconds * kSecond, entry});
    ASSERT_TRUE(lake->commitDerived(b).isOk());
  };
  write(cell, 100, "level I");
  write(cell, 200, "level IV");
  write(other, 150, "level III");
  write(cell, 300, "");  // left the layer
  auto at = [&](int64_t seconds) {
    auto v = lake->layerCellAt("risk", cell, seconds * kSecond);
    EXPECT_TRUE(v.isOk());
    return v.value().value_or("(none)");
  };
  EXPECT_EQ(at(50), "(none)");
  EXPECT_EQ(at(100), "level I");
  EXPECT_EQ(at(199), "level I");
  EXPECT_EQ(at(250), "level IV");
  EXPECT_EQ(at(300), "(none)");
  auto area = [&](int64_t seconds) {
    std::vector<std::string> found;
    BBox box{123.3, 41.7, 123.6, 42.0};
    EXPECT_TRUE(lake->layerAt("risk", 15, box, seconds * kSecond,
                              [&](uint64_t, const std::string& e) {
                                found.push_back(e);
                                return true;
                              })
                    .isOk());
    std::sort(found.begin(), found.end());
    return found;
  };
  EXPECT_EQ(area(120), (std::vector<std::string>{"level I"}));
  EXPECT_EQ(area(160), (std::vector<std::string>{"level I", "level III"}));
  EXPECT_EQ(area(250), (std::vector<std::string>{"level III", "level IV"}));
  EXPECT_EQ(area(400), (std::vector<std::string>{"level III"}));

  Retention rules;
  rules.layer_versions_micros = 30 * kSecond;
  auto done = lake->expire(rules, 260 * kSecond);  // the cutoff: 230 s
  ASSERT_TRUE(done.isOk());
  EXPECT_EQ(done->layer_versions, 1u) << "level I; level IV was in force at the cutoff";
  EXPECT_EQ(at(250), "level IV");
  EXPECT_EQ(at(150), "(none)") << "before the window: gone";
  EXPECT_EQ(area(400), (std::vector<std::string>{"level III"}))
      << "the other cell's only version stays";
}

TEST(LakeHistoryTest, ALakeFromBeforeTheIndexGetsItBuiltWhenItOpens) {
  TempDir dir;
  {
    auto lake = openLake(dir.path());
    ASSERT_TRUE(lake->commit({reading("A1", 100), reading("A1", 200)}, {}).isOk());
    ASSERT_TRUE(lake->deleteMeta("lake/history_index").isOk());
  }
  {  // as an older firehub left it: no history entries
    withHistoryFamily(dir.path(), [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* history) {
      ASSERT_TRUE(db.DeleteRange(rocksdb::WriteOptions(), history, "", "\xff").ok());
    });
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(history(*lake, "A1", 0, 1000 * kSecond),
            (std::vector<std::string>{"wx:A1@100", "wx:A1@200"}));
}

// The index is written after the commit and without the write-ahead log: a crash may leave it
// short of the log (its mark says how far it reaches), and the lake completes it when it opens.
TEST(LakeHistoryTest, AnIndexACrashLeftShortIsCompletedFromTheLogWhenTheLakeOpens) {
  TempDir dir;
  {
    auto lake = openLake(dir.path());
    for (int64_t t : {100, 200, 300}) ASSERT_TRUE(lake->commit({reading("A1", t)}, {}).isOk());
    EXPECT_EQ(history(*lake, "A1", 0, 1000 * kSecond).size(), 3u);
  }
  {  // as a crash leaves it: the entries of the last two commits and the mark's moves lost
    withHistoryFamily(dir.path(), [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* history) {
      std::string mark;
      ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), history, "indexed_below", &mark).ok());
      ASSERT_EQ(mark.size(), 8u);
      std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), history));
      size_t dropped = 0;
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        if (it->key() == "indexed_below") continue;
        ASSERT_GE(it->value().size(), 8u);
        if (std::string(it->value().data(), 8) < std::string("\0\0\0\0\0\0\0\2", 8)) continue;
        ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), history, it->key()).ok());
        ++dropped;
      }
      EXPECT_EQ(dropped, 4u) << "two entries for each of the last two records";
      ASSERT_TRUE(db.Put(rocksdb::WriteOptions(), history, "indexed_below",
                         std::string("\0\0\0\0\0\0\0\2", 8))
                      .ok());
    });
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(history(*lake, "A1", 0, 1000 * kSecond),
            (std::vector<std::string>{"wx:A1@100", "wx:A1@200", "wx:A1@300"}));
  size_t in_time = 0;
  ASSERT_TRUE(lake->recordsInTime("weather", "", 0, 1000 * kSecond, "",
                                  [&](const TimedRecord&, firehub::v1::Record&) {
                                    ++in_time;
                                    return true;
                                  })
                  .isOk());
  EXPECT_EQ(in_time, 3u);
}

// A writer far behind the commits (here: no entry may wait in memory) reads them back from the
// log: the index still holds every record, each once.
TEST(LakeHistoryTest, AWriterFarBehindReadsTheCommitsBackFromTheLog) {
  TempDir dir;
  LakeOptions o;
  o.path = dir.path();
  o.history_queue_entries = 1;
  auto opened = Lake::open(o);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  auto& lake = *opened.value();
  for (int64_t t = 1; t <= 20; ++t) {
    std::vector<StoreItem> items;
    for (const char* station : {"A1", "A2", "A3", "A4", "A5"}) items.push_back(reading(station, t));
    ASSERT_TRUE(lake.commit(items, {}).isOk());
  }
  EXPECT_EQ(history(lake, "A3", 0, 1000 * kSecond, 100).size(), 20u);
  size_t in_time = 0;
  ASSERT_TRUE(lake.recordsInTime("weather", "", 0, 1000 * kSecond, "",
                                 [&](const TimedRecord&, firehub::v1::Record&) {
                                   ++in_time;
                                   return true;
                                 })
                  .isOk());
  EXPECT_EQ(in_time, 100u);
  EXPECT_EQ(lake.historyIndexBehind(), 0u);
}

TEST(LakeHistoryTest, TheAuditChainVerifiesAcrossTheEntriesRetentionRemoved) {
  TempDir dir;
  auto lake = openLake(dir.path());
  auth::AuditLog audit(*lake);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(audit.append("k1", "admin", "POST /x", "t", 200).isOk());
  auto removed = audit.expire(INT64_MAX / 2);
  ASSERT_TRUE(removed.isOk());
  EXPECT_EQ(removed.value(), 4u) << "the newest entry stays";
  ASSERT_TRUE(audit.append("k1", "admin", "POST /y", "t", 200).isOk());
  auto verified = audit.verify();
  ASSERT_TRUE(verified.isOk());
  EXPECT_FALSE(verified.value().has_value()) << *verified.value();
  ASSERT_TRUE(audit.anchor().value().has_value());
  EXPECT_NE(audit.anchor().value()->find("\"through\":4"), std::string::npos);
  // Removing an entry by hand still shows.
  ASSERT_TRUE(lake->deleteMeta("audit/00000000000000000005").isOk());
  verified = audit.verify();
  ASSERT_TRUE(verified.isOk());
  EXPECT_TRUE(verified.value().has_value());
}

}  // namespace
}  // namespace firehub::lake
