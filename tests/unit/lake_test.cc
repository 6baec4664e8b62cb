#include "firehub/lake.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "test_support.h"

namespace firehub::lake {
namespace {

using firehub::testing::TempDir;

StoreItem weather(const std::string& station, int64_t seconds, double lon, double lat,
                  const std::string& feed = "wx") {
  StoreItem item;
  auto& r = item.record();
  r.set_id(feed + ":" + station + "@" + std::to_string(seconds));
  r.set_feed_id(feed);
  r.set_domain("weather");
  r.set_entity_type("weather_station");
  r.set_entity_id(station);
  r.mutable_observed_at()->set_seconds(seconds);
  r.mutable_geometry()->mutable_point()->set_lon(lon);
  r.mutable_geometry()->mutable_point()->set_lat(lat);
  r.mutable_weather_observation()->set_station_id(station);
  r.mutable_weather_observation()->set_temperature_c(static_cast<double>(seconds % 30));
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

// The lake's RocksDB opened directly, to write what an older firehub wrote (handles in the
// order of the lake's column families).
struct RawLake {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  explicit RawLake(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "records", "latest", "geo", "log", "outbox", "dlq", "meta",
                             "layers", "history"}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    if (rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles, &raw).ok()) db.reset(raw);
  }
  ~RawLake() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
};

std::string bigEndian(uint64_t v) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) k[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return k;
}

TEST(LakeTest, CommitStoresRecordLatestGeoLogAndOutboxTogether) {
  TempDir dir;
  auto lake = openLake(dir.path());
  auto result =
      lake->commit({weather("A1", 100, 123.4, 41.8), weather("A2", 100, 123.5, 41.9)}, {});
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ(result->stored, 2u);
  EXPECT_EQ(result->duplicates, 0u);

  auto r = lake->getRecord("wx:A1@100");
  ASSERT_TRUE(r.isOk());
  ASSERT_TRUE(r.value().has_value());
  EXPECT_EQ(r.value()->entity_id(), "A1");

  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0].topic, "firehub.v1.weather");
  EXPECT_EQ(outbox[0].key, "A1");
  EXPECT_EQ(outbox[0].record_id, "wx:A1@100");
  EXPECT_LT(outbox[0].sequence, outbox[1].sequence);
  EXPECT_EQ(lake->outboxDepth(), 2u);

  std::vector<std::pair<uint64_t, std::string>> log;
  ASSERT_TRUE(lake->readLog(0, 100, log).isOk());
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].second, "wx:A2@100");

  auto inside = lake->latestInBBox("weather", {123.3, 41.7, 123.45, 41.85}, 100);
  ASSERT_TRUE(inside.isOk());
  ASSERT_EQ(inside->size(), 1u);
  EXPECT_EQ(inside->at(0).entity_id(), "A1");
  auto other_domain = lake->latestInBBox("water", {120, 40, 125, 45}, 100);
  ASSERT_TRUE(other_domain.isOk());
  EXPECT_TRUE(other_domain->empty());
}

TEST(LakeTest, SameRecordIdIsADuplicateAcrossAndWithinBatches) {
  TempDir dir;
  auto lake = openLake(dir.path());
  ASSERT_TRUE(lake->commit({weather("A1", 100, 123.4, 41.8)}, {}).isOk());
  auto again = lake->commit({weather("A1", 100, 123.4, 41.8), weather("A1", 100, 123.4, 41.8),
                             weather("A1", 160, 123.4, 41.8)},
                            {});
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->stored, 1u);
  EXPECT_EQ(again->duplicates, 2u);
  EXPECT_EQ(lake->outboxDepth(), 2u);
}

TEST(LakeTest, APushInAnyOrderFindsEveryStoredIdAndLogsItsNewRecordsInPushOrder) {
  TempDir dir;
  auto station = [](int s) {
    std::string name = "S";
    return name.append(std::to_string(s));
  };
  auto id = [&](int s) { return "wx:" + station(s) + "@100"; };
  {
    auto lake = openLake(dir.path());
    std::vector<StoreItem> first;
    for (int s = 0; s < 200; s += 2) first.push_back(weather(station(s), 100, 123.4, 41.8));
    ASSERT_TRUE(lake->commit(first, {}).isOk());
  }  // reopened: these are found in a table file, the next ones in the memtable
  auto lake = openLake(dir.path());
  std::vector<StoreItem> second;
  for (int s = 1; s < 200; s += 4) second.push_back(weather(station(s), 100, 123.4, 41.8));
  ASSERT_TRUE(lake->commit(second, {}).isOk());
  // All 200 stations in a shuffled order, with another temperature: 150 were stored before.
  std::vector<int> order(200);
  for (int s = 0; s < 200; ++s) order[static_cast<size_t>(s)] = s;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::vector<StoreItem> mixed;
  std::vector<std::string> new_in_push_order;
  for (int s : order) {
    mixed.push_back(weather(station(s), 100, 123.4, 41.8));
    mixed.back().record().mutable_weather_observation()->set_temperature_c(-99);
    if (s % 4 == 3) new_in_push_order.push_back(id(s));
  }
  auto result = lake->commit(mixed, {});
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ(result->stored, 50u);
  EXPECT_EQ(result->duplicates, 150u);
  std::vector<std::pair<uint64_t, std::string>> log;
  ASSERT_TRUE(lake->readLog(0, 1000, log).isOk());
  ASSERT_EQ(log.size(), 200u);
  std::vector<std::string> last;
  for (size_t i = 150; i < log.size(); ++i) last.push_back(log[i].second);
  EXPECT_EQ(last, new_in_push_order);
  for (int s = 0; s < 200; ++s) {  // a record stored before keeps its bytes
    auto stored = lake->getRecord(id(s));
    ASSERT_TRUE(stored.isOk() && stored.value()) << id(s);
    EXPECT_EQ(stored.value()->weather_observation().temperature_c(), s % 4 == 3 ? -99.0 : 10.0)
        << id(s);
  }
}

TEST(LakeTest, RecentRecordsComeFromMemoryAndAgreeWithTheDisk) {
  TempDir dir;
  LakeOptions o;
  o.path = dir.path();
  o.record_cache_mb = 1;  // room for a few thousand records: the oldest leave
  auto opened = Lake::open(o);
  ASSERT_TRUE(opened.isOk());
  auto& lake = *opened.value();
  std::vector<StoreItem> items;
  for (int i = 0; i < 20000; ++i) {
    std::string station = "S";
    station += std::to_string(i % 100);
    items.push_back(weather(station, i, 123.4, 41.8));
  }
  ASSERT_EQ(lake.commit(std::move(items), {})->stored, 20000u);
  EXPECT_TRUE(lake.inRecordCache("wx:S99@19999"));
  EXPECT_FALSE(lake.inRecordCache("wx:S0@0"));  // evicted: read from RocksDB
  auto newest = lake.getRecord("wx:S99@19999");
  auto oldest = lake.getRecord("wx:S0@0");
  ASSERT_TRUE(newest.isOk() && newest.value() && oldest.isOk() && oldest.value());
  EXPECT_EQ(newest.value()->weather_observation().temperature_c(), 19999 % 30);
  EXPECT_EQ(oldest.value()->entity_id(), "S0");
  // Into a reused message, from memory and from the disk.
  firehub::v1::Record into;
  auto from_memory = lake.readRecord("wx:S98@19998", into);
  ASSERT_TRUE(from_memory.isOk() && from_memory.value());
  EXPECT_EQ(into.id(), "wx:S98@19998");
  auto from_disk = lake.readRecord("wx:S1@1", into);
  ASSERT_TRUE(from_disk.isOk() && from_disk.value());
  EXPECT_EQ(into.id(), "wx:S1@1");
  EXPECT_EQ(into.weather_observation().temperature_c(), 1);
  auto missing = lake.getRecord("wx:nope");
  ASSERT_TRUE(missing.isOk());
  EXPECT_FALSE(missing.value());
  auto missing_into = lake.readRecord("wx:nope", into);
  ASSERT_TRUE(missing_into.isOk());
  EXPECT_FALSE(missing_into.value());
  // A cached record is a duplicate like a stored one; both paths count it.
  auto again = lake.commit({weather("S99", 19999, 123.4, 41.8), weather("S0", 0, 123.4, 41.8)}, {});
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->duplicates, 2u);
  EXPECT_EQ(again->stored, 0u);
}

// Whether the record is in the recent-record cache; either way it reads back whole.
bool cached(Lake& lake, const std::string& id) {
  auto r = lake.getRecord(id);
  EXPECT_TRUE(r.isOk() && r.value() && r.value()->id() == id) << id;
  return lake.inRecordCache(id);
}

TEST(LakeTest, WithAPublisherTheCacheKeepsWhatIsStillToBeSent) {
  TempDir dir;
  LakeOptions o;
  o.path = dir.path();
  o.record_cache_mb = 1;  // a few thousand records
  auto opened = Lake::open(o);
  ASSERT_TRUE(opened.isOk());
  auto& lake = *opened.value();
  lake.notePublished(0);  // a publisher that has sent nothing yet (Kafka down)
  auto push = [&](int first) {
    std::vector<StoreItem> items;
    for (int i = first; i < first + 500; ++i) {
      std::string station = "S";
      station += std::to_string(i % 100);
      items.push_back(weather(station, i, 123.4, 41.8));
    }
    ASSERT_EQ(lake.commit(std::move(items), {})->stored, 500u);
  };
  for (int p = 0; p < 20; ++p) push(p * 500);
  // Full of unsent records: the oldest, which the publisher reads next, stay; later pushes were
  // left out whole.
  EXPECT_TRUE(cached(lake, "wx:S0@0"));
  EXPECT_TRUE(cached(lake, "wx:S99@499"));
  EXPECT_FALSE(cached(lake, "wx:S99@9999"));
  EXPECT_FALSE(cached(lake, "wx:S0@9500"));

  // The publisher catches up: sent records leave first, and the next push is kept.
  lake.notePublished(lake.lastSequence() + 1);
  push(10000);
  EXPECT_TRUE(cached(lake, "wx:S0@10000"));
  EXPECT_TRUE(cached(lake, "wx:S99@10499"));
  EXPECT_FALSE(cached(lake, "wx:S0@0"));

  // A delivery failed and the publisher goes back: records not yet dropped are kept again.
  lake.notePublished(1);
  for (int p = 21; p < 40; ++p) push(p * 500);
  EXPECT_TRUE(cached(lake, "wx:S0@10000"));
  EXPECT_FALSE(cached(lake, "wx:S99@19999"));
}

TEST(LakeTest, OutboxEntriesCarryTheirCachedRecordAsStored) {
  TempDir dir;
  LakeOptions o;
  o.path = dir.path();
  o.record_cache_mb = 1;  // the first pushes leave the cache
  auto opened = Lake::open(o);
  ASSERT_TRUE(opened.isOk());
  auto& lake = *opened.value();
  // Records on one topic and on two (the second takes the next sequence), a dead letter between.
  for (int p = 0; p < 12; ++p) {
    std::vector<StoreItem> items;
    for (int i = p * 1000; i < (p + 1) * 1000; ++i) {
      items.push_back(weather(std::string("S").append(std::to_string(i % 50)), i, 123.4, 41.8));
      if (i % 3 == 0) items.back().topics.push_back("firehub.v1.weather.public");
    }
    firehub::v1::DeadLetter dl;
    dl.set_feed_id("wx");
    dl.set_reason("bad line");
    ASSERT_TRUE(lake.commit(std::move(items), {dl}).isOk());
  }
  std::vector<OutboxEntry> entries;
  for (uint64_t from = 0;;) {
    std::vector<OutboxEntry> some;
    ASSERT_TRUE(lake.readOutbox(from, 777, some).isOk());
    if (some.empty()) break;
    from = some.back().sequence + 1;
    for (auto& e : some) entries.push_back(std::move(e));
  }
  ASSERT_EQ(entries.size(), 12000u + 4000u + 12u);
  size_t cached = 0, records = 0;
  std::string stored;
  for (const auto& e : entries) {
    if (e.record_id.rfind(kDeadLetterRefPrefix, 0) == 0) {
      EXPECT_FALSE(e.cached) << e.sequence;
      continue;
    }
    ++records;
    auto found = lake.readRecordBytes(e.record_id, stored);
    ASSERT_TRUE(found.isOk() && found.value()) << e.record_id;
    EXPECT_EQ(e.cached, lake.inRecordCache(e.record_id)) << e.record_id;
    if (!e.cached) continue;
    ++cached;
    EXPECT_EQ(e.record_bytes, stored) << e.record_id << " at " << e.sequence;
  }
  EXPECT_EQ(records, 16000u);
  EXPECT_GT(cached, 1000u);    // the newest pushes
  EXPECT_LT(cached, records);  // not the first ones
  // Both topics of a record in the cache carry it.
  auto last = std::find_if(entries.rbegin(), entries.rend(), [](const OutboxEntry& e) {
    return e.topic == "firehub.v1.weather.public";
  });
  ASSERT_NE(last, entries.rend());
  ASSERT_TRUE(last->cached);
  auto twin = std::next(last);  // the same record's first topic, one sequence before
  EXPECT_EQ(twin->record_id, last->record_id);
  EXPECT_TRUE(twin->cached);
  EXPECT_EQ(twin->record_bytes, last->record_bytes);
}

// A walk of an area visits each placed entity once, in one order; resumed from the position of
// any entity it visited, it goes on with the next one, whatever the page size (across the
// lookup chunks of 256, and across the cells of the area's covering: the box spans 2° by 1°).
// Withdrawn entities and those outside the box are left out.
TEST(LakeTest, AreaWalksVisitEachEntityOnceAndResumeFromAnyPosition) {
  TempDir dir;
  auto lake = openLake(dir.path());
  std::vector<StoreItem> batch;
  for (int i = 0; i < 700; ++i) {
    batch.push_back(weather(std::string("W").append(std::to_string(i)), 100,
                            122.5 + (i % 35) * 0.057, 41.0 + (i / 35) * 0.049));
  }
  batch.push_back(weather("OUT", 100, 126.0, 41.5));  // outside the box
  ASSERT_TRUE(lake->commit(batch, {}).isOk());
  StoreItem gone = weather("W5", 200, 122.5 + 5 * 0.057, 41.0);
  gone.record().set_op(firehub::v1::OP_RETRACT);
  ASSERT_TRUE(lake->commit({gone}, {}).isOk());

  const BBox box{122.4, 40.9, 124.5, 42.0};
  std::vector<std::string> all, positions;
  ASSERT_TRUE(lake->forEachLatestInBBox("weather", box,
                                        [&](firehub::v1::Record& r, std::string_view at) {
                                          all.push_back(r.entity_id());
                                          positions.emplace_back(at);
                                          return true;
                                        })
                  .isOk());
  ASSERT_EQ(all.size(), 699u) << "700 placed, one withdrawn, one outside";
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  EXPECT_EQ(std::count(all.begin(), all.end(), "W5"), 0);
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));

  for (size_t page : {1u, 7u, 256u, 300u}) {
    std::vector<std::string> walked;
    std::string after;
    for (int pages = 0; pages < 1000; ++pages) {
      size_t got = 0;
      ASSERT_TRUE(lake->forEachLatestInBBox(
                          "weather", box,
                          [&](firehub::v1::Record& r, std::string_view at) {
                            walked.push_back(r.entity_id());
                            after.assign(at.data(), at.size());
                            return ++got < page;
                          },
                          after)
                      .isOk());
      if (got < page) break;
    }
    EXPECT_EQ(walked, all) << "pages of " << page;
  }
  // Counts from the geo keys alone agree with the walk: from the start, past every position, and
  // cut short at a maximum.
  auto count = [&](std::string_view after, size_t max) {
    auto counted = lake->countLatestInBBox("weather", box, after, max);
    EXPECT_TRUE(counted.isOk()) << counted.status().toString();
    return counted.isOk() ? counted.value() : AreaCount{};
  };
  EXPECT_EQ(count({}, 10000).count, 699u) << "the withdrawn one left the geo index";
  EXPECT_TRUE(count({}, 10000).complete);
  for (size_t i = 0; i < positions.size(); i += 37) {
    EXPECT_EQ(count(positions[i], 10000).count, positions.size() - i - 1) << "past position " << i;
  }
  EXPECT_EQ(count({}, 699).count, 699u);
  EXPECT_TRUE(count({}, 699).complete);
  EXPECT_EQ(count({}, 698).count, 698u);
  EXPECT_FALSE(count({}, 698).complete);
  // A count ends at the position of the last entity it counted: a walk skips by keys from there.
  for (size_t n : {1u, 256u, 699u}) EXPECT_EQ(count({}, n).last_position, positions[n - 1]) << n;
  EXPECT_EQ(count(positions[10], 5).last_position, positions[15]);
  const BBox west{122.4, 40.9, 123.0, 42.0};
  size_t in_west = 0;
  for (int i = 0; i < 700; ++i) in_west += (i != 5 && 122.5 + (i % 35) * 0.057 <= 123.0) ? 1 : 0;
  auto counted_west = lake->countLatestInBBox("weather", west, {}, 10000);
  ASSERT_TRUE(counted_west.isOk());
  EXPECT_EQ(counted_west->count, in_west) << "the box, not its covering";
}

TEST(LakeTest, LatestFollowsTheNewestObservationAndItsPosition) {
  TempDir dir;
  auto lake = openLake(dir.path());
  ASSERT_TRUE(lake->commit({weather("A1", 200, 123.40, 41.80)}, {}).isOk());
  // An older observation arriving late does not move the latest pointer.
  ASSERT_TRUE(lake->commit({weather("A1", 100, 100.0, 30.0)}, {}).isOk());
  auto here = lake->latestInBBox("weather", {123.3, 41.7, 123.5, 41.9}, 10);
  ASSERT_TRUE(here.isOk());
  ASSERT_EQ(here->size(), 1u);
  EXPECT_EQ(here->at(0).id(), "wx:A1@200");
  // A newer observation from elsewhere (a moved station) moves it and its geo entry.
  ASSERT_TRUE(lake->commit({weather("A1", 300, 124.00, 42.00)}, {}).isOk());
  auto old_place = lake->latestInBBox("weather", {123.3, 41.7, 123.5, 41.9}, 10);
  ASSERT_TRUE(old_place.isOk());
  EXPECT_TRUE(old_place->empty());
  auto new_place = lake->latestInBBox("weather", {123.9, 41.9, 124.1, 42.1}, 10);
  ASSERT_TRUE(new_place.isOk());
  ASSERT_EQ(new_place->size(), 1u);
  EXPECT_EQ(new_place->at(0).id(), "wx:A1@300");
}

TEST(LakeTest, AnEntityMovingWithinOneBatchKeepsOneGeoEntryAtItsNewestPlace) {
  TempDir dir;
  auto lake = openLake(dir.path());
  const BBox everywhere{120, 40, 126, 44};
  auto count = [&](const BBox& box) {
    auto found = lake->latestInBBox("weather", box, 100);
    EXPECT_TRUE(found.isOk());
    return found.isOk() ? found->size() : size_t{0};
  };
  // One batch: the station reports from three places, out of order; the newest (t=300) wins.
  std::vector<StoreItem> moves;
  moves.push_back(weather("M1", 100, 121.0, 41.0));
  moves.push_back(weather("M1", 300, 125.0, 43.0));
  moves.push_back(weather("M1", 200, 123.0, 42.0));
  moves.push_back(weather("M2", 100, 121.0, 41.0));  // a second station stays put
  ASSERT_TRUE(lake->commit(std::move(moves), {}).isOk());
  EXPECT_EQ(count({120.9, 40.9, 121.1, 41.1}), 1u);  // M2 only
  EXPECT_EQ(count({122.9, 41.9, 123.1, 42.1}), 0u);
  EXPECT_EQ(count({124.9, 42.9, 125.1, 43.1}), 1u);
  EXPECT_EQ(count(everywhere), 2u);
  // The next batch moves it back to its first place and away again, ending where M2 is.
  std::vector<StoreItem> back;
  back.push_back(weather("M1", 400, 122.0, 41.5));
  back.push_back(weather("M1", 500, 121.0, 41.0));
  ASSERT_TRUE(lake->commit(std::move(back), {}).isOk());
  EXPECT_EQ(count({124.9, 42.9, 125.1, 43.1}), 0u);
  EXPECT_EQ(count({121.9, 41.4, 122.1, 41.6}), 0u);
  EXPECT_EQ(count({120.9, 40.9, 121.1, 41.1}), 2u);
  EXPECT_EQ(count(everywhere), 2u);
  auto m1 = lake->latest("weather/weather_station/M1");
  ASSERT_TRUE(m1.isOk() && m1.value());
  EXPECT_EQ(m1.value()->id(), "wx:M1@500");
}

// Stations by temperature: the area indexes of the next test.
StoreItem reading(const std::string& station, int64_t seconds, double lon, double lat,
                  double temp) {
  StoreItem item = weather(station, seconds, lon, lat);
  item.record().mutable_weather_observation()->set_temperature_c(temp);
  return item;
}

AreaIndex warmIndex(double from = 20, int version = 1) {
  return {"warm", "weather",
          [from](const firehub::v1::Record& r) {
            return r.weather_observation().temperature_c() >= from;
          },
          version};
}

std::unique_ptr<Lake> openIndexed(const std::string& path, std::vector<AreaIndex> indexes) {
  LakeOptions o;
  o.path = path;
  o.area_indexes = std::move(indexes);
  auto lake = Lake::open(o);
  EXPECT_TRUE(lake.isOk()) << lake.status().toString();
  return lake.isOk() ? std::move(lake).value() : nullptr;
}

// The stations an area index holds in `box`, in walk order; a station walked twice appears twice.
std::vector<std::string> indexed(Lake& lake, const std::string& index, const BBox& box = {}) {
  std::vector<std::string> out;
  Status s = lake.forEachIndexedInBBox(index, box, [&](firehub::v1::Record& r, std::string_view) {
    out.push_back(r.entity_id());
    return true;
  });
  EXPECT_TRUE(s.isOk()) << s.toString();
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LakeTest, AreaIndexesHoldTheEntitiesWhoseLatestRecordTheyHoldAndAreRebuiltWhenChanged) {
  using V = std::vector<std::string>;
  TempDir dir;
  const AreaIndex cold{"cold", "weather", [](const firehub::v1::Record& r) {
                         return r.weather_observation().temperature_c() < 5;
                       }};
  {
    auto lake = openIndexed(dir.path(), {warmIndex(), cold});
    std::vector<StoreItem> first;
    first.push_back(reading("A1", 100, 123.40, 41.80, 25));
    first.push_back(reading("A2", 100, 123.50, 41.90, 22));
    first.push_back(reading("A3", 100, 123.60, 41.70, 1));
    first.push_back(reading("A4", 100, 123.70, 41.60, 12));
    ASSERT_TRUE(lake->commit(std::move(first), {}).isOk());
    EXPECT_EQ(indexed(*lake, "warm"), (V{"A1", "A2"}));
    EXPECT_EQ(indexed(*lake, "cold"), (V{"A3"}));
    EXPECT_EQ(indexed(*lake, "warm", {123.45, 41.85, 123.55, 41.95}), (V{"A2"}));
    EXPECT_EQ(lake->forEachIndexedInBBox(
                      "hot", {}, [](firehub::v1::Record&, std::string_view) { return true; })
                  .code(),
              StatusCode::kNotFound);

    std::vector<StoreItem> second;
    second.push_back(reading("A1", 200, 123.40, 41.80, 10));  // cools down: leaves "warm"
    second.push_back(reading("A2", 200, 124.00, 42.00, 23));  // moves, stays warm
    second.push_back(reading("A4", 50, 123.70, 41.60, 30));   // late and old: not its latest
    second.push_back(
        reading("A5", 100, 123.80, 41.50, 26));  // warm, then newer and cold in one batch
    second.push_back(reading("A5", 200, 123.80, 41.50, 2));
    StoreItem gone;  // A3 withdrawn
    gone.record().set_id("wx:A3-withdrawn");
    gone.record().set_domain("weather");
    gone.record().set_entity_type("weather_station");
    gone.record().set_entity_id("A3");
    gone.record().set_op(firehub::v1::OP_RETRACT);
    gone.record().mutable_observed_at()->set_seconds(300);
    second.push_back(gone);
    ASSERT_TRUE(lake->commit(std::move(second), {}).isOk());
    EXPECT_EQ(indexed(*lake, "warm"), (V{"A2"}));
    EXPECT_EQ(indexed(*lake, "warm", {123.45, 41.85, 123.55, 41.95}), V{});  // A2's old place
    EXPECT_EQ(indexed(*lake, "warm", {123.9, 41.9, 124.1, 42.1}), (V{"A2"}));
    EXPECT_EQ(indexed(*lake, "cold"), (V{"A5"}));
  }
  {  // the same indexes again: kept as they are
    auto lake = openIndexed(dir.path(), {warmIndex(), cold});
    EXPECT_EQ(indexed(*lake, "warm"), (V{"A2"}));
    EXPECT_EQ(indexed(*lake, "cold"), (V{"A5"}));
  }
  {  // opened without them: a warm station arrives meanwhile
    auto lake = openIndexed(dir.path(), {});
    EXPECT_FALSE(lake->hasAreaIndex("warm"));
    ASSERT_TRUE(lake->commit({reading("A6", 100, 123.30, 41.90, 31)}, {}).isOk());
  }
  {  // back with "warm" only: rebuilt from the latest records, A6 included
    auto lake = openIndexed(dir.path(), {warmIndex()});
    EXPECT_EQ(indexed(*lake, "warm"), (V{"A2", "A6"}));
    EXPECT_FALSE(lake->hasAreaIndex("cold"));
    // What it holds changed (a new version): rebuilt again, and later commits follow the new rule.
  }
  {
    auto lake = openIndexed(dir.path(), {warmIndex(10, 2)});
    EXPECT_EQ(indexed(*lake, "warm"), (V{"A1", "A2", "A4", "A6"}));
    ASSERT_TRUE(lake->commit({reading("A4", 400, 123.70, 41.60, 9)}, {}).isOk());
    EXPECT_EQ(indexed(*lake, "warm"), (V{"A1", "A2", "A6"}));
  }
  // Names are checked.
  LakeOptions bad;
  bad.path = dir.path();
  bad.area_indexes = {warmIndex(), warmIndex()};
  EXPECT_EQ(Lake::open(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(LakeTest, TheFirstBuildOfAreaIndexesTakesWithdrawnEntitiesOfAnOlderLakeOutOfTheGeoIndex) {
  TempDir dir;
  const BBox box{123.0, 41.5, 124.0, 42.0};
  uint64_t leaf = 0;
  {
    auto lake = openLake(dir.path());  // no area indexes: nothing recorded about them
    ASSERT_TRUE(lake->commit({weather("W1", 100, 123.4, 41.8), weather("W2", 100, 123.5, 41.8)}, {})
                    .isOk());
    StoreItem gone = weather("W1", 200, 123.4, 41.8);  // withdrawn where it was
    gone.record().set_op(firehub::v1::OP_RETRACT);
    ASSERT_TRUE(lake->commit({gone}, {}).isOk());
    auto counted = lake->countLatestInBBox("weather", box, {}, 100);
    ASSERT_TRUE(counted.isOk());
    EXPECT_EQ(counted->count, 1u) << "a withdrawn entity leaves the geo index";
    leaf = S2CellId(S2LatLng::FromDegrees(41.8, 123.4)).id();
  }
  {  // as a lake from before kept it: the withdrawal's pointer and geo entry at its place
    RawLake raw(dir.path());
    ASSERT_TRUE(raw.db) << "open the lake's RocksDB directly";
    auto& db = raw.db;
    auto& handles = raw.handles;
    const std::string entity = "weather/weather_station/W1";
    std::string pointer;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), handles[2], entity, &pointer).ok());
    pointer.replace(8, 8, bigEndian(leaf));
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[2], entity, pointer).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[3],
                        std::string("weather") + '\0' + bigEndian(leaf) + entity, "")
                    .ok());
  }
  auto countWalkAndKeys = [&](Lake& lake) {
    size_t walked = 0;
    EXPECT_TRUE(lake.forEachLatestInBBox("weather", box,
                                         [&](firehub::v1::Record&, std::string_view) {
                                           ++walked;
                                           return true;
                                         })
                    .isOk());
    auto counted = lake.countLatestInBBox("weather", box, {}, 100);
    return std::make_pair(walked, counted.isOk() ? counted->count : size_t{999});
  };
  EXPECT_EQ(countWalkAndKeys(*openLake(dir.path())), std::make_pair(size_t{1}, size_t{2}))
      << "the old entry is counted";
  auto lake = openIndexed(dir.path(), {warmIndex()});
  EXPECT_EQ(countWalkAndKeys(*lake), std::make_pair(size_t{1}, size_t{1}));
  // W1 placed again by a newer record: back in the geo index, once.
  ASSERT_TRUE(lake->commit({weather("W1", 300, 123.4, 41.8)}, {}).isOk());
  EXPECT_EQ(countWalkAndKeys(*lake), std::make_pair(size_t{2}, size_t{2}));
}

TEST(LakeTest, LatestPointersKeptInMemoryAgreeWithTheDiskPastTheirCapAndAfterReopen) {
  TempDir dir;
  LakeOptions o;
  o.path = dir.path();
  o.latest_cache_entries = 8;  // 100 stations: most pointers are evicted and read back
  std::mt19937 rng(7);
  std::map<std::string, int64_t> newest;
  for (int round = 0; round < 2; ++round) {
    auto opened = Lake::open(o);
    ASSERT_TRUE(opened.isOk());
    auto& lake = *opened.value();
    for (int batch = 0; batch < 20; ++batch) {
      std::vector<StoreItem> items;
      for (int i = 0; i < 50; ++i) {
        std::string station = "S";  // (not "S" + ...: GCC 12 warns falsely on that)
        station += std::to_string(rng() % 100);
        int64_t at = 1000 + static_cast<int64_t>(rng() % 5000);  // late and early, mixed
        items.push_back(weather(station, at, 123.4, 41.8));
        newest[station] = std::max(newest[station], at);
      }
      ASSERT_TRUE(lake.commit(std::move(items), {}).isOk());
    }
    for (const auto& [station, at] : newest) {
      auto latest = lake.latest("weather/weather_station/" + station);
      ASSERT_TRUE(latest.isOk() && latest.value()) << station;
      EXPECT_EQ(latest.value()->observed_at().seconds(), at) << station << " in round " << round;
    }
  }
}

TEST(LakeTest, DeadLettersAreStoredInTheSameCommit) {
  TempDir dir;
  auto lake = openLake(dir.path());
  firehub::v1::DeadLetter dl;
  dl.set_feed_id("wx");
  dl.set_stage("validate");
  dl.set_reason("field 'rh_pct' = 140 is outside [0, 100]");
  dl.set_raw("A9,1,2,...");
  auto result = lake->commit({weather("A1", 100, 123.4, 41.8)}, {dl});
  ASSERT_TRUE(result.isOk());
  EXPECT_EQ(result->dead_lettered, 1u);
  std::vector<DeadLetterEntry> entries;
  ASSERT_TRUE(lake->listDeadLetters(0, 10, "wx", entries).isOk());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].letter.reason(), dl.reason());
  entries.clear();
  ASSERT_TRUE(lake->listDeadLetters(0, 10, "other-feed", entries).isOk());
  EXPECT_TRUE(entries.empty());
}

TEST(LakeTest, DeliveredRunsAndSinglesLeaveExactlyTheUndeliveredEntries) {
  TempDir dir;
  std::vector<uint64_t> kept;
  {
    auto lake = openLake(dir.path());
    std::vector<StoreItem> items;
    for (int i = 0; i < 60; ++i) {
      std::string station = "R";  // (not "R" + ...: GCC 12 warns falsely on that)
      station += std::to_string(i);
      items.push_back(weather(station, 1, 1, 1));
    }
    ASSERT_TRUE(lake->commit(std::move(items), {}).isOk());
    std::vector<OutboxEntry> outbox;
    ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
    ASSERT_EQ(outbox.size(), 60u);
    // Delivered: a long run (0-29), a short one (31-33), singles (40, 42) and a run to the end
    // (50-59), reported out of order and one twice.
    std::vector<uint64_t> delivered;
    for (int i = 0; i < 60; ++i) {
      bool done = i < 30 || (i >= 31 && i <= 33) || i == 40 || i == 42 || i >= 50;
      if (done)
        delivered.push_back(outbox[static_cast<size_t>(i)].sequence);
      else
        kept.push_back(outbox[static_cast<size_t>(i)].sequence);
    }
    std::reverse(delivered.begin(), delivered.end());
    delivered.push_back(delivered.front());
    ASSERT_TRUE(lake->deleteOutbox(delivered).isOk());
    EXPECT_EQ(lake->outboxDepth(), kept.size());
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), kept.size());
  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
  std::vector<uint64_t> left;
  for (const auto& e : outbox) left.push_back(e.sequence);
  EXPECT_EQ(left, kept);
  EXPECT_EQ(lake->firstOutboxSequence(), kept.front());
}

// The publisher removes what lies below its lowest undelivered sequence in one range.
TEST(LakeTest, OutboxRangeBelowASequenceGoesAtOnce) {
  TempDir dir;
  std::vector<OutboxEntry> outbox;
  {
    auto lake = openLake(dir.path());
    std::vector<StoreItem> items;
    for (int i = 0; i < 10; ++i)
      items.push_back(weather(std::string("R").append(std::to_string(i)), 1, 1, 1));
    ASSERT_TRUE(lake->commit(std::move(items), {}).isOk());
    ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
    ASSERT_EQ(outbox.size(), 10u);
    ASSERT_TRUE(lake->deleteOutboxBelow(outbox[0].sequence, outbox[6].sequence, 6).isOk());
    EXPECT_EQ(lake->outboxDepth(), 4u);
    EXPECT_EQ(lake->firstOutboxSequence(), outbox[6].sequence);
    // An empty or reversed range changes nothing.
    ASSERT_TRUE(lake->deleteOutboxBelow(outbox[6].sequence, outbox[6].sequence, 0).isOk());
    ASSERT_TRUE(lake->deleteOutboxBelow(outbox[8].sequence, outbox[7].sequence, 0).isOk());
    EXPECT_EQ(lake->outboxDepth(), 4u);
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 4u);
  std::vector<OutboxEntry> left;
  ASSERT_TRUE(lake->readOutbox(0, 100, left).isOk());
  ASSERT_EQ(left.size(), 4u);
  EXPECT_EQ(left.front().sequence, outbox[6].sequence);
  EXPECT_EQ(left.back().sequence, outbox[9].sequence);
}

TEST(LakeTest, OutboxDeleteAndReopenKeepsSequenceAndDepth) {
  TempDir dir;
  {
    auto lake = openLake(dir.path());
    ASSERT_TRUE(
        lake->commit({weather("A1", 1, 1, 1), weather("A2", 1, 1, 1), weather("A3", 1, 1, 1)}, {})
            .isOk());
    std::vector<OutboxEntry> outbox;
    ASSERT_TRUE(lake->readOutbox(0, 10, outbox).isOk());
    ASSERT_TRUE(lake->deleteOutbox({outbox[0].sequence, outbox[1].sequence}).isOk());
    EXPECT_EQ(lake->outboxDepth(), 1u);
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 1u);
  ASSERT_TRUE(lake->commit({weather("A4", 1, 1, 1)}, {}).isOk());
  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(lake->readOutbox(0, 10, outbox).isOk());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0].record_id, "wx:A3@1");
  EXPECT_EQ(outbox[1].record_id, "wx:A4@1");
  EXPECT_GT(outbox[1].sequence, outbox[0].sequence);  // sequences never reused after reopen
}

// A record's deliveries ride on its log entry, one sequence per topic: they survive a reopen
// as the log does, a reopened lake numbers on after the last entry's last delivery, and dead
// letters (outbox entries of their own) interleave in sequence order.
TEST(LakeTest, RecordDeliveriesOfTheLogKeepTheirSequencesAcrossReopen) {
  TempDir dir;
  auto two_topics = [](const std::string& station, int64_t seconds) {
    StoreItem item = weather(station, seconds, 1, 1);
    item.topics.push_back("firehub.v1.weather.public");
    return item;
  };
  std::vector<OutboxEntry> first;
  {
    auto lake = openLake(dir.path());
    ASSERT_TRUE(lake->commit({two_topics("B1", 1), two_topics("B2", 1)}, {}).isOk());
    firehub::v1::DeadLetter dl;
    dl.set_feed_id("wx");
    dl.set_reason("bad line");
    ASSERT_TRUE(lake->commit({two_topics("B3", 1)}, {dl}).isOk());
    ASSERT_TRUE(lake->commit({two_topics("B4", 1)}, {}).isOk());  // the last entry spans two
    ASSERT_TRUE(lake->readOutbox(0, 100, first).isOk());
    ASSERT_EQ(first.size(), 9u);
    for (size_t i = 1; i < first.size(); ++i) EXPECT_GT(first[i].sequence, first[i - 1].sequence);
    EXPECT_EQ(first[1].sequence, first[0].sequence + 1);  // a record's two deliveries
    EXPECT_EQ(first[0].record_id, "wx:B1@1");
    EXPECT_EQ(first[1].record_id, "wx:B1@1");
    EXPECT_EQ(first[1].topic, "firehub.v1.weather.public");
    EXPECT_EQ(first[6].record_id.rfind(kDeadLetterRefPrefix, 0), 0u);  // after B3's two
    EXPECT_EQ(first[8].record_id, "wx:B4@1");
    // Delivered: B1 and the first topic of B2 (a range that ends inside a record's span).
    ASSERT_TRUE(lake->deleteOutboxBelow(first[0].sequence, first[3].sequence, 3).isOk());
    EXPECT_EQ(lake->outboxDepth(), 6u);
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 6u);
  EXPECT_EQ(lake->firstOutboxSequence(), first[3].sequence);
  ASSERT_TRUE(lake->commit({weather("B5", 1, 1, 1)}, {}).isOk());
  std::vector<OutboxEntry> left;
  ASSERT_TRUE(lake->readOutbox(0, 100, left).isOk());
  ASSERT_EQ(left.size(), 7u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(left[i].sequence, first[i + 3].sequence);
    EXPECT_EQ(left[i].topic, first[i + 3].topic);
    EXPECT_EQ(left[i].record_id, first[i + 3].record_id);
  }
  EXPECT_EQ(left[6].record_id, "wx:B5@1");
  EXPECT_GT(left[6].sequence, first.back().sequence);  // not B4's second delivery's number
  // Read from inside a span: only what lies at or after `from`.
  std::vector<OutboxEntry> from_inside;
  ASSERT_TRUE(lake->readOutbox(first[8].sequence, 100, from_inside).isOk());
  ASSERT_EQ(from_inside.size(), 2u);
  EXPECT_EQ(from_inside[0].topic, "firehub.v1.weather.public");
  // Many delivered behind one that is not (the publisher's one-by-one path): B2's second topic
  // and B4's first stay; they are kept in the outbox family, across a reopen as well.
  ASSERT_TRUE(lake->deleteOutbox({left[1].sequence, left[2].sequence, left[3].sequence,
                                  left[4].sequence, left[6].sequence})
                  .isOk());
  EXPECT_EQ(lake->outboxDepth(), 2u);
  lake.reset();
  lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 2u);
  std::vector<OutboxEntry> kept;
  ASSERT_TRUE(lake->readOutbox(0, 100, kept).isOk());
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].sequence, left[0].sequence);
  EXPECT_EQ(kept[0].record_id, "wx:B2@1");
  EXPECT_EQ(kept[0].topic, "firehub.v1.weather.public");
  EXPECT_EQ(kept[1].sequence, left[5].sequence);
  EXPECT_EQ(kept[1].record_id, "wx:B4@1");
  ASSERT_TRUE(lake->deleteOutboxBelow(kept[0].sequence, kept[1].sequence + 1, 2).isOk());
  EXPECT_EQ(lake->outboxDepth(), 0u);
  std::vector<OutboxEntry> none;
  ASSERT_TRUE(lake->readOutbox(0, 100, none).isOk());
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(lake->firstOutboxSequence().has_value());
}

// The numbers of delivered outbox entries are gone from every column family, but the mark is
// past them: a reopened lake must not hand them out again to records (they would count as
// delivered).
TEST(LakeTest, AReopenedLakeNumbersOnPastTheDeliveredMarkWhenTheLastEntriesAreGone) {
  TempDir dir;
  std::vector<OutboxEntry> first;
  {
    auto lake = openLake(dir.path());
    firehub::v1::DeadLetter dl;
    dl.set_feed_id("wx");
    dl.set_reason("bad line");
    ASSERT_TRUE(
        lake->commit({weather("D1", 1, 1, 1)}, {dl}).isOk());  // the dead letter's entry is last
    ASSERT_TRUE(lake->readOutbox(0, 100, first).isOk());
    ASSERT_EQ(first.size(), 2u);
    ASSERT_TRUE(lake->deleteOutboxBelow(first[0].sequence, first[1].sequence + 1, 2).isOk());
    EXPECT_EQ(lake->outboxDepth(), 0u);
  }
  auto lake = openLake(dir.path());
  ASSERT_TRUE(lake->commit({weather("D2", 1, 1, 1)}, {}).isOk());
  EXPECT_EQ(lake->outboxDepth(), 1u);
  std::vector<OutboxEntry> next;
  ASSERT_TRUE(lake->readOutbox(0, 100, next).isOk());
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].record_id, "wx:D2@1");
  EXPECT_GT(next[0].sequence, first[1].sequence);
}

// Records without topics (a bulk load) take log entries and no delivery: they neither count in
// the outbox nor hold back a later record's delivery, before or after a reopen.
TEST(LakeTest, RecordsWithoutTopicsAreLoggedButNotDelivered) {
  TempDir dir;
  auto quiet = [](const std::string& station) {
    StoreItem item = weather(station, 1, 1, 1);
    item.topics.clear();
    return item;
  };
  {
    auto lake = openLake(dir.path());
    std::vector<StoreItem> bulk;
    for (int i = 0; i < 500; ++i) bulk.push_back(quiet(std::string("Q").append(std::to_string(i))));
    ASSERT_TRUE(lake->commit(std::move(bulk), {}).isOk());
    EXPECT_EQ(lake->outboxDepth(), 0u);
    EXPECT_FALSE(lake->firstOutboxSequence().has_value());
    ASSERT_TRUE(lake->commit({weather("P1", 1, 1, 1)}, {}).isOk());  // pending from here on
    ASSERT_TRUE(lake->commit({quiet("Q500"), quiet("Q501")}, {}).isOk());
    ASSERT_TRUE(lake->commit({weather("P2", 1, 1, 1)}, {}).isOk());
    ASSERT_TRUE(lake->commit({quiet("Q502")}, {}).isOk());
    EXPECT_EQ(lake->outboxDepth(), 2u);
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 2u);
  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0].record_id, "wx:P1@1");
  EXPECT_EQ(outbox[1].record_id, "wx:P2@1");
  EXPECT_EQ(lake->firstOutboxSequence(), outbox[0].sequence);
  ASSERT_TRUE(lake->deleteOutboxBelow(outbox[0].sequence, outbox[1].sequence + 1, 2).isOk());
  ASSERT_TRUE(lake->commit({quiet("Q503")}, {}).isOk());
  ASSERT_TRUE(lake->commit({weather("P3", 1, 1, 1)}, {}).isOk());
  outbox.clear();
  ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].record_id, "wx:P3@1");
  std::vector<std::pair<uint64_t, std::string>> log;
  ASSERT_TRUE(lake->readLog(0, 1000, log).isOk());
  EXPECT_EQ(log.size(), 507u);  // every record is logged, delivered or not
}

// A lake written when every delivery was an outbox entry (its log holds bare record ids and its
// meta no delivery mark) opens with its pending deliveries intact and numbers on after them.
TEST(LakeTest, ALakeFromBeforeTheLogCarriedDeliveriesKeepsItsOutbox) {
  TempDir dir;
  openLake(dir.path()).reset();  // the column families
  {
    RawLake raw(dir.path());
    ASSERT_TRUE(raw.db) << "open the lake's RocksDB directly";
    auto& db = raw.db;
    auto& handles = raw.handles;
    auto prefixed = [](const std::string& text) {
      return std::string{static_cast<char>(text.size() >> 8),
                         static_cast<char>(text.size() & 0xff)} +
             text;
    };
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[7], "lake/log_delivered_below").ok());
    // Two old records: the first delivered, the second (two topics) not.
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[4], bigEndian(1), "wx:OLD1@1").ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[4], bigEndian(2), "wx:OLD2@1").ok());
    for (uint64_t seq : {2, 3}) {
      std::string topic = seq == 2 ? "firehub.v1.weather" : "firehub.v1.weather.public";
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[5], bigEndian(seq),
                          prefixed(topic) + prefixed("OLD2") + "wx:OLD2@1")
                      .ok());
    }
  }
  auto lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 2u);
  ASSERT_TRUE(lake->commit({weather("NEW", 1, 1, 1)}, {}).isOk());
  EXPECT_EQ(lake->outboxDepth(), 3u);
  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
  ASSERT_EQ(outbox.size(), 3u);
  EXPECT_EQ(outbox[0].sequence, 2u);
  EXPECT_EQ(outbox[1].sequence, 3u);
  EXPECT_EQ(outbox[1].topic, "firehub.v1.weather.public");
  EXPECT_EQ(outbox[1].record_id, "wx:OLD2@1");
  EXPECT_EQ(outbox[2].sequence, 4u);
  EXPECT_EQ(outbox[2].record_id, "wx:NEW@1");
  std::vector<std::pair<uint64_t, std::string>> log;
  ASSERT_TRUE(lake->readLog(0, 100, log).isOk());
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].second, "wx:OLD1@1");
  EXPECT_EQ(log[2].second, "wx:NEW@1");
  ASSERT_TRUE(lake->deleteOutboxBelow(2, 5, 3).isOk());
  lake.reset();
  lake = openLake(dir.path());
  EXPECT_EQ(lake->outboxDepth(), 0u);
  outbox.clear();
  ASSERT_TRUE(lake->readOutbox(0, 100, outbox).isOk());
  EXPECT_TRUE(outbox.empty());
}

TEST(LakeTest, MetaRoundTrip) {
  TempDir dir;
  auto lake = openLake(dir.path());
  ASSERT_TRUE(lake->putMeta("feed/a", "1").isOk());
  ASSERT_TRUE(lake->putMeta("feed/b", "2").isOk());
  ASSERT_TRUE(lake->putMeta("other", "3").isOk());
  std::map<std::string, std::string> seen;
  ASSERT_TRUE(
      lake->scanMeta("feed/", [&](const std::string& k, const std::string& v) { seen[k] = v; })
          .isOk());
  EXPECT_EQ(seen.size(), 2u);
  ASSERT_TRUE(lake->deleteMeta("feed/a").isOk());
  auto gone = lake->getMeta("feed/a");
  ASSERT_TRUE(gone.isOk());
  EXPECT_FALSE(gone.value().has_value());
}

TEST(LakeTest, SecondOpenOfTheSameDirIsRefusedClearly) {
  TempDir dir;
  auto lake = openLake(dir.path());
  LakeOptions o;
  o.path = dir.path();
  auto second = Lake::open(o);
  ASSERT_FALSE(second.isOk());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

// A process killed at random moments while committing batches of 500 records: after reopening,
// every batch is either entirely present (records, log and outbox entries) or entirely absent.
TEST(LakeTest, BatchesAreAtomicUnderKillDashNine) {
  TempDir dir;
  std::mt19937 rng(7);
  constexpr int kBatch = 500;
  for (int trial = 0; trial < 4; ++trial) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      LakeOptions o;
      o.path = dir.path();
      o.sync = false;  // a process kill, not a power cut: the WAL in the page cache suffices
      auto lake = Lake::open(o);
      if (!lake.isOk()) _exit(3);
      for (int b = 0; b < 100000; ++b) {
        std::vector<StoreItem> items;
        for (int i = 0; i < kBatch; ++i) {
          char station[48];
          std::snprintf(station, sizeof station, "T%dB%dI%d", trial, b, i);
          items.push_back(weather(station, b, 123 + i * 1e-4, 41, "crash"));
        }
        if (!(*lake)->commit(items, {}).isOk()) _exit(4);
      }
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer finished before it was killed";
  }
  auto lake = openLake(dir.path());
  std::map<std::string, int> per_batch;  // "T<trial>B<batch>" -> records
  std::vector<std::pair<uint64_t, std::string>> log;
  size_t logged = 0;
  for (uint64_t from = 0;; from = log.back().first + 1) {
    log.clear();
    ASSERT_TRUE(lake->readLog(from, 5000, log).isOk());
    if (log.empty()) break;
    for (const auto& [seq, id] : log) {
      ++logged;
      auto r = lake->getRecord(id);
      ASSERT_TRUE(r.isOk() && r.value().has_value()) << "log entry without record: " << id;
      std::string entity = r.value()->entity_id();
      per_batch[entity.substr(0, entity.find('I'))]++;
    }
  }
  EXPECT_EQ(lake->outboxDepth(), logged);
  ASSERT_FALSE(per_batch.empty());
  for (const auto& [batch, count] : per_batch) EXPECT_EQ(count, kBatch) << "torn batch " << batch;
}

}  // namespace
}  // namespace firehub::lake
