// The lake: firehub's durable store and the source of truth (RocksDB on disk).
//
// Column families by concern:
//   records  record id                      -> firehub.v1.Record (binary protobuf)
//   latest   domain/entity_type/entity_id   -> latest observation pointer
//   geo      domain \0 S2 leaf cell (BE) entity -> empty (bbox = covering + range scans)
//            \x01 index \0 S2 leaf cell (BE) entity -> empty: an area index (LakeOptions)
//   log      sequence (BE)                  -> topics, key, record id: the ordered stream
//                                              consumers tail; a record's Kafka deliveries are
//                                              its topics, at its sequence and the next ones
//   outbox   sequence (BE)                  -> topic, key, record id: other pending Kafka
//                                              deliveries (dead letters, derived data, records
//                                              for subscriptions) and record deliveries that
//                                              fell behind (see deleteOutbox())
//   dlq      sequence (BE)                  -> firehub.v1.DeadLetter
//   meta     text key                       -> feeds, checkpoints, settings
//   layers   <layer>/<key>                  -> firehub.v1.LayerEntry: derived data (risk cells,
//                                              warning drafts) written by fusion
//            at/<layer>/ cell (BE) ~micros (BE) -> LayerEntry, or empty (the cell left the
//                                              layer): the layer's versions, newest first
//   history  'e' entity (domain, id, type; each u16-length-prefixed) observed (BE) record id
//                                           -> log sequence (BE): an entity's versions in time
//            't' domain (u16-prefixed) observed (BE) record id
//                                           -> log sequence (BE), entity key: a domain's records
//                                              in time (retention walks it from the oldest)
//            "indexed_below"                -> sequence (BE): every log entry before it is indexed
//
// One commit() = one WriteBatch with the WAL on (and fsync by default), so a record, its latest
// pointer, geo entry and log entry (with its deliveries) become durable together or not at all.
// The history index is not in that batch: its own thread writes it after the commit, without
// the WAL, and rebuilds from the log what a crash took (history_writer.cc).
// Record deliveries below a persisted mark in meta are done; the "outbox" of this interface is
// the deliveries of the log from that mark on together with the outbox column family.
// @remark Thread-safe. commit() calls are serialised inside (dedupe needs read-then-write).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/arena.h>

#include "firehub/status.h"
#include "firehub/v1/dead_letter.pb.h"
#include "firehub/v1/record.pb.h"

namespace rocksdb {
class Cache;
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace firehub::lake {

// An area index: the entities of `domain` whose latest record `holds`, by place, beside the geo
// index of the whole domain. An area read of a few among many (the key units among a province's
// buildings) walks only them. The lake keeps each entity's entry with its latest pointer, in the
// same batch.
struct AreaIndex {
  std::string name;  // letters, digits, '_' and '-'
  std::string domain;
  // Whether the record belongs in the index. Not called for withdrawals (never held). A change of
  // what it holds needs a new `version` (the lake then rebuilds the index when it opens).
  std::function<bool(const firehub::v1::Record&)> holds;
  int version = 1;
};

// What one kept latest pointer takes in memory, about (entity key, pointer, hash slot).
inline constexpr size_t kLatestCacheEntryBytes = 150;

struct LakeOptions {
  // Directory of the RocksDB database. Created if missing. Default: none (required).
  std::string path;
  // fsync the WAL on every commit, so an acknowledged record survives power loss, not only a
  // process crash. Default: true.
  bool sync = true;
  // Block cache for reads, MiB. Default: 64.
  size_t block_cache_mb = 64;
  // Memtables of all column families together, MiB: past it RocksDB flushes the largest, so a
  // backlog (a long broker outage) grows on disk, not in memory. Default: 128.
  size_t write_buffer_mb = 128;
  // Recently committed records kept in memory (as the bytes RocksDB stores), MiB, so the
  // publisher, fusion and subscriptions read what was just stored without a RocksDB read. 0
  // turns it off. Default: 64.
  size_t record_cache_mb = 64;
  // Latest pointers of recently written entities kept in memory (kLatestCacheEntryBytes each),
  // so a record of a known entity is committed without reading its pointer back. 0 turns it off.
  // Default: 65536.
  size_t latest_cache_entries = 65536;
  // Area indexes (at most 32). Opened with other indexes than last time (names, domains,
  // versions), the lake rebuilds them from the latest records of their domains before it returns
  // (once; a few seconds per million entities). Default: none.
  std::vector<AreaIndex> area_indexes{};
  // Create the database when the path holds none; false: a missing database is an error.
  // Default: true.
  bool create_if_missing = true;
  // History index entries waiting in memory for their writer at most (two per record); past it
  // the writer reads those commits back from the log instead. Default: 200000.
  size_t history_queue_entries = 200000;
};

// One record to store: the fully normalised envelope plus where to publish it.
struct StoreItem {
  // A record of its own, on the heap.
  StoreItem() : held(std::make_shared<firehub::v1::Record>()) {}
  // A record on `arena`, which lives as long as any record on it: the records of one push share
  // one, so they are allocated together and freed together instead of field by field.
  explicit StoreItem(const std::shared_ptr<google::protobuf::Arena>& arena)
      : held(arena, google::protobuf::Arena::CreateMessage<firehub::v1::Record>(arena.get())) {}

  firehub::v1::Record& record() { return *held; }
  const firehub::v1::Record& record() const { return *held; }
  // A copy of the item shares its record.
  std::shared_ptr<firehub::v1::Record> held;
  std::vector<std::string> topics;  // Kafka topics: one delivery each (at most 16)
  // What a caller that has already worked them out passes on (the pipeline does), so the commit
  // does not repeat the work: the entity key (entityKey() of the record) and the S2 leaf cell of
  // the record's representativePoint(). Empty / 0: the commit works them out.
  std::string entity_key;
  uint64_t leaf_cell = 0;
};

struct CommitResult {
  size_t stored = 0;
  size_t duplicates = 0;
  size_t dead_lettered = 0;  // the dead letters given, and one per foreign record
  size_t foreign = 0;        // records for another agency's entity: dead-lettered, not stored
  uint64_t last_sequence = 0;
};

struct OutboxEntry {
  uint64_t sequence = 0;
  std::string topic;
  std::string key;
  std::string record_id;
  // The record as stored, when readOutbox() found it in the recent-record cache.
  bool cached = false;
  std::string record_bytes;
};

struct BBox {
  double min_lon = -180, min_lat = -90, max_lon = 180, max_lat = 90;
  bool contains(double lon, double lat) const {
    return lon >= min_lon && lon <= max_lon && lat >= min_lat && lat <= max_lat;
  }
  bool intersects(const BBox& o) const {
    return max_lon >= o.min_lon && min_lon <= o.max_lon && max_lat >= o.min_lat &&
           min_lat <= o.max_lat;
  }
};

// A count of an area's entities: `complete` false when it stopped at its maximum;
// `last_position` is where the last one counted lies (a walk given it resumes past it).
struct AreaCount {
  size_t count = 0;
  bool complete = true;
  std::string last_position;
};

// Derived data written by fusion in one atomic batch: layer entries, their Kafka deliveries and
// the meta (checkpoint, state) they were computed up to.
struct DerivedBatch {
  std::vector<std::pair<std::string, std::string>> layer_puts;  // layers key -> LayerEntry bytes
  std::vector<std::string> layer_deletes;
  struct Delivery {
    std::string topic;
    std::string key;
    std::string layer_key;  // published as the entry's current value; a tombstone if deleted
    std::string record_id;  // or, when set, this record (e.g. for a subscription's topic)
  };
  std::vector<Delivery> deliveries;
  std::vector<std::pair<std::string, std::string>> meta;
  // Versions of layer cells kept as the layer's history (layerAt() reads them back): the entry
  // the cell holds from `at_micros` on, empty when it left the layer then.
  struct Version {
    std::string layer;
    uint64_t cell = 0;  // S2 cell id
    int64_t at_micros = 0;
    std::string entry;
  };
  std::vector<Version> versions;
};

// A record found by time (history and exports): where the walk stands after it (a walk given
// it as `after` resumes past it), when it was observed and its log sequence.
struct TimedRecord {
  std::string_view position;
  int64_t observed_micros = 0;
  uint64_t sequence = 0;
  std::string_view record_id;
};

// What retention removes (expire()): per domain, records observed longer ago than the window,
// except each entity's latest record and what a pending delivery or a log reader still needs;
// dead letters and layer versions older than theirs. 0: keep everything.
struct Retention {
  std::vector<std::pair<std::string, int64_t>> domains;  // domain, window in microseconds
  int64_t dead_letters_micros = 0;
  int64_t layer_versions_micros = 0;  // a cell's version in force at the cutoff stays
};
struct RetentionResult {
  uint64_t records = 0;         // removed
  uint64_t kept_latest = 0;     // old, kept: the entity's latest state
  uint64_t kept_needed = 0;     // old, kept: a delivery or a log reader needs it
  uint64_t dead_letters = 0;    // removed
  uint64_t layer_versions = 0;  // removed
};

// Outbox entries of derived data point at a layers key, marked by this prefix in record_id.
inline constexpr const char* kLayerRefPrefix = "layer:";
// Outbox entries of dead letters point at the dlq sequence (decimal) after this prefix.
inline constexpr const char* kDeadLetterRefPrefix = "dlq:";
// The topic every dead letter is published on.
inline constexpr const char* kDeadLetterTopic = "firehub.v1.dlq";

// Cluster mode (meta entries a node's replica writes with the records it applies):
//  - "replica/offset/<topic>/<partition>" -> the next offset of the partition to apply;
//  - "pos/<topic>/<partition>/<offset, 20 digits>" -> the id of the record at that offset (its
//    own records too, as they come back), so a place in the domain topics that every node
//    agrees on (Kafka offsets) names the same records in every node's lake.
inline constexpr const char* kReplicaOffsetPrefix = "replica/offset/";
inline constexpr const char* kPositionPrefix = "pos/";
std::string positionKey(const std::string& topic, int partition, int64_t offset);
// "subpos/<subscription id>" -> {"epoch": <subscriptions duty epoch>, "seq": <writes so far>,
// "offsets": {"<topic>/<p>": next offset, ...}}: a subscription's place in the domain topics,
// shared by every node.
inline constexpr const char* kSubscriptionCursorPrefix = "subpos/";

struct DeadLetterEntry {
  uint64_t sequence = 0;
  firehub::v1::DeadLetter letter;
};

// A backup of the lake (backup.cc).
struct BackupInfo {
  uint32_t id = 0;
  int64_t timestamp = 0;  // unix seconds
  uint64_t bytes = 0;     // of its files (shared ones included)
  uint32_t files = 0;
};
// The backups in `dir`, oldest first (offline: no lake needs to be open).
Result<std::vector<BackupInfo>> listBackups(const std::string& dir);
// Checks every file of backup `id` (0: the newest) in `dir` against the size and checksum its
// manifest records. DataLoss naming the first file that does not match.
Status verifyBackup(const std::string& dir, uint32_t id = 0);
// Restores backup `id` (0: the newest) of `dir` as the lake at `lake_dir` (which must not hold a
// lake: a restore never overwrites one).
Status restoreBackup(const std::string& dir, const std::string& lake_dir, uint32_t id = 0);

class Lake {
 public:
  static Result<std::unique_ptr<Lake>> open(const LakeOptions& options);
  ~Lake();
  Lake(const Lake&) = delete;
  Lake& operator=(const Lake&) = delete;

  // Stores records (skipping ids already stored: duplicates) and dead letters in one atomic,
  // durable batch. Items must carry id, domain, entity_type, entity_id and observed_at.
  // `meta_for`, when given, is called with the result (after dedupe, before the write) and may
  // add meta entries (e.g. a feed's counters) that are written in the same batch.
  // Every dead letter is also queued for firehub.v1.dlq (key = feed id). `resolved_dead_letters`
  // are removed in the same batch (a replay that now succeeded).
  using MetaFor =
      std::function<void(const CommitResult&, std::vector<std::pair<std::string, std::string>>&)>;
  // The records of a successful commit enter the recent-record cache.
  // `sync` false writes the WAL without waiting for the disk (a replica's commit: an operating-
  // system crash loses its tail together with the offsets in it, which are read again).
  Result<CommitResult> commit(const std::vector<StoreItem>& items,
                              const std::vector<firehub::v1::DeadLetter>& dead_letters,
                              const MetaFor& meta_for = nullptr,
                              const std::vector<uint64_t>& resolved_dead_letters = {},
                              bool sync = true);

  Result<std::optional<firehub::v1::Record>> getRecord(const std::string& id) const;
  // The same into a message the caller reuses (its strings keep their buffers). False when absent.
  Result<bool> readRecord(const std::string& id, firehub::v1::Record& into) const;
  // The record as stored (serialised), from the recent-record cache or RocksDB. False when absent.
  Result<bool> readRecordBytes(const std::string& id, std::string& out) const;
  // Several records as stored, in the order of `ids` (nullopt: absent): those not in the
  // recent-record cache read from RocksDB together.
  Status readRecordsBytes(const std::vector<std::string>& ids,
                          std::vector<std::optional<std::string>>& out) const;
  // Whether the record is in the recent-record cache (diagnostics and tests).
  bool inRecordCache(const std::string& id) const;
  // The newest record of an entity (key from entityKey()/entityKeyOf()).
  Result<std::optional<firehub::v1::Record>> latest(const std::string& entity_key) const;
  // The id of the entity's latest record (nullopt: none), without reading the record.
  Result<std::optional<std::string>> latestId(const std::string& entity_key) const;

  // Latest record of every entity of `domain` whose position lies in `bbox`, at most `limit`.
  // Entities whose latest record is a retraction are left out.
  Result<std::vector<firehub::v1::Record>> latestInBBox(const std::string& domain, const BBox& bbox,
                                                        size_t limit) const;
  // The same records one at a time, in the geo index's order, until `fn` returns false (one
  // record in memory at a time, however many the area holds). `fn` also gets the record's
  // position in that order; a walk given one (`after`) resumes past it.
  Status forEachLatestInBBox(
      const std::string& domain, const BBox& bbox,
      const std::function<bool(firehub::v1::Record&, std::string_view position)>& fn,
      std::string_view after = {}) const;

  // The latest records of the entities area index `index` holds whose position lies in `bbox`, as
  // forEachLatestInBBox() walks a domain. NotFound when the lake has no such index.
  Status forEachIndexedInBBox(
      const std::string& index, const BBox& bbox,
      const std::function<bool(firehub::v1::Record&, std::string_view position)>& fn,
      std::string_view after = {}) const;
  bool hasAreaIndex(const std::string& index) const;
  // How many entities of such a walk lie in `bbox` past position `after`, from the geo keys alone
  // (the S2 leaf cell of each entity's place; no record is read), counting at most `max`.
  Result<AreaCount> countLatestInBBox(const std::string& domain, const BBox& bbox,
                                      std::string_view after, size_t max) const;
  Result<AreaCount> countIndexedInBBox(const std::string& index, const BBox& bbox,
                                       std::string_view after, size_t max) const;

  // Outbox entries with sequence >= from, in order, at most max; with the bytes of each entry's
  // record when the recent-record cache holds it (found by sequence, one lock for all).
  Status readOutbox(uint64_t from, size_t max, std::vector<OutboxEntry>& out) const;
  // Removes delivered entries. Only the publisher's delivery-report success path calls this.
  // Record deliveries of the log cannot be removed one by one: the mark moves past the highest
  // of them and the log's deliveries below it that are not in `sequences` move to the outbox
  // column family (the publisher's way when many wait behind one that is not delivered).
  Status deleteOutbox(const std::vector<uint64_t>& sequences);
  // Removes every entry in [from, below) with one range tombstone: the publisher's way once all
  // of them are delivered; `entries` is how many there are (the depth goes down by as many).
  Status deleteOutboxBelow(uint64_t from, uint64_t below, uint64_t entries);
  uint64_t outboxDepth() const { return outbox_depth_.load(); }
  // The publisher's progress: every outbox entry below `sequence` has been handed to Kafka (it
  // may move back when a delivery fails). Once told, the recent-record cache keeps what is still
  // to be sent: past its size it drops records already sent, oldest first, and when only unsent
  // records remain it leaves a new push out rather than dropping the records the publisher reads
  // next. Never told (no publisher), the cache drops the oldest.
  void notePublished(uint64_t sequence);
  // The highest sequence handed out so far (log, outbox and dead letters share the counter):
  // everything committed up to it is visible to iterators created after this call.
  uint64_t lastSequence();
  // Sequence of the first outbox entry, or nullopt when the outbox is empty.
  std::optional<uint64_t> firstOutboxSequence() const;

  // Dead letters with sequence >= from (newest last), optionally of one feed.
  Status listDeadLetters(uint64_t from, size_t max, const std::string& feed,
                         std::vector<DeadLetterEntry>& out) const;
  uint64_t deadLetterCount() const { return dlq_count_.load(); }
  Result<std::optional<firehub::v1::DeadLetter>> getDeadLetter(uint64_t sequence) const;
  // Removes dead letters (an operator discarding them). Returns how many existed.
  Result<size_t> deleteDeadLetters(const std::vector<uint64_t>& sequences);

  // Log entries (sequence -> record id) with sequence >= from.
  Status readLog(uint64_t from, size_t max,
                 std::vector<std::pair<uint64_t, std::string>>& out) const;

  // Every entity of `domain` (all when empty) whose latest record is not a retraction.
  Status scanLatest(const std::string& domain,
                    const std::function<void(const firehub::v1::Record&)>& fn) const;

  // Writes derived data; its deliveries enter the outbox in the same batch. Written to the WAL
  // without waiting for the disk: derived data carries its checkpoint and is recomputed from the
  // log when an operating-system crash loses the tail.
  Status commitDerived(const DerivedBatch& batch);
  Result<std::optional<std::string>> getLayer(const std::string& key) const;
  Status scanLayers(const std::string& prefix,
                    const std::function<void(const std::string&, const std::string&)>& fn) const;

  Status putMeta(const std::string& key, const std::string& value);
  // Several meta entries in one atomic batch (and `deletes` removed in it).
  Status putMetaBatch(const std::vector<std::pair<std::string, std::string>>& entries,
                      const std::vector<std::string>& deletes = {});
  Status deleteMeta(const std::string& key);
  // Told of every meta entry putMeta(), putMetaBatch() and deleteMeta() wrote (value null: the
  // entry was deleted), after the write: cluster mode shares the configuration this way. Set it
  // before other threads write meta.
  using MetaListener = std::function<void(const std::string& key, const std::string* value)>;
  void setMetaListener(MetaListener listener) { meta_listener_ = std::move(listener); }
  // Writes (value null: deletes) a meta entry another node wrote, without telling the listener.
  Status applyReplicatedMeta(const std::string& key, const std::string* value);
  Result<std::optional<std::string>> getMeta(const std::string& key) const;
  Status scanMeta(const std::string& prefix,
                  const std::function<void(const std::string&, const std::string&)>& fn) const;
  // The meta entries under `prefix` from key `from` on, in key order, while fn returns true.
  Status scanMetaFrom(const std::string& from, const std::string& prefix,
                      const std::function<bool(const std::string&, const std::string&)>& fn) const;

  const std::string& path() const { return options_.path; }
  // A consistent copy of the lake in `dir` (new; on the same file system its table files are
  // hard links): a RocksDB checkpoint, what a cluster node rebuilds from.
  Status checkpoint(const std::string& dir) const;
  // A backup in `dir` with RocksDB's BackupEngine, of the open lake while it takes writes:
  // memtables flushed first, so every record committed before the call is in it; incremental
  // (table files an earlier backup in `dir` holds are not copied again). `progress` is called
  // with the bytes copied so far (in steps of about 1 MiB); `rate_limit_bytes` a second at most
  // (0: as fast as the disk goes). Returns the new backup.
  Result<BackupInfo> backup(const std::string& dir,
                            const std::function<void(uint64_t bytes)>& progress = {},
                            uint64_t rate_limit_bytes = 0) const;
  // --- History (history.cc) ---
  // The versions of an entity observed in [from, to) (µs), oldest first (of one entity type, or
  // of each type in turn when `entity_type` is empty), past position `after`, the record read,
  // until `fn` returns false.
  using TimedFn = std::function<bool(const TimedRecord&, firehub::v1::Record&)>;
  Status entityHistory(const std::string& domain, const std::string& entity_type,
                       const std::string& entity_id, int64_t from, int64_t to,
                       std::string_view after, const TimedFn& fn) const;
  // The records of `domain` observed in [from, to), oldest first, of one feed when `feed` is
  // given (record ids start with their feed's id), as entityHistory() walks.
  Status recordsInTime(const std::string& domain, const std::string& feed, int64_t from, int64_t to,
                       std::string_view after, const TimedFn& fn) const;
  // Each cell of `layer` that meets `bbox` as it was at `at_micros` (its newest version at or
  // before it; cells that had left the layer then are not given), in cell order, until `fn` returns
  // false. `level`: the layer's S2 cell level.
  Status layerAt(const std::string& layer, int level, const BBox& bbox, int64_t at_micros,
                 const std::function<bool(uint64_t cell, const std::string& entry)>& fn) const;
  // The version of one cell at `at_micros`; nullopt when it was not in the layer then.
  Result<std::optional<std::string>> layerCellAt(const std::string& layer, uint64_t cell,
                                                 int64_t at_micros) const;

  // --- Retention (retention.cc) ---
  // A reader of the log (fusion, a parent link, subscriptions) tells the lake the first log
  // sequence it still needs; retention keeps every record at or after the lowest of them. A
  // null `first_needed` ends the reader's hold (before it goes away).
  void holdLog(const std::string& reader, std::function<uint64_t()> first_needed);
  // Removes what `rules` let go of, as of `now_micros`, in batches (each a few thousand keys, so
  // commits go on between them). Record bodies, their history and log entries go with point
  // deletes; RocksDB's compactions reclaim the space.
  Result<RetentionResult> expire(const Retention& rules, int64_t now_micros);
  // Bytes on disk (table files) and in memtables of each column family, by name.
  std::vector<std::pair<std::string, uint64_t>> sizeByFamily() const;
  // Log sequences committed that the history index has not reached yet.
  uint64_t historyIndexBehind() const;

  // Forgets every pending Kafka delivery (a lake copied from another node: what it had not sent
  // is that node's to send).
  Status clearOutbox();

  // What the lake holds in memory, bytes: RocksDB's memtables (up to write_buffer_mb), its block
  // cache (up to block_cache_mb), its table readers' indexes and filters (outside the block
  // cache, growing with the data), the recent-record cache (up to record_cache_mb) and the
  // latest-pointer cache (entries; kLatestCacheEntryBytes each).
  struct MemoryUse {
    size_t memtables = 0, block_cache = 0, table_readers = 0, record_cache = 0,
           latest_cache_entries = 0;
    size_t block_cache_capacity = 0;
  };
  MemoryUse memoryUse() const;

 private:
  explicit Lake(LakeOptions options);
  Status init();
  uint64_t lastKey(rocksdb::ColumnFamilyHandle* cf) const;
  // Rebuilds the area indexes when they differ from those the lake was last opened with.
  Status prepareAreaIndexes();
  // Bits of the area indexes that hold `record` (0 for a withdrawal).
  uint32_t indexedBy(const firehub::v1::Record& record) const;
  // The geo keys under `prefix` (a domain's or an area index's) in the covering of `bbox`, in key
  // order past `after`, until `fn` returns false.
  Status scanAreaKeys(
      const std::string& key_prefix, const BBox& bbox, std::string_view after,
      const std::function<bool(std::string_view position, uint64_t leaf)>& fn) const;
  // The geo key prefix of area index `index`, or null.
  const std::string* indexPrefix(const std::string& index) const;
  Result<AreaCount> countArea(const std::string& key_prefix, const BBox& bbox,
                              std::string_view after, size_t max) const;
  // Walks the geo keys under `prefix` (a domain's or an area index's) for forEach*InBBox().
  Status walkArea(const std::string& prefix, const BBox& bbox,
                  const std::function<bool(firehub::v1::Record&, std::string_view position)>& fn,
                  std::string_view after) const;
  // Writes a batch; after a failed write (full disk) tries to resume RocksDB first. `logged`
  // false: without the write-ahead log (what can be rebuilt after a crash).
  Status write(rocksdb::WriteBatch& batch, bool sync, const char* what, bool logged = true);

  LakeOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  rocksdb::ColumnFamilyHandle* records_ = nullptr;
  rocksdb::ColumnFamilyHandle* latest_ = nullptr;
  rocksdb::ColumnFamilyHandle* geo_ = nullptr;
  rocksdb::ColumnFamilyHandle* log_ = nullptr;
  MetaListener meta_listener_;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  rocksdb::ColumnFamilyHandle* dlq_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* layers_ = nullptr;
  rocksdb::ColumnFamilyHandle* history_ = nullptr;
  // The history index is written by a thread of its own (history_writer.cc): a commit hands its
  // entries over in memory; the writer writes them without the write-ahead log, with the mark of
  // how far the index reaches in the same batch. After a crash (or in a backup) the index may
  // reach less far than the log; the writer indexes the rest from the log when the lake opens.
  struct HistoryWriter;
  std::unique_ptr<HistoryWriter> history_writer_;
  Status startHistoryWriter();
  void stopHistoryWriter();
  void runHistoryWriter();
  // Hands a commit's entries (key, value) to the writer; `end`: the commit's next sequence.
  void queueHistory(uint64_t end, std::vector<std::pair<std::string, std::string>>&& entries);
  // Writes `entries` (emptied) with the mark `mark`, without the WAL, and moves the index's reach.
  Status writeHistoryBatch(std::vector<std::pair<std::string, std::string>>& entries,
                           uint64_t mark);
  // Indexes the log's records in [from, below) from the log itself, moving the mark as it goes.
  Status indexFromLog(uint64_t from, uint64_t below);
  // Waits (a bounded time) until every commit made before the call is in the index.
  Status waitHistoryIndexed() const;
  // Every log entry below it is in the index.
  uint64_t historyIndexedBelow() const;
  std::mutex holds_mu_;
  std::vector<std::pair<std::string, std::function<uint64_t()>>> log_holds_;
  // The lowest log sequence a pending delivery or a log reader needs.
  uint64_t firstNeededSequence();

  std::mutex commit_mu_;
  uint64_t next_sequence_ = 1;  // guarded by commit_mu_
  // The agency owning the entity whose latest record is `current_id`, when it is not `r`'s
  // agency; "" when it is the same (or cannot be told).
  Result<std::string> ownerIfOther(const std::string& current_id,
                                   const firehub::v1::Record& r) const;
  static firehub::v1::DeadLetter foreignWrite(const firehub::v1::Record& r,
                                              const std::string& owner);
  // The batch commit() builds, kept between commits (guarded by commit_mu_) so its buffer does
  // not grow from empty for every push.
  std::unique_ptr<rocksdb::WriteBatch> commit_batch_;
  std::atomic<uint64_t> outbox_depth_{0};
  // Record deliveries of the log below this sequence are done (kept in meta); the outbox column
  // family's keys lie in [outbox_floor_, outbox_top_] (none when floor > top), so a range that
  // misses them writes no tombstone and a read skips the family. Guarded by marks_mu_.
  mutable std::mutex marks_mu_;
  uint64_t log_sent_below_ = 0;
  // No record delivery of the log lies at or after this sequence (records without topics, such
  // as bulk loads, are not scanned for any).
  uint64_t log_delivery_top_ = 0;
  uint64_t outbox_floor_ = UINT64_MAX;
  uint64_t outbox_top_ = 0;
  void widenOutbox(uint64_t low, uint64_t high);  // before writing outbox keys in [low, high]
  void deleteFamilyEntries(rocksdb::WriteBatch& batch, const std::vector<uint64_t>& sorted);
  // Pending record deliveries of the log with sequence >= from, at most max, in order.
  Status readLogDeliveries(uint64_t from, size_t max, std::vector<OutboxEntry>& out) const;
  std::atomic<uint64_t> dlq_count_{0};
  // Geo key prefix of each area index ("\x01" and its name), in the order of the options.
  std::vector<std::string> index_prefixes_;
  std::mutex write_mu_;  // every write to RocksDB goes through write() under it
  std::atomic<bool> stalled_{false};

  // Recently committed records with the last outbox sequence each took, kept as notePublished()
  // describes. Stored records never change (an id is stored once), so a cached one is always
  // what RocksDB holds.
  struct Remembered {
    std::string id;
    std::string bytes;  // the record as stored
    uint64_t last_sequence;
  };
  void remember(std::vector<Remembered>& records);
  std::atomic<bool> publisher_known_{false};
  std::atomic<uint64_t> published_below_{0};
  // The latest pointers a commit wrote, for the next commits (guarded by commit_mu_: only
  // commit() writes the latest column family).
  struct LatestCache;        // entity key -> pointer
  struct LatestGenerations;  // the kept pointers, young and old
  void rememberLatest(LatestCache&& written);
  std::unique_ptr<LatestGenerations> latest_cache_;
  std::atomic<size_t> latest_cache_size_{0};  // for memoryUse(), without commit_mu_
  // Copies the cached bytes of `id` into `out`; false when not cached.
  bool recent(const std::string& id, std::string& out) const;
  mutable std::mutex cache_mu_;
  struct RecordCache;  // guarded by cache_mu_
  std::unique_ptr<RecordCache> cache_;
};

// Where a geometry stands for indexing and distance: the point itself, or the mean of the first
// polygon's outer ring. Nullopt for an empty geometry.
struct LonLat {
  double lon = 0, lat = 0;
};
std::optional<LonLat> representativePoint(const firehub::v1::Geometry& geometry);
// The box around a geometry's points (a point's is the point). Nullopt for an empty geometry.
std::optional<BBox> boundsOf(const firehub::v1::Geometry& geometry);

// Key of an entity in the latest column family: domain/entity_type/entity_id.
std::string entityKey(const firehub::v1::Record& record);
std::string entityKeyOf(const firehub::v1::EntityRef& ref);

}  // namespace firehub::lake
