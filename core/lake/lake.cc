#include "firehub/lake.h"
#include <google/protobuf/util/json_util.h>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iterator>
#include <set>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "lake/codec.h"

namespace firehub::lake {
namespace {

constexpr const char* kRecords = "records";
constexpr const char* kLatest = "latest";
constexpr const char* kGeo = "geo";
constexpr const char* kLog = "log";
constexpr const char* kOutbox = "outbox";
constexpr const char* kDlq = "dlq";
constexpr const char* kMeta = "meta";
constexpr const char* kLayers = "layers";
// meta key of the mark below which the log's record deliveries are done (sequence, BE)
constexpr const char* kLogSentKey = "lake/log_delivered_below";
// The area indexes the lake was last opened with: name=domain@version; ...
constexpr const char* kAreaIndexesKey = "lake/area_indexes";

void putLogMark(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* meta, uint64_t below) {
  std::string mark;
  codec::appendBigEndian64(mark, below);
  batch.Put(meta, kLogSentKey, mark);
}

// RocksDB's warnings and errors, in the hub's log.
class HubLogger : public rocksdb::Logger {
 public:
  HubLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      FIREHUB_LOG(kError, "rocksdb", buf);
    } else {
      FIREHUB_LOG(kWarning, "rocksdb", buf);
    }
  }
};

Status fromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return Status::ok();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kNoSpace) {
    return Status::resourceExhausted(message);
  }
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return Status::unavailable(message);
  }
  if (s.IsCorruption()) return Status::dataLoss(message);
  return Status::internal(message);
}

std::optional<S2LatLng> anchor(const firehub::v1::Geometry& g) {
  auto p = representativePoint(g);
  if (!p) return std::nullopt;
  return S2LatLng::FromDegrees(p->lat, p->lon);
}

int64_t micros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

std::string geoKey(std::string_view domain, uint64_t leaf, std::string_view entity) {
  std::string k(domain);
  k.push_back('\0');
  codec::appendBigEndian64(k, leaf);
  k += entity;
  return k;
}

}  // namespace

// Entity key -> its latest pointer.
struct Lake::LatestCache : absl::flat_hash_map<std::string, codec::LatestPointer> {};

// The kept pointers in two generations of up to half the cap each: a commit's pointers go into
// the young one; a full young generation becomes the old one and the old one is dropped whole.
// Entities written within the last half-cap to whole-cap writes are found, with no per-entry
// eviction and no recency list. An entity in both has its newer pointer in the young one, which
// is looked at first.
struct Lake::LatestGenerations {
  LatestCache young, old;
  const codec::LatestPointer* find(const std::string& entity) const {
    if (auto it = young.find(entity); it != young.end()) return &it->second;
    if (auto it = old.find(entity); it != old.end()) return &it->second;
    return nullptr;
  }
};

// Recently committed records as stored, in commit order (oldest first) with their charged size,
// and by id (the key views the entry's own id; a deque keeps its elements in place).
struct Lake::RecordCache {
  struct Held {
    Remembered record;
    size_t bytes;  // charged: both strings' buffers, the entry and the map slot
  };
  absl::flat_hash_map<std::string_view, const Held*> by_id;
  std::deque<Held> order;
  size_t bytes = 0;

  void drop(const Held& h) {
    by_id.erase(std::string_view(h.record.id));
    bytes -= h.bytes;
  }
  void dropFront() {
    drop(order.front());
    order.pop_front();
  }
  void dropBack() {
    drop(order.back());
    order.pop_back();
  }
};

std::optional<LonLat> representativePoint(const firehub::v1::Geometry& g) {
  if (g.has_point()) return LonLat{g.point().lon(), g.point().lat()};
  const firehub::v1::Polygon* poly = nullptr;
  if (g.has_polygon())
    poly = &g.polygon();
  else if (g.has_multi_polygon() && g.multi_polygon().polygons_size() > 0)
    poly = &g.multi_polygon().polygons(0);
  if (!poly || poly->rings_size() == 0 || poly->rings(0).points_size() == 0) return std::nullopt;
  LonLat sum;
  const auto& ring = poly->rings(0);
  for (const auto& p : ring.points()) {
    sum.lon += p.lon();
    sum.lat += p.lat();
  }
  return LonLat{sum.lon / ring.points_size(), sum.lat / ring.points_size()};
}

std::optional<BBox> boundsOf(const firehub::v1::Geometry& g) {
  BBox box{180, 90, -180, -90};
  auto take = [&box](const firehub::v1::Point& p) {
    box.min_lon = std::min(box.min_lon, p.lon());
    box.max_lon = std::max(box.max_lon, p.lon());
    box.min_lat = std::min(box.min_lat, p.lat());
    box.max_lat = std::max(box.max_lat, p.lat());
  };
  auto take_polygon = [&take](const firehub::v1::Polygon& poly) {
    for (const auto& ring : poly.rings()) {
      for (const auto& p : ring.points()) take(p);
    }
  };
  if (g.has_point()) take(g.point());
  if (g.has_polygon()) take_polygon(g.polygon());
  for (const auto& poly : g.multi_polygon().polygons()) take_polygon(poly);
  if (box.min_lon > box.max_lon) return std::nullopt;  // no points
  return box;
}

std::string entityKey(const firehub::v1::Record& r) {
  return r.domain() + "/" + r.entity_type() + "/" + r.entity_id();
}

std::string entityKeyOf(const firehub::v1::EntityRef& ref) {
  return ref.domain() + "/" + ref.entity_type() + "/" + ref.entity_id();
}

Result<std::unique_ptr<Lake>> Lake::open(const LakeOptions& options) {
  if (options.path.empty()) return Status::invalidArgument("lake path is empty");
  std::unique_ptr<Lake> lake(new Lake(options));
  FIREHUB_RETURN_IF_ERROR(lake->init());
  return lake;
}

Status Lake::init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) return Status::unavailable("cannot create " + options_.path + ": " + ec.message());

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options_.create_if_missing;
  // RocksDB's own log goes to the hub's log, not to a LOG file beside the data: on a full disk
  // that file fails, and the RocksDB of Debian 12 asserts on the next line written to it.
  db_options.info_log = std::make_shared<HubLogger>();
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Flushes and compactions run at the lowest CPU priority: on a small machine a memtable flush
  // (tens of MiB compressed on one core) otherwise takes a core from fusion and the map's
  // stream just when an alarm burst filled the memtables. They still get every idle moment, and
  // RocksDB slows writes down if they fall behind.
  db_options.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH,
                                             rocksdb::CpuPriority::kLow);
  db_options.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW,
                                             rocksdb::CpuPriority::kLow);
  db_options.db_write_buffer_size = options_.write_buffer_mb << 20;
  db_options.keep_log_file_num = 5;

  rocksdb::BlockBasedTableOptions table;
  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_mb << 20);
  table.block_cache = block_cache_;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
  rocksdb::ColumnFamilyOptions point_lookup;
  point_lookup.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  point_lookup.compression = rocksdb::kLZ4Compression;
  // A bloom filter over the memtables' whole keys: a Get for a key that is not there (every new
  // record's dedupe check, a new entity's latest pointer) skips the skiplist search.
  point_lookup.memtable_prefix_bloom_size_ratio = 0.02;
  point_lookup.memtable_whole_key_filtering = true;
  rocksdb::ColumnFamilyOptions ordered;  // log, outbox, dlq: append + range scans
  ordered.compression = rocksdb::kLZ4Compression;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kRecords, point_lookup},
      {kLatest, point_lookup},
      {kGeo, ordered},
      {kLog, ordered},
      {kOutbox, ordered},
      {kDlq, ordered},
      {kMeta, point_lookup},
      {kLayers, point_lookup}};
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(db_options, options_.path, families, &handles_, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::failedPrecondition("the lake at " + options_.path +
                                        " is in use by another process (" + s.ToString() + ")");
    }
    return fromRocks(s, ("open lake at " + options_.path).c_str());
  }
  db_.reset(db);
  records_ = handles_[1];
  latest_ = handles_[2];
  geo_ = handles_[3];
  log_ = handles_[4];
  outbox_ = handles_[5];
  dlq_ = handles_[6];
  meta_ = handles_[7];
  layers_ = handles_[8];

  next_sequence_ = std::max(lastKey(outbox_), lastKey(dlq_)) + 1;
  {  // the last log entry may take more than its own sequence (one per delivery)
    std::unique_ptr<rocksdb::Iterator> last(db_->NewIterator(rocksdb::ReadOptions(), log_));
    last->SeekToLast();
    if (last->Valid() && last->key().size() == 8) {
      codec::LogEntry entry;
      const uint64_t span =
          codec::decodeLog(last->value().ToStringView(), entry) ? codec::logSpan(entry) : 1;
      next_sequence_ = std::max(next_sequence_, codec::readBigEndian64(last->key().data()) + span);
    }
  }
  // Where record deliveries of the log stand. A lake without the mark (new, or written when every
  // delivery was an outbox entry) starts it here: what is pending is in the outbox family.
  std::string mark;
  auto ms = db_->Get(rocksdb::ReadOptions(), meta_, kLogSentKey, &mark);
  if (ms.ok() && mark.size() == 8) {
    log_sent_below_ = codec::readBigEndian64(mark.data());
  } else if (ms.IsNotFound()) {
    log_sent_below_ = next_sequence_;
    rocksdb::WriteBatch batch;
    putLogMark(batch, meta_, log_sent_below_);
    FIREHUB_RETURN_IF_ERROR(write(batch, options_.sync, "write the log's delivery mark"));
  } else {
    return ms.ok() ? Status::dataLoss("the log's delivery mark does not decode")
                   : fromRocks(ms, "read meta");
  }
  // Every number below the mark was handed out, also when no key holds it any more (a delivered
  // dead letter's outbox entry at the end): a record logged under such a number again would count
  // as delivered and never be sent.
  next_sequence_ = std::max(next_sequence_, log_sent_below_);
  uint64_t depth = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const uint64_t seq = codec::readBigEndian64(it->key().data());
    outbox_floor_ = std::min(outbox_floor_, seq);
    outbox_top_ = std::max(outbox_top_, seq);
    ++depth;
  }
  FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan outbox"));
  log_delivery_top_ = next_sequence_;  // until the scan below knows better
  uint64_t top = log_sent_below_;
  std::vector<OutboxEntry> pending;
  for (uint64_t from = log_sent_below_;; from = pending.back().sequence + 1) {
    pending.clear();
    FIREHUB_RETURN_IF_ERROR(readLogDeliveries(from, 10000, pending));
    if (pending.empty()) break;
    depth += pending.size();
    top = pending.back().sequence + 1;
  }
  log_delivery_top_ = top;
  outbox_depth_ = depth;
  FIREHUB_RETURN_IF_ERROR(prepareAreaIndexes());
  uint64_t dead = 0;
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), dlq_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++dead;
  dlq_count_ = dead;
  FIREHUB_LOG(kInfo, "lake",
              "opened " << options_.path << " next_sequence=" << next_sequence_
                        << " outbox=" << depth << " dead_letters=" << dead);
  return Status::ok();
}

Lake::MemoryUse Lake::memoryUse() const {
  MemoryUse use;
  uint64_t v = 0;
  if (db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &v)) use.memtables = v;
  if (db_->GetAggregatedIntProperty("rocksdb.estimate-table-readers-mem", &v))
    use.table_readers = v;
  use.block_cache = block_cache_ ? block_cache_->GetUsage() : 0;
  use.block_cache_capacity = block_cache_ ? block_cache_->GetCapacity() : 0;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    use.record_cache = cache_->bytes;
  }
  use.latest_cache_entries = latest_cache_size_.load();
  return use;
}

uint32_t Lake::indexedBy(const firehub::v1::Record& r) const {
  if (r.op() == firehub::v1::OP_RETRACT) return 0;
  uint32_t bits = 0;
  for (size_t i = 0; i < options_.area_indexes.size(); ++i) {
    const auto& index = options_.area_indexes[i];
    if (index.domain == r.domain() && index.holds && index.holds(r)) bits |= uint32_t{1} << i;
  }
  return bits;
}

Status Lake::prepareAreaIndexes() {
  const auto& indexes = options_.area_indexes;
  if (indexes.size() > 32) return Status::invalidArgument("a lake keeps at most 32 area indexes");
  std::string signature;
  std::set<std::string> domains;  // whose latest pointers may carry index bits
  for (const auto& index : indexes) {
    const bool named =
        !index.name.empty() && std::all_of(index.name.begin(), index.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
    if (!named || index.domain.empty()) {
      return Status::invalidArgument("area index '" + index.name +
                                     "' needs a name of letters, digits, '_' or '-' "
                                     "and a domain");
    }
    for (const auto& p : index_prefixes_) {
      if (p.compare(1, std::string::npos, index.name) == 0) {
        return Status::invalidArgument("two area indexes are named '" + index.name + "'");
      }
    }
    index_prefixes_.push_back("\x01" + index.name);
    if (!signature.empty()) signature += ';';
    signature += index.name + "=" + index.domain + "@" + std::to_string(index.version);
    domains.insert(index.domain);
  }
  std::string stored;
  auto gs = db_->Get(rocksdb::ReadOptions(), meta_, kAreaIndexesKey, &stored);
  if (!gs.ok() && !gs.IsNotFound()) return fromRocks(gs, "read meta");
  if (gs.ok() ? stored == signature : signature.empty()) return Status::ok();
  // A lake from before area indexes also kept a withdrawn entity in the geo index (area counts
  // from keys must not see it): its first build looks at every entity and takes those out.
  const bool first = gs.IsNotFound();
  // The domains of the indexes before: their pointers' bits are cleared or recomputed.
  for (size_t start = 0; start < stored.size();) {
    size_t end = stored.find(';', start);
    if (end == std::string::npos) end = stored.size();
    const std::string_view entry(stored.data() + start, end - start);
    const size_t eq = entry.find('='), at = entry.rfind('@');
    if (eq != std::string_view::npos && at != std::string_view::npos && at > eq) {
      domains.emplace(entry.substr(eq + 1, at - eq - 1));
    }
    start = end + 1;
  }
  FIREHUB_LOG(kInfo, "lake",
              "building the area indexes (" << (signature.empty() ? "none" : signature)
                                            << "; before: " << (stored.empty() ? "none" : stored)
                                            << ")");
  const auto t0 = std::chrono::steady_clock::now();
  rocksdb::WriteBatch batch;
  batch.DeleteRange(geo_, "\x01", "\x02");  // every area index entry; domains start with a letter
  FIREHUB_RETURN_IF_ERROR(write(batch, false, "clear the area indexes"));
  size_t entities = 0, entries = 0, withdrawn = 0;
  constexpr size_t kChunk = 1024;
  std::vector<std::string> keys, pointers;
  auto rebuildChunk = [&]() -> Status {
    std::vector<codec::LatestPointer> ptrs(keys.size());
    std::vector<rocksdb::Slice> ids;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!codec::decodeLatest(pointers[i], ptrs[i]))
        return Status::dataLoss("latest of " + keys[i] + " does not decode");
      ids.emplace_back(ptrs[i].record_id);
    }
    std::vector<rocksdb::PinnableSlice> records(ids.size());
    std::vector<rocksdb::Status> read(ids.size());
    db_->MultiGet(rocksdb::ReadOptions(), records_, ids.size(), ids.data(), records.data(),
                  read.data());
    batch.Clear();
    firehub::v1::Record r;
    for (size_t k = 0; k < ids.size(); ++k) {
      codec::LatestPointer& ptr = ptrs[k];
      uint32_t bits = 0;
      if (read[k].ok()) {
        if (!r.ParseFromArray(records[k].data(), static_cast<int>(records[k].size()))) {
          return Status::dataLoss("record " + ptr.record_id + " does not parse");
        }
        bits = indexedBy(r);
      } else if (!read[k].IsNotFound()) {
        return fromRocks(read[k], "read record");
      }
      bool changed = bits != ptr.indexed;
      if (read[k].ok() && r.op() == firehub::v1::OP_RETRACT && ptr.leaf_cell != 0) {
        batch.Delete(geo_, geoKey(r.domain(), ptr.leaf_cell, keys[k]));
        ptr.leaf_cell = 0;
        changed = true;
        ++withdrawn;
      }
      if (changed) {
        ptr.indexed = bits;
        batch.Put(latest_, keys[k], codec::encodeLatest(ptr));
      }
      for (size_t i = 0; i < index_prefixes_.size() && ptr.leaf_cell != 0; ++i) {
        if (!(bits & (uint32_t{1} << i))) continue;
        batch.Put(geo_, geoKey(index_prefixes_[i], ptr.leaf_cell, keys[k]), "");
        ++entries;
      }
    }
    entities += keys.size();
    keys.clear();
    pointers.clear();
    return batch.Count() == 0 ? Status::ok() : write(batch, false, "build the area indexes");
  };
  if (first) domains = {""};  // every entity (keys start with their domain)
  for (const auto& domain : domains) {
    const std::string prefix = domain.empty() ? std::string() : domain + "/";
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), latest_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      keys.push_back(it->key().ToString());
      pointers.push_back(it->value().ToString());
      if (keys.size() == kChunk) FIREHUB_RETURN_IF_ERROR(rebuildChunk());
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan latest"));
    FIREHUB_RETURN_IF_ERROR(rebuildChunk());
  }
  batch.Clear();
  if (signature.empty())
    batch.Delete(meta_, kAreaIndexesKey);
  else
    batch.Put(meta_, kAreaIndexesKey, signature);
  FIREHUB_RETURN_IF_ERROR(write(batch, true, "record the area indexes"));
  FIREHUB_LOG(kInfo, "lake",
              "area indexes built: "
                  << entities << " entities looked at, " << entries << " entries, " << withdrawn
                  << " withdrawn ones taken out of the geo index, in "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                  << " s");
  return Status::ok();
}

Lake::Lake(LakeOptions options)
    : options_(std::move(options)),
      commit_batch_(std::make_unique<rocksdb::WriteBatch>()),
      latest_cache_(std::make_unique<LatestGenerations>()),
      cache_(std::make_unique<RecordCache>()) {}

Lake::~Lake() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
}

Status Lake::write(rocksdb::WriteBatch& batch, bool sync, const char* what) {
  // One write at a time, and none after a failed one until RocksDB resumed: the RocksDB of
  // Debian 12 (7.8) asserts when the write-ahead log is written again after a write error.
  std::lock_guard<std::mutex> lock(write_mu_);
  if (stalled_.load()) {
    // RocksDB stops writing after a failed write (e.g. the disk filled up) until resumed.
    rocksdb::Status resumed = db_->Resume();
    if (!resumed.ok()) {
      return Status::resourceExhausted(std::string(what) +
                                       ": the lake stopped writing after a disk error and "
                                       "resumes by itself once there is free space under " +
                                       options_.path + " (" + resumed.ToString() + ")");
    }
    stalled_ = false;
    FIREHUB_LOG(kInfo, "lake", "writing again after a disk error");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (s.ok()) return Status::ok();
  if (s.IsNoSpace() || s.IsIOError()) stalled_ = true;
  Status status = fromRocks(s, what);
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kNoSpace) {
    return Status::resourceExhausted(std::string(what) + ": the disk of the lake is full (" +
                                     options_.path + "): " + s.ToString());
  }
  return status;
}

uint64_t Lake::lastKey(rocksdb::ColumnFamilyHandle* cf) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
  it->SeekToLast();
  if (!it->Valid() || it->key().size() != 8) return 0;
  return codec::readBigEndian64(it->key().data());
}

Result<std::string> Lake::ownerIfOther(const std::string& current_id,
                                       const firehub::v1::Record& r) const {
  // Record ids start with their feed's id: the same feed is the same agency, without a read.
  const std::string_view feed = std::string_view(current_id).substr(0, current_id.find(':'));
  if (feed == r.feed_id()) return std::string();
  firehub::v1::Record current;
  auto found = readRecord(current_id, current);
  if (!found.isOk()) return found.status();
  if (!found.value() || current.agency().empty() || current.agency() == r.agency())
    return std::string();
  return current.agency();
}

firehub::v1::DeadLetter Lake::foreignWrite(const firehub::v1::Record& r, const std::string& owner) {
  firehub::v1::DeadLetter dl;
  dl.set_feed_id(r.feed_id());
  dl.set_agency(r.agency());
  dl.set_connector_id(r.provenance().connector_id());
  dl.set_connector_version(r.provenance().connector_version());
  dl.set_stage("validate");
  dl.set_restricted(bodyHasRestrictedFields(r));
  dl.set_reason(r.domain() + " entity " + r.entity_type() + "/" + r.entity_id() +
                " belongs to agency '" + owner + "'; agency '" + r.agency() +
                "' may not change it");
  dl.set_source_offset(r.provenance().source_offset());
  *dl.mutable_at() = r.received_at();
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(r, &json);
  dl.set_raw(json);
  dl.set_content_type("application/json");
  return dl;
}

Result<CommitResult> Lake::commit(const std::vector<StoreItem>& items,
                                  const std::vector<firehub::v1::DeadLetter>& dead_letters,
                                  const MetaFor& meta_for,
                                  const std::vector<uint64_t>& resolved_dead_letters) {
  std::lock_guard<std::mutex> lock(commit_mu_);
  // The batch's buffer is reused by the next commit, unless this one made it large (a rare huge
  // push does not keep its memory).
  struct KeepSmall {
    std::unique_ptr<rocksdb::WriteBatch>& batch;
    ~KeepSmall() {
      if (batch->GetDataSize() > (size_t{16} << 20))
        batch = std::make_unique<rocksdb::WriteBatch>();
    }
  } keep_small{commit_batch_};
  rocksdb::WriteBatch& batch = *commit_batch_;
  batch.Clear();
  CommitResult result;
  uint64_t seq = next_sequence_;
  absl::flat_hash_set<std::string_view> ids_in_batch;
  ids_in_batch.reserve(items.size());
  // The newest pointer of each entity of this batch, and the cell its stored pointer had before
  // the batch (0: none): one latest and at most one geo move per entity, however many of its
  // records the batch holds.
  LatestCache latest_in_batch;
  struct Before {
    uint64_t leaf = 0;
    std::string_view domain;  // of the batch's record (geo keys start with the domain)
    uint32_t indexed = 0;     // the area indexes that held the entity
  };
  absl::flat_hash_map<std::string, Before> leaf_before;
  std::string value;
  std::string key;
  size_t outbox_added = 0;
  uint64_t log_deliveries_end = 0;   // after the last delivery of this commit's log entries
  std::vector<size_t> stored_items;  // indexes of the items written (not duplicates)
  std::vector<char> refused_items(items.size(), 0);  // another agency's entity: not written
  std::vector<firehub::v1::DeadLetter> refused_letters;
  std::vector<uint64_t> last_sequences;  // of each stored item: its last outbox sequence

  // Dedupe: the same source record (same stable id) is stored once. Ids new to this batch are
  // looked up in RocksDB together (one MultiGet shares the filter and block work of a batch).
  std::vector<size_t> candidates;
  candidates.reserve(items.size());
  for (size_t index = 0; index < items.size(); ++index) {
    const auto& r = items[index].record();
    if (r.id().empty() || r.entity_id().empty() || r.domain().empty()) {
      return Status::invalidArgument("record without id, entity or domain");
    }
    if (items[index].topics.size() > codec::kMaxLogTopics) {
      return Status::invalidArgument("record " + r.id() + " is for more than " +
                                     std::to_string(codec::kMaxLogTopics) + " topics");
    }
    if (ids_in_batch.insert(r.id()).second)
      candidates.push_back(index);
    else
      ++result.duplicates;
  }
  // The ids are sorted once: the MultiGet takes them in key order (sorting them itself cost it ~6 %
  // of a commit's instructions), and the records go into the batch in the same order below.
  std::vector<size_t> by_id = candidates;
  std::sort(by_id.begin(), by_id.end(),
            [&](size_t a, size_t b) { return items[a].record().id() < items[b].record().id(); });
  std::vector<rocksdb::Slice> keys;
  keys.reserve(by_id.size());
  std::vector<uint32_t> slot(items.size());  // an item's place in by_id
  for (size_t k = 0; k < by_id.size(); ++k) {
    keys.emplace_back(items[by_id[k]].record().id());
    slot[by_id[k]] = static_cast<uint32_t>(k);
  }
  std::vector<rocksdb::PinnableSlice> found(by_id.size());
  std::vector<rocksdb::Status> stored(by_id.size());  // ok: stored before
  db_->MultiGet(rocksdb::ReadOptions(), records_, by_id.size(), keys.data(), found.data(),
                stored.data(),
                /*sorted_input=*/true);

  for (size_t c = 0; c < candidates.size(); ++c) {
    const size_t index = candidates[c];
    const auto& item = items[index];
    const auto& r = item.record();
    const rocksdb::Status& before = stored[slot[index]];
    if (before.ok()) {
      ++result.duplicates;
      continue;
    }
    if (!before.IsNotFound()) return fromRocks(before, "read record");

    // Latest pointer: only a newer observation moves it.
    std::string entity = item.entity_key.empty() ? entityKey(r) : item.entity_key;
    codec::LatestPointer current;
    bool have_current = false;
    auto in = latest_in_batch.find(entity);
    if (in != latest_in_batch.end()) {
      current = in->second;
      have_current = true;
    } else if (const codec::LatestPointer* known = latest_cache_->find(entity)) {
      current = *known;
      have_current = true;
    } else {
      std::string stored;
      auto ls = db_->Get(rocksdb::ReadOptions(), latest_, entity, &stored);
      if (ls.ok()) {
        have_current = codec::decodeLatest(stored, current);
      } else if (!ls.IsNotFound()) {
        return fromRocks(ls, "read latest");
      }
    }
    // An entity belongs to the agency that wrote it first: another agency's record for it is
    // not stored (a dead letter says whose it is), so no agency can move another's state.
    if (have_current) {
      auto owner = ownerIfOther(current.record_id, r);
      if (!owner.isOk()) return owner.status();
      if (!owner->empty()) {
        refused_items[index] = 1;
        refused_letters.push_back(foreignWrite(r, *owner));
        continue;
      }
    }
    stored_items.push_back(index);
    int64_t observed = micros(r.observed_at());
    if (!have_current || observed >= current.observed_micros) {
      codec::LatestPointer next;
      next.observed_micros = observed;
      next.record_id = r.id();
      next.indexed = indexedBy(r);
      if (r.op() == firehub::v1::OP_RETRACT) {
        next.leaf_cell = 0;  // a withdrawn entity leaves the geo index (area walks and counts)
      } else if (item.leaf_cell != 0) {
        next.leaf_cell = item.leaf_cell;
      } else {
        auto where = anchor(r.geometry());
        next.leaf_cell = where ? S2CellId(*where).id() : 0;
      }
      if (in != latest_in_batch.end()) {
        in->second = std::move(next);
      } else {
        auto placed = latest_in_batch.emplace(std::move(entity), std::move(next)).first;
        leaf_before.emplace(placed->first,
                            have_current ? Before{current.leaf_cell, r.domain(), current.indexed}
                                         : Before{0, r.domain(), 0});
      }
    }

    // The log entry carries the record's deliveries: one sequence number per topic, from the
    // entry's own on.
    key.clear();
    codec::appendBigEndian64(key, seq);
    value.clear();
    codec::appendLog(value, item.topics, r.entity_id(), r.id());
    batch.Put(log_, key, value);
    outbox_added += item.topics.size();
    seq += std::max<size_t>(item.topics.size(), 1);
    if (!item.topics.empty()) log_deliveries_end = seq;
    last_sequences.push_back(seq - 1);
    ++result.stored;
  }

  // Records and latest pointers go into the batch in key order: RocksDB inserts a sorted run into
  // its memtables near the previous insert instead of searching each key from the top.
  // The serialised records also go to the recent-record cache after the write.
  const bool cache = options_.record_cache_mb > 0;
  std::vector<std::string> serialised(cache ? items.size() : 0);
  for (size_t k = 0; k < by_id.size(); ++k) {
    if (!stored[k].IsNotFound()) continue;  // stored before (any other status returned above)
    const size_t index = by_id[k];
    if (refused_items[index]) continue;
    const auto& r = items[index].record();
    std::string& bytes = cache ? serialised[index] : value;
    bytes.clear();
    r.SerializeToString(&bytes);
    batch.Put(records_, r.id(), bytes);
  }
  std::vector<const LatestCache::value_type*> pointers;
  pointers.reserve(latest_in_batch.size());
  for (const auto& entry : latest_in_batch) pointers.push_back(&entry);
  std::sort(pointers.begin(), pointers.end(), [](auto* a, auto* b) { return a->first < b->first; });
  // Geo entries are keyed by place, not by entity: they are gathered and go in in key order too
  // (each key is one entity's at one place, so no two changes of the batch share a key).
  std::vector<std::pair<std::string, bool>> geo_changes;  // key, put (else delete)
  for (const auto* entry : pointers) {
    const auto& [entity, next] = *entry;
    batch.Put(latest_, entity, codec::encodeLatest(next));
    // The geo entry follows the entity's cell; one that stays in its cell (a station reporting
    // again) keeps its entry.
    const Before& before = leaf_before[entity];
    const bool moved = before.leaf != next.leaf_cell;
    if (moved) {
      if (before.leaf != 0)
        geo_changes.emplace_back(geoKey(before.domain, before.leaf, entity), false);
      if (next.leaf_cell != 0)
        geo_changes.emplace_back(geoKey(before.domain, next.leaf_cell, entity), true);
    }
    // So do its area index entries, and they come and go with what the indexes hold.
    if (!moved && before.indexed == next.indexed) continue;
    for (size_t i = 0; i < index_prefixes_.size(); ++i) {
      const uint32_t bit = uint32_t{1} << i;
      const bool was = (before.indexed & bit) && before.leaf != 0,
                 is = (next.indexed & bit) && next.leaf_cell != 0;
      if (was && (moved || !is))
        geo_changes.emplace_back(geoKey(index_prefixes_[i], before.leaf, entity), false);
      if (is && (moved || !was))
        geo_changes.emplace_back(geoKey(index_prefixes_[i], next.leaf_cell, entity), true);
    }
  }
  std::sort(geo_changes.begin(), geo_changes.end());
  for (const auto& [geo_key, put] : geo_changes) {
    if (put)
      batch.Put(geo_, geo_key, "");
    else
      batch.Delete(geo_, geo_key);
  }

  std::vector<const firehub::v1::DeadLetter*> letters;
  letters.reserve(dead_letters.size() + refused_letters.size());
  for (const auto& dl : dead_letters) letters.push_back(&dl);
  for (const auto& dl : refused_letters) letters.push_back(&dl);
  if (!letters.empty()) widenOutbox(seq, seq + 2 * letters.size() - 1);
  for (const auto* letter : letters) {
    const auto& dl = *letter;
    const uint64_t dl_seq = seq++;
    key.clear();
    codec::appendBigEndian64(key, dl_seq);
    value.clear();
    dl.SerializeToString(&value);
    batch.Put(dlq_, key, value);
    ++result.dead_lettered;
    key.clear();
    codec::appendBigEndian64(key, seq++);
    batch.Put(outbox_, key,
              codec::encodeOutbox(kDeadLetterTopic, dl.feed_id(),
                                  kDeadLetterRefPrefix + std::to_string(dl_seq)));
    ++outbox_added;
  }
  result.foreign = refused_letters.size();
  size_t resolved = 0;
  for (uint64_t s : resolved_dead_letters) {
    key.clear();
    codec::appendBigEndian64(key, s);
    std::string existing;
    if (db_->Get(rocksdb::ReadOptions(), dlq_, key, &existing).ok()) ++resolved;
    batch.Delete(dlq_, key);
  }

  if (meta_for) {
    std::vector<std::pair<std::string, std::string>> meta;
    meta_for(result, meta);
    for (const auto& [k, v] : meta) batch.Put(meta_, k, v);
  }

  if (batch.Count() == 0) return result;
  // Where the log's deliveries end, known before they are visible. A commit that adds none while
  // every earlier one is delivered moves the mark past its records (a bulk load without topics
  // would otherwise lie between the mark and the next delivery, read over at every look).
  uint64_t mark_after = 0;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    if (log_deliveries_end > 0) {
      log_delivery_top_ = std::max(log_delivery_top_, log_deliveries_end);
    } else if (!stored_items.empty() && log_sent_below_ >= log_delivery_top_ &&
               log_sent_below_ < seq) {
      mark_after = seq;
    }
  }
  if (mark_after > 0) {
    putLogMark(batch, meta_, mark_after);
  }
  // The new entries are counted before the write: once written, the publisher may send them and
  // take them off again before this thread runs on, and its decrement must find them counted.
  outbox_depth_ += outbox_added;
  if (Status written = write(batch, options_.sync, "commit batch"); !written.isOk()) {
    outbox_depth_ -= outbox_added;
    return written;
  }
  next_sequence_ = seq;
  result.last_sequence = seq - 1;
  if (mark_after > 0) {
    std::lock_guard<std::mutex> lock(marks_mu_);
    log_sent_below_ = std::max(log_sent_below_, mark_after);
  }
  rememberLatest(std::move(latest_in_batch));
  dlq_count_ += result.dead_lettered;
  dlq_count_ -= std::min<uint64_t>(dlq_count_.load(), resolved);
  if (cache && !stored_items.empty()) {
    std::vector<Remembered> committed;
    committed.reserve(stored_items.size());
    for (size_t i = 0; i < stored_items.size(); ++i) {
      const size_t index = stored_items[i];
      committed.push_back(
          {items[index].record().id(), std::move(serialised[index]), last_sequences[i]});
    }
    remember(committed);
  }
  return result;
}

void Lake::rememberLatest(LatestCache&& written) {
  if (options_.latest_cache_entries == 0) return;
  auto& kept = *latest_cache_;
  const size_t half = std::max<size_t>(1, options_.latest_cache_entries / 2);
  // The written entries move over whole (key and record id). Each is taken at the iterator
  // walking the table once: taking begin() again after each one scanned the emptied front of the
  // table every time, quadratic in a commit's entities.
  for (auto it = written.begin(); it != written.end();) {
    if (kept.young.size() >= half) {
      kept.old = std::move(kept.young);  // the old generation's entries are freed here
      kept.young = LatestCache();
      kept.young.reserve(half);
    }
    auto node = written.extract(it++);
    kept.young.insert_or_assign(std::move(node.key()), std::move(node.mapped()));
  }
  latest_cache_size_ = kept.young.size() + kept.old.size();
}

void Lake::remember(std::vector<Remembered>& records) {
  const size_t limit = options_.record_cache_mb << 20;
  const bool keep_unsent = publisher_known_.load();
  const uint64_t sent_below = published_below_.load();
  std::lock_guard<std::mutex> lock(cache_mu_);
  for (auto& r : records) {
    const size_t charge = r.id.capacity() + r.bytes.capacity() + sizeof(RecordCache::Held) + 32;
    auto& held = cache_->order.emplace_back(RecordCache::Held{std::move(r), charge});
    // An id is stored once, so it is not in the cache yet.
    cache_->by_id.emplace(std::string_view(held.record.id), &held);
    cache_->bytes += charge;
  }
  while (cache_->bytes > limit && !cache_->order.empty() &&
         (!keep_unsent || cache_->order.front().record.last_sequence < sent_below)) {
    cache_->dropFront();
  }
  if (cache_->bytes <= limit) return;
  // Only unsent records are left: this push stays out; the publisher reads it from RocksDB when
  // it gets there. (Those of its records the publisher already sent may have left from the front.)
  for (size_t mine = std::min(records.size(), cache_->order.size()); mine > 0; --mine)
    cache_->dropBack();
}

void Lake::notePublished(uint64_t sequence) {
  published_below_.store(sequence);
  publisher_known_.store(true);
}

bool Lake::recent(const std::string& id, std::string& out) const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_->by_id.find(std::string_view(id));
  if (it == cache_->by_id.end()) return false;
  out.assign(it->second->record.bytes);
  return true;
}

bool Lake::inRecordCache(const std::string& id) const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  return cache_->by_id.contains(std::string_view(id));
}

Result<bool> Lake::readRecordBytes(const std::string& id, std::string& out) const {
  if (recent(id, out)) return true;
  rocksdb::PinnableSlice value;
  auto s = db_->Get(rocksdb::ReadOptions(), records_, id, &value);
  if (s.IsNotFound()) return false;
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read record"));
  out.assign(value.data(), value.size());
  return true;
}

Result<bool> Lake::readRecord(const std::string& id, firehub::v1::Record& into) const {
  thread_local std::string bytes;
  auto found = readRecordBytes(id, bytes);
  if (!found.isOk() || !found.value()) return found;
  if (!into.ParseFromString(bytes)) return Status::dataLoss("record " + id + " does not parse");
  return true;
}

Result<std::optional<firehub::v1::Record>> Lake::getRecord(const std::string& id) const {
  firehub::v1::Record r;
  auto found = readRecord(id, r);
  FIREHUB_RETURN_IF_ERROR(found.status());
  if (!found.value()) return std::optional<firehub::v1::Record>();
  return std::optional<firehub::v1::Record>(std::move(r));
}

Result<std::optional<firehub::v1::Record>> Lake::latest(const std::string& entity_key) const {
  std::string stored;
  auto s = db_->Get(rocksdb::ReadOptions(), latest_, entity_key, &stored);
  if (s.IsNotFound()) return std::optional<firehub::v1::Record>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read latest"));
  codec::LatestPointer ptr;
  if (!codec::decodeLatest(stored, ptr))
    return Status::dataLoss("latest of " + entity_key + " does not decode");
  return getRecord(ptr.record_id);
}

Result<std::vector<firehub::v1::Record>> Lake::latestInBBox(const std::string& domain,
                                                            const BBox& bbox, size_t limit) const {
  std::vector<firehub::v1::Record> out;
  if (limit == 0) return out;
  FIREHUB_RETURN_IF_ERROR(
      forEachLatestInBBox(domain, bbox, [&](firehub::v1::Record& r, std::string_view) {
        out.push_back(std::move(r));
        return out.size() < limit;
      }));
  return out;
}

Status Lake::forEachLatestInBBox(
    const std::string& domain, const BBox& bbox,
    const std::function<bool(firehub::v1::Record&, std::string_view)>& fn,
    std::string_view after) const {
  return walkArea(domain, bbox, fn, after);
}

const std::string* Lake::indexPrefix(const std::string& index) const {
  for (size_t i = 0; i < options_.area_indexes.size(); ++i) {
    if (options_.area_indexes[i].name == index) return &index_prefixes_[i];
  }
  return nullptr;
}

bool Lake::hasAreaIndex(const std::string& index) const { return indexPrefix(index) != nullptr; }

Status Lake::forEachIndexedInBBox(
    const std::string& index, const BBox& bbox,
    const std::function<bool(firehub::v1::Record&, std::string_view)>& fn,
    std::string_view after) const {
  const std::string* prefix = indexPrefix(index);
  if (!prefix) return Status::notFound("the lake has no area index '" + index + "'");
  return walkArea(*prefix, bbox, fn, after);
}

Status Lake::scanAreaKeys(
    const std::string& key_prefix, const BBox& bbox, std::string_view after,
    const std::function<bool(std::string_view position, uint64_t leaf)>& fn) const {
  S2LatLngRect rect(S2LatLng::FromDegrees(bbox.min_lat, bbox.min_lon),
                    S2LatLng::FromDegrees(bbox.max_lat, bbox.max_lon));
  S2RegionCoverer::Options opts;
  opts.set_max_cells(16);
  S2RegionCoverer coverer(opts);
  std::vector<S2CellId> covering;
  coverer.GetCovering(rect, &covering);
  std::string prefix = key_prefix;
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), geo_));
  const std::string resume = after.empty() ? std::string() : prefix + std::string(after);
  for (const S2CellId& cell : covering) {
    std::string lo = prefix;
    codec::appendBigEndian64(lo, cell.range_min().id());
    uint64_t hi = cell.range_max().id();
    // The covering's cells are in S2 order and do not overlap: the walk is in key order, and
    // resumes at the first key past `after`.
    if (!resume.empty() && resume >= lo) lo = resume;
    for (it->Seek(lo); it->Valid(); it->Next()) {
      auto k = it->key();
      if (!resume.empty() && k.compare(rocksdb::Slice(resume)) <= 0) continue;
      if (k.size() < prefix.size() + 8 || k.compare(rocksdb::Slice(prefix)) < 0 ||
          std::memcmp(k.data(), prefix.data(), prefix.size()) != 0) {
        break;
      }
      uint64_t leaf = codec::readBigEndian64(k.data() + prefix.size());
      if (leaf > hi) break;
      if (!fn(std::string_view(k.data() + prefix.size(), k.size() - prefix.size()), leaf))
        return Status::ok();
    }
    if (!it->status().ok()) return fromRocks(it->status(), "scan geo index");
  }
  return Status::ok();
}

Result<AreaCount> Lake::countArea(const std::string& key_prefix, const BBox& bbox,
                                  std::string_view after, size_t max) const {
  AreaCount count;
  Status scanned =
      scanAreaKeys(key_prefix, bbox, after, [&](std::string_view position, uint64_t leaf) {
        const S2LatLng at = S2CellId(leaf).ToLatLng();
        if (!bbox.contains(at.lng().degrees(), at.lat().degrees())) return true;
        if (count.count == max) {
          count.complete = false;
          return false;
        }
        ++count.count;
        count.last_position.assign(position.data(), position.size());
        return true;
      });
  if (!scanned.isOk()) return scanned;
  return count;
}

Result<AreaCount> Lake::countLatestInBBox(const std::string& domain, const BBox& bbox,
                                          std::string_view after, size_t max) const {
  return countArea(domain, bbox, after, max);
}

Result<AreaCount> Lake::countIndexedInBBox(const std::string& index, const BBox& bbox,
                                           std::string_view after, size_t max) const {
  const std::string* prefix = indexPrefix(index);
  if (!prefix) return Status::notFound("the lake has no area index '" + index + "'");
  return countArea(*prefix, bbox, after, max);
}

Status Lake::walkArea(const std::string& key_prefix, const BBox& bbox,
                      const std::function<bool(firehub::v1::Record&, std::string_view)>& fn,
                      std::string_view after) const {
  // The entities are looked up in chunks: one MultiGet of their latest pointers, one of the
  // records the recent-record cache does not hold (sorted keys share index and block work).
  constexpr size_t kChunk = 256;
  // Geo keys without the domain prefix: 8 bytes of leaf cell, then the entity key.
  std::vector<std::string> positions;
  positions.reserve(kChunk);
  bool stopped = false;
  auto visitChunk = [&]() -> Status {
    const size_t n = positions.size();
    if (n == 0) return Status::ok();
    std::vector<rocksdb::Slice> keys;
    keys.reserve(n);
    for (const auto& p : positions) keys.emplace_back(p.data() + 8, p.size() - 8);
    std::vector<rocksdb::PinnableSlice> pointers(n);
    std::vector<rocksdb::Status> found(n);
    db_->MultiGet(rocksdb::ReadOptions(), latest_, n, keys.data(), pointers.data(), found.data());
    std::vector<std::string> ids(n), bytes(n);
    std::vector<char> have(n, 0);
    std::vector<size_t> missing;
    for (size_t i = 0; i < n; ++i) {
      if (!found[i].ok()) {
        if (!found[i].IsNotFound()) return fromRocks(found[i], "read latest");
        continue;
      }
      codec::LatestPointer ptr;
      if (!codec::decodeLatest(pointers[i].ToStringView(), ptr)) continue;
      ids[i] = std::move(ptr.record_id);
      if (recent(ids[i], bytes[i]))
        have[i] = 1;
      else
        missing.push_back(i);
    }
    if (!missing.empty()) {
      std::vector<rocksdb::Slice> record_keys;
      record_keys.reserve(missing.size());
      for (size_t i : missing) record_keys.emplace_back(ids[i]);
      std::vector<rocksdb::PinnableSlice> records(missing.size());
      std::vector<rocksdb::Status> read(missing.size());
      db_->MultiGet(rocksdb::ReadOptions(), records_, missing.size(), record_keys.data(),
                    records.data(), read.data());
      for (size_t k = 0; k < missing.size(); ++k) {
        if (read[k].IsNotFound()) continue;
        FIREHUB_RETURN_IF_ERROR(fromRocks(read[k], "read record"));
        bytes[missing[k]].assign(records[k].data(), records[k].size());
        have[missing[k]] = 1;
      }
    }
    firehub::v1::Record r;
    for (size_t i = 0; i < n && !stopped; ++i) {
      if (!have[i]) continue;
      if (!r.ParseFromString(bytes[i]))
        return Status::dataLoss("record " + ids[i] + " does not parse");
      if (r.op() == firehub::v1::OP_RETRACT) continue;  // withdrawn
      auto where = anchor(r.geometry());
      if (!where || !bbox.contains(where->lng().degrees(), where->lat().degrees())) continue;
      if (!fn(r, positions[i])) stopped = true;
    }
    positions.clear();
    return Status::ok();
  };

  Status chunked;
  Status scanned = scanAreaKeys(key_prefix, bbox, after, [&](std::string_view position, uint64_t) {
    positions.emplace_back(position);
    if (positions.size() < kChunk) return true;
    chunked = visitChunk();
    return chunked.isOk() && !stopped;
  });
  FIREHUB_RETURN_IF_ERROR(scanned);
  FIREHUB_RETURN_IF_ERROR(chunked);
  return stopped ? Status::ok() : visitChunk();
}

void Lake::widenOutbox(uint64_t low, uint64_t high) {
  std::lock_guard<std::mutex> lock(marks_mu_);
  outbox_floor_ = std::min(outbox_floor_, low);
  outbox_top_ = std::max(outbox_top_, high);
}

Status Lake::readLogDeliveries(uint64_t from, size_t max, std::vector<OutboxEntry>& out) const {
  uint64_t sent_below, top;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    sent_below = log_sent_below_;
    top = log_delivery_top_;
  }
  from = std::max(from, sent_below);
  if (from >= top) return Status::ok();
  std::string start;
  codec::appendBigEndian64(start, from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  // The entry before `from` may have deliveries at or after it.
  it->SeekForPrev(start);
  if (!it->Valid()) it->Seek(start);
  codec::LogEntry entry;
  for (; it->Valid() && out.size() < max; it->Next()) {
    const uint64_t seq = codec::readBigEndian64(it->key().data());
    if (seq >= top) break;
    if (!codec::decodeLog(it->value().ToStringView(), entry)) {
      return Status::dataLoss("log entry " + std::to_string(seq) + " does not decode");
    }
    for (size_t i = 0; i < entry.topic_count && out.size() < max; ++i) {
      if (seq + i < from) continue;
      OutboxEntry e;
      e.sequence = seq + i;
      e.topic.assign(entry.topics[i]);
      e.key.assign(entry.key);
      e.record_id.assign(entry.record_id);
      out.push_back(std::move(e));
    }
  }
  return fromRocks(it->status(), "scan log");
}

Status Lake::readOutbox(uint64_t from, size_t max, std::vector<OutboxEntry>& out) const {
  // Two ordered sources: the outbox family and the log's record deliveries, merged by sequence.
  std::vector<OutboxEntry> family, records;
  bool family_may_hold;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    family_may_hold = outbox_floor_ <= outbox_top_ && from <= outbox_top_;
  }
  if (family_may_hold) {
    std::string start;
    codec::appendBigEndian64(start, from);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
    for (it->Seek(start); it->Valid() && family.size() < max; it->Next()) {
      OutboxEntry e;
      e.sequence = codec::readBigEndian64(it->key().data());
      if (!codec::decodeOutbox(it->value().ToStringView(), e.topic, e.key, e.record_id)) {
        return Status::dataLoss("outbox entry " + std::to_string(e.sequence) + " does not decode");
      }
      family.push_back(std::move(e));
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan outbox"));
  }
  FIREHUB_RETURN_IF_ERROR(readLogDeliveries(from, max, records));
  const size_t first = out.size();
  size_t f = 0, r = 0;
  while (out.size() - first < max && (f < family.size() || r < records.size())) {
    if (r == records.size() || (f < family.size() && family[f].sequence < records[r].sequence)) {
      out.push_back(std::move(family[f++]));
    } else {
      // A delivery moving from the log to the family is read from both while it moves: once.
      if (f < family.size() && family[f].sequence == records[r].sequence) ++f;
      out.push_back(std::move(records[r++]));
    }
  }
  // The cache holds records in commit order, so by ascending last sequence: the record of an
  // entry is the first held one whose last sequence is not below the entry's. One search, then
  // a walk along both. An entry of another kind (a layer, a dead letter, a record delivered again
  // for a subscription) finds a record of another id and reads its own way.
  std::lock_guard<std::mutex> lock(cache_mu_);
  const auto& order = cache_->order;
  if (out.size() == first || order.empty()) return Status::ok();
  auto at = std::lower_bound(
      order.begin(), order.end(), out[first].sequence,
      [](const RecordCache::Held& h, uint64_t s) { return h.record.last_sequence < s; });
  for (size_t i = first; i < out.size(); ++i) {
    auto& e = out[i];
    while (at != order.end() && at->record.last_sequence < e.sequence) ++at;
    if (at == order.end()) break;
    if (at->record.id != e.record_id) continue;
    e.record_bytes.assign(at->record.bytes);
    e.cached = true;
  }
  return Status::ok();
}

std::optional<uint64_t> Lake::firstOutboxSequence() const {
  std::optional<uint64_t> first;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
  it->SeekToFirst();
  if (it->Valid()) first = codec::readBigEndian64(it->key().data());
  std::vector<OutboxEntry> record;
  if (readLogDeliveries(0, 1, record).isOk() && !record.empty()) {
    first = std::min(first.value_or(UINT64_MAX), record.front().sequence);
  }
  return first;
}

// Point and range tombstones for the given outbox family keys (sorted, unique): a run of
// consecutive sequences is one range tombstone instead of a tombstone per entry.
void Lake::deleteFamilyEntries(rocksdb::WriteBatch& batch, const std::vector<uint64_t>& sorted) {
  std::string key, end;
  constexpr size_t kRangeFrom = 8;  // shorter runs: one tombstone per entry
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i + 1;
    while (j < sorted.size() && sorted[j] == sorted[j - 1] + 1) ++j;
    if (j - i >= kRangeFrom) {
      key.clear();
      codec::appendBigEndian64(key, sorted[i]);
      end.clear();
      codec::appendBigEndian64(end, sorted[j - 1] + 1);
      batch.DeleteRange(outbox_, key, end);
      i = j;
    }
    for (; i < j; ++i) {
      key.clear();
      codec::appendBigEndian64(key, sorted[i]);
      batch.Delete(outbox_, key);
    }
  }
}

Status Lake::deleteOutbox(const std::vector<uint64_t>& sequences) {
  if (sequences.empty()) return Status::ok();
  std::vector<uint64_t> sorted(sequences);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  uint64_t sent_below;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    sent_below = log_sent_below_;
  }
  rocksdb::WriteBatch batch;
  std::vector<uint64_t> family;    // the given sequences that are outbox family keys
  std::vector<uint64_t> log_hits;  // and those that are record deliveries of the log
  family.reserve(sorted.size());
  // Record deliveries of the log among them: the mark moves past the highest, and the log's
  // deliveries below it that were not delivered move to the family under their own sequence.
  uint64_t moved_low = UINT64_MAX, moved_high = 0, new_mark = sent_below;
  if (sorted.back() >= sent_below) {
    std::vector<OutboxEntry> pending;
    for (uint64_t from = sent_below; from <= sorted.back();) {
      pending.clear();
      FIREHUB_RETURN_IF_ERROR(readLogDeliveries(from, 10000, pending));
      if (pending.empty()) break;
      for (const auto& e : pending) {
        if (e.sequence > sorted.back()) break;
        new_mark = e.sequence + 1;
        if (std::binary_search(sorted.begin(), sorted.end(), e.sequence)) {
          log_hits.push_back(e.sequence);
          continue;
        }
        std::string key;
        codec::appendBigEndian64(key, e.sequence);
        batch.Put(outbox_, key, codec::encodeOutbox(e.topic, e.key, e.record_id));
        moved_low = std::min(moved_low, e.sequence);
        moved_high = std::max(moved_high, e.sequence);
      }
      from = pending.back().sequence + 1;
    }
  }
  std::set_difference(sorted.begin(), sorted.end(), log_hits.begin(), log_hits.end(),
                      std::back_inserter(family));
  deleteFamilyEntries(batch, family);
  if (new_mark != sent_below) {
    putLogMark(batch, meta_, new_mark);
  }
  if (moved_low <= moved_high) widenOutbox(moved_low, moved_high);  // before they are visible
  // Not synced: if a crash loses these deletes the entries are delivered again (at least once).
  FIREHUB_RETURN_IF_ERROR(write(batch, false, "delete outbox"));
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    log_sent_below_ = std::max(log_sent_below_, new_mark);
  }
  outbox_depth_ -= std::min<uint64_t>(outbox_depth_.load(), sorted.size());
  return Status::ok();
}

Status Lake::deleteOutboxBelow(uint64_t from, uint64_t below, uint64_t entries) {
  if (below <= from) return Status::ok();
  rocksdb::WriteBatch batch;
  bool family_range;
  uint64_t sent_below;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    family_range = from <= outbox_top_ && below > outbox_floor_;
    sent_below = log_sent_below_;
  }
  if (family_range) {  // no tombstone where the family holds nothing
    std::string key, end;
    codec::appendBigEndian64(key, from);
    codec::appendBigEndian64(end, below);
    batch.DeleteRange(outbox_, key, end);
  }
  if (below > sent_below) {
    putLogMark(batch, meta_, below);
  }
  if (batch.Count() > 0) {
    // Not synced, as deleteOutbox.
    FIREHUB_RETURN_IF_ERROR(write(batch, false, "delete outbox"));
  }
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    log_sent_below_ = std::max(log_sent_below_, below);
    // Everything of the family below `below` is gone when the range started at or below its floor.
    if (family_range && from <= outbox_floor_) outbox_floor_ = std::max(outbox_floor_, below);
  }
  outbox_depth_ -= std::min<uint64_t>(outbox_depth_.load(), entries);
  return Status::ok();
}

Status Lake::listDeadLetters(uint64_t from, size_t max, const std::string& feed,
                             std::vector<DeadLetterEntry>& out) const {
  std::string start;
  codec::appendBigEndian64(start, from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dlq_));
  for (it->Seek(start); it->Valid() && out.size() < max; it->Next()) {
    DeadLetterEntry e;
    e.sequence = codec::readBigEndian64(it->key().data());
    if (!e.letter.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::dataLoss("dead letter " + std::to_string(e.sequence) + " does not parse");
    }
    if (!feed.empty() && e.letter.feed_id() != feed) continue;
    out.push_back(std::move(e));
  }
  return fromRocks(it->status(), "scan dead letters");
}

Result<std::optional<firehub::v1::DeadLetter>> Lake::getDeadLetter(uint64_t sequence) const {
  std::string key;
  codec::appendBigEndian64(key, sequence);
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), dlq_, key, &value);
  if (s.IsNotFound()) return std::optional<firehub::v1::DeadLetter>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read dead letter"));
  firehub::v1::DeadLetter dl;
  if (!dl.ParseFromString(value)) {
    return Status::dataLoss("dead letter " + std::to_string(sequence) + " does not parse");
  }
  return std::optional<firehub::v1::DeadLetter>(std::move(dl));
}

Result<size_t> Lake::deleteDeadLetters(const std::vector<uint64_t>& sequences) {
  std::lock_guard<std::mutex> lock(commit_mu_);
  rocksdb::WriteBatch batch;
  size_t existed = 0;
  std::string key, value;
  for (uint64_t s : sequences) {
    key.clear();
    codec::appendBigEndian64(key, s);
    if (db_->Get(rocksdb::ReadOptions(), dlq_, key, &value).ok()) ++existed;
    batch.Delete(dlq_, key);
  }
  FIREHUB_RETURN_IF_ERROR(write(batch, options_.sync, "delete dead letters"));
  dlq_count_ -= std::min<uint64_t>(dlq_count_.load(), existed);
  return existed;
}

Status Lake::readLog(uint64_t from, size_t max,
                     std::vector<std::pair<uint64_t, std::string>>& out) const {
  std::string start;
  codec::appendBigEndian64(start, from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  codec::LogEntry entry;
  for (it->Seek(start); it->Valid() && out.size() < max; it->Next()) {
    const uint64_t seq = codec::readBigEndian64(it->key().data());
    if (!codec::decodeLog(it->value().ToStringView(), entry)) {
      return Status::dataLoss("log entry " + std::to_string(seq) + " does not decode");
    }
    out.emplace_back(seq, std::string(entry.record_id));
  }
  return fromRocks(it->status(), "scan log");
}

uint64_t Lake::lastSequence() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  return next_sequence_ - 1;
}

Status Lake::scanLatest(const std::string& domain,
                        const std::function<void(const firehub::v1::Record&)>& fn) const {
  std::string prefix = domain.empty() ? std::string() : domain + "/";
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), latest_));
  codec::LatestPointer ptr;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!codec::decodeLatest(it->value().ToStringView(), ptr)) {
      return Status::dataLoss("latest of " + it->key().ToString() + " does not decode");
    }
    auto rec = getRecord(ptr.record_id);
    if (!rec.isOk()) return rec.status();
    if (!rec.value() || rec.value()->op() == firehub::v1::OP_RETRACT) continue;
    fn(*rec.value());
  }
  return fromRocks(it->status(), "scan latest");
}

Status Lake::commitDerived(const DerivedBatch& derived) {
  std::lock_guard<std::mutex> lock(commit_mu_);  // outbox sequences come from the one counter
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : derived.layer_puts) batch.Put(layers_, k, v);
  for (const auto& k : derived.layer_deletes) batch.Delete(layers_, k);
  uint64_t seq = next_sequence_;
  std::string key;
  if (!derived.deliveries.empty()) widenOutbox(seq, seq + derived.deliveries.size() - 1);
  for (const auto& d : derived.deliveries) {
    key.clear();
    codec::appendBigEndian64(key, seq++);
    batch.Put(
        outbox_, key,
        codec::encodeOutbox(d.topic, d.key,
                            d.record_id.empty() ? kLayerRefPrefix + d.layer_key : d.record_id));
  }
  for (const auto& [k, v] : derived.meta) batch.Put(meta_, k, v);
  if (batch.Count() == 0) return Status::ok();
  // Not fsynced: the batch is in the WAL once written (a process crash keeps it), and an
  // operating-system crash that loses it loses the checkpoint in it too, so fusion recomputes
  // the same from the log (which ingest syncs). A later synced write syncs it as well.
  outbox_depth_ += derived.deliveries.size();  // before the write, as in commit()
  if (Status written = write(batch, false, "commit derived batch"); !written.isOk()) {
    outbox_depth_ -= derived.deliveries.size();
    return written;
  }
  next_sequence_ = seq;
  return Status::ok();
}

Result<std::optional<std::string>> Lake::getLayer(const std::string& key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), layers_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read layer"));
  return std::optional<std::string>(std::move(value));
}

Status Lake::scanLayers(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), layers_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    fn(it->key().ToString(), it->value().ToString());
  }
  return fromRocks(it->status(), "scan layers");
}

Status Lake::putMeta(const std::string& key, const std::string& value) {
  rocksdb::WriteBatch batch;
  batch.Put(meta_, key, value);
  return write(batch, options_.sync, "write meta");
}

Status Lake::putMetaBatch(const std::vector<std::pair<std::string, std::string>>& entries) {
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : entries) batch.Put(meta_, k, v);
  return write(batch, options_.sync, "write meta batch");
}

Status Lake::deleteMeta(const std::string& key) {
  rocksdb::WriteBatch batch;
  batch.Delete(meta_, key);
  return write(batch, options_.sync, "delete meta");
}

Result<std::optional<std::string>> Lake::getMeta(const std::string& key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), meta_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read meta"));
  return std::optional<std::string>(std::move(value));
}

Status Lake::scanMeta(const std::string& prefix,
                      const std::function<void(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    fn(it->key().ToString(), it->value().ToString());
  }
  return fromRocks(it->status(), "scan meta");
}

}  // namespace firehub::lake
