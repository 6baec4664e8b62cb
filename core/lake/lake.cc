// Opening the lake: column families, RocksDB options, the state read back at start; the one
// write path every batch goes through (serialised, resumed after a disk error).
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
#include <rocksdb/utilities/checkpoint.h>
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
#include "lake/internal.h"

namespace firehub::lake {
namespace {

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

}  // namespace

Result<std::unique_ptr<Lake>> Lake::open(const LakeOptions& options) {
  if (options.path.empty()) return Status::invalidArgument("lake path is empty");
  std::unique_ptr<Lake> lake(new Lake(options));
  FIREHUB_RETURN_IF_ERROR(lake->init());
  return lake;
}

// Long: RocksDB's options and column families, then the state read back at start, in order.
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
      {kLayers, point_lookup},
      {kHistory, ordered}};
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
  history_ = handles_[9];

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
  return startHistoryWriter();
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

Lake::Lake(LakeOptions options)
    : options_(std::move(options)),
      commit_batch_(std::make_unique<rocksdb::WriteBatch>()),
      latest_cache_(std::make_unique<LatestGenerations>()),
      cache_(std::make_unique<RecordCache>()) {}

Status Lake::checkpoint(const std::string& dir) const {
  rocksdb::Checkpoint* made = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &made);
  if (!s.ok()) return fromRocks(s, "checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> cp(made);
  return fromRocks(cp->CreateCheckpoint(dir), ("checkpoint into " + dir).c_str());
}

Status Lake::clearOutbox() {
  auto first = firstOutboxSequence();
  if (!first) return Status::ok();
  return deleteOutboxBelow(*first, lastSequence() + 1, outboxDepth());
}

Lake::~Lake() {
  if (!db_) return;
  stopHistoryWriter();  // what it was handed is written first
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
}

Status Lake::write(rocksdb::WriteBatch& batch, bool sync, const char* what, bool logged) {
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
  wo.sync = sync && logged;
  wo.disableWAL = !logged;
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

}  // namespace firehub::lake
