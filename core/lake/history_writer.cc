// The history index's writer: a thread that writes what commits hand it, off the pushing path.
//
// A commit's two index entries per record cost its thread about a fifth of ingest when they went
// into the commit's batch (memtable inserts and write-ahead log bytes). The commit hands them
// over in memory instead; the writer sorts what has gathered and writes it without the
// write-ahead log, with the mark of how far the index reaches in the same batch of the same
// column family (flushed together, so a table file never holds entries past its mark's reach
// missing). A crash loses what the memtable held of the index, never more: when the lake opens
// the writer indexes the log from the mark on. Readers of the index wait until it holds every
// commit made before they asked; retention removes nothing the index has not reached.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>

#include "firehub/lake.h"
#include "firehub/log.h"
#include "lake/codec.h"
#include "lake/internal.h"

namespace firehub::lake {
namespace {

// Entries written in one batch at most (commits handed over whole): the writer's buffers stay
// small, and so does the process's memory after a bulk load.
constexpr size_t kMaxBatchEntries = 40000;
// Records indexed from the log per batch (the mark moves with each).
constexpr size_t kLogBatchRecords = 10000;
// How long a reader waits for the index to reach the commits made before it asked.
constexpr auto kReaderWait = std::chrono::seconds(10);

void putMark(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* history, uint64_t below) {
  std::string mark;
  codec::appendBigEndian64(mark, below);
  batch.Put(history, kHistoryMarkKey, mark);
}

}  // namespace

Status Lake::startHistoryWriter() {
  auto writer = std::make_unique<HistoryWriter>();
  std::string mark;
  auto got = db_->Get(rocksdb::ReadOptions(), history_, kHistoryMarkKey, &mark);
  uint64_t below = 0;
  if (got.ok() && mark.size() == 8) {
    below = codec::readBigEndian64(mark.data());
  } else if (got.IsNotFound()) {
    // No mark: a new lake, a lake whose commits wrote the index themselves (complete), or one
    // from before the index (built from the whole log now). The first mark goes through the
    // write-ahead log, so a crash before the family's first flush still finds one.
    auto complete = getMeta(kHistoryIndexKey);
    FIREHUB_RETURN_IF_ERROR(complete.status());
    below = complete.value() ? next_sequence_ : 0;
    rocksdb::WriteBatch batch;
    putMark(batch, history_, below);
    batch.Delete(meta_, kHistoryIndexKey);
    FIREHUB_RETURN_IF_ERROR(write(batch, true, "write the history index's mark"));
  } else {
    return got.ok() ? Status::dataLoss("the history index's mark does not decode")
                    : fromRocks(got, "read the history index's mark");
  }
  writer->below = below;
  writer->target = next_sequence_;
  writer->from_log = below < next_sequence_;
  if (writer->from_log && below > 0)
    FIREHUB_LOG(kInfo, "lake",
                "the history index reaches sequence " << below << " of " << next_sequence_
                                                      << "; indexing the rest from the log");
  history_writer_ = std::move(writer);
  history_writer_->thread = std::thread([this] {
    log::nameThread("fh-history");
    runHistoryWriter();
  });
  return Status::ok();
}

void Lake::stopHistoryWriter() {
  if (!history_writer_ || !history_writer_->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(history_writer_->mu);
    history_writer_->stop = true;
  }
  history_writer_->work.notify_one();
  history_writer_->thread.join();
}

void Lake::queueHistory(uint64_t end, std::vector<std::pair<std::string, std::string>>&& entries) {
  auto& w = *history_writer_;
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.target = end;
    if (!w.from_log && w.queued_entries + entries.size() > options_.history_queue_entries) {
      // The writer is far behind (a slow disk, a huge push): it reads these commits back from
      // the log rather than holding them all in memory.
      w.from_log = true;
      w.queue.clear();
      w.queued_entries = 0;
      FIREHUB_LOG(kWarning, "lake",
                  "the history index is more than " << options_.history_queue_entries
                                                    << " entries behind; it reads the log");
    }
    if (!w.from_log) {
      w.queued_entries += entries.size();
      w.queue.push_back({end, std::move(entries)});
    }
  }
  w.work.notify_one();
}

Status Lake::writeHistoryBatch(std::vector<std::pair<std::string, std::string>>& entries,
                               uint64_t mark) {
  // In key order: RocksDB inserts a sorted run near the previous insert.
  std::sort(entries.begin(), entries.end());
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : entries) batch.Put(history_, k, v);
  putMark(batch, history_, mark);
  // Entries made many by one huge commit do not keep their memory.
  if (entries.capacity() > 2 * kMaxBatchEntries)
    std::vector<std::pair<std::string, std::string>>().swap(entries);
  entries.clear();
  FIREHUB_RETURN_IF_ERROR(write(batch, false, "write the history index", /*logged=*/false));
  auto& w = *history_writer_;
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.below = std::max(w.below.load(), mark);
  }
  w.done.notify_all();
  return Status::ok();
}

void Lake::runHistoryWriter() {
  auto& w = *history_writer_;
  std::vector<std::pair<std::string, std::string>> entries;
  int failures = 0;
  for (;;) {
    std::deque<HistoryWriter::Handed> taken;
    uint64_t log_below = 0;  // > 0: index the log up to here
    {
      std::unique_lock<std::mutex> lock(w.mu);
      w.work.wait(lock, [&] { return w.stop || w.from_log || !w.queue.empty(); });
      // Stopping: what was handed over is written; what is to be read from the log is left to
      // the next open.
      if (w.stop && (w.from_log || w.queue.empty())) return;
      if (w.from_log) {
        w.from_log = false;
        log_below = w.target;
      } else {
        size_t n = 0;
        while (!w.queue.empty() && (taken.empty() || n < kMaxBatchEntries)) {
          n += w.queue.front().entries.size();
          taken.push_back(std::move(w.queue.front()));
          w.queue.pop_front();
        }
        w.queued_entries -= std::min(w.queued_entries, n);
      }
    }
    Status s;
    if (log_below > 0) {
      s = indexFromLog(w.below.load(), log_below);
    } else {
      for (auto& handed : taken) {
        std::move(handed.entries.begin(), handed.entries.end(), std::back_inserter(entries));
      }
      s = writeHistoryBatch(entries, taken.back().end);
    }
    if (s.isOk()) {
      failures = 0;
      continue;
    }
    // A failed write (a full disk): what was handed over is read from the log on the next turn.
    FIREHUB_LOG(kWarning, "lake", "history index: " << s.toString() << "; retrying from the log");
    {
      std::lock_guard<std::mutex> lock(w.mu);
      w.from_log = true;
      w.queue.clear();
      w.queued_entries = 0;
      if (w.stop) return;  // the next open indexes the rest from the log
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5000, 100 << ++failures)));
  }
}

Status Lake::indexFromLog(uint64_t from, uint64_t below) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  firehub::v1::Record r;
  std::vector<std::pair<std::string, std::string>> entries;
  std::string start;
  codec::appendBigEndian64(start, from);
  size_t in_batch = 0, indexed = 0;
  for (it->Seek(start); it->Valid(); it->Next()) {
    codec::LogEntry entry;
    if (it->key().size() != 8) continue;
    const uint64_t seq = codec::readBigEndian64(it->key().data());
    if (seq >= below) break;
    if (!codec::decodeLog(it->value().ToStringView(), entry)) continue;
    auto read = readRecord(std::string(entry.record_id), r);
    FIREHUB_RETURN_IF_ERROR(read.status());
    if (!read.value()) continue;  // removed by retention
    addHistoryEntries(r, micros(r.observed_at()), seq, entityKey(r), entries);
    ++indexed;
    if (++in_batch < kLogBatchRecords) continue;
    FIREHUB_RETURN_IF_ERROR(writeHistoryBatch(entries, seq + 1));
    in_batch = 0;
  }
  FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan the log"));
  FIREHUB_RETURN_IF_ERROR(writeHistoryBatch(entries, below));
  if (indexed > 0)
    FIREHUB_LOG(kInfo, "lake", "indexed the history of " << indexed << " records from the log");
  return Status::ok();
}

Status Lake::waitHistoryIndexed() const {
  auto& w = *history_writer_;
  std::unique_lock<std::mutex> lock(w.mu);
  const uint64_t target = w.target;
  if (w.done.wait_for(lock, kReaderWait, [&] { return w.below.load() >= target || w.stop; }))
    return Status::ok();
  return Status::unavailable("the history index is catching up with the log (at sequence " +
                             std::to_string(w.below.load()) + " of " + std::to_string(target) +
                             "); try again shortly");
}

uint64_t Lake::historyIndexBehind() const {
  if (!history_writer_) return 0;
  std::lock_guard<std::mutex> lock(history_writer_->mu);
  const uint64_t below = history_writer_->below.load();
  return history_writer_->target > below ? history_writer_->target - below : 0;
}

uint64_t Lake::historyIndexedBelow() const {
  return history_writer_ ? history_writer_->below.load() : 0;
}

}  // namespace firehub::lake
